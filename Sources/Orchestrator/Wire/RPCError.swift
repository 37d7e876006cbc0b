import Store

/// A JSON-RPC 2.0 error as sent on the wire: a code, a one-line message, optional data.
///
/// Codes -32700…-32600 are JSON-RPC's own; -32000…-32099 are agentd's (see docs/protocol.md).
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let message: String
    public let data: JSON?

    public init(code: Int, message: String, data: JSON? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { message }

    public static func parse(_ message: String) -> RPCError { RPCError(code: -32700, message: "parse error: \(message)") }
    public static func invalidRequest(_ message: String) -> RPCError { RPCError(code: -32600, message: "invalid request: \(message)") }
    public static func methodNotFound(_ method: String) -> RPCError { RPCError(code: -32601, message: "method not found: \(method)") }
    public static func invalidParams(_ message: String) -> RPCError { RPCError(code: -32602, message: "invalid params: \(message)") }
    public static func internalError(_ message: String) -> RPCError { RPCError(code: -32603, message: "internal error: \(message)") }
    public static func frameTooLarge(limit: Int) -> RPCError {
        RPCError(code: -32001, message: "frame too large: a request line may be at most \(limit) bytes")
    }
    public static func jobNotFound(_ id: String) -> RPCError { RPCError(code: -32002, message: "no such job: \(id)") }
    public static func invalidPlan(_ message: String) -> RPCError { RPCError(code: -32003, message: "invalid plan: \(message)") }
    /// A client refused by the trust model (`TrustPolicy`); the message names the rule.
    public static func permissionDenied(_ message: String) -> RPCError { RPCError(code: -32008, message: message) }
    public static var shuttingDown: RPCError { RPCError(code: -32004, message: "the daemon is shutting down and accepts no new jobs") }
    public static func storage(_ message: String) -> RPCError { RPCError(code: -32005, message: "storage error: \(message)") }
    /// `job.submit` while another job (`job`, in state `status`) works in the same workspace
    /// `directory`, and not both plans declare `workspace_shared: true`.
    public static func workspaceInUse(_ directory: String, job: String, status: JobStatus?) -> RPCError {
        let state = status.map { " (\($0.rawValue))" } ?? ""
        return RPCError(
            code: -32006,
            message:
                "workspace in use: job \(job)\(state) works in '\(directory)'; two jobs share a workspace only when both plans declare 'workspace_shared: true'",
            data: .object([("job", .string(job)), ("workspace", .string(directory))]))
    }
    /// `job.submit` of a job whose workspace may not be used at all (it contains the daemon's files).
    public static func workspaceRefused(_ message: String) -> RPCError {
        RPCError(code: -32011, message: "workspace refused: \(message)")
    }
    /// The store takes no writes (a full disk, an I/O error, a read-only database): nothing new can be
    /// recorded, so `what` is refused until a probe write commits again.
    public static func storageUnavailable(_ fault: StorageFault, refusing what: String = "new jobs") -> RPCError {
        RPCError(code: -32010, message: "storage unavailable: \(fault.cause); agentd accepts no \(what) until writes succeed again")
    }

    /// A submission over a queue limit: `limit` names the setting, `max` its value, `queued` the jobs
    /// queued now (the client's, when `client` is set).
    public static func tooManyQueued(limit: String, max: Int, queued: Int, client: UInt32?) -> RPCError {
        let whose = client.map { "client uid \($0) has \(queued) jobs queued" } ?? "\(queued) jobs are queued"
        var data: [(String, JSON)] = [("limit", .string(limit)), ("max", .int(max)), ("queued", .int(queued))]
        if let client { data.append(("uid", .int(Int(client)))) }
        return RPCError(
            code: -32009, message: "too many queued jobs: \(whose), the limit is \(max) (\(limit)); try again when some have started",
            data: .object(data))
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("code", .int(code)), ("message", .string(message))]
        if let data { members.append(("data", data)) }
        return .object(members)
    }
}
