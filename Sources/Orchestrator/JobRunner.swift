import Agents
import Runtime
import Store

/// Runs one job: the state machine from plan to verdict.
///
/// ```
///            ┌──────────────── re-plan (bounded) ◀─────────────┐
///            ▼                                                   │ attempts exhausted (or infeasible)
///  plan ─▶ step i: act ─▶ critique ─┬─ pass ─▶ next step ─…─▶ verify ─▶ succeeded | failed
///                    ▲              └─ fail ─▶ rerun with feedback (while attempts remain)
///                    └───────────────────────┘
/// ```
/// Every transition goes through the job's `JobLog` (committed before it takes effect) and every
/// agent call through the `Bus`. The runner is deterministic given its agents' replies, so a job
/// recovered after a crash replays its log to the point where it stopped and goes on from there.
/// Only the verifier decides success; an invalid verdict is recorded and asked again, never a pass.
/// A fail whose `feasibility` is below `policy.replan_below` ends the step at once
/// (`step.infeasible`) when a re-plan can follow. How replies are read is the job's `ReplyRules`.
/// From record format 4 a step's attempts are candidates, `policy.samples` of them at once, which
/// form a tree (`JobRunner+Samples`).
///
/// A step with `policy.step_timeout` runs in a child task under a loop timer. When the time is up
/// the call or tool in flight is abandoned unrecorded (its process group killed), `step.timed_out`
/// is recorded, and the step ends like one whose attempts are used up: a re-plan if the budget
/// allows, else the job fails. On replay a recorded `step.timed_out` ends the step at the same point
/// (the decision is read from the log, not from the clock), and the timer only starts once the
/// step's replay is over.
///
/// An actor on the event loop: its steps, and the store and bus calls it makes, run on the loop thread.
actor JobRunner {
    enum Stop: Equatable {
        /// By request; the engine records the cancellation.
        case cancelled
        /// The daemon is draining: finish the call in flight, start no other.
        case shutdown
        /// The drain deadline passed: abandon the call in flight unrecorded.
        case forced
        /// The job's time limit passed: abandon the call in flight and fail the job.
        case timedOut
    }

    /// How the run ended.
    enum Outcome: Equatable {
        /// The terminal status, its reason and when it was recorded.
        case finished(JobStatus, String?, at: Int64)
        /// The daemon is stopping: the job stays `running` and resumes at the next start.
        case suspended
    }

    struct Failure: Error {
        let reason: String
    }

    nonisolated let job: JobRecord
    nonisolated let plan: Plan
    nonisolated let log: JobLog
    /// How the agents' replies are read: the job's record format decides (`ReplyRules`).
    private let rules: ReplyRules
    /// The job's record format: from 4 on a step's attempts are candidates (`JobRunner+Samples`).
    nonisolated let format: Int
    let prompts: Prompts
    let bus: Bus
    /// The actor's tools, when it has any.
    let tools: ToolBox?
    /// A model critic's tools, when it has any (read-only, see `ToolBox.readOnly`).
    let criticTools: ToolBox?
    private(set) var stop: Stop?
    /// When the job's `running` state was recorded.
    private(set) var startedAt: Int64?
    /// Set just before the terminal state is written: from then on a cancellation is too late.
    private(set) var isFinalizing = false
    /// Names the main line's calls (`c1, c2, …`); branches have their own (`fanOut`).
    let main = CallLine.main()
    /// Calls of the main line so far.
    var callCount: Int { main.count }
    /// Input and output tokens of every reply so far (recovered ones included).
    private var tokensUsed = 0
    /// Tool output received so far in the job (recovered results included); each turn counts its own.
    var toolOutput: ToolOutputBudget
    private let wasRunning: Bool
    /// The step under `policy.step_timeout`, its body's task, its timer (armed at its first live
    /// call), and whether its time is up.
    var timedStep: Int?
    var stepBody: Task<StepOutcome, any Error>?
    var stepTimer: LoopTimer?
    var stepExpired = false
    /// The attempt in progress and the critic's last feedback in the current step.
    var stepAttempt = 0
    var stepFeedback = ""
    /// The steps of the step in progress (a gate's critic is told the step).
    var currentSteps: [String] = []
    /// The gate waiting for a person's decision, if any (`JobRunner+Gates`).
    var waitingGate: WaitingGate?
    /// Proposed tool calls (and reviewed outputs) rejected or blocked so far in the job
    /// (`policy.max_rejections`) and in the step in progress (`policy.max_rejections_per_step`).
    var rejections = 0
    var stepRejections = 0
    /// Tells the engine the job's status changed outside a start or an end (waiting for approval).
    let statusChanged: @Sendable (JobStatus) -> Void

    nonisolated let loop: EventLoop

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    init(
        job: JobRecord, plan: Plan, rules: ReplyRules, format: Int, log: JobLog, bus: Bus, loop: EventLoop,
        tools: ToolBox? = nil, criticTools: ToolBox? = nil, statusChanged: @escaping @Sendable (JobStatus) -> Void = { _ in }
    ) {
        self.statusChanged = statusChanged
        self.loop = loop
        self.job = job
        self.plan = plan
        self.rules = rules
        self.format = format
        self.log = log
        self.bus = bus
        self.tools = tools
        self.criticTools = criticTools
        self.prompts = Prompts(plan: plan, jobID: job.id, goal: job.goal, inputs: job.inputs, rules: rules)
        self.toolOutput = ToolOutputBudget(policy: plan.policy)
        self.wasRunning = job.status == .running || job.status == .awaitingApproval
    }

    /// Asks the run to stop. The caller records what a cancellation means.
    func requestStop(_ reason: Stop) {
        switch (stop, reason) {
        case (nil, _), (.shutdown?, .forced), (_, .cancelled): stop = reason
        default: break
        }
        // A gate waiting for a person stops waiting: the job resumes the wait after a restart.
        answerGate(.stopped)
    }

    /// Whether the run goes on (nothing asked it to stop).
    var live: Bool { stop == nil }

    /// Asked by the bus just before an agent or a tool really runs: whether it may (the run goes on
    /// and the step's time is not up). In a timed step the first such call starts the step's clock,
    /// so a recovered step's time counts from its first live call after the replay.
    func mayStartCall() -> Bool {
        guard live, !stepExpired else { return false }
        if let index = timedStep, stepTimer == nil {
            let timer = LoopTimer(loop: loop)
            timer.start(after: UInt64(plan.policy.stepTimeoutSeconds * 1000)) { [weak self] in self?.stepTimeIsUp(index) }
            stepTimer = timer
        }
        return true
    }

    /// Whether the reply of a call that was in flight is still recorded and acted on.
    var keepsReply: Bool { (stop == nil || stop == .shutdown) && !stepExpired }

    // MARK: For the engine, on the loop thread

    /// Asks the run to stop (see `requestStop`). Call on the loop thread.
    nonisolated func stopOnLoop(_ reason: Stop) { assumeIsolated { $0.requestStop(reason) } }

    /// Whether the terminal state is being written. Call on the loop thread.
    nonisolated var finalizingOnLoop: Bool { assumeIsolated { $0.isFinalizing } }

    /// When `running` was recorded. Call on the loop thread.
    nonisolated var startedAtOnLoop: Int64? { assumeIsolated { $0.startedAt } }

    /// Runs the job, then hands the outcome to `ended` on the loop.
    func run(then ended: @Sendable (Outcome) -> Void) async {
        ended(await run())
    }

    func run() async -> Outcome {
        do {
            if log.isReplaying || wasRunning {
                _ = try await log.append([EventDraft(JobResumed(replayingEvents: log.nextSeq - 1))])
            }
            // Written with the first call's request: nothing happens in between.
            let (running, _) = try await log.emit(
                EventDraft(JobState(from: .queued, to: .running, steps: plan.steps)),
                ops: [.setStatus(jobID: job.id, status: .running, reason: nil, at: 0)], deferred: true)
            startedAt = running.at
            let (status, reason) = try await execute()
            if !keepsReply { throw CallAbandoned() }
            isFinalizing = true
            let (final, _) = try await log.emit(
                EventDraft(JobState(from: .running, to: status, reason: reason)),
                ops: [.setStatus(jobID: job.id, status: status, reason: reason, at: 0)])
            return .finished(status, reason, at: final.at)
        } catch let failure as Failure {
            return await finishFailed(failure.reason)
        } catch is CallAbandoned {
            return await abandoned()
        } catch let divergence as ReplayDivergence {
            return await finishFailed(divergence.description)
        } catch {
            // The store refused a write: leave the job as recorded; it resumes at the next start.
            return .suspended
        }
    }

    private func abandoned() async -> Outcome {
        // A reply that arrived before the stop is kept: write what is staged.
        if stop != .forced { try? await log.flush() }
        switch stop {
        case .cancelled?: return cancelledByRequest
        case .timedOut?: return await writeFailed("job exceeded its time limit of \(plan.policy.jobTimeoutSeconds)s")
        case .shutdown?, .forced?, nil: return .suspended
        }
    }

    /// A failure the job's own history determined: recorded unless the job was cancelled meanwhile.
    private func finishFailed(_ reason: String) async -> Outcome {
        if stop == .cancelled { return cancelledByRequest }
        return await writeFailed(reason)
    }

    private func writeFailed(_ reason: String) async -> Outcome {
        isFinalizing = true
        do {
            let (final, _) = try await log.emit(
                EventDraft(JobState(from: .running, to: .failed, reason: reason)),
                ops: [.setStatus(jobID: job.id, status: .failed, reason: reason, at: 0)])
            return .finished(.failed, reason, at: final.at)
        } catch {
            return .suspended
        }
    }

    /// The engine recorded the cancellation (and its time) itself.
    private var cancelledByRequest: Outcome { .finished(.cancelled, "cancelled by request", at: 0) }

    func checkLive() async throws {
        if !live { throw CallAbandoned() }
    }

    // MARK: The state machine

    private func execute() async throws -> (JobStatus, String?) {
        var steps: [String]
        if let fixed = plan.steps {
            steps = fixed
        } else {
            steps = try await makePlan(replan: 0, context: nil)
        }
        var results: [(step: String, output: String)] = []
        var replans = 0
        var index = 0
        while index < steps.count {
            try await checkLive()
            switch try await runTimedStep(steps: steps, index: index, replan: replans) {
            case let .passed(output):
                results.append((steps[index], output))
                index += 1
            case let .failed(what, feedback):
                guard plan.planner != nil, replans < plan.policy.maxReplans, plan.policy.onExhausted == .replan else {
                    let why =
                        plan.policy.onExhausted != .replan
                        ? "policy.on_exhausted is \(plan.policy.onExhausted.rawValue)"
                        : plan.planner == nil ? "the plan has no planner to re-plan" : "re-plan budget of \(plan.policy.maxReplans) used"
                    throw Failure(reason: "step \(index + 1) (\(steps[index])) \(what) and \(why); last feedback: \(feedback)")
                }
                replans += 1
                let context = ReplanContext(completed: results, failedStep: steps[index], lastFeedback: feedback)
                let newSteps = try await makePlan(replan: replans, context: context)
                try await log.emit(
                    EventDraft(JobReplanned(replan: replans, fromStep: index, steps: newSteps), role: Role.planner.rawValue, step: index))
                steps = Array(steps[..<index]) + newSteps
            }
        }
        return try await verify(results: results, replans: replans)
    }

    enum StepOutcome {
        case passed(String)
        /// What happened (`failed 3 attempts`, `exceeded its time limit…`) and the feedback a
        /// re-plan is given.
        case failed(String, feedback: String)
    }

    // MARK: Steps

    /// A step's attempts; a step whose reviewers rejected more than `policy.max_rejections_per_step`
    /// proposals ends as failed, like one out of attempts.
    func runStep(steps: [String], index: Int, replan: Int) async throws -> StepOutcome {
        stepRejections = 0
        do {
            return try await attempts(steps: steps, index: index, replan: replan)
        } catch let exceeded as StepRejectionsExceeded {
            return .failed(exceeded.what, feedback: exceeded.feedback)
        }
    }

    private func attempts(steps: [String], index: Int, replan: Int) async throws -> StepOutcome {
        if format >= 4 { return try await candidateAttempts(steps: steps, index: index, replan: replan) }
        currentSteps = steps
        var rejected: [RejectedAttempt] = []
        /// The best-scored output the critic judged in this step (`policy.on_exhausted: best`); the first wins a tie.
        var best: (attempt: Int, output: String, score: Double)?
        var lastFeedback = ""
        stepFeedback = ""
        for attempt in 0..<plan.policy.maxAttempts {
            stepAttempt = attempt
            try await checkLive()
            let request = prompts.actor(steps: steps, index: index, attempt: attempt, replan: replan, rejected: rejected)
            let output: String
            switch try await act(request, tools: tools) {
            case let .success(text):
                output = text
            case let .failure(unusable):
                lastFeedback = unusable.feedback
                rejected.append(RejectedAttempt(attempt: attempt, output: "", feedback: lastFeedback, suggestion: nil))
                continue
            }
            if let same = rejected.first(where: { $0.output == output }) {
                // Identical to a rejected output: not judged again as if it were new.
                lastFeedback = same.feedback
                try await log.emit(
                    EventDraft(
                        AttemptDuplicate(sameAsAttempt: same.attempt, feedback: same.feedback), role: Role.actor.rawValue, step: index,
                        attempt: attempt))
                var repeated = same
                repeated.attempt = attempt
                rejected.append(repeated)
                continue
            }
            let verdict = try await judge(steps: steps, index: index, attempt: attempt, replan: replan, output: output)
            try await check(steps: steps, index: index, attempt: attempt, replan: replan, output: output)
            if verdict.outcome == .pass {
                switch try await reviewStepOutput(output, verdict: verdict, steps: steps, index: index, attempt: attempt, replan: replan) {
                case nil: return .passed(output)
                case let .success(accepted)?: return .passed(accepted)
                case let .failure(rejection)?:
                    lastFeedback = rejection.feedback
                    stepFeedback = lastFeedback
                    rejected.append(RejectedAttempt(attempt: attempt, output: output, feedback: rejection.feedback, suggestion: nil))
                    continue
                }
            }
            lastFeedback = verdict.feedback
            stepFeedback = lastFeedback
            rejected.append(RejectedAttempt(attempt: attempt, output: output, verdict: verdict))
            if verdict.score > (best?.score ?? -1) { best = (attempt, output, verdict.score) }
            if let feasibility = verdict.feasibility, attempt + 1 < plan.policy.maxAttempts,
                replansEarly(feasibility: feasibility, replan: replan)
            {
                return try await judgedInfeasible(index: index, attempt: attempt, feasibility: feasibility, feedback: verdict.feedback)
            }
        }
        let goesOn = plan.policy.onExhausted == .best ? best : nil
        try await log.emit(
            EventDraft(
                StepExhausted(
                    attempts: plan.policy.maxAttempts, lastFeedback: lastFeedback, bestAttempt: goesOn?.attempt, bestScore: goesOn?.score),
                step: index))
        if let goesOn { return .passed(goesOn.output) }
        return .failed("failed \(plan.policy.maxAttempts) attempts", feedback: lastFeedback)
    }

    /// Ends the step at `attempt` because its verdict's `feasibility` is below `policy.replan_below`
    /// (see `replansEarly`): records `step.infeasible` and fails the step with `feedback`.
    func judgedInfeasible(index: Int, attempt: Int, feasibility: Double, feedback: String) async throws -> StepOutcome {
        let threshold = plan.policy.replanBelow
        try await log.emit(
            EventDraft(
                StepInfeasible(attempts: attempt + 1, feasibility: feasibility, replanBelow: threshold, feedback: feedback),
                role: Role.critic.rawValue, step: index, attempt: attempt))
        return .failed(
            "was judged infeasible after \(attempt + 1) attempt\(attempt == 0 ? "" : "s") (feasibility \(JSON.number(feasibility).encoded) below policy.replan_below \(JSON.number(threshold).encoded))",
            feedback: feedback)
    }

    /// Whether a failing verdict of `feasibility` ends the step now: it is below `policy.replan_below`
    /// and a re-plan can follow (the plan has a planner and re-plans left). Without one the remaining
    /// attempts are spent as usual.
    func replansEarly(feasibility: Double, replan: Int) -> Bool {
        feasibility < plan.policy.replanBelow && plan.planner != nil && replan < plan.policy.maxReplans
    }

    /// Why an actor attempt gave no output, as the critic-style feedback the next attempt reads.
    struct Unusable: Error {
        let feedback: String
    }

    /// One actor attempt: model turns until the actor answers with text (`modelTurns`, the tools it
    /// calls gated as the plan says). A turn that still calls tools when `max_tool_turns` turns are
    /// used up ends the attempt without output: it fails like an unusable reply, with feedback saying so.
    /// `tools` are the attempt's (a candidate's own, in its copy of the workspace); its calls are named
    /// on `line` (the main line when nil).
    func act(_ first: ModelRequest, line: CallLine? = nil, tools: ToolBox?) async throws -> Result<String, Unusable> {
        let turns = plan.policy.maxToolTurns
        switch try await modelTurns(first, role: .actor, tools: tools, maxTurns: turns, line: line) {
        case .outOfTurns:
            return .failure(
                Unusable(
                    feedback:
                        "the actor was still calling tools after \(turns) model turns (policy.max_tool_turns) and gave no output; use fewer tool calls and then answer with the step's output"
                ))
        case let .answered(reply, _):
            switch (reply.reply, reply.interpretation) {
            case let (.success, .output(text)?):
                return .success(text)
            case let (.success, .invalid(error)?):
                return .failure(Unusable(feedback: "the actor's reply was unusable: \(error.message)"))
            case let (.failure(error), _):
                return .failure(Unusable(feedback: "the actor's call failed: \(error.message)"))
            default:
                throw Failure(reason: "internal: unexpected actor reply")
            }
        }
    }

    /// The critic's verdict on one output. A reply that is not a valid verdict is asked again within
    /// the policy's budget; past it the attempt counts as failed — never as passed.
    /// A command critic runs once (`CriticCommand`): a call that fails fails the attempt. A jury asks
    /// its jurors and its rule decides (`JobRunner+Jury`).
    /// `sample` is the candidate judged when the policy asks for several; `workspace` the candidate's
    /// tools when it has its own copy of the workspace, which the critic's commands and tools then
    /// work in.
    func judge(
        steps: [String], index: Int, attempt: Int, replan: Int, output: String, sample: Int? = nil, workspace: ToolBox? = nil
    ) async throws -> Verdict {
        switch plan.critic {
        case .model:
            var request = prompts.critic(steps: steps, index: index, attempt: attempt, replan: replan, output: output)
            request.context.sample = sample
            return try await verdict(
                request, tries: plan.policy.maxInvalidReplies, tools: candidateCriticTools(workspace))
        case let .command(command):
            var request = commandCriticRequest(command, steps: steps, index: index, attempt: attempt, replan: replan, output: output)
            request.context.sample = sample
            request.workspace = await candidateWorkspace(workspace)
            return try await verdict(request, tries: 0)  // a command's verdict is its exit status: asking again would not change it
        case let .jury(jury):
            return try await convene(jury, steps: steps, index: index, attempt: attempt, replan: replan, output: output)
        }
    }

    /// The request of a plan command that judges `output` as a command critic does (the critic, a
    /// juror, the ground-truth check, a gate's reviewer), its argv substituted for the job.
    func commandCriticRequest(
        _ command: CommandSpec, steps: [String], index: Int, attempt: Int, replan: Int, output: String, gate: String? = nil
    ) -> ModelRequest {
        CriticCommand.request(
            VerifierCommand.substitute(command, for: job), jobID: job.id, goal: job.goal, steps: steps, index: index, attempt: attempt,
            replan: replan, output: output, gate: gate)
    }

    /// The critic's answer to `first`, asked again after an invalid reply up to `tries` times; a fail
    /// (`invalid_verdict`) when none is valid. A critic offered tools uses them first (`modelTurns`,
    /// within its `max_tool_turns` over all its tries; a re-ask carries the tool turns before it); one
    /// still calling tools when they are used up gives no valid verdict.
    /// `tools` are the critic's tools when not the job's `criticTools` (a candidate's copy).
    func verdict(_ first: ModelRequest, tries: Int, line: CallLine? = nil, tools: ToolBox? = nil) async throws -> Verdict {
        let tools = tools ?? criticTools
        var request = first
        var problem = ""
        let turns = plan.roleSpec(.critic)?.maxToolTurns ?? plan.policy.maxToolTurns
        for _ in 0...tries {
            try await checkLive()
            let reply: AgentReply
            switch try await modelTurns(request, role: .critic, tools: tools, maxTurns: turns, line: line) {
            case let .answered(answer, last):
                (reply, request) = (answer, last)
            case .outOfTurns:
                return Verdict(
                    outcome: .fail, score: 0,
                    feedback: "no valid verdict: the critic was still calling tools after \(turns) model turns (max_tool_turns)",
                    failureModes: ["invalid_verdict"])
            }
            switch (reply.reply, reply.interpretation) {
            case let (.success, .verdict(verdict)?):
                return verdict
            case let (.success(model), .invalid(error)?):
                problem = error.message
                request = prompts.reask(request, badReply: model.content, error: error)
            case let (.failure(error), _):
                problem = "the critic's call failed: \(error.message)"
            default:
                problem = "internal: unexpected critic reply"
            }
        }
        return Verdict(
            outcome: .fail, score: 0, feedback: "no valid verdict after \(tries + 1) tries: \(problem)",
            failureModes: ["invalid_verdict"])
    }

    private func makePlan(replan: Int, context: ReplanContext?) async throws -> [String] {
        var request = prompts.planner(replan: replan, context: context)
        var problem = ""
        for _ in 0...plan.policy.maxInvalidReplies {
            try await checkLive()
            let reply = try await call(request, role: .planner)
            switch (reply.reply, reply.interpretation) {
            case let (.success, .plan(steps)?):
                return steps
            case let (.success(model), .invalid(error)?):
                problem = error.message
                request = prompts.reask(request, badReply: model.content, error: error)
            case let (.failure(error), _):
                problem = error.message
            default:
                problem = "internal: unexpected planner reply"
            }
        }
        throw Failure(reason: "the planner gave no valid plan after \(plan.policy.maxInvalidReplies + 1) tries: \(problem)")
    }

    private func verify(results: [(step: String, output: String)], replans: Int) async throws -> (JobStatus, String?) {
        let request: ModelRequest
        var tries = plan.policy.maxInvalidReplies
        switch plan.verifier {
        case let .model(spec):
            request = prompts.verifier(spec: spec, results: results, replan: replans)
        case let .command(command):
            request = VerifierCommand.request(
                VerifierCommand.substitute(command, for: job), jobID: job.id, goal: job.goal, replan: replans, results: results)
            tries = 0  // a command's verdict is its exit status; running it again would not change it
        }
        var current = request
        var problem = ""
        for _ in 0...tries {
            try await checkLive()
            let reply = try await call(current, role: .verifier)
            switch (reply.reply, reply.interpretation) {
            case let (.success, .verification(verified, reason)?):
                return verified ? (.succeeded, reason) : (.failed, "verifier rejected the result: \(reason ?? "no reason given")")
            case let (.success(model), .invalid(error)?):
                problem = error.message
                current = prompts.reask(current, badReply: model.content, error: error)
            case let (.failure(error), _):
                problem = error.message
            default:
                problem = "internal: unexpected verifier reply"
            }
        }
        return (.failed, "verifier gave no decision: \(problem)")
    }

    /// Sends `request` to the job's `role` agent (or `agent`, another of the job's agents: a juror,
    /// the ground-truth check) as the next call of `line` (the main line when nil).
    func call(_ request: ModelRequest, role: Role, agent: AgentID? = nil, line: CallLine? = nil) async throws -> AgentReply {
        let line = line ?? main
        try checkStepTime(before: line.upcoming)
        let callID = line.next()
        let reply = try await bus.call(
            request, to: agent ?? AgentID(role: role, key: job.id), callID: callID, log: log, rules: rules,
            mayStart: { [unowned self] in mayStartCall() }, keepsReply: { [unowned self] in keepsReply })
        if case .success(let model) = reply.reply, let usage = model.usage {
            tokensUsed += usage.input + usage.output
        }
        let budget = plan.policy.maxTokens
        if budget > 0, tokensUsed > budget {
            // Recorded with the reply that went over (staged), then the job fails.
            throw Failure(reason: "token budget of \(budget) tokens per job used up (\(tokensUsed) used)")
        }
        return reply
    }
}
