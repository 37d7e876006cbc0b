/// The schema, as an ordered list of forward-only migrations.
///
/// Each migration runs in its own transaction and is recorded in `schema_migrations`. A shipped
/// migration is never edited: a change to the schema is a new entry at the end.
public enum Migrations {
    public static let all: [(version: Int, name: String, sql: String)] = [
        (
            1, "jobs and the event log",
            """
            CREATE TABLE jobs (
                id              TEXT PRIMARY KEY,
                plan_name       TEXT NOT NULL,
                plan            TEXT NOT NULL,
                goal            TEXT NOT NULL,
                inputs          TEXT NOT NULL DEFAULT '{}',
                cwd             TEXT,
                idempotency_key TEXT UNIQUE,
                status          TEXT NOT NULL CHECK (status IN
                                  ('queued','running','awaiting_approval','succeeded','failed','cancelled')),
                reason          TEXT,
                created_at      INTEGER NOT NULL,
                started_at      INTEGER,
                finished_at     INTEGER
            ) STRICT;
            CREATE INDEX jobs_by_status ON jobs(status, id);

            CREATE TABLE events (
                id       INTEGER PRIMARY KEY,
                job_id   TEXT NOT NULL REFERENCES jobs(id),
                seq      INTEGER NOT NULL CHECK (seq >= 1),
                at       INTEGER NOT NULL,
                kind     TEXT NOT NULL,
                role     TEXT CHECK (role IN ('planner','actor','critic','verifier')),
                step     INTEGER,
                attempt  INTEGER,
                call_id  TEXT,
                payload  TEXT NOT NULL CHECK (json_valid(payload)),
                UNIQUE (job_id, seq)
            ) STRICT;

            CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
            BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
            CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
            BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
            """
        ),
        (
            2, "the per-job hash chain",
            // The update trigger is dropped for the hashing of existing events (Chain.hashExistingEvents,
            // run after this SQL in the same transaction) and created again after it.
            """
            ALTER TABLE events ADD COLUMN hash TEXT;
            -- Each job's chain head, beside its row in jobs: updated once per job per commit, and a
            -- narrow row keeps that update from rewriting the job's wide row (its plan snapshot).
            CREATE TABLE job_chains (
                job_id TEXT PRIMARY KEY REFERENCES jobs(id),
                head   TEXT NOT NULL CHECK (length(head) = 64),
                length INTEGER NOT NULL CHECK (length >= 1)
            ) STRICT, WITHOUT ROWID;
            DROP TRIGGER events_append_only_update;
            """
        ),
        (
            3, "full-text search over the events' text",
            """
            CREATE VIEW events_text(id, text) AS
                SELECT id, (SELECT group_concat(value, ' ') FROM json_tree(events.payload) WHERE type = 'text')
                FROM events;

            CREATE VIRTUAL TABLE events_fts USING fts5(
                text, content = 'events_text', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2');

            CREATE TABLE events_fts_progress (
                id           INTEGER PRIMARY KEY CHECK (id = 1),
                last_indexed INTEGER NOT NULL
            ) STRICT;
            INSERT INTO events_fts_progress(id, last_indexed) VALUES (1, 0);
            """
        ),
        (
            4, "pruning whole finished jobs, and the writer's storage probe",
            // A job is removed only whole and only once it is recorded in pruned_jobs, which takes only
            // finished jobs: the delete triggers of events, jobs and job_chains check that record.
            """
            CREATE TABLE prunes (
                id       INTEGER PRIMARY KEY,
                at       INTEGER NOT NULL,
                before   INTEGER NOT NULL,
                statuses TEXT NOT NULL
            ) STRICT;
            CREATE TABLE pruned_jobs (
                job_id      TEXT PRIMARY KEY,
                prune_id    INTEGER NOT NULL REFERENCES prunes(id),
                status      TEXT NOT NULL CHECK (status IN ('succeeded','failed','cancelled')),
                finished_at INTEGER NOT NULL,
                head        TEXT CHECK (head IS NULL OR length(head) = 64),
                length      INTEGER NOT NULL CHECK (length >= 0)
            ) STRICT, WITHOUT ROWID;

            CREATE TRIGGER prunes_append_only_update BEFORE UPDATE ON prunes
            BEGIN SELECT RAISE(ABORT, 'the prune record is append-only'); END;
            CREATE TRIGGER prunes_append_only_delete BEFORE DELETE ON prunes
            BEGIN SELECT RAISE(ABORT, 'the prune record is append-only'); END;
            CREATE TRIGGER pruned_jobs_append_only_update BEFORE UPDATE ON pruned_jobs
            BEGIN SELECT RAISE(ABORT, 'the prune record is append-only'); END;
            CREATE TRIGGER pruned_jobs_append_only_delete BEFORE DELETE ON pruned_jobs
            BEGIN SELECT RAISE(ABORT, 'the prune record is append-only'); END;
            CREATE TRIGGER pruned_jobs_finished_only BEFORE INSERT ON pruned_jobs
            WHEN NOT EXISTS (SELECT 1 FROM jobs WHERE id = NEW.job_id AND status IN ('succeeded','failed','cancelled'))
            BEGIN SELECT RAISE(ABORT, 'only a finished job can be pruned'); END;

            DROP TRIGGER events_append_only_delete;
            CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
            WHEN NOT EXISTS (SELECT 1 FROM pruned_jobs WHERE job_id = OLD.job_id)
            BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
            CREATE TRIGGER jobs_pruned_only BEFORE DELETE ON jobs
            WHEN NOT EXISTS (SELECT 1 FROM pruned_jobs WHERE job_id = OLD.id)
            BEGIN SELECT RAISE(ABORT, 'a job is removed only whole, by agentd prune'); END;
            CREATE TRIGGER job_chains_pruned_only BEFORE DELETE ON job_chains
            WHEN NOT EXISTS (SELECT 1 FROM pruned_jobs WHERE job_id = OLD.job_id)
            BEGIN SELECT RAISE(ABORT, 'a chain head is removed only with its job, by agentd prune'); END;

            CREATE TABLE storage_probe (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                at INTEGER NOT NULL
            ) STRICT;
            """
        ),
        (
            5, "the known event kinds",
            // The set is a table, not a CHECK on events.kind: a new kind is one INSERT in a new migration,
            // and the append-only, hash-chained, indexed events table is never rebuilt. Rows written
            // before this migration are not checked again; every insert from now on is.
            """
            CREATE TABLE event_kinds (
                kind TEXT PRIMARY KEY
            ) STRICT, WITHOUT ROWID;
            INSERT INTO event_kinds(kind) VALUES
                ('job.submitted'), ('job.state'), ('job.replanned'), ('call.started'), ('call.completed'),
                ('call.failed'), ('step.exhausted'), ('step.timed_out'), ('attempt.duplicate'), ('job.resumed'),
                ('call.restarted'), ('tool.started'), ('tool.completed'), ('tool.restarted');
            CREATE TRIGGER event_kinds_append_only_update BEFORE UPDATE ON event_kinds
            BEGIN SELECT RAISE(ABORT, 'the known event kinds are append-only'); END;
            CREATE TRIGGER event_kinds_append_only_delete BEFORE DELETE ON event_kinds
            BEGIN SELECT RAISE(ABORT, 'the known event kinds are append-only'); END;
            CREATE TRIGGER events_known_kind BEFORE INSERT ON events
            WHEN NOT EXISTS (SELECT 1 FROM event_kinds WHERE kind = NEW.kind)
            BEGIN SELECT RAISE(ABORT, 'unknown event kind: not in event_kinds'); END;
            """
        ),
        (
            6, "step.infeasible, record format 3",
            """
            INSERT INTO event_kinds(kind) VALUES ('step.infeasible');
            """
        ),
        (
            7, "the gates' events",
            """
            INSERT INTO event_kinds(kind) VALUES ('gate.requested'), ('gate.decided'), ('gate.refused');
            """
        ),
        (
            8, "job.retried, the link from a job to its retries",
            """
            INSERT INTO event_kinds(kind) VALUES ('job.retried');
            """
        ),
        (
            9, "step.checked, the ground-truth check's result",
            """
            INSERT INTO event_kinds(kind) VALUES ('step.checked');
            """
        ),
        (
            10, "the juries' events",
            """
            INSERT INTO event_kinds(kind) VALUES ('jury.convened'), ('jury.voted'), ('jury.decided');
            """
        ),
        (
            11, "the candidates' events, record format 4",
            """
            INSERT INTO event_kinds(kind) VALUES ('candidate.started'), ('candidate.judged'), ('candidate.chosen');
            """
        ),
    ]

