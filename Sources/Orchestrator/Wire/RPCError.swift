import Store

/// A JSON-RPC 2.0 error as sent on the wire: a code, a one-line message, optional data.
///
/// Codes -32700…-32600 are JSON-RPC's own; -32000…-32099 are agentd's (see docs/protocol.md).
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let message: String
    public let data: JSON?

    /// Every error code agentd sends. docs/protocol.md's error table lists exactly these (a test
    /// checks it): a new code is added here and there together.
    public enum Code: Int, Sendable, CaseIterable {
        case parse = -32700
        case invalidRequest = -32600
        case methodNotFound = -32601
        case invalidParams = -32602
        case internalError = -32603
        case frameTooLarge = -32001
        case jobNotFound = -32002
        case invalidPlan = -32003
        case shuttingDown = -32004
        case storage = -32005
        case workspaceInUse = -32006
        case tooManyClients = -32007
        case permissionDenied = -32008
        case tooManyQueued = -32009
        case storageUnavailable = -32010
        case workspaceRefused = -32011
        case replyBacklog = -32012
        case gateNotWaiting = -32013
    }

    public init(code: Int, message: String, data: JSON? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    init(_ code: Code, _ message: String, data: JSON? = nil) {
        self.init(code: code.rawValue, message: message, data: data)
    }

    public var description: String { message }

    public static func parse(_ message: String) -> RPCError { RPCError(.parse, "parse error: \(message)") }
    public static func invalidRequest(_ message: String) -> RPCError { RPCError(.invalidRequest, "invalid request: \(message)") }
    public static func methodNotFound(_ method: String) -> RPCError { RPCError(.methodNotFound, "method not found: \(method)") }
    public static func invalidParams(_ message: String) -> RPCError { RPCError(.invalidParams, "invalid params: \(message)") }
    public static func internalError(_ message: String) -> RPCError { RPCError(.internalError, "internal error: \(message)") }
    public static func frameTooLarge(limit: Int) -> RPCError {
        RPCError(.frameTooLarge, "frame too large: a request line may be at most \(limit) bytes")
    }
    public static func jobNotFound(_ id: String) -> RPCError { RPCError(.jobNotFound, "no such job: \(id)") }
    public static func invalidPlan(_ message: String) -> RPCError { RPCError(.invalidPlan, "invalid plan: \(message)") }
    /// A client refused by the trust model (`TrustPolicy`); the message names the rule.
    public static func permissionDenied(_ message: String) -> RPCError { RPCError(.permissionDenied, message) }
    public static var shuttingDown: RPCError { RPCError(.shuttingDown, "the daemon is shutting down and accepts no new jobs") }
    public static func storage(_ message: String) -> RPCError { RPCError(.storage, "storage error: \(message)") }
    /// `job.submit` while another job (`job`, in state `status`) works in the same workspace
    /// `directory`, and not both plans declare `workspace_shared: true`.
    public static func workspaceInUse(_ directory: String, job: String, status: JobStatus?) -> RPCError {
        let state = status.map { " (\($0.rawValue))" } ?? ""
        return RPCError(
            .workspaceInUse,
            "workspace in use: job \(job)\(state) works in '\(directory)'; two jobs share a workspace only when both plans declare 'workspace_shared: true'",
            data: .object([("job", .string(job)), ("workspace", .string(directory))]))
    }
    /// `job.submit` of a job whose workspace may not be used at all (it contains the daemon's files).
    public static func workspaceRefused(_ message: String) -> RPCError {
        RPCError(.workspaceRefused, "workspace refused: \(message)")
    }
    /// `gate.decide` for a gate that does not wait for a decision (decided already, never asked) or
    /// naming another request than the one the gate holds.
    public static func gateNotWaiting(_ message: String) -> RPCError {
        RPCError(.gateNotWaiting, "gate not waiting: \(message)")
    }
    /// The store takes no writes (a full disk, an I/O error, a read-only database): nothing new can be
    /// recorded, so `what` is refused until a probe write commits again.
    public static func storageUnavailable(_ fault: StorageFault, refusing what: String = "new jobs") -> RPCError {
        RPCError(.storageUnavailable, "storage unavailable: \(fault.cause); agentd accepts no \(what) until writes succeed again")
    }

    /// A submission over a queue limit: `limit` names the setting, `max` its value, `queued` the jobs
    /// queued now (the client's, when `client` is set).
    public static func tooManyQueued(limit: String, max: Int, queued: Int, client: UInt32?) -> RPCError {
        let whose = client.map { "client uid \($0) has \(queued) jobs queued" } ?? "\(queued) jobs are queued"
        var data: [(String, JSON)] = [("limit", .string(limit)), ("max", .int(max)), ("queued", .int(queued))]
        if let client { data.append(("uid", .int(Int(client)))) }
        return RPCError(
            .tooManyQueued, "too many queued jobs: \(whose), the limit is \(max) (\(limit)); try again when some have started",
            data: .object(data))
    }

    /// The client left more than `limit` bytes of output unread: its last line before the daemon closes
    /// the connection.
    public static func replyBacklog(limit: Int) -> RPCError {
        RPCError(
            .replyBacklog,
            "reply backlog: more than \(limit) bytes of output wait for this client to read them; the daemon closes the connection (read replies as they come)"
        )
    }

    /// Refused at accept: as many connections are open as allowed.
    public static var tooManyClients: RPCError { RPCError(.tooManyClients, "too many clients connected") }

    public var json: JSON {
        var members: [(String, JSON)] = [("code", .int(code)), ("message", .string(message))]
        if let data { members.append(("data", data)) }
        return .object(members)
    }
}
