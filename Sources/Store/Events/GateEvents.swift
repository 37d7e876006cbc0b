import Crypto

/// The payload of a `gate.requested` event (record format 3 on): a tool call the actor proposed
/// matched one of the plan's gates and waits for review. Committed before anyone is asked; the
/// call runs only after a `gate.decided` approving this request. Pure.
public struct GateRequested: RecordedEvent {
    public static let kind = EventKind.gateRequested

    /// The gate's id: the tool call's call id (`c7.0`), unique in its job.
    public var gate: String
    /// The index of the plan's gate rule that matched.
    public var rule: Int
    /// `critic`, `human` or `critic_then_human`.
    public var review: String
    public var tool: String
    /// The proposed arguments, exactly as the model sent them.
    public var arguments: String
    /// SHA-256 of the tool's name, a 0x1F byte and the arguments: what a decision must name.
    public var requestSHA256: String

    public init(gate: String, rule: Int, review: String, tool: String, arguments: String, requestSHA256: String) {
        self.gate = gate
        self.rule = rule
        self.review = review
        self.tool = tool
        self.arguments = arguments
        self.requestSHA256 = requestSHA256
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        gate = try r.string("gate")
        rule = try r.int("rule")
        review = try r.string("review")
        tool = try r.string("tool")
        arguments = try r.string("arguments")
        requestSHA256 = try r.string("request_sha256")
    }

    /// The request's digest: SHA-256 of `tool`, the byte 0x1F and `arguments`, as lowercase hex.
    public static func requestSHA256(tool: String, arguments: String) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(tool.utf8) + [0x1F] + Array(arguments.utf8))
        return ChainHash(hasher.finalize()).hex
    }

    public var json: JSON {
        .object([
            ("gate", .string(gate)), ("rule", .int(rule)), ("review", .string(review)), ("tool", .string(tool)),
            ("arguments", .string(arguments)), ("request_sha256", .string(requestSHA256)),
        ])
    }
}

/// The payload of a `gate.decided` event: the review of one gate's request, committed before the
/// tool runs (or is refused). Pure.
public struct GateDecided: RecordedEvent {
    public static let kind = EventKind.gateDecided

    public enum Decision: String, Sendable {
        case approved, rejected
        /// The person did not decide within `policy.approval_timeout`, and the policy fails the job.
        case expired
    }

    public enum Reviewer: String, Sendable {
        case critic, person, timeout
    }

    public var gate: String
    public var decision: Decision
    public var by: Reviewer
    /// The request it decides: the `request_sha256` of the `gate.requested`.
    public var requestSHA256: String
    /// The critic's call id, when the critic decided.
    public var call: String?
    /// The deciding person's uid and user name (from the socket's peer credentials).
    public var uid: Int?
    public var user: String?
    /// The critic's feedback or the person's note or reason.
    public var note: String?
    /// Arguments a person edited: what runs instead of the proposed ones.
    public var editedArguments: String?
    /// From the request to the decision.
    public var waitedMs: Double

    public init(
        gate: String, decision: Decision, by: Reviewer, requestSHA256: String, call: String? = nil, uid: Int? = nil, user: String? = nil,
        note: String? = nil, editedArguments: String? = nil, waitedMs: Double
    ) {
        self.gate = gate
        self.decision = decision
        self.by = by
        self.requestSHA256 = requestSHA256
        self.call = call
        self.uid = uid
        self.user = user
        self.note = note
        self.editedArguments = editedArguments
        self.waitedMs = waitedMs
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        gate = try r.string("gate")
        decision = try r.required("decision", "approved, rejected or expired") { $0.stringValue.flatMap(Decision.init(rawValue:)) }
        by = try r.required("by", "critic, person or timeout") { $0.stringValue.flatMap(Reviewer.init(rawValue:)) }
        requestSHA256 = try r.string("request_sha256")
        call = try r.optionalString("call")
        uid = try r.optionalInt("uid")
        user = try r.optionalString("user")
        note = try r.optionalString("note")
        editedArguments = try r.optionalString("edited_arguments")
        waitedMs = try r.double("waited_ms")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [
            ("gate", .string(gate)), ("decision", .string(decision.rawValue)), ("by", .string(by.rawValue)),
            ("request_sha256", .string(requestSHA256)),
        ]
        if let call { members.append(("call", .string(call))) }
        if let uid { members.append(("uid", .int(uid))) }
        if let user { members.append(("user", .string(user))) }
        if let note { members.append(("note", .string(note))) }
        if let editedArguments { members.append(("edited_arguments", .string(editedArguments))) }
        members.append(("waited_ms", .number(waitedMs)))
        return .object(members)
    }
}

/// The payload of a `gate.refused` event: someone who may not decide this job's gates tried to.
/// Written by the engine, not the runner. Pure.
public struct GateRefused: RecordedEvent {
    public static let kind = EventKind.gateRefused

    public var gate: String
    public var uid: Int
    public var user: String?
    public var reason: String

    public init(gate: String, uid: Int, user: String?, reason: String) {
        self.gate = gate
        self.uid = uid
        self.user = user
        self.reason = reason
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        gate = try r.string("gate")
        uid = try r.int("uid")
        user = try r.optionalString("user")
        reason = try r.string("reason")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("gate", .string(gate)), ("uid", .int(uid))]
        if let user { members.append(("user", .string(user))) }
        members.append(("reason", .string(reason)))
        return .object(members)
    }
}
