import Store

/// `gate.decide`: a person's decision on one waiting gate, bound to the request it holds.
public struct GateDecideParams: MethodParams {
    public var job: String
    public var gate: String
    /// The `request_sha256` of the gate's `gate.requested`: a decision for another request (a
    /// stale or replayed one) is refused.
    public var requestSHA256: String
    public var approve: Bool
    /// Why: a note on an approval, the reason of a rejection (required for a rejection).
    public var note: String?
    /// On an approval: arguments that run instead of the proposed ones (a JSON object, as text).
    public var arguments: String?

    public init(job: String, gate: String, requestSHA256: String, approve: Bool, note: String? = nil, arguments: String? = nil) {
        self.job = job
        self.gate = gate
        self.requestSHA256 = requestSHA256
        self.approve = approve
        self.note = note
        self.arguments = arguments
    }

    public init(decoding p: Params) throws(RPCError) {
        job = try p.jobID()
        guard let gate = try p.string("gate"), !gate.isEmpty else { throw .invalidParams("'gate' (the gate's id, e.g. c3.0) is required") }
        self.gate = gate
        guard let digest = try p.string("request_sha256"), !digest.isEmpty else {
            throw .invalidParams("'request_sha256' (the gate's request digest, from gate.list) is required")
        }
        requestSHA256 = digest
        guard let decision = try p.string("decision") else { throw .invalidParams("'decision' (approve or reject) is required") }
        switch decision {
        case "approve": approve = true
        case "reject": approve = false
        default: throw .invalidParams("'decision' must be approve or reject, not '\(decision)'")
        }
        note = try p.string("note")
        arguments = try p.string("arguments")
        if !approve, note?.isEmpty ?? true { throw .invalidParams("a rejection needs a 'note' saying why (the actor reads it)") }
        if let arguments {
            guard !approve else {
                guard case .object? = try? JSON.parse(arguments) else {
                    throw .invalidParams("'arguments' must be a JSON object (as text), the tool's arguments")
                }
                return
            }
            _ = arguments
            throw .invalidParams("'arguments' edits an approval; a rejection runs nothing")
        }
    }

    public var json: JSON {
        var members: [(String, JSON)] = [
            ("id", .string(job)), ("gate", .string(gate)), ("request_sha256", .string(requestSHA256)),
            ("decision", .string(approve ? "approve" : "reject")),
        ]
        if let note { members.append(("note", .string(note))) }
        if let arguments { members.append(("arguments", .string(arguments))) }
        return .object(members)
    }
}

/// A gate waiting for a person, as `gate.list` lists it. Pure value; any thread.
public struct WaitingGateInfo: Sendable, Equatable {
    public var job: String
    public var plan: String
    public var goal: String
    public var gate: String
    public var step: Int?
    public var attempt: Int?
    public var tool: String
    public var arguments: String
    public var requestSHA256: String
    /// When it was requested (Unix ms).
    public var requestedAt: Int

    public init(
        job: String, plan: String, goal: String, gate: String, step: Int?, attempt: Int?, tool: String, arguments: String,
        requestSHA256: String, requestedAt: Int
    ) {
        self.job = job
        self.plan = plan
        self.goal = goal
        self.gate = gate
        self.step = step
        self.attempt = attempt
        self.tool = tool
        self.arguments = arguments
        self.requestSHA256 = requestSHA256
        self.requestedAt = requestedAt
    }

    /// Decodes one listed gate. Throws `WireShapeError` naming the member when the shape is wrong.
    public init(json: JSON) throws(WireShapeError) {
        func string(_ key: String) throws(WireShapeError) -> String {
            guard let s = json[key]?.stringValue else { throw WireShapeError("gate: '\(key)' must be a string") }
            return s
        }
        job = try string("job")
        plan = try string("plan")
        goal = try string("goal")
        gate = try string("gate")
        step = json["step"]?.intValue
        attempt = json["attempt"]?.intValue
        tool = try string("tool")
        arguments = try string("arguments")
        requestSHA256 = try string("request_sha256")
        guard let at = json["requested_at"]?.intValue else { throw WireShapeError("gate: 'requested_at' must be an integer") }
        requestedAt = at
    }

    public var json: JSON {
        .object([
            ("job", .string(job)), ("plan", .string(plan)), ("goal", .string(goal)), ("gate", .string(gate)),
            ("step", step.map(JSON.int) ?? .null), ("attempt", attempt.map(JSON.int) ?? .null), ("tool", .string(tool)),
            ("arguments", .string(arguments)), ("request_sha256", .string(requestSHA256)), ("requested_at", .int(requestedAt)),
        ])
    }
}
