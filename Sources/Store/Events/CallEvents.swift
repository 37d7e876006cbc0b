/// The payload of a `call.completed` event: what an agent's model answered, as the bus records it
/// and as replay, the transcript, the OTLP export and `agentd stats` read it back.
///
/// `json` writes the members in one fixed order (the chain covers the bytes); `init(payload:)`
/// accepts every payload agentd has written. Pure; safe from any thread.
public struct CallCompleted: RecordedEvent {
    public static let kind = EventKind.callCompleted

    /// Token counts, where the backend reports them.
    public struct Usage: Sendable, Equatable {
        public var inputTokens: Int
        public var outputTokens: Int

        public init(inputTokens: Int, outputTokens: Int) {
            self.inputTokens = inputTokens
            self.outputTokens = outputTokens
        }
    }

    /// What the agent made of the reply, for the roles whose replies have a shape.
    public enum Outcome: Sendable, Equatable {
        /// A critic's verdict object (its schema is `Verdict`'s, in Agents).
        case verdict(JSON)
        /// A planner's steps.
        case steps([String])
        /// A verifier's decision.
        case verification(verified: Bool, reason: String?)
        /// The reply did not have the shape the role requires: why.
        case invalid(String)
    }

    /// The model's text (empty when it only called tools).
    public var reply: String
    /// The tool calls it made, in order, each as `ToolCall.json`; empty for none.
    public var toolCalls: [JSON]
    public var usage: Usage?
    /// What the backend sent, when it differs from the recorded request.
    public var sent: JSON?
    /// The backend's raw response, when it has more than the text.
    public var raw: JSON?
    public var httpAttempts: Int?
    public var costUSD: Double?
    /// The call's duration in milliseconds, to two decimals.
    public var durationMs: Double
    public var outcome: Outcome?

    public init(
        reply: String, toolCalls: [JSON] = [], usage: Usage? = nil, sent: JSON? = nil, raw: JSON? = nil, httpAttempts: Int? = nil,
        costUSD: Double? = nil, durationMs: Double, outcome: Outcome? = nil
    ) {
        self.reply = reply
        self.toolCalls = toolCalls
        self.usage = usage
        self.sent = sent
        self.raw = raw
        self.httpAttempts = httpAttempts
        self.costUSD = costUSD
        self.durationMs = durationMs
        self.outcome = outcome
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        reply = try r.string("reply")
        toolCalls = try r.optional("tool_calls", "an array", \.arrayValue) ?? []
        if let u = try r.optionalObject("usage") {
            usage = Usage(inputTokens: try u.int("input_tokens"), outputTokens: try u.int("output_tokens"))
        }
        sent = r.json("sent")
        raw = r.json("raw")
        httpAttempts = try r.optionalInt("http_attempts")
        costUSD = try r.optionalDouble("cost_usd")
        durationMs = try r.double("duration_ms")
        if let verdict = try r.optional("verdict", "an object", { value in value.objectValue == nil ? nil : value }) {
            outcome = .verdict(verdict)
        } else if let steps = try r.optional(
            "steps", "an array of strings",
            { value in
                let strings = value.arrayValue?.compactMap(\.stringValue)
                return strings?.count == value.arrayValue?.count ? strings : nil
            })
        {
            outcome = .steps(steps)
        } else if let verified = try r.optionalBool("verified") {
            outcome = .verification(verified: verified, reason: try r.optionalString("reason"))
        } else if let invalid = try r.optionalString("invalid") {
            outcome = .invalid(invalid)
        }
    }

