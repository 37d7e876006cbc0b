import Store

/// Where a model call is in its job: enough for a scripted model to pick its reply and for the
/// transcript to say which call this was.
public struct CallContext: Sendable, Equatable {
    public var jobID: String
    public var role: Role
    /// Zero-based step index; nil for calls that are not about one step (planning, verifying).
    public var step: Int?
    /// Zero-based attempt of the step; for the critic, the attempt it judges.
    public var attempt: Int?
    /// How many re-plans came before this call.
    public var replan: Int
    /// Zero-based count of earlier replies to this same call that did not parse.
    public var reask: Int
    /// Whether the input carries a critic's feedback (a rerun).
    public var hasFeedback: Bool
    public var goal: String
    /// Zero-based model turn within one actor attempt or critic verdict that uses tools: each turn
    /// after the first carries the results of the tools the previous one called.
    public var turn: Int
    /// The gate whose proposed tool call this (critic) call reviews; nil for every other call.
    public var gate: String?
    /// Which of an attempt's candidates the call asks for (the actor) or judges (the critic), from 0;
    /// nil unless `policy.samples` asks for more than one.
    public var sample: Int?

    public init(
        jobID: String, role: Role, step: Int?, attempt: Int?, replan: Int, reask: Int, hasFeedback: Bool, goal: String,
        turn: Int = 0
    ) {
        self.jobID = jobID
        self.role = role
        self.step = step
        self.attempt = attempt
        self.replan = replan
        self.reask = reask
        self.hasFeedback = hasFeedback
        self.goal = goal
        self.turn = turn
    }
}

/// One chat message of a model request: a system, user or assistant text; an assistant turn that
/// called tools (`toolCalls`); or a tool's result (`role` "tool", `toolCallID`).
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    /// The tools an assistant turn called.
    public var toolCalls: [ToolCall]?
    /// For a tool result: the id of the call it answers.
    public var toolCallID: String?

    public init(role: String, content: String, toolCalls: [ToolCall]? = nil, toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }

    /// Exactly OpenAI's message shape. `content` is always a string, `""` beside tool calls: some
    /// servers reject a null content.
    public var json: JSON {
        var members: [(String, JSON)] = [("role", .string(role))]
        if let toolCallID { members.append(("tool_call_id", .string(toolCallID))) }
        members.append(("content", .string(content)))
        if let toolCalls { members.append(("tool_calls", .array(toolCalls.map(\.json)))) }
        return .object(members)
    }
}

/// The full request an agent sends to its model. What the transcript records as the call's input.
public struct ModelRequest: Sendable, Equatable {
    public var model: String
    public var messages: [ChatMessage]
    public var temperature: Double
    /// The JSON shape the reply must have, for roles whose reply is structured.
    public var responseSchema: JSON?
    public var context: CallContext
    /// The tools the model may call (validated names, see `ToolName`); empty for no tools.
    public var tools: [String]
    /// A tool the model is told to call (OpenAI's `tool_choice` naming a function): small local
    /// servers call a tool only when asked by name.
    public var toolChoice: String?
    /// The call's idempotency key, `JOBID/CALLID`, set by the bus: the same for every execution of
    /// one recorded call (a call interrupted by a crash is made again under the same key). Not part of
    /// the recorded request; a `command` model sees it as `AGENTD_CALL_ID`.
    public var idempotencyKey: String?
    /// For a command verifier: every step's final output, `[{"step", "output"}, …]`, which it reads
    /// from its `AGENTD_STEP_OUTPUTS` file. Not part of the recorded request, whose form older records
    /// replay against: each step and its accepted output are in the job's record already.
    public var stepOutputs: JSON?
    /// For a command critic judging a candidate that has its own copy of the workspace: that copy (a
    /// real path), which the command works in instead of the job's. Not part of the recorded request
    /// (the copy's path is in the candidate's `candidate.started`).
    public var workspace: String?

