import Store

/// An earlier attempt at a step that the critic rejected: what a rerun's input carries.
public struct RejectedAttempt: Sendable, Equatable {
    public var attempt: Int
    public var output: String
    public var feedback: String
    public var suggestion: String?
    /// Where the critic found the first wrong part.
    public var firstError: String?
    /// The kinds of failure the critic named; empty for none.
    public var failureModes: [String]

    public init(
        attempt: Int, output: String, feedback: String, suggestion: String?, firstError: String? = nil, failureModes: [String] = []
    ) {
        self.attempt = attempt
        self.output = output
        self.feedback = feedback
        self.suggestion = suggestion
        self.firstError = firstError
        self.failureModes = failureModes
    }

    /// The attempt `attempt`, rejected with `verdict`'s feedback and everything else it said.
    public init(attempt: Int, output: String, verdict: Verdict) {
        self.init(
            attempt: attempt, output: output, feedback: verdict.feedback, suggestion: verdict.suggestion, firstError: verdict.firstError,
            failureModes: verdict.failureModes ?? [])
    }
}

/// What a re-plan is told: what was done, which step failed and why.
public struct ReplanContext: Sendable, Equatable {
    public var completed: [(step: String, output: String)]
    public var failedStep: String
    public var lastFeedback: String

    public init(completed: [(step: String, output: String)], failedStep: String, lastFeedback: String) {
        self.completed = completed
        self.failedStep = failedStep
        self.lastFeedback = lastFeedback
    }

    public static func == (a: ReplanContext, b: ReplanContext) -> Bool {
        a.failedStep == b.failedStep && a.lastFeedback == b.lastFeedback
            && a.completed.map(\.step) == b.completed.map(\.step) && a.completed.map(\.output) == b.completed.map(\.output)
    }
}

/// Builds each role's model request from the job's state. Pure: the same state gives the same
/// request, which is what lets a recovered job match its recorded calls. How a reply is asked for
/// depends on the job's `ReplyRules` (its record format): formats 1 and 2 show a fill-in example,
/// later formats describe each field (`ReplyForm`).
public struct Prompts: Sendable {
    public let plan: Plan
    public let jobID: String
    public let goal: String
    public let inputs: JSON
    public let rules: ReplyRules

    public init(plan: Plan, jobID: String, goal: String, inputs: JSON, rules: ReplyRules) {
        self.plan = plan
        self.jobID = jobID
        self.goal = goal
        self.inputs = inputs
        self.rules = rules
    }

    /// What a role's system prompt adds to say how to answer: the recorded example of formats 1 and
    /// 2, or the form's description.
    private func answer(example: String, form: @autoclosure () -> ReplyForm) -> String {
        rules.isStrict ? "\n" + form().instruction : "\nAnswer with JSON: \(example)."
    }

    private var goalText: String {
        var text = "Goal: \(goal)"
        if case let .object(members) = inputs, !members.isEmpty {
            text += "\nInputs: \(inputs.encoded)"
        }
        return text
    }

    private func context(_ role: Role, step: Int?, attempt: Int?, replan: Int, reask: Int, feedback: Bool) -> CallContext {
        CallContext(jobID: jobID, role: role, step: step, attempt: attempt, replan: replan, reask: reask, hasFeedback: feedback, goal: goal)
    }

    /// The actor's temperature for `attempt`, and for its candidate `sample` when the policy asks for
    /// several (`Policy.samples`): each rerun adds `retry_temperature_step`, each further candidate half
    /// of it; never above 2.
    public func temperature(_ spec: RoleSpec, attempt: Int, sample: Int = 0) -> Double {
        min(2, spec.temperature + Double(attempt) * plan.policy.retryTemperatureStep + Double(sample) * plan.policy.samplesTemperatureStep)
    }

