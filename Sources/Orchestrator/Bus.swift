import Agents
import Runtime
import Store

/// The in-process message bus between a job's runner and its agents.
///
/// A call travels as two persisted messages: the request (`call.started`, the full model request) is
/// committed before the agent sees it; the agent's reply (`call.completed` or `call.failed`, raw
/// output and interpretation) is committed together with the runner's next step, before anything
/// that depends on it leaves the process.
/// ```
///   runner ──request──▶ [commit call.started] ──▶ Agent(role/job).handle ──reply──▶ runner
///   runner ──next request──▶ [commit call.completed + next call.started] ──▶ next agent …
/// ```
/// On a recovered job a call whose reply is in the log is answered from the log and not made again; a
/// call that started but never completed is made again (at least once), noted by `call.restarted` —
/// unless its step's `step.timed_out` follows it (`JobLog.timedOutAhead`): then it was abandoned,
/// and is abandoned again. Concurrent branches' replies are found by call id (`JobLog.recordedAnswer`).
///
/// Loop thread only.
final class Bus: @unchecked Sendable {
    private let loop: EventLoop
    private var agents: [AgentID: Agent] = [:]
    /// The agents registered beyond one per role, by job (a jury's jurors), so `unregister` finds them
    /// without a scan.
    private var extra: [String: [AgentID]] = [:]

    init(loop: EventLoop) {
        self.loop = loop
    }

    var agentCount: Int { agents.count }

    /// Registers the agents of a job.
    func register(_ agent: Agent) {
        agents[agent.id] = agent
        if agent.id.key.contains("/") { extra[agent.id.jobID, default: []].append(agent.id) }
    }

    /// Drops every agent serving `jobID`: its roles', its jurors' and its ground-truth check's
    /// (`Engine.checkAgent`).
    func unregister(jobID: String) {
        for role in Role.allCases { agents[AgentID(role: role, key: jobID)] = nil }
        agents[Engine.checkAgent(jobID)] = nil
        for id in extra.removeValue(forKey: jobID) ?? [] { agents[id] = nil }
    }

    /// Sends `request` to the agent `to` and returns its reply, both persisted first.
    /// `mayStart` is asked before the agent gets the request and `keepsReply` after it answers: when
    /// either says no (the job was cancelled, timed out, or the daemon is stopping) the call is
    /// abandoned unrecorded and `CallAbandoned` is thrown. The reply is read under `rules`, the job's.
    func call(
        _ request: ModelRequest, to id: AgentID, callID: String, log: JobLog, rules: ReplyRules, mayStart: () -> Bool,
        keepsReply: () -> Bool
    ) async throws -> AgentReply {
        assert(loop.inLoop, "the bus runs on the event loop")
        let c = request.context
        let started = EventDraft(
            CallStarted(agent: id.description, reask: c.reask, request: request.json), role: id.role.rawValue, step: c.step,
            attempt: c.attempt, callID: callID)
        let (startedEvent, startedWasRecorded) = try await log.emit(started)
        if startedWasRecorded, log.strictReplay, case let recorded = try startedEvent.decode(CallStarted.self).request,
            recorded != request.json
        {
            log.abandonReplay()
            throw ReplayDivergence(
                seq: startedEvent.seq, expected: "call \(callID) (\(id.role.rawValue)) with the request \(Self.excerpt(request.json))",
                recorded: "the request \(Self.excerpt(recorded))")
        }

        if let recorded = log.recordedAnswer(to: callID, kinds: [.callCompleted, .callFailed]), let kind = recorded.eventKind {
            try await log.emit(.recorded(kind, callID: callID))
            return try Self.reply(from: recorded, to: request, role: id.role, rules: rules)
        }
        if startedWasRecorded, log.timedOutAhead { throw CallAbandoned() }
        if startedWasRecorded {
            _ = try await log.append([
                EventDraft(CallRestarted(), role: id.role.rawValue, step: c.step, attempt: c.attempt, callID: callID)
            ])
        }
        guard mayStart(), let agent = agents[id] else { throw CallAbandoned() }
        var request = request
        request.idempotencyKey = Self.idempotencyKey(jobID: c.jobID, callID: callID)
        let reply = await agent.handle(request, rules: rules)
        assert(loop.inLoop, "the bus runs on the event loop")
        guard keepsReply() else { throw CallAbandoned() }
        // The reply is written in the same transaction as whatever the runner does next with it (its
        // next request, a state change), so nothing that depends on it leaves the process before it
        // is durable, and a job's call costs one commit round trip instead of two.
        try await log.emit(Self.completion(reply, id: id, context: c, callID: callID), deferred: true)
        return reply
    }

