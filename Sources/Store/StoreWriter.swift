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
/// Storage faults. A commit that fails with a full disk, an I/O error or a read-only database
/// (`StoreError.isStorageFault`) is rolled back whole — every request of the batch gets the error and
/// the in-memory chain heads are dropped, so nothing uncommitted is ever chained onto — and the writer
/// becomes degraded (`storageFault`): every later request is refused with the fault without touching
/// SQLite. Once per `probeInterval` it probes: after a full disk it first wants `minimumFreeBytes` free
/// on the database's file system, then a one-row write transaction (`storage_probe`) must commit.
/// When it does, the fault is cleared. Each change is reported once to the `observeStorage` handler.
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
        /// Looks taken at the storage while degraded (`probeInterval` apart), whatever they found.
        public var probes: Int = 0
    }

    private let condition = NSCondition()
    private var queue: [Request] = []
    /// Work that is not a list of `WriteOp`s (a prune batch), run on the writer thread after the
    /// requests queued with it are committed.
    private var tasks: [() -> Void] = []
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
    private let clock: any WallClock

    /// The fault the writer is degraded by, for any thread; the writer thread also keeps `degraded`.
    private let fault = Mutex<StorageFault?>(nil)
    private var degraded = false
    private let storageObserver = Mutex<(@Sendable (StorageFault?) -> Void)?>(nil)
    private let probeIntervalNanos: UInt64
    private let minimumFreeBytes: Int64
    /// When the next probe is due (monotonic ns). Writer thread only.
    private var nextProbe: UInt64 = 0

    private let deliver: @Sendable ([Completion], [StoreError?]) -> Void
    /// Secrets to take out of every event's payload before it is stored.
    public let redactor: Redactor

    private let insertJob: Statement
    private let appendEvent: Statement
    private let setStatus: Statement
    private let setChainHead: Statement
    private let readChainHead: Statement
    private let probeWrite: Statement
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
    /// The digests of a job row inserted in this transaction, for its `job.submitted` event
    /// (`JobCommitment`).
    private var commitments: [String: (plan: String, job: String)] = [:]
    /// Jobs whose chain changed in the transaction being built, and jobs it finished.
    private var changedChains: [String] = []
    private var finishedJobs: [String] = []
    private var commitNumber: UInt64 = 0

    /// Opens the database for writing and migrates it. Runs on the caller's thread (at start-up).
    ///
    /// `deliver` receives the completions of each commit with their results, on the writer thread; the
    /// default calls them there. The daemon hands them to its loop in one hop per commit.
    /// `probeInterval` (seconds) and `minimumFreeBytes` govern the way out of a storage fault.
    public init(
        path: String, clock: any WallClock, redactor: Redactor = Redactor(), probeInterval: Double = 1,
        minimumFreeBytes: Int64 = 8 << 20,
        deliver: @escaping @Sendable ([Completion], [StoreError?]) -> Void = { done, results in
            for (d, r) in zip(done, results) { d(r) }
        }
    ) throws(StoreError) {
        self.deliver = deliver
        self.redactor = redactor
        self.clock = clock
        self.probeIntervalNanos = UInt64(max(0.001, probeInterval) * 1e9)
        self.minimumFreeBytes = minimumFreeBytes
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
        probeWrite = try db.prepare("INSERT INTO storage_probe(id, at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET at = excluded.at")
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

    /// The storage fault the writer is degraded by, or nil while writes go through. Any thread.
    public var storageFault: StorageFault? { fault.withLock { $0 } }

    /// Sets the one handler told, on the writer thread, when the writer becomes degraded (the fault)
    /// and when it recovers (nil). It must be quick: hop to another thread.
    public func observeStorage(_ handler: @escaping @Sendable (StorageFault?) -> Void) {
        storageObserver.withLock { $0 = handler }
    }

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
            while queue.isEmpty && tasks.isEmpty && !stopping && !probeDue {
                sleeping = true
                if degraded {
                    let now = monotonicNanos()
                    _ = condition.wait(until: Date(timeIntervalSinceNow: Double(nextProbe > now ? nextProbe - now : 0) / 1e9))
                } else {
                    condition.wait()
                }
                sleeping = false
            }
            let batch = queue
            let work = tasks
            queuedCount.subtract(batch.count + work.count, ordering: .relaxed)
            queue.removeAll(keepingCapacity: true)
            tasks.removeAll(keepingCapacity: true)
            let finished = batch.isEmpty && work.isEmpty && stopping
            if finished {
                stopped = true
                condition.broadcast()
            }
            condition.unlock()
            if finished { return }
            if probeDue { probe() }
            lastBatch = batch.count
            if !batch.isEmpty { commit(batch) }
            for task in work { task() }
        }
    }

    /// Runs `body` on the writer thread, between commits, and returns its result; `body` runs its
    /// own transactions on the writer's connection. Refused with the fault while degraded.
    func perform<T: Sendable>(_ body: @escaping () throws(StoreError) -> T) async throws(StoreError) -> T {
        let result: Result<T, StoreError> = await withUnsafeContinuation { continuation in
            let task = { [self] in
                if let fault = storageFault { return continuation.resume(returning: .failure(fault.refusal)) }
                do throws(StoreError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    if error.isStorageFault { enterDegraded(error) }
                    continuation.resume(returning: .failure(error))
                }
            }
            condition.lock()
            if stopped {
                condition.unlock()
                return continuation.resume(returning: .failure(StoreError(code: 21, operation: "write", message: "the store is closed")))
            }
            tasks.append(task)
            queuedCount.add(1, ordering: .releasing)
            if sleeping { condition.signal() }
            condition.unlock()
        }
        return try result.get()
    }

    /// Removes the finished jobs `request` selects (see `PruneRequest`), in transactions of
    /// `Database.pruneBatchSize` jobs on the writer thread, so writes queued meanwhile commit between
    /// them. `removed` gets each batch's jobs once it is committed, on the caller's executor.
    public func prune(
        _ request: PruneRequest, removed: ([(id: String, idempotencyKey: String?)]) -> Void = { _ in }
    ) async throws(StoreError) -> PruneResult {
        var result = PruneResult()
        var cursor: String?
        repeat {
            let (pruneID, after) = (result.pruneID, cursor)
            let batch = try await perform { [self] () throws(StoreError) -> PruneBatch in
                let batch = try db.pruneBatch(request, pruneID: pruneID, after: after, now: clock.nowMillis())
                for job in batch.removed { chains[job.id] = nil }
                return batch
            }
            result.jobs += batch.removed.count
            result.events += batch.events
            result.pruneID = batch.pruneID
            cursor = batch.cursor
            if !batch.removed.isEmpty { removed(batch.removed) }
        } while cursor != nil
        return result
    }

    // MARK: Storage faults

    private var probeDue: Bool { degraded && monotonicNanos() >= nextProbe }

    /// Writer thread: a commit failed with a storage fault. Reported once per fault.
    private func enterDegraded(_ error: StoreError) {
        nextProbe = monotonicNanos() + probeIntervalNanos
        guard !degraded else { return }
        degraded = true
        let entered = StorageFault(error: error, since: clock.nowMillis())
        fault.withLock { $0 = entered }
        storageObserver.withLock { $0 }?(entered)
    }

    /// Writer thread: whether writes go through again. After a full disk, free space comes first (a
    /// failed commit may have left WAL space allocated that a small write would reuse, so a write
    /// alone proves little); then one small write transaction must commit.
    private func probe() {
        nextProbe = monotonicNanos() + probeIntervalNanos
        guard let current = storageFault else { return }
        stats.withLock { $0.probes += 1 }
        if current.isDiskFull {
            let directory = db.path.lastIndex(of: "/").map { String(db.path[..<$0]) } ?? "."
            if let free = FileSystemSpace.available(at: directory.isEmpty ? "/" : directory), free < minimumFreeBytes {
                return
            }
        }
        do throws(StoreError) {
            endTransaction()
            try db.execute("BEGIN IMMEDIATE")
            try probeWrite.run([.int(clock.nowMillis())])
            try db.execute("COMMIT")
        } catch {
            endTransaction()
            return
        }
        degraded = false
        fault.withLock { $0 = nil }
        storageObserver.withLock { $0 }?(nil)
    }

    /// Ends a failed transaction. After a full disk or an I/O error SQLite may have rolled it back
    /// already, so ROLLBACK is issued only while one is still open.
    private func endTransaction() {
        for statement in [insertJob, appendEvent, setStatus, setChainHead, readChainHead, probeWrite] { statement.reset() }
        if db.isInTransaction { try? db.execute("ROLLBACK") }
    }

    /// Fails every request of `batch` with `error` (a storage fault: the batch is not retried).
    private func refuse(_ batch: [Request], _ error: StoreError) {
        stats.withLock {
            $0.failures += batch.count
            $0.lastError = error.description
        }
        inFlightCount.subtract(batch.count, ordering: .relaxed)
        deliver(batch.map(\.done), [StoreError?](repeating: error, count: batch.count))
    }

    private func commit(_ batch: [Request]) {
        if let current = storageFault { return refuse(batch, current.refusal) }
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
            endTransaction()
            // The cached chains may be ahead of what is committed: read them again.
            chains.removeAll(keepingCapacity: true)
            if error.isStorageFault || db.isInTransaction {
                // The disk, not a request: the whole batch failed and the writer takes no more writes
                // until a probe commits. A transaction that would not roll back counts as an I/O error.
                let fault =
                    error.isStorageFault
                    ? error
                    : StoreError(
                        code: 10, operation: error.operation, message: "the failed transaction would not roll back: \(error.message)")
                enterDegraded(fault)
                return refuse(batch, fault)
            }
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
                let (plan, goal, inputs) = (clean(job.plan), clean(job.goal), clean(job.inputs.encoded))
                commitments[job.id] = JobCommitment.digests(plan: plan, goal: goal, inputs: inputs, cwd: job.cwd)
                try insertJob.bind([
                    .text(job.id), .text(job.planName), .text(plan), .text(goal), .text(inputs),
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
                if event.kind == EventKind.jobSubmitted.rawValue, let digests = commitments.removeValue(forKey: event.jobID) {
                    // The job's first event commits the chain to the row written with it.
                    JobCommitment.committing(event.payload, to: digests).write(to: &encodeBuffer)
                } else {
                    event.payload.write(to: &encodeBuffer)
                }
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