    /// The planner's request: the first plan, or a re-plan of the remaining work.
    public func planner(replan: Int, context replanContext: ReplanContext?) -> ModelRequest {
        let spec = plan.planner!
        var user = goalText
        if let replanContext {
            user += "\nCompleted steps:"
            for (i, done) in replanContext.completed.enumerated() {
                user += "\n\(i + 1). \(done.step) => \(done.output)"
            }
            if replanContext.completed.isEmpty { user += " none" }
            user += "\nThis step failed after every attempt: \(replanContext.failedStep)"
            user += "\nCritic feedback: \(replanContext.lastFeedback)"
            user += "\nPlan the remaining work as new steps."
        }
        return ModelRequest(
            model: spec.model,
            messages: [
                ChatMessage(role: "system", content: spec.prompt + answer(example: #"{"steps": ["..."]}"#, form: .plan)),
                ChatMessage(role: "user", content: user),
            ],
            temperature: spec.temperature, responseSchema: PlanReply.schema(rules),
            context: context(.planner, step: nil, attempt: nil, replan: replan, reask: 0, feedback: replanContext != nil))
    }

    /// The actor's request for one attempt at a step; a rerun carries the rejected outputs and the
    /// critic's feedback. `sample` is the candidate asked for when the policy asks for several.
    public func actor(steps: [String], index: Int, attempt: Int, replan: Int, rejected: [RejectedAttempt], sample: Int? = nil)
        -> ModelRequest
    {
        let spec = plan.actor
        var user = "\(goalText)\nStep \(index + 1) of \(steps.count): \(steps[index])"
        for r in rejected {
            user += "\nAttempt \(r.attempt + 1) was rejected.\nRejected output: \(r.output)\nCritic feedback: \(r.feedback)"
            if let s = r.suggestion { user += "\nSuggestion: \(s)" }
            // Added only when the critic said them, so a rerun of a verdict without them asks as before.
            if let e = r.firstError { user += "\nFirst error: \(e)" }
            if !r.failureModes.isEmpty { user += "\nFailure modes: " + r.failureModes.joined(separator: "; ") }
        }
        if !rejected.isEmpty { user += "\nRevise the output using the feedback." }
        var context = context(.actor, step: index, attempt: attempt, replan: replan, reask: 0, feedback: !rejected.isEmpty)
        context.sample = sample
        return ModelRequest(
            model: spec.model,
            messages: [ChatMessage(role: "system", content: spec.prompt), ChatMessage(role: "user", content: user)],
            temperature: temperature(spec, attempt: attempt, sample: sample ?? 0), responseSchema: nil,
            context: context, tools: spec.tools, toolChoice: spec.tools.count == 1 ? spec.tools[0] : nil)
    }

    /// The next model turn of a call that used tools: the request with the assistant's turn (its tool
    /// calls) and one `tool` message per result appended. `tool_choice` is dropped: naming the one
    /// tool again would make a server call it on every turn, never answering. A critic's next turn
    /// carries the verdict's schema (see `critic`).
    public func toolFollowUp(_ request: ModelRequest, reply: ModelReply, results: [String]) -> ModelRequest {
        var next = request
        if next.context.role == .critic { next.responseSchema = Verdict.schema(rules, evidence: true) }
        next.messages.append(ChatMessage(role: "assistant", content: reply.content, toolCalls: reply.toolCalls))
        for (call, result) in zip(reply.toolCalls, results) {
            next.messages.append(ChatMessage(role: "tool", content: result, toolCallID: call.id))
        }
        next.toolChoice = nil
        next.context.turn += 1
        return next
    }

    /// A model critic's request to judge one attempt's output. Only for a plan whose critic is a model
    /// (a command critic's request is `CriticCommand.request`); traps otherwise.
    ///
    /// A critic with tools is offered them and the verdict's `evidence` field, and told its tools
    /// cannot change the workspace. Its request carries the verdict's schema (with `evidence`) when
    /// it names the critic's one tool (`tool_choice`: servers call the tool then, llama.cpp's
    /// included) and on every turn after a tool result (`toolFollowUp`); a first turn offering
    /// several tools carries none, since a server that constrains the reply to the schema could then
    /// call no tool (the prompt describes the fields). A critic without tools is asked exactly as
    /// before critics had tools.
    public func critic(steps: [String], index: Int, attempt: Int, replan: Int, output: String) -> ModelRequest {
        guard case let .model(spec) = plan.critic else { preconditionFailure("the plan's critic is not a model") }
        return juror(spec, steps: steps, index: index, attempt: attempt, replan: replan, output: output)
    }

    /// A model juror's request to judge one attempt's output: a model critic's request with the
    /// juror's model, prompt, temperature and tools (`spec`; a juror has none).
    public func juror(_ spec: RoleSpec, steps: [String], index: Int, attempt: Int, replan: Int, output: String) -> ModelRequest {
        let tools = spec.tools
        var instruction = answer(
            example: #"{"verdict": "pass" or "fail", "score": 0..1, "feedback": "...", "suggestion": "..."}"#,
            form: .verdict(passScore: plan.policy.passScore, evidence: !tools.isEmpty))
        if !tools.isEmpty {
            instruction =
                "\nYou may first call your tools (\(tools.joined(separator: ", "))) to check the output against the workspace; they only read: nothing you run can change the workspace. Then answer with the verdict, citing in 'evidence' the ids of the tool calls whose results it relies on."
                + instruction
        }
        var request = modelCritic(
            spec,
            instruction: instruction,
            user: "\(goalText)\nStep \(index + 1) of \(steps.count): \(steps[index])\nOutput to judge:\n\(output)",
            schema: tools.count <= 1 ? .some(Verdict.schema(rules, evidence: !tools.isEmpty)) : .none,
            context: context(.critic, step: index, attempt: attempt, replan: replan, reask: 0, feedback: false))
        request.tools = tools
        request.toolChoice = tools.count == 1 ? tools[0] : nil
        return request
    }

    /// A model critic's request to review a proposed tool call at a gate before it runs: a pass lets
    /// it run, a fail blocks it with the feedback the actor then reads.
    public func gateReview(steps: [String], index: Int, attempt: Int, replan: Int, gate: String, tool: String, arguments: String)
        -> ModelRequest
    {
        var context = context(.critic, step: index, attempt: attempt, replan: replan, reask: 0, feedback: false)
        context.gate = gate
        let form = ReplyForm.gateVerdict(passScore: plan.policy.passScore)
        guard case let .model(spec) = plan.critic else { preconditionFailure("the plan's critic is not a model") }
        return modelCritic(
            spec,
            instruction:
                "\nYou review an action before it runs: pass lets it run; fail blocks it, and the feedback says why and what to do instead.\n"
                + form.instruction,
            user:
                "\(goalText)\nStep \(index + 1) of \(steps.count): \(steps[index])\nProposed action, not yet run: \(tool) \(arguments)\nJudge whether it should run.",
            schema: form.schema, context: context)
    }

    /// The model critic `spec` asked `user`, its prompt followed by `instruction`.
    private func modelCritic(_ spec: RoleSpec, instruction: String, user: String, schema: JSON?, context: CallContext) -> ModelRequest {
        ModelRequest(
            model: spec.model,
            messages: [ChatMessage(role: "system", content: spec.prompt + instruction), ChatMessage(role: "user", content: user)],
            temperature: spec.temperature, responseSchema: schema, context: context)
    }

    /// A model verifier's request: the goal and every step's accepted output.
    public func verifier(spec: RoleSpec, results: [(step: String, output: String)], replan: Int) -> ModelRequest {
        var user = "\(goalText)\nResults:"
        for (i, r) in results.enumerated() { user += "\n\(i + 1). \(r.step) => \(r.output)" }
        return ModelRequest(
            model: spec.model,
            messages: [
                ChatMessage(
                    role: "system",
                    content: spec.prompt + answer(example: #"{"verified": true or false, "reason": "..."}"#, form: .verification)),
                ChatMessage(role: "user", content: user),
            ],
            temperature: spec.temperature, responseSchema: VerifierReply.schema(rules),
            context: context(.verifier, step: nil, attempt: nil, replan: replan, reask: 0, feedback: false))
    }

    /// The same request asked again after a reply that did not parse: the bad reply and the error are
    /// appended so the model can correct itself.
    public func reask(_ request: ModelRequest, badReply: String, error: ReplyError) -> ModelRequest {
        var next = request
        next.messages.append(ChatMessage(role: "assistant", content: badReply))
        next.messages.append(
            ChatMessage(role: "user", content: "That reply was invalid: \(error.message). Answer again with JSON that matches the schema."))
        next.context.reask += 1
        return next
    }
}