    /// The idempotency key of a call or tool call: `JOBID/CALLID` with the call id's dots as slashes
    /// (`JOBID/c7` for an agent call, `JOBID/c7/0` for its first tool call).
    static func idempotencyKey(jobID: String, callID: String) -> String {
        "\(jobID)/\(callID.replacingOccurrences(of: ".", with: "/"))"
    }

    /// Runs one tool call of a model's reply, both persisted: `tool.started` (the parsed argv or path,
    /// the idempotency key) is committed before the tool runs, `tool.completed` (its result) right
    /// after, before the model hears of it. `callID` is the event's call id, `MODELCALL.INDEX`; the
    /// idempotency key is `JOBID/MODELCALL/INDEX`. On a recovered job a tool whose completion is in
    /// the log is not run again (its recorded result is returned); one that started and never
    /// completed runs again (at least once), noted by `tool.restarted`. `allowance` is what the
    /// result may carry, or why the tool is not run (the job's `ToolOutputBudget`): a refusal is
    /// recorded as the call's result like an invalid call. Returns the result the model gets.
    /// `mayStart` / `keepsReply` as for `call`.
    func tool(
        _ call: ToolCall, callID: String, context c: CallContext, tools: ToolBox, allowance: Result<ToolAllowance, ToolProblem>,
        log: JobLog, mayStart: () -> Bool, keepsReply: () -> Bool
    ) async throws -> JSON {
        assert(loop.inLoop, "the bus runs on the event loop")
        let key = Self.idempotencyKey(jobID: c.jobID, callID: callID)
        let invocation = ToolInvocation.parse(call, offered: tools.offered)
        var started = ToolStarted(tool: call.name, toolCallID: call.id, idempotencyKey: key)
        switch invocation {
        case let .success(parsed): parsed.describe(in: &started)
        case let .failure(problem):
            started.arguments = call.arguments
            started.invalid = problem.message
        }
        if !log.answersFromRecord, !mayStart() { throw CallAbandoned() }
        let (_, startedWasRecorded) = try await log.emit(
            EventDraft(started, role: c.role.rawValue, step: c.step, attempt: c.attempt, callID: callID))
        if let recorded = log.recordedAnswer(to: callID, kinds: [.toolCompleted]) {
            try await log.emit(.recorded(.toolCompleted, callID: callID))
            return try recorded.decode(ToolCompleted.self).result
        }
        if startedWasRecorded, log.timedOutAhead { throw CallAbandoned() }
        if startedWasRecorded {
            _ = try await log.append([
                EventDraft(ToolRestarted(idempotencyKey: key), role: c.role.rawValue, step: c.step, attempt: c.attempt, callID: callID)
            ])
        }
        guard mayStart() else { throw CallAbandoned() }
        let start = monotonicNanos()
        let result: ToolResult
        switch invocation {
        case .success where log.strictReplay:
            // `agentd replay` never runs a tool: the recording has no result for this one.
            result = .problem(ToolProblem("replay: the recording has no result for this tool call; it was not run"))
        case let .success(parsed):
            switch allowance {
            case let .success(allowed): result = await tools.run(parsed, key: key, allowance: allowed)
            case let .failure(refusal): result = .problem(refusal)
            }
        case let .failure(problem): result = .problem(problem)
        }
        let durationMs = (Double(monotonicNanos() - start) / 1e4).rounded() / 100
        assert(loop.inLoop, "the bus runs on the event loop")
        guard keepsReply() else { throw CallAbandoned() }
        // Committed now, not staged: a tool's side effects are outside the log, so its completion is
        // made durable as soon as possible to keep a recovered job from running it again.
        try await log.emit(
            EventDraft(
                ToolCompleted(tool: call.name, toolCallID: call.id, ok: result.ok, result: result.json, durationMs: durationMs),
                role: c.role.rawValue, step: c.step, attempt: c.attempt, callID: callID))
        return result.json
    }

