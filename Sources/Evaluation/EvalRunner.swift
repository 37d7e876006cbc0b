import Dispatch
import Foundation
import Orchestrator
import Store

/// Runs an eval: every task of a suite under every arm, `reps` times, each run a real job submitted to
/// the daemon over its socket under an idempotency key (`EvalArm.key`), at most `concurrency` at once.
/// Each finished job is read back (`job.get`, `job.transcript`), judged by the suite's checks
/// (`GroundTruth`) and appended to the state file (`EvalState`).
///
/// Resuming: runs already in the state file are not run or judged again; a run whose job was
/// submitted before the eval was killed finds that job again through its key, finished or still
/// running. When the daemon goes away (killed, restarted), each worker reconnects and carries on for
/// up to `daemonWait` seconds: the daemon resumes the jobs itself.
///
/// Blocking: `run()` returns when every run is judged. Workers are threads of its own; the progress
/// callback is called under the runner's lock, one call at a time.
public final class EvalRunner: @unchecked Sendable {
    /// One run to make.
    public struct Run: Sendable {
        public var arm: EvalArm
        public var task: EvalTask
        public var rep: Int
        public var key: String
    }

    /// Where the eval stands, for a progress display.
    public struct Progress: Sendable {
        public var done: Int
        public var total: Int
        /// Runs found judged in the state file at the start.
        public var resumed: Int
        /// The result just judged; nil for the first report.
        public var latest: EvalResult?
    }

    public let socketPath: String
    public let suite: EvalSuite
    public let runs: [Run]
    public let state: EvalState
    /// Where each run gets its workspace (a copy of its task's fixture, else an empty directory).
    public let workDirectory: String
    public let concurrency: Int
    public let daemonWait: Double
    private let truth: GroundTruth
    private let progress: @Sendable (Progress) -> Void

    private let lock = NSLock()
    private var next = 0
    private var pending: [Run] = []
    private var done = 0
    private var failure: EvalError?

    public init(
        socketPath: String, suite: EvalSuite, arms: [EvalArm], reps: Int, run: String, state: EvalState, workDirectory: String,
        concurrency: Int, daemonWait: Double, progress: @escaping @Sendable (Progress) -> Void
    ) {
        self.socketPath = socketPath
        self.suite = suite
        var runs: [Run] = []
        // Repetition-major, then task, then arm: a partial eval has every arm on the same tasks.
        for rep in 0..<reps {
            for task in suite.tasks {
                for arm in arms {
                    runs.append(Run(arm: arm, task: task, rep: rep, key: arm.key(run: run, suite: suite, task: task, rep: rep)))
                }
            }
        }
        self.runs = runs
        self.state = state
        self.workDirectory = workDirectory
        self.concurrency = max(1, concurrency)
        self.daemonWait = daemonWait
        self.truth = GroundTruth(suite: suite, scratch: workDirectory + "/scratch")
        self.progress = progress
    }

    /// Runs what is left and returns every run's result, in `runs` order. Throws `EvalError` for what
    /// stops the whole eval: a plan the daemon refuses, a daemon gone for longer than `daemonWait`.
    public func run() throws(EvalError) -> [EvalResult] {
        pending = runs.filter { state.results[$0.key] == nil }
        let resumed = runs.count - pending.count
        done = resumed
        progress(Progress(done: done, total: runs.count, resumed: resumed, latest: nil))
        // Threads of its own, not the global pool: the workers block on the socket and on checks, and
        // the pool's width follows the core count, not `concurrency`.
        let group = DispatchGroup()
        for _ in 0..<min(concurrency, max(1, pending.count)) {
            group.enter()
            let thread = Thread { [self] in
                worker(resumed: resumed)
                group.leave()
            }
            thread.start()
        }
        group.wait()
        if let failure { throw failure }
        return runs.compactMap { state.results[$0.key] }
    }

    private func worker(resumed: Int) {
        var client: RPCClient?
        while true {
            lock.lock()
            guard failure == nil, next < pending.count else {
                lock.unlock()
                return
            }
            let item = pending[next]
            next += 1
            lock.unlock()
            do {
                let result = try execute(item, client: &client)
                lock.lock()
                defer { lock.unlock() }
                try state.append(result)
                done += 1
                progress(Progress(done: done, total: runs.count, resumed: resumed, latest: result))
            } catch {
                lock.lock()
                if failure == nil { failure = error }
                lock.unlock()
                return
            }
        }
    }