    public init(
        model: String, messages: [ChatMessage], temperature: Double, responseSchema: JSON?, context: CallContext,
        tools: [String] = [], toolChoice: String? = nil
    ) {
        self.model = model
        self.messages = messages
        self.temperature = temperature
        self.responseSchema = responseSchema
        self.context = context
        self.tools = tools
        self.toolChoice = toolChoice
    }

    /// OpenAI's `tools` list for `tools`, or nil without tools.
    public var toolDefinitions: JSON? {
        tools.isEmpty ? nil : .array(tools.compactMap { ToolName(rawValue: $0)?.definition })
    }

    /// OpenAI's `tool_choice` for `toolChoice`.
    public var toolChoiceJSON: JSON? {
        toolChoice.map { .object([("type", "function"), ("function", .object([("name", .string($0))]))]) }
    }

    /// The request as recorded and as sent to a `command` model on stdin.
    public var json: JSON {
        var members: [(String, JSON)] = [
            ("model", .string(model)),
            ("role", .string(context.role.rawValue)),
            ("messages", .array(messages.map(\.json))),
            ("temperature", .number(temperature)),
        ]
        if let step = context.step { members.append(("step", .int(step))) }
        if let attempt = context.attempt { members.append(("attempt", .int(attempt))) }
        if let sample = context.sample { members.append(("sample", .int(sample))) }
        if context.turn > 0 { members.append(("turn", .int(context.turn))) }
        if let responseSchema { members.append(("response_schema", responseSchema)) }
        if let toolDefinitions { members.append(("tools", toolDefinitions)) }
        if let toolChoiceJSON { members.append(("tool_choice", toolChoiceJSON)) }
        return .object(members)
    }
}

/// What a model answered: its raw text (empty when it only called tools), the tools it called, and
/// token usage where the backend reports it.
public struct ModelReply: Sendable, Equatable {
    public var content: String
    /// Tool calls, in the order the model made them; empty for a text answer.
    public var toolCalls: [ToolCall] = []
    public var usage: TokenUsage?
    /// The backend's raw response when it has more than the content (e.g. an HTTP body).
    public var raw: JSON?
    /// What the backend sent when it differs from the recorded request (e.g. an HTTP body).
    public var sent: JSON?
    /// HTTP requests made for this call (retries included), for backends that retry.
    public var attempts: Int?
    /// What the call cost in US dollars, when the model has prices.
    public var costUSD: Double?

    public init(
        content: String, toolCalls: [ToolCall] = [], usage: TokenUsage? = nil, raw: JSON? = nil, sent: JSON? = nil, attempts: Int? = nil
    ) {
        self.content = content
        self.toolCalls = toolCalls
        self.usage = usage
        self.raw = raw
        self.sent = sent
        self.attempts = attempts
    }
}

public struct TokenUsage: Sendable, Equatable {
    public var input: Int
    public var output: Int

    public init(input: Int, output: Int) {
        self.input = input
        self.output = output
    }
}

/// Why a model call failed: a reason for the transcript, and what the backend saw on the side
/// (e.g. a child's stderr).
public struct ModelCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case timeout, exit
        case badReply = "bad_reply"
        case spawn, cancelled
        /// An HTTP status that is not a success, after any retries.
        case http = "http_status"
        /// A connection that could not be made or broke off.
        case network
        /// The model is not fully configured (e.g. no model name).
        case configuration
    }

    public var kind: Kind
    public var message: String
    public var stderr: String?

    public init(_ kind: Kind, _ message: String, stderr: String? = nil) {
        self.kind = kind
        self.message = message
        self.stderr = stderr
    }

    public var description: String { message }
}

/// A model endpoint as agents see it. Implementations: `ScriptedBackend` (here) and the
/// `command` backend (in Orchestrator, on the event loop).
///
/// `complete` is called on the event loop; an implementation must not block it.
public protocol ModelBackend: Sendable {
    func complete(_ request: ModelRequest) async throws(ModelCallError) -> ModelReply
}
