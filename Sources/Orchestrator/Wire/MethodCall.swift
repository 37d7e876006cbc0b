import Store

/// One request as a typed value: the method with its params. The server decodes each request into
/// one (throwing `-32602` errors that name the field) and answers it; clients build one and send it,
/// so a method cannot be sent with another method's params. Pure value; any thread.
public enum MethodCall: Sendable, Equatable {
    case submit(SubmitParams)
    case get(JobIDParams)
    case list(ListParams)
    case cancel(JobIDParams)
    case wait(JobIDParams)
    case watch(WatchParams)
    case transcript(TranscriptParams)
    case prune(PruneParams)
    case retry(RetryParams)
    case verify(VerifyParams)
    case search(SearchParams)
    case stats(StatsParams)
    case status
    case gates
    case decide(GateDecideParams)
    case backup(BackupParams)

    /// Decodes `params` as `method`'s. Throws `.invalidParams` naming the field, for every method when
    /// a string in `params` holds U+0000.
    public init(_ method: RPCMethod, _ params: Params) throws(RPCError) {
        if let field = params.fieldWithNUL {
            throw .invalidParams("'\(field)' contains U+0000 (a NUL character), which agentd refuses")
        }
        switch method {
        case .jobSubmit: self = .submit(try SubmitParams(decoding: params))
        case .jobGet: self = .get(try JobIDParams(decoding: params))
        case .jobList: self = .list(try ListParams(decoding: params))
        case .jobCancel: self = .cancel(try JobIDParams(decoding: params))
        case .jobWait: self = .wait(try JobIDParams(decoding: params))
        case .jobWatch: self = .watch(try WatchParams(decoding: params))
        case .jobTranscript: self = .transcript(try TranscriptParams(decoding: params))
        case .jobPrune: self = .prune(try PruneParams(decoding: params))
        case .jobRetry: self = .retry(try RetryParams(decoding: params))
        case .auditVerify: self = .verify(try VerifyParams(decoding: params))
        case .auditSearch: self = .search(try SearchParams(decoding: params))
        case .statsGet: self = .stats(try StatsParams(decoding: params))
        case .daemonBackup: self = .backup(try BackupParams(decoding: params))
        // Any params are ignored (docs/protocol.md).
        case .daemonStatus: self = .status
        case .gateList: self = .gates
        case .gateDecide: self = .decide(try GateDecideParams(decoding: params))
        }
    }

    public var method: RPCMethod {
        switch self {
        case .submit: return .jobSubmit
        case .get: return .jobGet
        case .list: return .jobList
        case .cancel: return .jobCancel
        case .wait: return .jobWait
        case .watch: return .jobWatch
        case .transcript: return .jobTranscript
        case .prune: return .jobPrune
        case .retry: return .jobRetry
        case .verify: return .auditVerify
        case .search: return .auditSearch
        case .stats: return .statsGet
        case .status: return .daemonStatus
        case .gates: return .gateList
        case .decide: return .gateDecide
        case .backup: return .daemonBackup
        }
    }

    /// The params object to send.
    public var params: JSON {
        switch self {
        case .submit(let p): return p.json
        case .get(let p), .cancel(let p), .wait(let p): return p.json
        case .list(let p): return p.json
        case .watch(let p): return p.json
        case .transcript(let p): return p.json
        case .prune(let p): return p.json
        case .status, .gates: return .object([])
        case .decide(let p): return p.json
        case .retry(let p): return p.json
        case .verify(let p): return p.json
        case .search(let p): return p.json
        case .stats(let p): return p.json
        case .backup(let p): return p.json
        }
    }

    /// The whole JSON-RPC request for `call`, with `id` (for clients that write frames themselves).
    public func request(id: JSON) -> JSON {
        .object([("jsonrpc", "2.0"), ("id", id), ("method", .string(method.rawValue)), ("params", params)])
    }
}