    /// The payload as it is stored.
    public var json: JSON {
        var members: [(String, JSON)] = [("reply", .string(reply))]
        if !toolCalls.isEmpty { members.append(("tool_calls", .array(toolCalls))) }
        if let usage {
            members.append(
                ("usage", .object([("input_tokens", .int(usage.inputTokens)), ("output_tokens", .int(usage.outputTokens))])))
        }
        if let sent { members.append(("sent", sent)) }
        if let raw { members.append(("raw", raw)) }
        if let httpAttempts { members.append(("http_attempts", .int(httpAttempts))) }
        if let costUSD { members.append(("cost_usd", .number(costUSD))) }
        members.append(("duration_ms", .number(durationMs)))
        switch outcome {
        case let .verdict(verdict)?: members.append(("verdict", verdict))
        case let .steps(steps)?: members.append(("steps", .array(steps.map(JSON.string))))
        case let .verification(verified, reason)?:
            members.append(("verified", .bool(verified)))
            if let reason { members.append(("reason", .string(reason))) }
        case let .invalid(message)?: members.append(("invalid", .string(message)))
        case nil: break
        }
        return .object(members)
    }
}

/// The payload of a `call.failed` event: why an agent's model call failed. Pure; safe from any thread.
public struct CallFailed: RecordedEvent {
    public static let kind = EventKind.callFailed

    /// The failure's kind (`ModelCallError.Kind`'s raw value, in Agents).
    public var error: String
    public var message: String
    /// What the backend saw on the side (a child's stderr).
    public var stderr: String?
    public var durationMs: Double

    public init(error: String, message: String, stderr: String? = nil, durationMs: Double) {
        self.error = error
        self.message = message
        self.stderr = stderr
        self.durationMs = durationMs
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        error = try r.string("error")
        message = try r.string("message")
        stderr = try r.optionalString("stderr")
        durationMs = try r.double("duration_ms")
    }

    /// The payload as it is stored.
    public var json: JSON {
        var members: [(String, JSON)] = [("error", .string(error)), ("message", .string(message))]
        if let stderr { members.append(("stderr", .string(stderr))) }
        members.append(("duration_ms", .number(durationMs)))
        return .object(members)
    }
}

/// The payload of a `call.started` event: the full request an agent sends its model, committed
/// before the model sees it. `request` is stored as the agent built it (its shape is Agents'
/// `ModelRequest.json`); `summary` reads the members the transcript and the trace show. Pure.
public struct CallStarted: RecordedEvent {
    public static let kind = EventKind.callStarted

    /// The agent's id, `role/job`.
    public var agent: String
    /// How many times this call re-asks after an unusable reply (0 for the first ask).
    public var reask: Int
    public var request: JSON

    /// What a request says, for display: unknown or missing members are left out.
    public struct Summary: Sendable, Equatable {
        public struct Message: Sendable, Equatable {
            public var role: String
            public var content: String
            /// The tool calls of an assistant turn, as sent.
            public var toolCalls: JSON?
        }

        public var model: String?
        public var temperature: Double?
        /// The actor's tool turn the request belongs to (0 for the first).
        public var turn: Int
        public var messages: [Message]
    }

    public init(agent: String, reask: Int, request: JSON) {
        self.agent = agent
        self.reask = reask
        self.request = request
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        agent = try r.string("agent")
        reask = try r.optionalInt("reask") ?? 0
        request = try r.present("request")
    }

    public var json: JSON { .object([("agent", .string(agent)), ("reask", .int(reask)), ("request", request)]) }

    public var summary: Summary {
        Summary(
            model: request["model"]?.stringValue, temperature: request["temperature"]?.doubleValue,
            turn: request["turn"]?.intValue ?? 0,
            messages: (request["messages"]?.arrayValue ?? []).map { m in
                let calls = m["tool_calls"].flatMap { $0.isNull ? nil : $0 }
                return Summary.Message(role: m["role"]?.stringValue ?? "?", content: m["content"]?.stringValue ?? "", toolCalls: calls)
            })
    }
}

/// The payload of a `call.restarted` event: the daemon stopped while the call was in flight; it is
/// made again. Pure.
public struct CallRestarted: RecordedEvent {
    public static let kind = EventKind.callRestarted

    public var reason: String

    public init(reason: String = "the daemon stopped before this call completed; it is made again") {
        self.reason = reason
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        reason = try PayloadReader(Self.kind, payload).string("reason")
    }

    public var json: JSON { .object([("reason", .string(reason))]) }
}
