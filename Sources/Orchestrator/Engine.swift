import Agents
import Foundation
import Logging
import Runtime
import Store
import Telemetry

/// The daemon's core: admits jobs, schedules them, runs them, and answers questions about them.
///
/// ```
///  job.submit ─▶ [commit job row + job.submitted] ─▶ reply "queued" ─▶ queue ─▶ JobRunner (≤ maxRunning)
///                                                                              │ events ─▶ EventHub ─▶ watchers
///                                                                              └ terminal ─▶ waiters, next job
/// ```
/// Every answer a client gets describes committed state. Reads go to the store's reader thread;
/// writes to its writer. While a storage fault degrades the writer (a full disk, an I/O error) the
/// engine admits, starts and cancels nothing; the jobs whose writes the fault refused stop, and are
/// recovered from what was committed once writes succeed again.
/// Each job the engine holds is an `ActiveJob`, one state machine from admission to its end;
/// queries and watches are in `Engine+Queries.swift`, cancellation in `Engine+Cancel.swift`, and
/// every `EngineError` becomes a protocol error in one place (`RPCError+Engine.swift`).
///
/// Loop thread only: every method must be called on the loop (the public ones check, and trap
/// otherwise) and none blocks.
public final class Engine: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Jobs running at once; more wait in the queue.
        public var maxRunning: Int = 256
        /// Jobs waiting in the queue at once, in total and per client (see `QueuedJobs`).
        public var maxQueuedJobs: Int = 100_000
        public var maxQueuedJobsPerClient: Int = 10_000
        /// Limits per `openai` endpoint that override the plans' (`endpoints:` in `serve --config`).
        public var endpoints: [String: EndpointLimits] = [:]
        /// `agentd replay`: recovered jobs are checked call by call against their logs (requests
        /// included), and no model, command or tool is ever called — a call beyond the log fails.
        public var replay = false
        /// The daemon's own files (database, socket) that sandboxed tool commands must not see; see
        /// `Bubblewrap.protectedPaths(database:socket:)`.
        public var protectedPaths: [String] = []
        /// What clients other than the daemon's owner may do.
        public var trust = TrustPolicy()
        /// The process's environment as read at start: where API keys, `PATH` and the variables
        /// passed to commands come from (see `SecretVariables`).
        public var environment: [String: String]
        /// The daemon's own secret variables; commands never get them.
        public var secretVariables: [String]
        /// Whether secret values are wiped from the process's environment block once read.
        public var scrubsSecrets = false
        public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
            self.environment = environment
            self.secretVariables = Redactor.secretNames(environment: environment, names: [])
        }
    }

    let loop: EventLoop
    let writer: StoreWriter
    let reader: StoreReader
    /// Where the record's questions (verify, search, stats, backup) are answered.
    let records: RecordsQueue
    let hub = EventHub()
    let bus: Bus
    private let plans: PlanLibrary
    /// HTTP model endpoints (`openai` models): one client on the loop, limits per endpoint.
    let endpoints: ModelEndpoints
    /// The daemon's environment as read at start, and which of its variables are secrets.
    let secrets: SecretVariables
    let clock: any WallClock
    let ids: JobIDGenerator
    let logger: Logger
    var configuration: Configuration
    /// Jobs admitted and not yet started, and the limits on them.
    let queued: QueuedJobs
    var active: [String: ActiveJob] = [:]
    var queue: [String] = []
    private var queueHead = 0
    private var running = 0
    var idempotency: [String: String] = [:]
    /// Jobs a retry is being submitted of: one at a time each, since it appends to the original's log.
    var retrying: Set<String> = []
    private(set) var accepting = true
    private var drained: [() -> Void] = []
    private let startedAt: Int64
    var finishedCount = 0
    /// Sends finished jobs' spans to an OTLP collector when the environment names one.
    private var telemetry: OTLPExporter?
    /// Confines the actor's commands; shared by every job, so the sandbox is probed once.
    private let bubblewrap: Bubblewrap
    /// Which job works in which workspace: a second job in one is refused unless both share it.
    /// Where jobs' control groups are made (`JobCgroup`); empty where they cannot be.
    private let cgroupParents: [String]
    let workspaces: WorkspaceClaims

    public init(
        loop: EventLoop, writer: StoreWriter, reader: StoreReader, clock: any WallClock, logger: Logger,
        configuration: Configuration = .init()
    ) {
        self.loop = loop
        self.writer = writer
        self.reader = reader
        self.records = RecordsQueue(path: writer.path)
        self.clock = clock
        self.ids = JobIDGenerator(clock: clock)
        self.logger = logger
        self.configuration = configuration
        self.queued = QueuedJobs(maxTotal: configuration.maxQueuedJobs, maxPerClient: configuration.maxQueuedJobsPerClient)
        self.bus = Bus(loop: loop)
        self.plans = PlanLibrary(loop: loop)
        self.endpoints = ModelEndpoints(loop: loop)
        self.startedAt = clock.nowMillis()
        endpoints.configure(configuration.endpoints)
        self.secrets = SecretVariables(
            environment: configuration.environment, names: configuration.secretVariables, scrubsProcess: configuration.scrubsSecrets)
        self.bubblewrap = Bubblewrap(loop: loop, environment: configuration.environment, protectedPaths: configuration.protectedPaths)
        self.workspaces = WorkspaceClaims(daemonFiles: DaemonFiles(paths: configuration.protectedPaths))
        let (parents, problem) = configuration.replay ? ([], nil) : JobCgroup.parents(privileged: bubblewrap.privileged)
        cgroupParents = parents
        JobCgroup.sweep(beside: parents)
        if let problem, !configuration.replay {
            logger.info(
                "no job-wide memory or process limit: control groups cannot be used (sandbox.job_memory_mb and job_processes do not apply)",
                metadata: ["reason": "\(problem)"])
        }
        if let otlp = OTLPExporter.Configuration.from(environment: configuration.environment) {
            telemetry = OTLPExporter(configuration: otlp, loop: loop, reader: reader, logger: logger) { [endpoints] in
                endpoints.http
            }
            logger.info("exporting finished jobs' spans over OTLP/HTTP", metadata: ["url": "\(otlp.url)"])
        }
        writer.observeStorage { [weak self, loop] fault in
            let engine = self
            loop.execute { engine?.storageChanged(fault) }
        }
    }

    /// Tells waiters that a job finished and exports its spans (when configured).
    func announceFinished(_ record: JobRecord) {
        hub.finished(record)
        telemetry?.export(jobID: record.id)
    }

    func makeLog(jobID: String, lastSeq: Int, recorded: [EventRecord], reuse: [EventRecord] = []) -> JobLog {
        let log = JobLog(jobID: jobID, lastSeq: lastSeq, recorded: recorded, reuse: reuse, writer: writer, clock: clock) { [hub] events in
            hub.publish(events)
        }
        log.strictReplay = configuration.replay
        return log
    }

    // MARK: Submission

    /// A job to admit: the `job.submit` params as the protocol defines them, and who sent them. Its
    /// fields read through to `params`.
    @dynamicMemberLookup
    public struct Submission: Sendable {
        public var params: SubmitParams
        /// The submitting connection's peer user id, which the per-client queue limit counts by.
        public var client: UInt32?

        public init(_ params: SubmitParams, client: UInt32? = nil) {
            self.params = params
            self.client = client
        }

        public subscript<T>(dynamicMember field: KeyPath<SubmitParams, T>) -> T { params[keyPath: field] }

        /// The goal as given; empty when none was (the plan's description stands in).
        public var goal: String { params.goal ?? "" }
    }

    /// Admits a job and returns it once it is durable. A repeated idempotency key returns the job the
    /// key first created (`created` false).
    public func submit(_ s: Submission) async throws(EngineError) -> (job: JobRecord, created: Bool) {
        loop.assertInLoop()
        guard accepting else { throw .shuttingDown }
        if let field = s.fieldWithNUL { throw .invalidInput("'\(field)' contains U+0000 (a NUL character), which agentd refuses") }
        if let key = s.idempotencyKey, let existing = try await existingJob(forKey: key) {
            return (existing, false)
        }
        // A repeated key is answered from the store above; anything new needs a write.
        if let fault = writer.storageFault { throw .storageUnavailable(fault) }
        try queued.checkRoom(for: s.client)
        let trust = configuration.trust
        let submitter = trust.isOwner(s.client) ? nil : s.client
        // Before anything reads the plan file: a refusal never quotes it.
        if let path = s.planPath, submitter != nil, let problem = await ToolBox.onFiles({ trust.planPathProblem(path) }) {
            throw .permissionDenied(problem)
        }
        guard s.planPath != nil || s.planText != nil else { throw .invalidInput("give 'plan_path' or 'plan'") }
        let loaded: LoadedPlan
        do throws(PlanError) {
            if let path = s.planPath {
                loaded = try await plans.load(path: path)
            } else {
                loaded = try await plans.parse(
                    text: s.planText ?? "", name: s.planName ?? "<inline plan>", baseDirectory: s.baseDirectory,
                    readsFiles: submitter == nil)
            }
        } catch {
            throw .invalidPlan(error.description)
        }
        if let refusal = secrets.refusal(of: loaded.plan) { throw .invalidPlan(refusal) }
        let goal = s.goal.isEmpty ? (loaded.plan.description ?? "run the \(loaded.plan.name) plan") : s.goal
        if let submitter { try await check(submitter, plan: loaded.plan, goal: goal, inputs: s.inputs, cwd: s.cwd) }
        let workspace = try await workspaces.admit(plan: loaded.plan, goal: goal, inputs: s.inputs, cwd: s.cwd)
        guard accepting else { throw .shuttingDown }
        // The awaits above let other submissions in: look again before creating. The map is read
        // without suspending in between, so two submissions of one key cannot both create a job.
        if let key = s.idempotencyKey {
            while true {
                let mapped = idempotency[key]
                if let existing = try await existingJob(forKey: key) { return (existing, false) }
                // Nothing under the key, and nothing claimed it while we looked: create it below,
                // without suspending, so no other submission of the key can slip in.
                if mapped == nil, idempotency[key] == nil { break }
            }
        }
        // Checked again with no suspension before the job is counted: others were admitted meanwhile.
        try queued.checkRoom(for: s.client)
        if let workspace, let holder = workspaces.holder(of: workspace, shared: loaded.plan.workspaceShared) {
            throw .workspaceInUse(workspace, job: holder, status: active[holder]?.record.status)
        }
        let record = JobRecord(
            id: ids.next(), planName: loaded.plan.name, plan: loaded.snapshot, goal: goal, inputs: s.inputs, cwd: s.cwd,
            idempotencyKey: s.idempotencyKey, status: .queued, createdAt: clock.nowMillis())
        // Who submitted it, when not the owner: recovery keeps the job to that user's directories. The
        // workspace is recorded so that a restarted daemon knows which one its recovered job holds.
        let submitted = JobSubmitted(
            plan: record.planName, goal: record.goal, inputs: record.inputs, idempotencyKey: s.idempotencyKey,
            submitterUID: submitter.map(Int.init), workspace: workspace)
        try await create(record, plan: loaded.plan, submitted: submitted, submitter: submitter, client: s.client, workspace: workspace)
        return (record, true)
    }

    /// Refuses a job of a client other than the owner that the trust model does not allow: an
    /// unsandboxed plan, or a directory the job would use that the client does not own.
    func check(_ submitter: UInt32, plan: Plan, goal: String, inputs: JSON, cwd: String?) async throws(EngineError) {
        if let problem = configuration.trust.unsandboxedProblem(plan) { throw .permissionDenied(problem) }
        let directories = TrustPolicy.directories(of: plan, goal: goal, inputs: inputs, cwd: cwd)
        let problem = await ToolBox.onFiles {
            directories.lazy.compactMap { TrustPolicy.ownershipProblem($0.path, what: $0.what, client: submitter) }.first
        }
        if let problem { throw .permissionDenied(problem) }
    }

    /// Admits a new job: writes its row and `job.submitted` (with `ops`, in the same transaction),
    /// and queues it once that is durable. `reuse`: a retry's `RetryPrefix`. The caller has checked
    /// the queue's room and the workspace with no suspension since.
    func create(
        _ record: JobRecord, plan: Plan, submitted: JobSubmitted, submitter: UInt32?, client: UInt32?, workspace: String?,
        reuse: [EventRecord] = [], ops: [WriteOp] = []
    ) async throws(EngineError) {
        let entry = ActiveJob(
            record: record, plan: plan, log: makeLog(jobID: record.id, lastSeq: 0, recorded: [], reuse: reuse), submitter: submitter,
            phase: .submitting(waiters: []))
        active[record.id] = entry
        queued.add(record.id, client: client)
        if let key = record.idempotencyKey { idempotency[key] = record.id }
        if let workspace { workspaces.claim(workspace, job: record.id, shared: plan.workspaceShared) }
        do {
            _ = try await entry.log.append([EventDraft(submitted)], ops: [.insertJob(record)] + ops)
        } catch {
            retire(record.id)
            queued.remove(record.id)
            if let key = record.idempotencyKey, idempotency[key] == record.id { idempotency[key] = nil }
            let storeError = error as? StoreError ?? StoreError(code: 1, operation: "submit", message: "\(error)")
            entry.submitted(storeError)
            if storeError.isStorageFault {
                throw .storageUnavailable(writer.storageFault ?? StorageFault(error: storeError, since: record.createdAt))
            }
            throw .storage("\(error)")
        }
        entry.submitted(nil)
        queue.append(record.id)
        pump()
    }

    private func existingJob(forKey key: String) async throws(EngineError) -> JobRecord? {
        if let id = idempotency[key] {
            if let entry = active[id], let error = await entry.durability() { throw .storage(error.description) }
            return try await storedJob(id)
        }
        do {
            return try await reader.read { try $0.job(idempotencyKey: key) }
        } catch {
            throw .storage(error.description)
        }
    }

    // MARK: Scheduling

    func pump() {
        while running < configuration.maxRunning, accepting, writer.storageFault == nil, queueHead < queue.count {
            let id = queue[queueHead]
            queueHead += 1
            if queueHead > 1024, queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            guard let entry = active[id], case .queued = entry.phase else { continue }
            start(entry)
        }
    }

    private var queuedCount: Int { queue.count - queueHead }

    /// The engine is done with the job (or never admitted it): it no longer holds its workspace.
    func retire(_ id: String) {
        active[id] = nil
        workspaces.release(job: id)
    }

    private func start(_ entry: ActiveJob) {
        // The directory the job was admitted into, where it has one: the one it holds.
        let workspace =
            workspaces.directory(of: entry.record.id).map { .success($0) } ?? ToolBox.workspace(plan: entry.plan, job: entry.record)
        let launcher = CommandLauncher(
            loop: loop, sandbox: entry.plan.sandbox, bubblewrap: bubblewrap, workspace: workspace, environment: secrets.environment,
            secrets: secrets.hidden(for: entry.plan), submitter: entry.submitter,
            jobID: entry.record.id, cgroupParents: cgroupParents)
        let tools =
            entry.plan.actor.tools.isEmpty ? nil : ToolBox(offered: entry.plan.actor.tools, policy: entry.plan.policy, launcher: launcher)
        let criticTools = (entry.plan.roleSpec(.critic)?.tools).flatMap {
            $0.isEmpty ? nil : ToolBox(offered: $0, policy: entry.plan.policy, launcher: launcher, readOnly: true)
        }
        let runner = JobRunner(
            job: entry.record, plan: entry.plan, rules: ReplyRules(format: entry.format, policy: entry.plan.policy), format: entry.format,
            log: entry.log, bus: bus, loop: loop, tools: tools, criticTools: criticTools,
            statusChanged: { [weak entry, loop] status in
                loop.assertInLoop()
                entry?.record.status = status
            })
        let run = ActiveJob.Run(runner: runner, launcher: launcher)
        entry.phase = .running(run)
        queued.remove(entry.record.id)
        running += 1
        for agent in makeAgents(for: entry, launcher: launcher) { bus.register(agent) }
        entry.record.status = .running
        if entry.plan.policy.jobTimeoutSeconds > 0 {
            let timer = LoopTimer(loop: loop)
            timer.start(after: UInt64(entry.plan.policy.jobTimeoutSeconds * 1000)) { [weak run] in
                run?.stop(.timedOut)
            }
            run.timer = timer
        }
        run.task = Task(executorPreference: loop) { [self] in
            await runner.run { outcome in ended(entry, run, outcome) }
        }
    }

    private func ended(_ entry: ActiveJob, _ run: ActiveJob.Run, _ outcome: JobRunner.Outcome) {
        run.launcher.finish()
        running -= 1
        run.timer?.close()
        run.timer = nil
        run.task = nil
        bus.unregister(jobID: entry.record.id)
        let runner = run.runner
        switch outcome {
        case let .finished(status, reason, at):
            run.launcher.discardCandidateCopies()
            entry.record.startedAt = runner.startedAtOnLoop ?? entry.record.startedAt
            if status != .cancelled {
                // A cancellation was recorded (and announced) by `cancel`.
                entry.record.status = status
                entry.record.reason = reason
                entry.record.finishedAt = at
                announceFinished(entry.record)
            }
            retire(entry.record.id)
            finishedCount += 1
            logger.info("job finished", metadata: ["job.id": "\(entry.record.id)", "job.status": "\(status.rawValue)"])
        case .suspended:
            // Left as recorded; the next start resumes it — or, when the store refused its write, the
            // end of the storage fault does.
            retire(entry.record.id)
            if accepting, entry.log.writeFailure?.isStorageFault == true { stoppedByStorage.insert(entry.record.id) }
        }
        if running == 0, !accepting {
            let callbacks = drained
            drained = []
            callbacks.forEach { $0() }
        }
        pump()
        readmitStoppedJobs()
    }

    // MARK: Status and lifecycle

    /// The engine's figures and the jobs per status (one store read). Runs on the loop. Throws
    /// `.storage` when the read fails.
    public func status() async throws(EngineError) -> Figures {
        loop.assertInLoop()
        let counts: [JobStatus: Int]
        do {
            counts = try await reader.read { try $0.statusCounts() }
        } catch {
            throw .storage(error.description)
        }
        let fault = writer.storageFault
        return Figures(
            accepting: accepting && fault == nil, uptimeMillis: clock.nowMillis() - startedAt, running: running,
            queued: queuedCount, watchers: hub.subscriberCount, jobs: counts, storePath: writer.path, store: writer.currentStats,
            storageFault: fault, stoppedJobs: stoppedByStorage.count)
    }

    /// Stops admitting and starting jobs and lets running calls finish. `done` runs once every runner
    /// has stopped at a call boundary (their jobs stay `running` and resume at the next start).
    public func drain(_ done: @escaping () -> Void) {
        loop.assertInLoop()
        accepting = false
        for entry in active.values { entry.run?.runner.stopOnLoop(.shutdown) }
        if running == 0 {
            done()
        } else {
            drained.append(done)
        }
    }

    /// After the drain deadline: abandons in-flight calls (unrecorded; they run again at the next
    /// start) and kills their child processes.
    public func abandonInFlight() {
        loop.assertInLoop()
        for entry in active.values { entry.run?.stop(.forced) }
    }

    public var runningCount: Int { running }

    // MARK: Storage faults

    /// Jobs whose runner stopped because the store refused a write; they are recovered like jobs of
    /// a restart once writes succeed again, each after its runner has ended. `readmitting`: read back
    /// and not yet recovered.
    var stoppedByStorage: Set<String> = []
    private var readmitting: Set<String> = []
    private var degradedSince: Int64?

    /// Whether the job is this engine's until it finishes: queued, running, or stopped by a storage
    /// fault (`job.wait` and `job.watch` wait for those).
    func holds(_ id: String) -> Bool {
        active[id] != nil || stoppedByStorage.contains(id) || readmitting.contains(id)
    }

    /// The writer became degraded (`fault`) or recovered (nil). Logged once each way.
    private func storageChanged(_ fault: StorageFault?) {
        if let fault {
            degradedSince = clock.nowMillis()
            logger.error(
                "storage unavailable: no new jobs until writes succeed again; jobs stop at their next write",
                metadata: ["error": "\(fault)", "db": "\(writer.path)"])
            return
        }
        let seconds = Double(clock.nowMillis() - (degradedSince ?? clock.nowMillis())) / 1000
        degradedSince = nil
        logger.info(
            "storage available again: admitting jobs and resuming the ones it stopped",
            metadata: ["degraded_s": "\(seconds)", "jobs": "\(stoppedByStorage.count)"])
        pump()
        readmitStoppedJobs()
    }

    /// Recovers the jobs a storage fault stopped, from what is committed, once the store takes writes.
    private func readmitStoppedJobs() {
        guard accepting, writer.storageFault == nil else { return }
        let ids = stoppedByStorage.filter { active[$0] == nil }.sorted()
        guard !ids.isEmpty else { return }
        stoppedByStorage.subtract(ids)
        readmitting.formUnion(ids)
        Task(executorPreference: loop) { [self, reader, logger] in
            defer { readmitting.subtract(ids) }
            do {
                let jobs = try await reader.read { db in
                    try ids.compactMap { id in try db.job(id).map { try Unfinished.read($0, from: db) } }
                }
                // A job whose end was committed after all has nothing to resume: release its waiters.
                for job in jobs where job.record.status.isTerminal { hub.finished(job.record) }
                recover(jobs.filter { !$0.record.status.isTerminal && active[$0.record.id] == nil })
            } catch {
                logger.error("cannot read the jobs a storage fault stopped; they resume at the next start", metadata: ["error": "\(error)"])
            }
        }
    }

    /// `daemon.status`'s `storage` member.
    // MARK: Retention (`Engine+Prune.swift`)

    /// The jobs this engine holds: queued, running, or still stopping.
    var activeJobIDs: Set<String> { Set(active.keys) }

    /// Frees the idempotency keys of pruned jobs: once its job is gone, a key makes a new job.
    func forgetPruned(_ jobs: [(id: String, idempotencyKey: String?)]) {
        for job in jobs {
            if let key = job.idempotencyKey, idempotency[key] == job.id { idempotency[key] = nil }
        }
    }

    /// Applies changed limits (a configuration reload) without touching a job: a raised `maxRunning`
    /// starts queued jobs at once, a lowered one lets running jobs finish and starts none until below
    /// it; queue limits apply to the next submission; endpoint limits to requests waiting and to come.
    public func reconfigure(maxRunning: Int, maxQueuedJobs: Int, maxQueuedJobsPerClient: Int, endpoints limits: [String: EndpointLimits]) {
        loop.assertInLoop()
        configuration.maxRunning = maxRunning
        configuration.maxQueuedJobs = maxQueuedJobs
        configuration.maxQueuedJobsPerClient = maxQueuedJobsPerClient
        configuration.endpoints = limits
        queued.maxTotal = maxQueuedJobs
        queued.maxPerClient = maxQueuedJobsPerClient
        endpoints.configure(limits)
        pump()
    }

    /// More of the daemon's own secret variables (a reloaded `secret_env`): kept from commands, and
    /// wiped from the process when the engine does that. Loop thread.
    public func addSecretVariables(_ names: [String]) {
        loop.assertInLoop()
        secrets.add(names)
    }

    /// Releases the engine's loop handles (plan-file watches). Loop thread; after `drain`.
    public func close() {
        loop.assertInLoop()
        plans.close()
        endpoints.close()
    }
}
