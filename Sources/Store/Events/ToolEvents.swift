/// The payload of a `tool.started` event: a tool call an actor's model made, committed before the
/// tool runs. A call that could be checked carries what it does (`argv`; `path`, with `bytes` for a
/// write); one that could not carries its raw `arguments` and why it is `invalid`. Pure.
public struct ToolStarted: RecordedEvent {
    public static let kind = EventKind.toolStarted

    public var tool: String
    /// The model's id for the call, echoed in the result's message.
    public var toolCallID: String
    /// `JOBID/CALL/INDEX`, exported to commands as `AGENTD_TOOL_CALL_ID`.
    public var idempotencyKey: String?
    public var argv: [String]?
    public var path: String?
    /// The size of the content to write.
    public var bytes: Int?
    /// The arguments as the model sent them, when they could not be checked.
    public var arguments: String?
    /// Why the call could not be checked; it does not run.
    public var invalid: String?

    public init(
        tool: String, toolCallID: String, idempotencyKey: String?, argv: [String]? = nil, path: String? = nil, bytes: Int? = nil,
        arguments: String? = nil, invalid: String? = nil
    ) {
        self.tool = tool
        self.toolCallID = toolCallID
        self.idempotencyKey = idempotencyKey
        self.argv = argv
        self.path = path
        self.bytes = bytes
        self.arguments = arguments
        self.invalid = invalid
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        tool = try r.string("tool")
        toolCallID = try r.string("tool_call_id")
        idempotencyKey = try r.optionalString("idempotency_key")
        argv = try r.optionalStrings("argv")
        path = try r.optionalString("path")
        bytes = try r.optionalInt("bytes")
        arguments = try r.optionalString("arguments")
        invalid = try r.optionalString("invalid")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("tool", .string(tool)), ("tool_call_id", .string(toolCallID))]
        if let idempotencyKey { members.append(("idempotency_key", .string(idempotencyKey))) }
        if let argv { members.append(("argv", .array(argv.map(JSON.string)))) }
        if let path { members.append(("path", .string(path))) }
        if let bytes { members.append(("bytes", .int(bytes))) }
        if let arguments { members.append(("arguments", .string(arguments))) }
        if let invalid { members.append(("invalid", .string(invalid))) }
        return .object(members)
    }
}

/// The payload of a `tool.completed` event: a tool's result, committed before the model hears of it.
/// `result` is stored exactly as the model got it (replay hands it back byte for byte); `outcome`
/// reads its members. Pure.
public struct ToolCompleted: RecordedEvent {
    public static let kind = EventKind.toolCompleted

    public var tool: String
    public var toolCallID: String
    /// Whether the tool did what was asked (exit status 0, the file read or written).
    public var ok: Bool
    public var result: JSON
    public var durationMs: Double

    /// What a result says; members a tool does not write are nil.
    public struct Outcome: Sendable, Equatable {
        public var exitStatus: Int?
        public var signal: Int?
        public var timedOut: Bool
        /// Why the tool did not do what was asked (a refusal, a kill, a bad path).
        public var error: String?
        public var stdout: String?
        public var stderr: String?
        /// A file's content (`read_file`).
        public var content: String?
        /// What was cut to fit the output budget, and why.
        public var truncation: String?
        public var bytesWritten: Int?
    }

    public init(tool: String, toolCallID: String, ok: Bool, result: JSON, durationMs: Double) {
        self.tool = tool
        self.toolCallID = toolCallID
        self.ok = ok
        self.result = result
        self.durationMs = durationMs
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        tool = try r.string("tool")
        toolCallID = try r.string("tool_call_id")
        ok = try r.bool("ok")
        result = try r.present("result")
        durationMs = try r.double("duration_ms")
    }

    public var json: JSON {
        .object([
            ("tool", .string(tool)), ("tool_call_id", .string(toolCallID)), ("ok", .bool(ok)), ("result", result),
            ("duration_ms", .number(durationMs)),
        ])
    }

    /// The result's members. A result recorded as encoded text is read as the object it encodes.
    public var outcome: Outcome {
        var result = self.result
        if let text = result.stringValue, let parsed = try? JSON.parse(text) { result = parsed }
        return Outcome(
            exitStatus: result["exit_status"]?.intValue, signal: result["signal"]?.intValue,
            timedOut: result["timed_out"]?.boolValue ?? false, error: result["error"]?.stringValue,
            stdout: result["stdout"]?.stringValue, stderr: result["stderr"]?.stringValue, content: result["content"]?.stringValue,
            truncation: result["truncation"]?.stringValue, bytesWritten: result["bytes_written"]?.intValue)
    }
}

/// The payload of a `tool.restarted` event: the daemon stopped while the tool ran; it runs again
/// under the same idempotency key. Pure.
public struct ToolRestarted: RecordedEvent {
    public static let kind = EventKind.toolRestarted

    public var reason: String
    public var idempotencyKey: String?

    public init(reason: String = "the daemon stopped before this tool completed; it runs again", idempotencyKey: String?) {
        self.reason = reason
        self.idempotencyKey = idempotencyKey
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        reason = try r.string("reason")
        idempotencyKey = try r.optionalString("idempotency_key")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("reason", .string(reason))]
        if let idempotencyKey { members.append(("idempotency_key", .string(idempotencyKey))) }
        return .object(members)
    }
}
