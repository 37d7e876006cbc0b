/// Which jobs a prune removes: whole jobs that finished (with one of `statuses`) before `before`.
///
/// Only whole finished jobs go — the job row, its events, its chain head and its search-index entries,
/// in one transaction — so every job that stays keeps its whole hash chain: each job has its own. Each
/// pruned job is first recorded in `pruned_jobs` (its status, when it finished, its chain's head and
/// length) under a `prunes` row (when, the cutoff, the statuses), and the delete triggers of `events`,
/// `jobs` and `job_chains` let a row go only when its job is recorded there. So an auditor can tell a
/// job pruned away from one deleted by someone else, and compare a pruned job's recorded head with a
/// copy kept elsewhere. Queued and running jobs are never selected, and `pruned_jobs` refuses them.
public struct PruneRequest: Sendable, Equatable {
    /// Jobs whose `finished_at` is earlier than this (Unix ms) are removed.
    public var before: Int64
    /// Terminal statuses only (`succeeded`, `failed`, `cancelled`).
    public var statuses: [JobStatus]
    /// Jobs kept whatever their row says (the daemon's jobs whose runner is still stopping).
    public var exclude: Set<String>

    public init(before: Int64, statuses: [JobStatus] = JobStatus.terminal, exclude: Set<String> = []) {
        precondition(statuses.allSatisfy(\.isTerminal), "only finished jobs can be pruned")
        self.before = before
        self.statuses = statuses
        self.exclude = exclude
    }
}

/// What a prune removed (or, in a dry run, would remove).
public struct PruneResult: Sendable, Equatable {
    public var jobs = 0
    public var events = 0
    /// The `prunes` row recording it; nil when nothing was removed (or in a dry run).
    public var pruneID: Int64?

    public init(jobs: Int = 0, events: Int = 0, pruneID: Int64? = nil) {
        self.jobs = jobs
        self.events = events
        self.pruneID = pruneID
    }
}

/// One transaction of a prune: the jobs it removed (with their idempotency keys, which are free
/// again) and where the next batch starts.
public struct PruneBatch: Sendable {
    public var removed: [(id: String, idempotencyKey: String?)] = []
    public var events = 0
    public var pruneID: Int64?
    /// The last job id looked at; the next batch starts after it. Nil when no job was left.
    public var cursor: String?
}

/// What `pruned_jobs` says about the pruning so far (for `audit verify`).
public struct PruneSummary: Sendable, Equatable {
    public var prunes: Int
    public var jobs: Int
    /// When the last prune ran (Unix ms).
    public var lastAt: Int64?

    public init(prunes: Int, jobs: Int, lastAt: Int64?) {
        self.prunes = prunes
        self.jobs = jobs
        self.lastAt = lastAt
    }
}

/// One job recorded as pruned.
public struct PrunedJob: Sendable, Equatable {
    public var jobID: String
    public var pruneID: Int64
    public var prunedAt: Int64
    public var before: Int64
    public var status: String
    public var finishedAt: Int64
    public var head: String?
    public var length: Int

    public init(
        jobID: String, pruneID: Int64, prunedAt: Int64, before: Int64, status: String, finishedAt: Int64, head: String?, length: Int
    ) {
        self.jobID = jobID
        self.pruneID = pruneID
        self.prunedAt = prunedAt
        self.before = before
        self.status = status
        self.finishedAt = finishedAt
        self.head = head
        self.length = length
    }
}

extension JobStatus {
    /// The statuses a job ends in.
    public static let terminal: [JobStatus] = [.succeeded, .failed, .cancelled]
}

extension Database {
    /// Jobs removed per transaction: small enough that other writes wait only briefly in between.
    public static let pruneBatchSize = 100

    private func candidatesSQL(_ request: PruneRequest) -> String {
        let placeholders = request.statuses.map { _ in "?" }.joined(separator: ", ")
        return "status IN (\(placeholders)) AND finished_at < ?"
    }

    private func candidateBindings(_ request: PruneRequest) -> [SQLValue] {
        request.statuses.map { .text($0.rawValue) } + [.int(request.before)]
    }

    /// What `request` would remove: jobs and their events. Read-only.
    public func pruneCandidates(_ request: PruneRequest) throws(StoreError) -> PruneResult {
        guard !request.statuses.isEmpty else { return PruneResult() }
        let rows = try query(
            "SELECT id, (SELECT count(*) FROM events WHERE job_id = jobs.id) FROM jobs WHERE \(candidatesSQL(request))",
            candidateBindings(request))
        var result = PruneResult()
        for row in rows where !request.exclude.contains(row[0].text ?? "") {
            result.jobs += 1
            result.events += Int(row[1].int ?? 0)
        }
        return result
    }

    /// Removes up to `limit` jobs of `request` with ids after `cursor`, in one write transaction, and
    /// records them under `pruneID` (a new `prunes` row when nil and something is removed).
    public func pruneBatch(
        _ request: PruneRequest, pruneID: Int64?, after cursor: String?, limit: Int = pruneBatchSize, now: Int64
    ) throws(StoreError) -> PruneBatch {
        var batch = PruneBatch(pruneID: pruneID)
        guard !request.statuses.isEmpty else { return batch }
        try execute("BEGIN IMMEDIATE")
        do {
            let rows = try query(
                "SELECT id, idempotency_key FROM jobs WHERE \(candidatesSQL(request)) AND id > ? ORDER BY id LIMIT ?",
                candidateBindings(request) + [.text(cursor ?? ""), .int(Int64(limit))])
            batch.cursor = rows.last?[0].text
            let chosen = rows.compactMap { row -> (String, String?)? in
                guard let id = row[0].text, !request.exclude.contains(id) else { return nil }
                return (id, row[1].text)
            }
            if !chosen.isEmpty {
                let id: Int64
                if let existing = batch.pruneID { id = existing } else { id = try recordPrune(request, now: now) }
                batch.pruneID = id
                let statements = try PruneStatements(self)
                for (job, key) in chosen {
                    batch.events += try statements.remove(job: job, pruneID: id, db: self)
                    batch.removed.append((job, key))
                }
                try statements.lowerIndexProgress.run([])
            }
            try execute("COMMIT")
        } catch {
            if isInTransaction { try? execute("ROLLBACK") }
            throw error
        }
        return batch
    }

