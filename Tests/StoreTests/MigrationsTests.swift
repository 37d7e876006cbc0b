import CSQLite
import XCTest

@testable import Store

final class MigrationsTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory.remove()
    }

    /// A migrated database at the temporary path.
    private func migrated() throws -> Database {
        let db = try Database(path: directory.databasePath)
        try Migrations.migrate(db, now: 1234)
        return db
    }

    /// The error `sql` fails with; fails the test when it succeeds.
    private func failure(_ db: Database, _ sql: String, file: StaticString = #filePath, line: UInt = #line) -> StoreError? {
        do {
            try db.execute(sql)
            XCTFail("expected an error from: \(sql)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private func insertJob(_ db: Database, id: String = "J1", status: String = "queued") throws {
        try db.execute(
            """
            INSERT INTO jobs(id, plan_name, plan, goal, status, created_at) VALUES ('\(id)', 'p', '{}', 'g', '\(status)', 1)
            """)
    }

    private func insertEvent(_ db: Database, job: String = "J1", seq: Int = 1, role: String = "NULL", payload: String = "'{}'") throws {
        try db.execute(
            """
            INSERT INTO events(job_id, seq, at, kind, role, payload) VALUES ('\(job)', \(seq), 5, 'job.state', \(role), \(payload))
            """)
    }

    /// `schema_migrations` rows of every migration applied at `at`.
    private func applied(at: Int64) -> [[SQLValue]] {
        Migrations.all.map { [.int(Int64($0.version)), .int(at)] }
    }

    private func count(_ db: Database, _ sql: String) throws -> Int64? {
        try db.query(sql).first?.first?.int
    }

    // MARK: Versions

    func testFreshDatabaseIsAtTheNewestVersion() throws {
        let db = try migrated()
        let rows = try db.query("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
        XCTAssertEqual(rows.count, Migrations.all.count)
        XCTAssertEqual(rows.first?[0], .int(1))
        XCTAssertEqual(rows.first?[1], .text(Migrations.all[0].name))
        XCTAssertEqual(rows.first?[2], .int(1234))
        let tables = try db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").compactMap { $0[0].text }
        XCTAssertEqual(
            tables.filter { !$0.hasPrefix("events_fts") },
            ["event_kinds", "events", "job_chains", "jobs", "pruned_jobs", "prunes", "schema_migrations", "storage_probe"], "\(tables)")
        XCTAssertTrue(tables.contains("events_fts"), "the full-text index: \(tables)")
        XCTAssertTrue(tables.contains("events_fts_progress"), "its progress: \(tables)")
    }

    func testMigratingTwiceIsANoOp() throws {
        let db = try migrated()
        try insertJob(db)
        let schema = try db.query("SELECT sql FROM sqlite_master ORDER BY name")
        try Migrations.migrate(db, now: 9999)
        let versions = Migrations.all.map { [SQLValue.int(Int64($0.version)), .int(1234)] }
        XCTAssertEqual(try db.query("SELECT version, applied_at FROM schema_migrations ORDER BY version"), versions)
        XCTAssertEqual(try db.query("SELECT sql FROM sqlite_master ORDER BY name"), schema)
        XCTAssertEqual(try count(db, "SELECT count(*) FROM jobs"), 1)

        // And again from a new connection, as a restarted daemon would.
        let reopened = try Database(path: directory.databasePath)
        try Migrations.migrate(reopened, now: 5555)
        XCTAssertEqual(try reopened.query("SELECT version, applied_at FROM schema_migrations ORDER BY version"), versions)
    }

    func testNewerSchemaIsRefusedWithAMessageToUpgrade() throws {
        let db = try migrated()
        let future = Migrations.all.last!.version + 1
        try db.execute("INSERT INTO schema_migrations(version, name, applied_at) VALUES (\(future), 'from the future', 1)")

        XCTAssertThrowsError(try Migrations.migrate(db, now: 1)) { error in
            let message = (error as? StoreError)?.message ?? "\(error)"
            XCTAssertTrue(message.contains("upgrade agentd"), message)
            XCTAssertTrue(message.contains("version \(future)"), message)
        }
        // Opening a writer on it is refused the same way.
        XCTAssertThrowsError(try StoreWriter(path: directory.databasePath, clock: ManualClock())) { error in
            XCTAssertTrue("\(error)".contains("upgrade"), "\(error)")
        }
        XCTAssertEqual(try count(db, "SELECT count(*) FROM schema_migrations"), Int64(Migrations.all.count + 1))
    }

    func testMigrationRunsInOneTransaction() throws {
        // A file that already has a `jobs` table of its own: the migration fails part way and leaves
        // nothing behind, not even its record.
        let db = try Database(path: directory.databasePath)
        try db.execute("CREATE TABLE events (x)")
        XCTAssertThrowsError(try Migrations.migrate(db, now: 1))
        XCTAssertEqual(try count(db, "SELECT count(*) FROM schema_migrations"), 0)
        XCTAssertEqual(try count(db, "SELECT count(*) FROM sqlite_master WHERE name = 'jobs'"), 0)
    }

    // MARK: Invariants in SQL

    func testEventsAreAppendOnly() throws {
        let db = try migrated()
        try insertJob(db)
        try insertEvent(db)

        let update = failure(db, "UPDATE events SET kind = 'changed' WHERE seq = 1")
        XCTAssertEqual(update?.primaryCode, SQLITE_CONSTRAINT)
        XCTAssertTrue(update?.message.contains("append-only") ?? false, update?.message ?? "")
        let delete = failure(db, "DELETE FROM events")
        XCTAssertEqual(delete?.primaryCode, SQLITE_CONSTRAINT)
        XCTAssertTrue(delete?.message.contains("append-only") ?? false, delete?.message ?? "")

        XCTAssertEqual(try db.query("SELECT kind FROM events"), [[.text("job.state")]])
    }

    func testEventPayloadMustBeJSON() throws {
        let db = try migrated()
        try insertJob(db)
        let error = failure(db, "INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('J1', 1, 5, 'job.state', 'not json')")
        XCTAssertEqual(error?.primaryCode, SQLITE_CONSTRAINT)
        XCTAssertTrue(error?.message.contains("json_valid") ?? false, error?.message ?? "")
        XCTAssertNotNil(failure(db, "INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('J1', 1, 5, 'job.state', '{\"a\":')"))
        XCTAssertNotNil(failure(db, "INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('J1', 1, 5, 'job.state', NULL)"))
        try insertEvent(db, payload: "'[1,\"two\"]'")
    }

    func testEventRoleMustBeKnown() throws {
        let db = try migrated()
        try insertJob(db)
        let error = failure(db, "INSERT INTO events(job_id, seq, at, kind, role, payload) VALUES ('J1', 1, 5, 'job.state', 'judge', '{}')")
        XCTAssertEqual(error?.primaryCode, SQLITE_CONSTRAINT)
        XCTAssertTrue(error?.message.contains("CHECK") ?? false, error?.message ?? "")
        for (seq, role) in ["planner", "actor", "critic", "verifier"].enumerated() {
            try insertEvent(db, seq: seq + 1, role: "'\(role)'")
        }
        try insertEvent(db, seq: 5, role: "NULL")
    }

    func testJobStatusMustBeKnown() throws {
        let db = try migrated()
        let error = failure(db, "INSERT INTO jobs(id, plan_name, plan, goal, status, created_at) VALUES ('J', 'p', '{}', 'g', 'done', 1)")
        XCTAssertEqual(error?.primaryCode, SQLITE_CONSTRAINT)
        XCTAssertTrue(error?.message.contains("CHECK") ?? false, error?.message ?? "")
        for (i, status) in JobStatus.allCases.enumerated() {
            try insertJob(db, id: "J\(i)", status: status.rawValue)
        }
        XCTAssertNotNil(failure(db, "UPDATE jobs SET status = 'paused' WHERE id = 'J0'"))
    }

    func testEventSequenceIsUniquePerJobAndStartsAtOne() throws {
        let db = try migrated()
        try insertJob(db, id: "J1")
        try insertJob(db, id: "J2")
        try insertEvent(db, job: "J1", seq: 1)
        try insertEvent(db, job: "J2", seq: 1)
        XCTAssertEqual(
            failure(db, "INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('J1', 1, 5, 'again', '{}')")?.primaryCode,
            SQLITE_CONSTRAINT)
        XCTAssertEqual(
            failure(db, "INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('J1', 0, 5, 'zero', '{}')")?.primaryCode,
            SQLITE_CONSTRAINT)
    }

    func testEventsNeedAnExistingJob() throws {
        let db = try migrated()
        XCTAssertEqual(
            failure(db, "INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('nope', 1, 5, 'job.state', '{}')")?.primaryCode,
            SQLITE_CONSTRAINT)
    }

    // MARK: Known event kinds

    func testEventKindsTableListsExactlyTheKindsThisBuildWrites() throws {
        // A new `EventKind` case needs a migration that inserts its name, or its first event is refused.
        let db = try migrated()
        let kinds = try db.query("SELECT kind FROM event_kinds ORDER BY kind").compactMap { $0[0].text }
        XCTAssertEqual(kinds, EventKind.allCases.map(\.rawValue).sorted())
    }

    func testEventOfAnUnknownKindIsRefused() throws {
        let db = try migrated()
        try insertJob(db)
        let error = failure(db, "INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('J1', 1, 5, 'job.stat', '{}')")
        XCTAssertEqual(error?.primaryCode, SQLITE_CONSTRAINT)
        XCTAssertTrue(error?.message.contains("unknown event kind") ?? false, error?.message ?? "")
        for (seq, kind) in EventKind.allCases.enumerated() {
            try db.execute(
                "INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('J1', \(seq + 1), 5, '\(kind.rawValue)', '{}')")
        }
        XCTAssertEqual(try count(db, "SELECT count(*) FROM events"), Int64(EventKind.allCases.count))
        // The list itself is append-only.
        XCTAssertNotNil(failure(db, "DELETE FROM event_kinds WHERE kind = 'job.state'"))
        XCTAssertNotNil(failure(db, "UPDATE event_kinds SET kind = 'note' WHERE kind = 'job.state'"))
    }

    func testAnOlderDatabaseMigratesForwardKeepingItsEvents() throws {
        // A database of schema 4 whose log holds a kind no build writes any more: migration 5 keeps
        // the row as it is (the chain covers it) and refuses only new events of unknown kinds.
        let db = try Database(path: directory.databasePath)
        try Migrations.migrate(db, now: 1, upTo: 4)
        try insertJob(db)
        try db.execute("INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('J1', 1, 5, 'note', '{\"a\":1}')")
        try Migrations.migrate(db, now: 2)
        XCTAssertEqual(try count(db, "SELECT max(version) FROM schema_migrations"), Int64(Migrations.all.last!.version))
        XCTAssertEqual(try db.query("SELECT kind, payload FROM events"), [[.text("note"), .text(#"{"a":1}"#)]])
        XCTAssertNotNil(failure(db, "INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('J1', 2, 5, 'note', '{}')"))
        try db.execute("INSERT INTO events(job_id, seq, at, kind, payload) VALUES ('J1', 2, 5, 'job.state', '{}')")
    }

    func testTablesAreStrict() throws {
        let db = try migrated()
        XCTAssertNotNil(
            failure(
                db, "INSERT INTO jobs(id, plan_name, plan, goal, status, created_at) VALUES ('J', 'p', '{}', 'g', 'queued', 'yesterday')"))
    }

    func testIdempotencyKeysAreUnique() throws {
        let db = try migrated()
        try db.execute(
            "INSERT INTO jobs(id, plan_name, plan, goal, status, created_at, idempotency_key) VALUES ('A', 'p', '{}', 'g', 'queued', 1, 'k')"
        )
        XCTAssertNotNil(
            failure(
                db,
                "INSERT INTO jobs(id, plan_name, plan, goal, status, created_at, idempotency_key) VALUES ('B', 'p', '{}', 'g', 'queued', 1, 'k')"
            ))
        // Jobs without a key do not collide.
        try db.execute("INSERT INTO jobs(id, plan_name, plan, goal, status, created_at) VALUES ('C', 'p', '{}', 'g', 'queued', 1)")
        try db.execute("INSERT INTO jobs(id, plan_name, plan, goal, status, created_at) VALUES ('D', 'p', '{}', 'g', 'queued', 1)")
    }

    func testDatabaseRunsInWALMode() throws {
        let db = try migrated()
        XCTAssertEqual(try db.query("PRAGMA journal_mode"), [[.text("wal")]])
        XCTAssertEqual(try db.query("PRAGMA foreign_keys"), [[.int(1)]])
    }
}