    /// The part of a migration written in Swift, run after its SQL in the same transaction.
    static func afterSQL(version: Int, _ db: Database) throws(StoreError) {
        switch version {
        case 2:
            try Chain.hashExistingEvents(db)
            try db.execute(
                """
                CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
                BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
                """)
        default:
            break
        }
    }

    /// Brings `db` up to the newest schema. Throws when the file holds a newer schema than this build
    /// knows, so an old binary never writes to a database it does not understand.
    /// `upTo` stops at that version (tests build older databases with it).
    public static func migrate(_ db: Database, now: Int64, upTo: Int = .max) throws(StoreError) {
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at INTEGER NOT NULL
            ) STRICT
            """)
        let applied = try db.query("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].int ?? 0
        if applied > Int64(all.last!.version) {
            throw StoreError(
                code: 0, operation: "migrate",
                message: "database schema version \(applied) is newer than this agentd (\(all.last!.version)); upgrade agentd")
        }
        for migration in all where migration.version > applied && migration.version <= upTo {
            try db.execute("BEGIN IMMEDIATE")
            do {
                try db.execute(migration.sql)
                try afterSQL(version: migration.version, db)
                let insert = try db.prepare("INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)")
                try insert.run([.int(Int64(migration.version)), .text(migration.name), .int(now)])
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw error
            }
        }
    }
}
