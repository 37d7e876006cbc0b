import Agents
import Store

/// `job.retry`: a new job that runs a finished job again from one of its steps, reusing the
/// original's recorded calls before that step. Loop thread only, like the engine.
///
/// ```
///  original:  job.submitted … step 1 … step 2 … job.state failed   job.retried {job: NEW, from_step: 2}
///                             └── reused ──┘                            ▲ same transaction
///  retry:     job.submitted {retry_of, from_step: 2}  copies of step 1 (reused_from: seq) ─▶ step 2 live …
/// ```
/// The retry has the original's plan snapshot, inputs, working directory and (unless given a new
/// one) goal. Its log matches the original's events before step N (`RetryPrefix`) as its runner
/// goes: each event that is the same again is copied into the retry's own log, marked, and its
/// call is answered from it — no model call or tool run is made again. The first request that
/// differs (a new goal changes every prompt that quotes it) ends the reuse, and everything from
/// there runs live; nothing of step N and after is ever taken from the original, so an answer
/// given there (a verdict, a tool result) is never replayed into the new run.
extension Engine {
    /// Submits a retry of the finished job `params.id` and returns it once it is durable, with the
    /// step it runs live from. Throws `.jobNotFound` for an unknown job; `.invalidInput` for a job
    /// that has not finished or a step out of range (naming the range); `.permissionDenied` when
    /// the client is neither the owner nor the original's submitter.
    public func retry(_ params: RetryParams, client: UInt32?) async throws(EngineError) -> (job: JobRecord, fromStep: Int) {
        loop.assertInLoop()
        guard accepting else { throw .shuttingDown }
        if let fault = writer.storageFault { throw .storageUnavailable(fault) }
        let id = params.id
        if params.goal?.utf8.contains(0) == true { throw .invalidInput("'goal' contains U+0000 (a NUL character), which agentd refuses") }
        // The retry appends `job.retried` to the original's log at the seq after its last: one at a time.
        guard !retrying.contains(id) else {
            throw .invalidInput("a retry of job \(id) is being submitted; wait for its answer and try again")
        }
        retrying.insert(id)
        defer { retrying.remove(id) }

        let read: (JobRecord?, [EventRecord])
        do {
            read = try await reader.read { db in (try db.job(id), try db.events(jobID: id)) }
        } catch {
            throw .storage(error.description)
        }
        guard let original = read.0 else { throw .jobNotFound(id) }
        let events = read.1
        // A cancelled job's runner may still be writing a staged reply: wait until it has stopped.
        guard original.status.isTerminal, active[id] == nil else {
            throw .invalidInput(
                "job \(id) is \(original.status.rawValue): only a finished job (succeeded, failed or cancelled) can be retried")
        }
        let submittedBy = events.first?.payload(as: JobSubmitted.self)?.submitterUID
        let submitter = configuration.trust.isOwner(client) ? nil : client
        if let submitter, submittedBy != Int(submitter) {
            throw .permissionDenied("only the daemon's owner or the user who submitted job \(id) may retry it")
        }
        let reached = RetryPrefix.stepsReached(events)
        let step = params.fromStep ?? reached
        guard (1...reached).contains(step) else {
            let range = reached == 1 ? "it reached step 1 only" : "it reached steps 1 to \(reached)"
            throw .invalidInput("'from_step' \(step) is out of range for job \(id): \(range)")
        }
        let plan: Plan
        do throws(PlanError) {
            plan = try PlanLibrary.fromSnapshot(original.plan)
        } catch {
            throw .invalidPlan("the stored plan of job \(id) does not load: \(error.description)")
        }
        if let refusal = secrets.refusal(of: plan) { throw .invalidPlan(refusal) }
        let goal = params.goal ?? original.goal
        if let submitter { try await check(submitter, plan: plan, goal: goal, inputs: original.inputs, cwd: original.cwd) }
        try queued.checkRoom(for: client)
        let workspace = try await workspaces.admit(plan: plan, goal: goal, inputs: original.inputs, cwd: original.cwd)
        guard accepting else { throw .shuttingDown }
        // Checked again with no suspension before the job is counted: others were admitted meanwhile.
        try queued.checkRoom(for: client)
        if let workspace, let holder = workspaces.holder(of: workspace, shared: plan.workspaceShared) {
            throw .workspaceInUse(workspace, job: holder, status: active[holder]?.record.status)
        }
        let now = clock.nowMillis()
        let record = JobRecord(
            id: ids.next(), planName: original.planName, plan: original.plan, goal: goal, inputs: original.inputs, cwd: original.cwd,
            idempotencyKey: nil, status: .queued, createdAt: now)
        let submitted = JobSubmitted(
            plan: record.planName, goal: goal, inputs: record.inputs, submitterUID: submitter.map(Int.init), workspace: workspace,
            retryOf: id, fromStep: step)
        // The link on the original, in the same transaction as the new job: neither exists without the other.
        let link = EventRecord(
            jobID: id, seq: (events.last?.seq ?? 0) + 1, at: now, kind: EventKind.jobRetried.rawValue, role: nil, step: nil,
            attempt: nil, callID: nil,
            payload: JobRetried(job: record.id, fromStep: step, goal: goal == original.goal ? nil : goal).json)
        try await create(
            record, plan: plan, submitted: submitted, submitter: submitter, client: client, workspace: workspace,
            reuse: RetryPrefix.events(events, fromStep: step), ops: [.append(link)])
        hub.publish([link])
        logger.info("job retried", metadata: ["job.id": "\(record.id)", "retry.of": "\(id)", "retry.from_step": "\(step)"])
        return (record, step)
    }
}
