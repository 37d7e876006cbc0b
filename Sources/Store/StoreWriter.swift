import Foundation
import Synchronization

/// One change to the store. A request is a list of these, applied atomically.
public enum WriteOp: Sendable {
    case insertJob(JobRecord)
    case append(EventRecord)
    /// Sets a job's status and reason; stamps `started_at` on `running` and `finished_at` on a
    /// terminal status.
    case setStatus(jobID: String, status: JobStatus, reason: String?, at: Int64)
}

/// The single writer of an agentd database, on its own thread, with group commit.
///
/// ```
///  loop thread ──submit(ops, done)──▶ queue ──▶ writer thread: BEGIN; all queued requests; COMMIT
///                                                              └──▶ done(nil) for each request
/// ```
/// Requests that arrive while a transaction commits are gathered into the next one, so concurrent jobs
/// share commits while each request's completion still runs only after its changes are durable
/// (commit before deliver). A request that fails is isolated: the batch is retried one request per
/// transaction so the others still commit, and the failing request alone gets the error.
///
/// Thread-safe. `submit` never blocks on SQLite; completions run on the writer thread and must be
/// quick (resume a continuation, hop to the loop).
public final class StoreWriter: @unchecked Sendable {
    public typealias Completion = @Sendable (StoreError?) -> Void

    private struct Request {
        let ops: [WriteOp]
        let done: Completion
    }

    /// Figures for `daemon.status`.
    public struct Stats: Sendable {
        public var commits: Int = 0
        public var requests: Int = 0
        public var events: Int = 0
        public var failures: Int = 0
        public var lastError: String?
    }

    private let condition = NSCondition()
    private var queue: [Request] = []
    /// Requests queued and not yet taken by the writer; read without the lock while spinning.
    private let queuedCount = Atomic<Int>(0)
    /// Requests submitted whose completion has not been delivered yet.
    private let inFlightCount = Atomic<Int>(0)
    /// Whether the writer sleeps on `condition` (only then does `submit` signal it).
    private var sleeping = false
    /// How long the writer polls for more work after a commit before it sleeps. A job's next write
    /// usually arrives within tens of microseconds, well before a sleeping thread would wake up.
    private let spinNanos: UInt64 = 200_000
    private var stopping = false
    private var stopped = false
    private let stats = Mutex(Stats())
    private let db: Database
    private var thread: Thread?

    private let deliver: @Sendable ([Completion], [StoreError?]) -> Void
    /// Secrets to take out of every event's payload before it is stored.
    public let redactor: Redactor

    private let insertJob: Statement
    private let appendEvent: Statement
    private let setStatus: Statement
    private let setChainHead: Statement
    private let readChainHead: Statement
    private var encodeBuffer: [UInt8] = []
    /// The canonical encoding of an event's fields before its payload (see `Chain`).
    private var fieldBuffer: [UInt8] = []
    private var hexBuffer: [UInt8] = []

    /// A job's chain as of the writer's last change: its head and length.
    private struct ChainState {
        var head: ChainHash
        var length: Int64
        /// The commit that last changed it, so each job's head is written once per commit.
        var changedIn: UInt64
    }

    /// The chains of jobs that are not finished, so no event needs a read. A job that is not here
    /// (after a restart, or once finished) is read from its `jobs` row. Writer thread only.
    private var chains: [String: ChainState] = [:]
    /// Jobs whose chain changed in the transaction being built, and jobs it finished.
    private var changedChains: [String] = []
    private var finishedJobs: [String] = []
    private var commitNumber: UInt64 = 0

