import Agents
import Runtime
import Store

/// A gate waiting for a person: what it holds, and the wait a decision (or a stop, or the approval
/// timeout) ends. Loop thread only, like its runner.
struct WaitingGate {
    let gate: String
    let step: Int?
    let attempt: Int?
    let tool: String
    let arguments: String
    let requestSHA256: String
    /// When `gate.requested` was recorded (ms since the epoch).
    let requestedAt: Int64
    var continuation: CheckedContinuation<GateAnswer, Never>?
    var timer: LoopTimer?
}

/// How a gate's wait for a person ended.
enum GateAnswer {
    case decided(PersonDecision)
    /// The run is stopping (cancelled, timed out, the daemon draining): the wait ends unanswered.
    case stopped
    /// `policy.approval_timeout` passed.
    case timedOut
}

/// A person's decision, validated by the engine, and how to tell the engine it is committed.
struct PersonDecision {
    let approve: Bool
    let uid: Int
    let user: String?
    let note: String?
    let editedArguments: String?
    /// Called once the decision is recorded (its event's seq) or could not be.
    let committed: @Sendable (Result<Int, EngineError>) -> Void
}

/// A step whose reviewers rejected more proposals than `policy.max_rejections_per_step`: it ends as
/// failed, `what` saying why and `feedback` going to a re-plan.
struct StepRejectionsExceeded: Error {
    let what: String
    let feedback: String
}

/// A person's rejection of a step's output: the feedback the rerun reads.
struct StepRejection: Error {
    let feedback: String
}

/// What becomes of a gated call.
enum GateOutcome {
    /// It runs, with these arguments (a person may have edited them).
    case run(ToolCall)
    /// It does not run; the actor gets this as the tool's result.
    case blocked(String)
}

/// Gates: a proposed tool call that matches one of the plan's gate rules is reviewed before it
/// runs. `gate.requested` (the exact call and its digest) is committed before anyone is asked, and
/// `gate.decided` before the call runs or is refused, so a recovered job never asks a decided gate
/// again and never runs a call without a recorded approval of that exact request. A person's wait
/// survives restarts: a job whose log ends in an undecided gate waits again (`awaiting_approval`).
extension JobRunner {
    /// Reviews `call` when a gate rule matches it; nil when none does (or the call is unusable: the
    /// bus refuses it anyway).
    func gate(_ call: ToolCall, callID: String, context: CallContext, tools: ToolBox) async throws -> GateOutcome? {
        guard !plan.gates.isEmpty, case let .success(invocation) = ToolInvocation.parse(call, offered: tools.offered) else {
            return nil
        }
        let (argv, path): ([String]?, String?)
        switch invocation {
        case let .runCommand(a): (argv, path) = (a, nil)
        case let .readFile(p), let .writeFile(p, _): (argv, path) = (nil, p)
        }
        guard let index = plan.gates.firstIndex(where: { $0.matches(tool: call.name, argv: argv, path: path) }) else { return nil }
        let rule = plan.gates[index]
        if rule.review == .none { return nil }
        let (decision, proposed) = try await review(call, rule: rule, index: index, callID: callID, context: context)
        switch decision.decision {
        case .approved:
            var approved = proposed
            if let edited = decision.editedArguments { approved.arguments = edited }
            return .run(approved)
        case .expired:
            throw Failure(
                reason:
                    "gate \(callID) (\(call.name) \(call.arguments)) had no decision within policy.approval_timeout of \(Self.seconds(plan.policy.approvalTimeoutSeconds))"
            )
        case .rejected:
            try countRejection(decision.note ?? "no reason given", last: "\(call.name) \(call.arguments)")
            let who = decision.by == .person ? "a person" : decision.by == .critic ? "the reviewer" : "nobody in time"
            return .blocked("blocked by \(who) before it ran: \(decision.note ?? "no reason given")")
        }
    }

    /// The decision on `call` under `rule`, and the call it decides (changed by the critic, when it
    /// approved a changed call: that call is reviewed again by the same rule, at most
    /// `Self.criticEdits` times).
    private func review(_ call: ToolCall, rule: GateRule, index: Int, callID: String, context: CallContext) async throws
        -> (GateDecided, ToolCall)
    {
        var proposed = call
        var round = 0
        while true {
            let waiting = try await requestReview(
                gate: callID, rule: index, review: rule.review, tool: proposed.name, arguments: proposed.arguments, step: context.step,
                attempt: context.attempt)
            guard rule.review != .human else { return (try await decideByPerson(waiting), proposed) }
            let verdict = try await reviewByCritic(proposed, gate: callID, context: context)
            let edited = verdict.outcome == .pass ? verdict.arguments.flatMap { $0 == proposed.arguments ? nil : $0 } : nil
            let approves = verdict.outcome == .pass && (rule.review == .critic || (verdict.confidence ?? 1) >= rule.minConfidence)
            guard approves || rule.review == .critic else { return (try await decideByPerson(waiting), proposed) }
            var outcome: GateDecided.Decision = approves ? .approved : .rejected
            var note = verdict.feedback
            if edited != nil, round >= Self.criticEdits {
                outcome = .rejected
                note = "the critic changed the call \(Self.criticEdits) times without approving it as it stands: \(note)"
            }
            let decided = GateDecided(
                gate: callID, decision: outcome, by: .critic, requestSHA256: waiting.requestSHA256, call: main.last, note: note,
                editedArguments: outcome == .approved ? edited : nil, waitedMs: Double(log.now() - waiting.requestedAt))
            try await log.emit(
                EventDraft(decided, role: Role.critic.rawValue, step: context.step, attempt: context.attempt, callID: callID))
            guard let edited, outcome == .approved else { return (decided, proposed) }
            proposed.arguments = edited
            round += 1
        }
    }