    private func execute(_ item: Run, client: inout RPCClient?) throws(EvalError) -> EvalResult {
        let workspace = try prepareWorkspace(item)
        let params = SubmitParams(
            planText: item.arm.planText(for: item.task, suite: suite), planName: item.arm.path,
            baseDirectory: (item.arm.path as NSString).deletingLastPathComponent, goal: item.task.goal, inputs: item.task.inputs,
            cwd: workspace, idempotencyKey: item.key)
        let submitted = try call(&client, "submit \(item.task.id) under \(item.arm.name)") { c throws(ClientError) in
            try c.call(.submit(params))
        }
        guard let id = submitted["id"]?.stringValue else { throw EvalError("the daemon's reply to job.submit has no job id") }
        _ = try call(&client, "wait for job \(id)") { c throws(ClientError) in try c.call(.wait(JobIDParams(id: id))) }
        let detailsJSON = try call(&client, "read job \(id)") { c throws(ClientError) in try c.call(.get(JobIDParams(id: id))) }
        let details: JobDetails
        do {
            details = try JobDetails(json: detailsJSON)
        } catch {
            throw EvalError("job \(id): \(error)")
        }
        var events: [JSON] = []
        var after = 0
        while true {
            let pageJSON = try call(&client, "read the transcript of job \(id)") { c throws(ClientError) in
                try c.call(.transcript(TranscriptParams(id: id, afterSeq: after)))
            }
            let page: TranscriptPage
            do {
                page = try TranscriptPage(json: pageJSON)
            } catch {
                throw EvalError("job \(id): \(error)")
            }
            events += page.events
            guard let nextPage = page.nextAfterSeq else { break }
            after = nextPage
        }
        let job = RecordedJob(details: details, events: events)
        return EvalResult.judge(
            key: item.key, arm: item.arm.name, task: item.task, rep: item.rep, job: job, workspace: workspace, truth: truth)
    }

    /// The run's own workspace: a copy of the task's fixture made once (through a temporary name, so
    /// a copy cut short by a kill is never used), or an empty directory when the task has none — so an
    /// actor with tools never writes into the suite, and no two runs share a workspace.
    private func prepareWorkspace(_ item: Run) throws(EvalError) -> String {
        let fm = FileManager.default
        let dir = "\(workDirectory)/workspaces/\(item.arm.name)-\(EvalArm.digest(item.key).prefix(8))/\(item.task.id)/\(item.rep)"
        if fm.fileExists(atPath: dir) { return dir }
        let temporary = dir + ".partial"
        do {
            try? fm.removeItem(atPath: temporary)
            try fm.createDirectory(atPath: (dir as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if let fixture = item.task.workspace {
                try fm.copyItem(atPath: suite.directory + "/" + fixture, toPath: temporary)
            } else {
                try fm.createDirectory(atPath: temporary, withIntermediateDirectories: false)
            }
            try fm.moveItem(atPath: temporary, toPath: dir)
        } catch {
            throw EvalError("cannot make the workspace of task \(item.task.id) at \(dir): \(error.localizedDescription)")
        }
        return dir
    }

    /// One call, made again on a new connection while the daemon is away or shutting down, for up to
    /// `daemonWait` seconds. Any other error from the daemon stops the eval, naming what was done.
    private func call(_ client: inout RPCClient?, _ what: String, _ body: (RPCClient) throws(ClientError) -> JSON) throws(EvalError)
        -> JSON
    {
        var since: Date?
        while true {
            do {
                if client == nil { client = try RPCClient(socketPath: socketPath) }
                return try body(client!)
            } catch {
                // Passing states of the daemon: shutting down for a restart, its queue or storage full.
                let passing: Set<Int> = [
                    RPCError.Code.shuttingDown.rawValue, RPCError.Code.tooManyQueued.rawValue, RPCError.Code.storageUnavailable.rawValue,
                ]
                guard error.kind == .io || error.kind == .notRunning || error.rpc.map({ passing.contains($0.code) }) == true else {
                    throw EvalError("\(what): \(error.message)")
                }
                client = nil
                let start = since ?? Date()
                since = start
                if Date().timeIntervalSince(start) > daemonWait {
                    throw EvalError("\(what): the daemon did not come back within \(Int(daemonWait))s (\(error.message))")
                }
                usleep(200_000)
            }
        }
    }
}