    /// Opens the database for writing and migrates it. Runs on the caller's thread (at start-up).
    ///
    /// `deliver` receives the completions of each commit with their results, on the writer thread; the
    /// default calls them there. The daemon hands them to its loop in one hop per commit.
    public init(
        path: String, clock: any WallClock, redactor: Redactor = Redactor(),
        deliver: @escaping @Sendable ([Completion], [StoreError?]) -> Void = { done, results in
            for (d, r) in zip(done, results) { d(r) }
        }
    ) throws(StoreError) {
        self.deliver = deliver
        self.redactor = redactor
        db = try Database(path: path)
        // Refuse a damaged file before writing anything to it.
        if let problem = db.quickCheck() {
            throw StoreError(
                code: 11, operation: "open \(path)",
                message:
                    "the database failed its integrity check (PRAGMA quick_check): \(problem); restore it from a copy made with `agentd backup`, or rescue what is readable with the sqlite3 CLI's .recover"
            )
        }
        try Migrations.migrate(db, now: clock.nowMillis())
        insertJob = try db.prepare(
            """
            INSERT INTO jobs(id, plan_name, plan, goal, inputs, cwd, idempotency_key, status, reason, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        appendEvent = try db.prepare(
            """
            INSERT INTO events(job_id, seq, at, kind, role, step, attempt, call_id, payload, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        setStatus = try db.prepare(
            """
            UPDATE jobs SET status = ?1, reason = ?2,
                started_at = CASE WHEN ?1 = 'running' THEN coalesce(started_at, ?3) ELSE started_at END,
                finished_at = CASE WHEN ?1 IN ('succeeded','failed','cancelled') THEN ?3 ELSE finished_at END
            WHERE id = ?4
            """)
        setChainHead = try db.prepare(
            "INSERT INTO job_chains(head, length, job_id) VALUES (?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET head = excluded.head, length = excluded.length"
        )
        readChainHead = try db.prepare("SELECT head, length FROM job_chains WHERE job_id = ?")
    }

    public var path: String { db.path }

    /// Starts the writer thread.
    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "agentd-store-writer"
        thread.qualityOfService = .userInitiated
        self.thread = thread
        thread.start()
    }

    /// Queues `ops` for the next commit; `done` runs on the writer thread once they are durable (nil)
    /// or have failed.
    public func submit(_ ops: [WriteOp], done: @escaping Completion) {
        condition.lock()
        if stopped {
            condition.unlock()
            deliver([done], [StoreError(code: 21, operation: "write", message: "the store is closed")])
            return
        }
        queue.append(Request(ops: ops, done: done))
        inFlightCount.add(1, ordering: .relaxed)
        queuedCount.add(1, ordering: .releasing)
        if sleeping { condition.signal() }
        condition.unlock()
    }

    /// Writes `ops` and returns once they are committed.
    public func write(_ ops: [WriteOp]) async throws(StoreError) {
        let error: StoreError? = await withUnsafeContinuation { continuation in
            submit(ops) { continuation.resume(returning: $0) }
        }
        if let error { throw error }
    }

    /// Commits what is queued, stops the thread, checkpoints the WAL. Blocks the caller until done.
    public func close() {
        condition.lock()
        stopping = true
        queuedCount.add(1, ordering: .releasing)
        condition.signal()
        while !stopped { condition.wait() }
        condition.unlock()
        thread = nil  // its closure holds the writer: let both go
        try? db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    public var currentStats: Stats { stats.withLock { $0 } }

    /// Whether some request's completion is still to come. Lock-free; any thread.
    public var hasInFlight: Bool { inFlightCount.load(ordering: .relaxed) > 0 }

    private func run() {
        var lastBatch = 0
        while true {
            // Spin only after a small batch: that is a daemon waiting on each commit (a job's next
            // step follows at once). After a large batch the next one is being built and spinning
            // would only take CPU from the loop that builds it.
            if lastBatch <= 2 {
                let spinUntil = monotonicNanos() + spinNanos
                while queuedCount.load(ordering: .acquiring) == 0 && monotonicNanos() < spinUntil {}
            }
            condition.lock()
            while queue.isEmpty && !stopping {
                sleeping = true
                condition.wait()
                sleeping = false
            }
            let batch = queue
            queuedCount.subtract(batch.count, ordering: .relaxed)
            queue.removeAll(keepingCapacity: true)
            let finished = batch.isEmpty && stopping
            if finished {
                stopped = true
                condition.broadcast()
            }
            condition.unlock()
            if finished { return }
            lastBatch = batch.count
            commit(batch)
        }
    }

    private func commit(_ batch: [Request]) {
        var events = 0
        commitNumber &+= 1
        changedChains.removeAll(keepingCapacity: true)
        finishedJobs.removeAll(keepingCapacity: true)
        do {
            try db.execute("BEGIN IMMEDIATE")
            for request in batch {
                events += try apply(request.ops)
            }
            try writeChainHeads()
            try db.execute("COMMIT")
            for id in finishedJobs { chains[id] = nil }
            stats.withLock {
                $0.commits += 1
                $0.requests += batch.count
                $0.events += events
            }
            inFlightCount.subtract(batch.count, ordering: .relaxed)
            deliver(batch.map(\.done), [StoreError?](repeating: nil, count: batch.count))
        } catch {
            try? db.execute("ROLLBACK")
            // The cached chains may be ahead of what is committed: read them again.
            chains.removeAll(keepingCapacity: true)
            if batch.count == 1 {
                stats.withLock {
                    $0.failures += 1
                    $0.lastError = error.description
                }
                inFlightCount.subtract(1, ordering: .relaxed)
                deliver([batch[0].done], [error])
                return
            }
            // Isolate the failing request: one transaction each.
            for request in batch { commit([request]) }
        }
    }

    private func apply(_ ops: [WriteOp]) throws(StoreError) -> Int {
        var events = 0
        for op in ops {
            switch op {
            case let .insertJob(job):
                let clean = redactor.isEmpty ? { (text: String) in text } : redactor.redact
                chains[job.id] = ChainState(head: .zero, length: 0, changedIn: 0)
                try insertJob.bind([
                    .text(job.id), .text(job.planName), .text(clean(job.plan)), .text(clean(job.goal)), .text(clean(job.inputs.encoded)),
                    job.cwd.map(SQLValue.text) ?? .null, job.idempotencyKey.map(SQLValue.text) ?? .null,
                    .text(job.status.rawValue), job.reason.map { SQLValue.text(clean($0)) } ?? .null, .int(job.createdAt),
                ])
                _ = try insertJob.step()
            case let .append(event):
                // Bound one by one: this runs for every event, and an array of values would allocate.
                appendEvent.reset()
                try appendEvent.bind(.text(event.jobID), at: 1)
                try appendEvent.bind(.int(Int64(event.seq)), at: 2)
                try appendEvent.bind(.int(event.at), at: 3)
                try appendEvent.bind(.text(event.kind), at: 4)
                try appendEvent.bind(event.role.map(SQLValue.text) ?? .null, at: 5)
                try appendEvent.bind(event.step.map { .int(Int64($0)) } ?? .null, at: 6)
                try appendEvent.bind(event.attempt.map { .int(Int64($0)) } ?? .null, at: 7)
                try appendEvent.bind(event.callID.map(SQLValue.text) ?? .null, at: 8)
                encodeBuffer.removeAll(keepingCapacity: true)
                event.payload.write(to: &encodeBuffer)
                redactor.redact(&encodeBuffer)
                try appendEvent.bindText(encodeBuffer, at: 9)
                // The chain: the hash covers exactly the bytes bound above.
                var chain = try chainState(event.jobID)
                fieldBuffer.removeAll(keepingCapacity: true)
                Chain.appendFields(of: event, to: &fieldBuffer)
                let hash = Chain.hash(previous: chain.head, fieldBuffer, encodeBuffer)
                hash.writeHex(to: &hexBuffer)
                try appendEvent.bindText(hexBuffer, at: 10)
                _ = try appendEvent.step()
                chain.head = hash
                chain.length += 1
                if chain.changedIn != commitNumber {
                    chain.changedIn = commitNumber
                    changedChains.append(event.jobID)
                }
                chains[event.jobID] = chain
                events += 1
            case let .setStatus(jobID, status, reason, at):
                try setStatus.run([
                    .text(status.rawValue), reason.map { SQLValue.text(redactor.redact($0)) } ?? .null, .int(at), .text(jobID),
                ])
                if status.isTerminal { finishedJobs.append(jobID) }
            }
        }
        return events
    }

    /// A job's chain: cached, else from its `job_chains` row (none yet: the zero hash).
    private func chainState(_ jobID: String) throws(StoreError) -> ChainState {
        if let cached = chains[jobID] { return cached }
        try readChainHead.bind([.text(jobID)])
        defer { readChainHead.reset() }
        guard try readChainHead.step(), let hex = readChainHead.text(0) else {
            return ChainState(head: .zero, length: 0, changedIn: 0)
        }
        guard let head = ChainHash(hex: hex) else {
            throw StoreError(code: 0, operation: "chain", message: "job \(jobID): its chain head is not a SHA-256 digest in hex")
        }
        return ChainState(head: head, length: readChainHead.int(1), changedIn: 0)
    }

    /// Writes the head of every chain the transaction changed: once per job per commit.
    private func writeChainHeads() throws(StoreError) {
        for id in changedChains {
            guard let chain = chains[id] else { continue }
            setChainHead.reset()
            chain.head.writeHex(to: &hexBuffer)
            try setChainHead.bindText(hexBuffer, at: 1)
            try setChainHead.bind(.int(chain.length), at: 2)
            try setChainHead.bind(.text(id), at: 3)
            _ = try setChainHead.step()
        }
    }
}