    /// Records `gate.requested` for `tool` with `arguments` (committed before anyone is asked) and
    /// returns the gate as a person would wait for it.
    private func requestReview(
        gate: String, rule: Int, review: GateRule.Review, tool: String, arguments: String, step: Int?, attempt: Int?
    ) async throws -> WaitingGate {
        let digest = GateRequested.requestSHA256(tool: tool, arguments: arguments)
        let (requested, _) = try await log.emit(
            EventDraft(
                GateRequested(gate: gate, rule: rule, review: review.rawValue, tool: tool, arguments: arguments, requestSHA256: digest),
                role: Role.actor.rawValue, step: step, attempt: attempt, callID: gate))
        return WaitingGate(
            gate: gate, step: step, attempt: attempt, tool: tool, arguments: arguments, requestSHA256: digest, requestedAt: requested.at)
    }

    /// A fixed step's output the critic passed, when the plan marks the step for review: a person
    /// accepts it (possibly edited: `{"output": …}`) or rejects it, which fails the attempt with the
    /// person's note as its feedback. Nil when the step is not reviewed (not marked, re-planned, or
    /// `critic_then_human` with a confident pass). The gate's id is `sSTEP.ATTEMPT`, from 1.
    func reviewStepOutput(_ output: String, verdict: Verdict, steps: [String], index: Int, attempt: Int, replan: Int) async throws
        -> Result<String, StepRejection>?
    {
        guard replan == 0, let review = plan.stepReviews[index] else { return nil }
        if review == .criticThenHuman, (verdict.confidence ?? 1) >= GateRule.defaultMinConfidence { return nil }
        let gate = "s\(index + 1).\(attempt + 1)"
        let arguments = JSON.object([("step", .string(steps[index])), ("output", .string(output))]).encoded
        let decision = try await decideByPerson(
            try await requestReview(
                gate: gate, rule: -1, review: review, tool: Self.stepOutputTool, arguments: arguments, step: index, attempt: attempt))
        switch decision.decision {
        case .approved:
            let edited = decision.editedArguments.flatMap { try? JSON.parse($0) }?["output"]?.stringValue
            return .success(edited ?? output)
        case .rejected:
            try countRejection(decision.note ?? "no reason given", last: "the output of step \(index + 1)")
            return .failure(StepRejection(feedback: "rejected at review: \(decision.note ?? "no reason given")"))
        case .expired:
            throw Failure(
                reason:
                    "the review of step \(index + 1) had no decision within policy.approval_timeout of \(Self.seconds(plan.policy.approvalTimeoutSeconds))"
            )
        }
    }

    /// Counts one rejected proposal: past `policy.max_rejections` the job fails; past
    /// `policy.max_rejections_per_step` the step ends as failed (`StepRejectionsExceeded`).
    func countRejection(_ note: String, last: String) throws {
        rejections += 1
        stepRejections += 1
        if rejections > plan.policy.maxRejections {
            throw Failure(
                reason:
                    "\(rejections) proposals were rejected, more than policy.max_rejections (\(plan.policy.maxRejections)); the last: \(last)"
            )
        }
        if stepRejections > plan.policy.maxRejectionsPerStep {
            throw StepRejectionsExceeded(
                what:
                    "had \(stepRejections) proposals rejected, more than policy.max_rejections_per_step (\(plan.policy.maxRejectionsPerStep))",
                feedback: "the reviewer rejected \(stepRejections) proposals in this step; the last, \(last): \(note)")
        }
    }

    /// The gate "tool" of a step's output under review.
    static let stepOutputTool = "step_output"

    /// How often the critic may approve a call only changed before the call is blocked.
    static let criticEdits = 3

    /// The critic's verdict on a proposed call (pass approves, fail blocks).
    private func reviewByCritic(_ call: ToolCall, gate: String, context: CallContext) async throws -> Verdict {
        let (index, attempt) = (context.step ?? 0, context.attempt ?? 0)
        switch plan.critic {
        case .model:
            let request = prompts.gateReview(
                steps: currentSteps, index: index, attempt: attempt, replan: context.replan, gate: gate, tool: call.name,
                arguments: call.arguments)
            return try await verdict(request, tries: plan.policy.maxInvalidReplies)
        case let .command(command):
            let arguments = (try? JSON.parse(call.arguments)) ?? .string(call.arguments)
            let proposed = JSON.object([("tool", .string(call.name)), ("arguments", arguments)])
            let request = commandCriticRequest(
                command, steps: currentSteps, index: index, attempt: attempt, replan: context.replan, output: proposed.encoded, gate: gate)
            return try await verdict(request, tries: 0)  // its exit status: asking again would not change it
        case .jury:
            preconditionFailure("a jury does not review gates: such a plan is refused when it loads")
        }
    }

