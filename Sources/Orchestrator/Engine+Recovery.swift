import Agents
import Store

/// Re-admitting the jobs a previous daemon (or a storage fault) left unfinished, from what is
/// committed. Loop thread only, like the engine.
extension Engine {
    /// What recovery found for one unfinished job, read before the loop serves (see `Daemon`).
    public struct Unfinished: Sendable {
        public let record: JobRecord
        public let events: [EventRecord]
        /// For a retry, what it reuses of the job it retries.
        public let retry: RetrySource?

        public init(record: JobRecord, events: [EventRecord], retry: RetrySource? = nil) {
            self.record = record
            self.events = events
            self.retry = retry
        }

        /// Reads what recovery needs of `record`: its events and, for a retry, what it reuses.
        public static func read(_ record: JobRecord, from db: Database) throws(StoreError) -> Unfinished {
            let events = try db.events(jobID: record.id)
            return Unfinished(
                record: record, events: events, retry: try db.retrySource(of: events.first?.payload(as: JobSubmitted.self)))
        }

        /// What the job's log matches after its own events: the reused events of a retry; nil when
        /// they are needed and gone (the original was pruned before the retry had reused them all).
        var reuse: [EventRecord]? {
            guard let retry else { return [] }
            if let prefix = retry.prefix { return prefix }
            // An event the retry made itself means its reuse was over.
            let madeLive = events.contains { !JobLog.notFromRunner.contains($0.kind) && RetryPrefix.source(of: $0) == nil }
            return madeLive ? [] : nil
        }
    }

    /// Re-admits jobs that were queued or running when the daemon last stopped. A running job's
    /// runner replays its log: completed calls are not made again. Each claims the workspace its
    /// `job.submitted` event recorded (never refused: two recovered jobs may hold one), so that a new
    /// submission is kept out of it.
    public func recover(_ jobs: [Unfinished]) {
        loop.assertInLoop()
        for job in jobs {
            let lastSeq = job.events.last?.seq ?? 0
            let plan: Plan
            do {
                plan = try PlanLibrary.fromSnapshot(job.record.plan)
            } catch {
                logger.error(
                    "cannot resume job: its stored plan does not load", metadata: ["job.id": "\(job.record.id)", "error": "\(error)"])
                failUnresumable(job.record, lastSeq: lastSeq, reason: "cannot resume: the stored plan does not load: \(error)")
                continue
            }
            let submitted = job.events.first?.payload(as: JobSubmitted.self)
            let format = submitted?.format ?? 1
            guard format <= RecordFormat.current else {
                failUnresumable(
                    job.record, lastSeq: lastSeq,
                    reason:
                        "cannot resume: the job was written in record format \(format), newer than this agentd reads (up to \(RecordFormat.current))"
                )
                continue
            }
            guard let reuse = job.reuse else {
                failUnresumable(
                    job.record, lastSeq: lastSeq,
                    reason:
                        "cannot resume: the job it retries, \(job.retry?.original ?? "?"), is no longer in the store, and this retry had not finished reusing its calls"
                )
                continue
            }
            let entry = ActiveJob(
                record: job.record, plan: plan, log: makeLog(jobID: job.record.id, lastSeq: lastSeq, recorded: job.events, reuse: reuse),
                submitter: submitted?.submitterUID.map { UInt32($0) }, format: format, phase: .queued)
            active[job.record.id] = entry
            if let directory = submitted?.workspace {
                workspaces.claim(directory, job: job.record.id, shared: plan.workspaceShared)
            }
            if let key = job.record.idempotencyKey { idempotency[key] = job.record.id }
            queue.append(job.record.id)
            queued.add(job.record.id, client: nil)
        }
        if !jobs.isEmpty { logger.info("recovered unfinished jobs", metadata: ["jobs": "\(jobs.count)"]) }
        pump()
    }

    /// Records that a recovered job cannot go on, so it does not stay `running` forever.
    func failUnresumable(_ record: JobRecord, lastSeq: Int, reason: String) {
        let log = makeLog(jobID: record.id, lastSeq: lastSeq, recorded: [])
        Task(executorPreference: loop) { [logger] in
            do {
                _ = try await log.append(
                    [
                        EventDraft(JobState(from: record.status, to: .failed, reason: reason))
                    ],
                    ops: [.setStatus(jobID: record.id, status: .failed, reason: reason, at: 0)])
            } catch {
                logger.error("cannot record the failure of an unresumable job", metadata: ["job.id": "\(record.id)", "error": "\(error)"])
            }
        }
    }
}
