import Dispatch

/// Read-only queries on their own connection and thread, so the event loop never waits on SQLite.
///
/// WAL mode lets these reads run while the writer commits; each query sees a consistent snapshot.
/// Every method may be called from any thread; `async` methods resume on the caller's executor.
public final class StoreReader: @unchecked Sendable {
    private let queue = DispatchQueue(label: "agentd.store.reader")
    private let db: Database

    public init(path: String) throws(StoreError) {
        db = try Database(path: path, readOnly: true)
        try db.execute("PRAGMA query_only=ON")
    }

    /// Runs `body` with the connection on the reader's thread.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        let result: Result<T, StoreError> = await withUnsafeContinuation { continuation in
            queue.async {
                do {
                    continuation.resume(returning: .success(try body(self.db)))
                } catch let error as StoreError {
                    continuation.resume(returning: .failure(error))
                } catch {
                    continuation.resume(returning: .failure(StoreError(code: 0, operation: "read", message: "\(error)")))
                }
            }
        }
        return try result.get()
    }

    /// Runs `body` synchronously on the calling thread; for start-up and tools, never on the loop.
    public func readNow<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try queue.sync { try body(db) }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(code: 0, operation: "read", message: "\(error)")
        }
    }
}

// MARK: - Queries

extension Database {
    static let jobColumns =
        "id, plan_name, plan, goal, inputs, cwd, idempotency_key, status, reason, created_at, started_at, finished_at"

    private func jobs(_ sql: String, _ bindings: [SQLValue]) throws(StoreError) -> [JobRecord] {
        let stmt = try prepare(sql)
        try stmt.bind(bindings)
        var out: [JobRecord] = []
        while try stmt.step() {
            let inputs = (try? JSON.parse(stmt.text(4) ?? "{}")) ?? .object([])
            out.append(
                JobRecord(
                    id: stmt.text(0) ?? "", planName: stmt.text(1) ?? "", plan: stmt.text(2) ?? "", goal: stmt.text(3) ?? "",
                    inputs: inputs, cwd: stmt.text(5), idempotencyKey: stmt.text(6),
                    status: JobStatus(rawValue: stmt.text(7) ?? "") ?? .failed, reason: stmt.text(8),
                    createdAt: stmt.int(9), startedAt: stmt.optionalInt(10), finishedAt: stmt.optionalInt(11)))
        }
        return out
    }

    public func job(_ id: String) throws(StoreError) -> JobRecord? {
        try jobs("SELECT \(Self.jobColumns) FROM jobs WHERE id = ?", [.text(id)]).first
    }

    public func job(idempotencyKey key: String) throws(StoreError) -> JobRecord? {
        try jobs("SELECT \(Self.jobColumns) FROM jobs WHERE idempotency_key = ?", [.text(key)]).first
    }

    /// The newest `limit` jobs (optionally of one status), oldest first.
    public func jobs(status: JobStatus?, limit: Int) throws(StoreError) -> [JobRecord] {
        let rows: [JobRecord]
        if let status {
            rows = try jobs(
                "SELECT \(Self.jobColumns) FROM jobs WHERE status = ? ORDER BY id DESC LIMIT ?",
                [.text(status.rawValue), .int(Int64(limit))])
        } else {
            rows = try jobs("SELECT \(Self.jobColumns) FROM jobs ORDER BY id DESC LIMIT ?", [.int(Int64(limit))])
        }
        return rows.reversed()
    }

    /// Jobs that are not terminal, oldest first: what a starting daemon resumes.
    public func unfinishedJobs() throws(StoreError) -> [JobRecord] {
        try jobs(
            "SELECT \(Self.jobColumns) FROM jobs WHERE status IN ('queued','running','awaiting_approval') ORDER BY id", [])
    }

    /// A job's events with `seq > afterSeq`, in order, at most `limit`.
    public func events(jobID: String, afterSeq: Int = 0, limit: Int = Int(Int32.max)) throws(StoreError) -> [EventRecord] {
        let stmt = try prepare(
            """
            SELECT seq, at, kind, role, step, attempt, call_id, payload FROM events
            WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?
            """)
        try stmt.bind([.text(jobID), .int(Int64(afterSeq)), .int(Int64(limit))])
        var out: [EventRecord] = []
        while try stmt.step() {
            let payload = (try? JSON.parse(stmt.text(7) ?? "null")) ?? .null
            out.append(
                EventRecord(
                    jobID: jobID, seq: Int(stmt.int(0)), at: stmt.int(1), kind: stmt.text(2) ?? "", role: stmt.text(3),
                    step: stmt.optionalInt(4).map { Int($0) }, attempt: stmt.optionalInt(5).map { Int($0) },
                    callID: stmt.text(6), payload: payload))
        }
        return out
    }

    /// Jobs per status.
    public func statusCounts() throws(StoreError) -> [JobStatus: Int] {
        var out: [JobStatus: Int] = [:]
        for row in try query("SELECT status, count(*) FROM jobs GROUP BY status") {
            if let status = row[0].text.flatMap(JobStatus.init(rawValue:)) { out[status] = Int(row[1].int ?? 0) }
        }
        return out
    }

    /// How many agent calls of a job completed, per role.
    public func completedCalls(jobID: String) throws(StoreError) -> [String: Int] {
        try usage(jobID: jobID).mapValues(\.calls)
    }

    /// Completed calls of a job per role, with the tokens and cost their replies recorded.
    /// Calls a retry answered from the original's record (`RetryPrefix`) are not counted: this job
    /// did not make them.
    public func usage(jobID: String) throws(StoreError) -> [String: RoleUsage] {
        var out: [String: RoleUsage] = [:]
        for row in try query(
            """
            SELECT role, count(*),
                   coalesce(sum(json_extract(payload, '$.usage.input_tokens')), 0),
                   coalesce(sum(json_extract(payload, '$.usage.output_tokens')), 0),
                   sum(json_extract(payload, '$.cost_usd'))
            FROM events WHERE job_id = ? AND kind = 'call.completed' AND json_extract(payload, '$.reused_from') IS NULL
            GROUP BY role
            """, [.text(jobID)])
        {
            out[row[0].text ?? "?"] = RoleUsage(
                calls: Int(row[1].int ?? 0), inputTokens: Int(row[2].int ?? 0), outputTokens: Int(row[3].int ?? 0),
                costUSD: row[4].double)
        }
        return out
    }
}

/// What one role's completed calls in a job used.
public struct RoleUsage: Sendable, Equatable {
    public var calls: Int
    public var inputTokens: Int
    public var outputTokens: Int
    /// Nil when no reply carried a cost (no prices configured).
    public var costUSD: Double?

    public init(calls: Int, inputTokens: Int, outputTokens: Int, costUSD: Double?) {
        self.calls = calls
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.costUSD = costUSD
    }
}
