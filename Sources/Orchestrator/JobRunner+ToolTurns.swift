import Agents

/// The model turns of one call that may use tools: the actor's attempt at a step, or a model critic's
/// verdict. One loop for both, so both are recorded and recovered alike.
///
/// ```
///  request ─▶ call (turn t) ─┬─ text, invalid or failed ─▶ answered
///                            └─ tool calls ─▶ each through Bus.tool ─▶ request + results (turn t+1) ─┐
///        ▲ (while t + 1 < maxTurns, else outOfTurns)                                                   │
///        └─────────────────────────────────────────────────────────────────────────────────────────────┘
/// ```
/// Each tool call is recorded before it runs and its result before the model hears of it
/// (`Bus.tool`): after a crash a completed tool is answered from the record and never run again. The
/// results count against the job's `ToolOutputBudget` (one turn's budget per turn, the job's total
/// shared by every role). Gates apply to the actor's calls only: a critic's tools only read
/// (`ToolBox.readOnly`), and its verdict is itself the review.
extension JobRunner {
    /// How a call's model turns ended.
    enum TurnsOutcome {
        /// The reply that did not call tools (text, invalid or a failed call) and the request it answered.
        case answered(AgentReply, request: ModelRequest)
        /// The model still called tools after `maxTurns` turns; no tool of that turn ran.
        case outOfTurns
    }

    /// Calls `role` with `first` and runs the tools each turn calls (from `tools`) until a turn does
    /// not call tools or `maxTurns` turns, the first included, are used. Each turn is the next call of
    /// `line` (the main line when nil); its tools are `CALL.0`, `CALL.1`, …. Throws `CallAbandoned`
    /// when the run stops, `Failure` when the token budget is used up.
    func modelTurns(_ first: ModelRequest, role: Role, tools: ToolBox?, maxTurns: Int, line: CallLine? = nil) async throws
        -> TurnsOutcome
    {
        var request = first
        while true {
            let reply = try await call(request, role: role, line: line)
            guard case let (.success(model), .toolCalls?) = (reply.reply, reply.interpretation) else {
                return .answered(reply, request: request)
            }
            guard request.context.turn + 1 < maxTurns, let tools else { return .outOfTurns }
            let results = try await runTools(of: model, modelCall: (line ?? main).last, context: request.context, tools: tools)
            try await checkLive()
            request = prompts.toolFollowUp(request, reply: model, results: results)
        }
    }

    /// Runs the tool calls of one model turn in order (the actor's through its gates) and returns
    /// their encoded results, the model's next `tool` messages.
    private func runTools(of model: ModelReply, modelCall: String, context: CallContext, tools: ToolBox) async throws -> [String] {
        var results: [String] = []
        // The turn's budget is its own: concurrent candidates' turns are counted apart.
        var turnUsed = 0
        for (index, toolCall) in model.toolCalls.enumerated() {
            try await checkLive()
            let callID = "\(modelCall).\(index)"
            try checkStepTime(before: callID)
            var allowance = toolOutput.allowance(callIndex: index, turnUsed: turnUsed)
            var proposed = toolCall
            if context.role == .actor, case .success = allowance {
                switch try await gate(toolCall, callID: callID, context: context, tools: tools) {
                case .run(let approved)?: proposed = approved
                case .blocked(let why)?: allowance = .failure(ToolProblem(why))
                case nil: break
                }
            }
            let result = try await bus.tool(
                proposed, callID: callID, context: context, tools: tools, allowance: allowance, log: log,
                mayStart: { [unowned self] in mayStartCall() }, keepsReply: { [unowned self] in keepsReply })
            toolOutput.charge(result, turnUsed: &turnUsed)
            results.append(result.encoded)
        }
        return results
    }
}