    /// A person's decision: read from the log when the job recorded one before a restart, else
    /// waited for (`awaiting_approval`) until the engine answers, the run stops, or the approval
    /// timeout passes — each recorded before it takes effect.
    private func decideByPerson(_ waiting: WaitingGate) async throws -> GateDecided {
        let (gate, step, attempt) = (waiting.gate, waiting.step, waiting.attempt)
        try await log.emit(
            EventDraft(JobState(from: .running, to: .awaitingApproval, reason: "gate \(gate) waits for a person's decision")),
            ops: [.setStatus(jobID: job.id, status: .awaitingApproval, reason: "gate \(gate) waits for a person's decision", at: 0)])
        statusChanged(.awaitingApproval)
        let decided: GateDecided
        if let next = log.nextRecorded, next.eventKind == .gateDecided, let recorded = next.payload(as: GateDecided.self),
            recorded.gate == gate
        {
            decided = recorded
            try await log.emit(EventDraft(recorded, role: nil, step: step, attempt: attempt, callID: gate))
        } else {
            try await checkLive()
            let answer = await waitForPerson(waiting)
            let waited = Double(log.now() - waiting.requestedAt)
            switch answer {
            case .stopped:
                throw CallAbandoned()
            case .timedOut:
                let limit = "no decision within policy.approval_timeout (\(Self.seconds(plan.policy.approvalTimeoutSeconds)))"
                decided = GateDecided(
                    gate: gate, decision: plan.policy.onApprovalTimeout == .reject ? .rejected : .expired, by: .timeout,
                    requestSHA256: waiting.requestSHA256, note: limit, waitedMs: waited)
                try await log.emit(EventDraft(decided, step: step, attempt: attempt, callID: gate))
            case let .decided(person):
                decided = GateDecided(
                    gate: gate, decision: person.approve ? .approved : .rejected, by: .person, requestSHA256: waiting.requestSHA256,
                    uid: person.uid, user: person.user, note: person.note, editedArguments: person.editedArguments, waitedMs: waited)
                do {
                    let (event, _) = try await log.emit(EventDraft(decided, step: step, attempt: attempt, callID: gate))
                    person.committed(.success(event.seq))
                } catch {
                    person.committed(.failure(.storage("the decision could not be recorded: \(error)")))
                    throw error
                }
            }
        }
        if decided.decision != .expired {
            try await log.emit(
                EventDraft(JobState(from: .awaitingApproval, to: .running, reason: "gate \(gate) \(decided.decision.rawValue)")),
                ops: [.setStatus(jobID: job.id, status: .running, reason: nil, at: 0)])
            statusChanged(.running)
        }
        return decided
    }

    /// Suspends until `answerGate` is called for `waiting`, arming the approval timeout (counted from
    /// the recorded request, so a restart does not extend it).
    private func waitForPerson(_ waiting: WaitingGate) async -> GateAnswer {
        await withCheckedContinuation { continuation in
            var gate = waiting
            gate.continuation = continuation
            let limit = plan.policy.approvalTimeoutSeconds
            if limit > 0 {
                let remaining = Double(waiting.requestedAt) + limit * 1000 - Double(log.now())
                let timer = LoopTimer(loop: loop)
                timer.start(after: UInt64(max(0, remaining))) { [weak self] in
                    self?.assumeIsolated { $0.answerGate(.timedOut) }
                }
                gate.timer = timer
            }
            waitingGate = gate
        }
    }

    /// Ends the wait of the gate waiting for a person, if any.
    func answerGate(_ answer: GateAnswer) {
        guard let waiting = waitingGate else { return }
        waitingGate = nil
        waiting.timer?.close()
        waiting.continuation?.resume(returning: answer)
    }

    // MARK: For the engine, on the loop thread

    /// The gate waiting for a person. Call on the loop thread.
    nonisolated var waitingGateOnLoop: WaitingGate? { assumeIsolated { $0.waitingGate } }

    /// Hands a person's decision to the waiting gate `gate` whose request is `digest`. Returns why
    /// it cannot (no such gate waits, a stale digest); on success the decision's `committed` is called
    /// once it is recorded. Call on the loop thread.
    nonisolated func decideOnLoop(gate: String, digest: String, _ decision: PersonDecision) -> String? {
        assumeIsolated { runner in
            guard let waiting = runner.waitingGate, waiting.gate == gate else {
                return "gate \(gate) of job \(runner.job.id) is not waiting for a decision"
            }
            guard waiting.requestSHA256 == digest else {
                return "stale request: gate \(gate) holds the request \(waiting.requestSHA256), not \(digest)"
            }

            runner.answerGate(.decided(decision))
            return nil
        }
    }
}