    /// The start of a request, for a divergence report.
    static func excerpt(_ request: JSON) -> String {
        let text = request.encoded
        return text.count > 300 ? String(text.prefix(300)) + "…" : text
    }

    /// The event that records an agent's reply.
    static func completion(_ reply: AgentReply, id: AgentID, context c: CallContext, callID: String) -> EventDraft {
        let durationMs = (Double(reply.durationNanos) / 1e4).rounded() / 100
        switch reply.reply {
        case let .success(model):
            var completed = CallCompleted(
                reply: model.content, toolCalls: model.toolCalls.map(\.json),
                usage: model.usage.map { CallCompleted.Usage(inputTokens: $0.input, outputTokens: $0.output) }, sent: model.sent,
                raw: model.raw, httpAttempts: model.attempts, costUSD: model.costUSD, durationMs: durationMs)
            switch reply.interpretation {
            case let .verdict(v)?: completed.outcome = .verdict(v.json)
            case let .plan(steps)?: completed.outcome = .steps(steps)
            case let .verification(verified, reason)?: completed.outcome = .verification(verified: verified, reason: reason)
            case let .invalid(error)?: completed.outcome = .invalid(error.message)
            case .output?, .toolCalls?, nil: break
            }
            return EventDraft(completed, role: id.role.rawValue, step: c.step, attempt: c.attempt, callID: callID)
        case let .failure(error):
            let failed = CallFailed(error: error.kind.rawValue, message: error.message, stderr: error.stderr, durationMs: durationMs)
            return EventDraft(failed, role: id.role.rawValue, step: c.step, attempt: c.attempt, callID: callID)
        }
    }

    /// Rebuilds an agent's reply to `request` from its recorded event (the interpretation is
    /// recomputed: it is a pure function of the raw reply and of the request, see
    /// `Agent.interpret(_:to:role:rules:)`). Throws when the recorded payload does not have its kind's shape.
    static func reply(from event: EventRecord, to request: ModelRequest, role: Role, rules: ReplyRules) throws(EventPayloadError)
        -> AgentReply
    {
        if event.eventKind == .callFailed {
            let failed = try event.decode(CallFailed.self)
            let kind = ModelCallError.Kind(rawValue: failed.error) ?? .badReply
            let error = ModelCallError(kind, failed.message, stderr: failed.stderr)
            return AgentReply(reply: .failure(error), interpretation: nil, durationNanos: nanos(failed.durationMs))
        }
        let completed = try event.decode(CallCompleted.self)
        var model = ModelReply(
            content: completed.reply, toolCalls: ToolCall.list(from: .array(completed.toolCalls)) ?? [],
            usage: completed.usage.map { TokenUsage(input: $0.inputTokens, output: $0.outputTokens) }, raw: completed.raw,
            sent: completed.sent, attempts: completed.httpAttempts)
        model.costUSD = completed.costUSD
        return AgentReply(
            reply: .success(model), interpretation: Agent.interpret(model, to: request, role: role, rules: rules),
            durationNanos: nanos(completed.durationMs))
    }

    private static func nanos(_ durationMs: Double) -> UInt64 { UInt64(max(0, durationMs * 1e6)) }
}

/// A call whose reply is no longer wanted: its job was cancelled or the daemon is stopping.
struct CallAbandoned: Error {}
