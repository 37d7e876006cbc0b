import Agents
import Runtime
import Store

/// One job the engine holds, from admission until the engine lets it go, as one state machine.
///
/// ```
///  submitting ──write failed──▶ refused            (never admitted: the submitter gets the error)
///      │ durable
///      ▼
///   queued ──start──▶ running ──runner ended──▶ (retired)
///      │                 │
///      └──job.cancel──▶ cancelling ──committed──▶ finished ──runner ended──▶ (retired)
///                        (a storage fault refuses the write: back to queued (retired, resumed
///                         later) or running)
/// ```
/// A recovered job starts at `queued`. `record` is the job as clients will see it once committed.
/// Loop-confined like the engine: created, read and changed on the loop thread only.
final class ActiveJob: @unchecked Sendable {
    /// What runs a started job: its runner, the task driving it, its time limit, its commands.
    /// Loop-confined like the job.
    final class Run: @unchecked Sendable {
        let runner: JobRunner
        let launcher: CommandLauncher
        var task: Task<Void, Never>?
        var timer: LoopTimer?

        init(runner: JobRunner, launcher: CommandLauncher) {
            self.runner = runner
            self.launcher = launcher
        }

        /// Tells the runner why to stop and abandons what it has in flight.
        func stop(_ reason: JobRunner.Stop) {
            runner.stopOnLoop(reason)
            task?.cancel()
        }
    }

    enum Phase {
        /// Admitted; the submission is being written. `waiters` (a repeated idempotency key) learn
        /// whether it became durable.
        case submitting(waiters: [(StoreError?) -> Void])
        /// The submission's write failed: the job does not exist.
        case refused(StoreError)
        /// Durable and waiting for a runner.
        case queued
        case running(Run)
        /// `job.cancel` is writing the cancellation; the runner (if started) has been told to stop.
        case cancelling(from: JobStatus, stopping: Run?)
        /// The final state is committed and announced; the runner, if any, may still be stopping.
        case finished(JobRecord, stopping: Run?)
    }

    var record: JobRecord
    let plan: Plan
    let log: JobLog
    /// The submitting user when it is not the daemon's owner: its job works only in directories
    /// that user owns (`TrustPolicy`).
    let submitter: UInt32?
    /// The record format the job is written in (`RecordFormat`): a new job's is the current one, a
    /// recovered job's the one its `job.submitted` names. Its agents' replies are read by its rules.
    let format: Int
    var phase: Phase

    init(record: JobRecord, plan: Plan, log: JobLog, submitter: UInt32?, format: Int = RecordFormat.current, phase: Phase) {
        self.record = record
        self.plan = plan
        self.log = log
        self.submitter = submitter
        self.format = format
        self.phase = phase
    }

    /// The runner's machinery while one runs or is stopping.
    var run: Run? {
        switch phase {
        case let .running(run): return run
        case let .cancelling(_, run), let .finished(_, run): return run
        case .submitting, .refused, .queued: return nil
        }
    }

    /// The final state, once it is committed and announced.
    var announced: JobRecord? {
        if case let .finished(record, _) = phase { return record }
        return nil
    }

    /// Waits until the submission is durable or refused: nil, or the write's error.
    func durability() async -> StoreError? {
        await withUnsafeContinuation { c in
            // Read inside: the task may get here only after the write completed.
            switch phase {
            case var .submitting(waiters):
                waiters.append { c.resume(returning: $0) }
                phase = .submitting(waiters: waiters)
            case let .refused(error): c.resume(returning: error)
            default: c.resume(returning: nil)
            }
        }
    }

    /// The submission's write ended: `error` nil when it is durable.
    func submitted(_ error: StoreError?) {
        guard case let .submitting(waiters) = phase else { return }
        phase = error.map(Phase.refused) ?? .queued
        waiters.forEach { $0(error) }
    }
}