    /// Runs a whole prune, batch by batch, on this connection (`agentd prune` when no daemon runs;
    /// the daemon goes through `StoreWriter.prune`).
    public func prune(_ request: PruneRequest, now: Int64) throws(StoreError) -> PruneResult {
        var result = PruneResult()
        var cursor: String?
        repeat {
            let batch = try pruneBatch(request, pruneID: result.pruneID, after: cursor, now: now)
            result.jobs += batch.removed.count
            result.events += batch.events
            result.pruneID = batch.pruneID
            cursor = batch.cursor
        } while cursor != nil
        return result
    }

    private func recordPrune(_ request: PruneRequest, now: Int64) throws(StoreError) -> Int64 {
        let statuses = request.statuses.map(\.rawValue).joined(separator: ",")
        try prepare("INSERT INTO prunes(at, before, statuses) VALUES (?, ?, ?)").run([
            .int(now), .int(request.before), .text(statuses),
        ])
        return try query("SELECT last_insert_rowid()")[0][0].int ?? 0
    }

    /// How many prunes ran and how many jobs they removed; nil for a schema before version 4.
    public func pruneSummary() throws(StoreError) -> PruneSummary? {
        guard try query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'pruned_jobs'")[0][0].int == 1 else {
            return nil
        }
        let prunes = try query("SELECT count(*), max(at) FROM prunes")[0]
        let jobs = try query("SELECT count(*) FROM pruned_jobs")[0][0].int ?? 0
        return PruneSummary(prunes: Int(prunes[0].int ?? 0), jobs: Int(jobs), lastAt: prunes[1].int)
    }

    /// The record of a pruned job, or nil if `jobID` was never pruned (or the schema predates pruning).
    public func prunedJob(_ jobID: String) throws(StoreError) -> PrunedJob? {
        guard try pruneSummary() != nil else { return nil }
        let rows = try query(
            """
            SELECT p.prune_id, r.at, r.before, p.status, p.finished_at, p.head, p.length
            FROM pruned_jobs AS p JOIN prunes AS r ON r.id = p.prune_id WHERE p.job_id = ?
            """, [.text(jobID)])
        guard let row = rows.first else { return nil }
        return PrunedJob(
            jobID: jobID, pruneID: row[0].int ?? 0, prunedAt: row[1].int ?? 0, before: row[2].int ?? 0, status: row[3].text ?? "",
            finishedAt: row[4].int ?? 0, head: row[5].text, length: Int(row[6].int ?? 0))
    }
}

/// The statements that remove one job, in the order the foreign keys and triggers need: the record
/// first (the delete triggers look for it), then the search entries of its indexed events (an FTS5
/// external-content index is told what it indexed: the same text, read from `events_text`), the
/// events, the chain head, the job.
private struct PruneStatements {
    let record: Statement
    let unindex: Statement
    let events: Statement
    let chain: Statement
    let job: Statement
    /// SQLite gives a new row the highest rowid + 1, so when a prune removed the newest events their
    /// ids come back: the index's progress must not stay above them, or they would never be indexed.
    /// (The index holds nothing above the highest remaining id: the pruned events were taken out.)
    let lowerIndexProgress: Statement

    init(_ db: Database) throws(StoreError) {
        record = try db.prepare(
            """
            INSERT INTO pruned_jobs(job_id, prune_id, status, finished_at, head, length)
            SELECT j.id, ?2, j.status, j.finished_at, c.head, coalesce(c.length, 0)
            FROM jobs AS j LEFT JOIN job_chains AS c ON c.job_id = j.id WHERE j.id = ?1
            """)
        unindex = try db.prepare(
            """
            INSERT INTO events_fts(events_fts, rowid, text)
            SELECT 'delete', id, text FROM events_text
            WHERE id IN (SELECT id FROM events WHERE job_id = ?1)
              AND id <= (SELECT last_indexed FROM events_fts_progress WHERE id = 1)
            """)
        events = try db.prepare("DELETE FROM events WHERE job_id = ?")
        chain = try db.prepare("DELETE FROM job_chains WHERE job_id = ?")
        job = try db.prepare("DELETE FROM jobs WHERE id = ?")
        // SQLite gives a new row the highest rowid + 1, so when a prune removes the newest events their
        // ids are used again: the index's progress comes down to the highest id left, so that the
        // reused ids are indexed (the index holds nothing above it any more).
        lowerIndexProgress = try db.prepare(
            """
            UPDATE events_fts_progress SET last_indexed = (SELECT coalesce(max(id), 0) FROM events)
            WHERE id = 1 AND last_indexed > (SELECT coalesce(max(id), 0) FROM events)
            """)
    }

    /// Removes `job`; returns how many events it had.
    func remove(job id: String, pruneID: Int64, db: Database) throws(StoreError) -> Int {
        try record.run([.text(id), .int(pruneID)])
        try unindex.run([.text(id)])
        try events.run([.text(id)])
        let removed = db.changes
        try chain.run([.text(id)])
        try job.run([.text(id)])
        return removed
    }
}
