import Store
import Transcript

/// The params of one method as a typed value: the server decodes them from a request (throwing
/// `-32602` errors that name the field) and clients encode them. Pure values; any thread.
public protocol MethodParams: Sendable, Equatable {
    /// Decodes and checks request params; throws `.invalidParams` naming the field.
    init(decoding params: Params) throws(RPCError)
    /// The params object to send, absent members left out.
    var json: JSON { get }
}

/// `job.submit`: exactly one of `planPath` (absolute) or `planText`.
public struct SubmitParams: MethodParams {
    public var planPath: String?
    public var planText: String?
    public var planName: String?
    public var baseDirectory: String?
    public var goal: String?
    public var inputs: JSON
    public var cwd: String?
    public var idempotencyKey: String?

    public init(
        planPath: String? = nil, planText: String? = nil, planName: String? = nil, baseDirectory: String? = nil,
        goal: String? = nil, inputs: JSON = .object([]), cwd: String? = nil, idempotencyKey: String? = nil
    ) {
        self.planPath = planPath
        self.planText = planText
        self.planName = planName
        self.baseDirectory = baseDirectory
        self.goal = goal
        self.inputs = inputs
        self.cwd = cwd
        self.idempotencyKey = idempotencyKey
    }

    public init(decoding p: Params) throws(RPCError) {
        planPath = try p.string("plan_path")
        planText = try p.string("plan")
        guard (planPath == nil) != (planText == nil) else {
            throw .invalidParams("give exactly one of 'plan_path' (an absolute path) or 'plan' (the plan's text)")
        }
        if let planPath, !planPath.hasPrefix("/") { throw .invalidParams("'plan_path' must be absolute, got \(planPath)") }
        inputs = p.raw["inputs"] ?? .object([])
        guard case .object = inputs else { throw .invalidParams("'inputs' must be an object") }
        planName = try p.string("plan_name")
        baseDirectory = try p.string("base_dir")
        goal = try p.string("goal")
        cwd = try p.string("cwd")
        idempotencyKey = try p.string("idempotency_key")
    }

    public var json: JSON {
        var members: [(String, JSON)] = []
        if let planPath { members.append(("plan_path", .string(planPath))) }
        if let planText { members.append(("plan", .string(planText))) }
        if let planName { members.append(("plan_name", .string(planName))) }
        if let baseDirectory { members.append(("base_dir", .string(baseDirectory))) }
        if let goal { members.append(("goal", .string(goal))) }
        members.append(("inputs", inputs))
        if let cwd { members.append(("cwd", .string(cwd))) }
        if let idempotencyKey { members.append(("idempotency_key", .string(idempotencyKey))) }
        return .object(members)
    }
}

/// `job.get`, `job.cancel`, `job.wait`: the job id.
public struct JobIDParams: MethodParams {
    public var id: String

    public init(id: String) {
        self.id = id
    }

    public init(decoding p: Params) throws(RPCError) {
        id = try p.jobID()
    }

    public var json: JSON { ["id": .string(id)] }
}

/// `job.list`: the newest `limit` jobs, of one status when `status` is set.
public struct ListParams: MethodParams {
    public var status: JobStatus?
    public var limit: Int

    public init(status: JobStatus? = nil, limit: Int = 100) {
        self.status = status
        self.limit = limit
    }

    public init(decoding p: Params) throws(RPCError) {
        if let word = try p.string("status") {
            guard let s = JobStatus(rawValue: word) else {
                throw .invalidParams("unknown status '\(word)' (one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            status = s
        }
        limit = try p.int("limit", default: 100, range: 1...100_000)
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("limit", .int(limit))]
        if let status { members.append(("status", .string(status.rawValue))) }
        return .object(members)
    }
}

/// `job.watch`: the job's events after `since`, then its end.
public struct WatchParams: MethodParams {
    public var id: String
    public var since: Int

    public init(id: String, since: Int = 0) {
        self.id = id
        self.since = since
    }

    public init(decoding p: Params) throws(RPCError) {
        id = try p.jobID()
        since = try p.int("since", default: 0, range: 0...Int(Int32.max))
    }

    public var json: JSON { .object([("id", .string(id)), ("since", .int(since))]) }
}

/// `job.transcript`: a page of at most `limit` events after `afterSeq`; or, with `format`, the whole
/// job rendered as `agentd transcript --format` renders it.
public struct TranscriptParams: MethodParams {
    public var id: String
    public var afterSeq: Int
    public var limit: Int
    /// A rendering (`text`, `md`, `html`, `jsonl`) of the whole job instead of a page of events.
    public var format: TranscriptFormat?

    public init(id: String, afterSeq: Int = 0, limit: Int = 10_000, format: TranscriptFormat? = nil) {
        self.id = id
        self.afterSeq = afterSeq
        self.limit = limit
        self.format = format
    }

    public init(decoding p: Params) throws(RPCError) {
        id = try p.jobID()
        afterSeq = try p.int("after_seq", default: 0, range: 0...Int(Int32.max))
        limit = try p.int("limit", default: 10_000, range: 1...100_000)
        if let word = try p.string("format") {
            guard let f = TranscriptFormat(rawValue: word) else {
                throw .invalidParams(
                    "unknown format '\(word)' (one of \(TranscriptFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            for paging in ["after_seq", "limit"] where p.raw[paging].map({ !$0.isNull }) == true {
                throw .invalidParams("'\(paging)' pages the events; with 'format' the whole job is rendered, so leave it out")
            }
            format = f
        }
    }

    public var json: JSON {
        if let format { return .object([("id", .string(id)), ("format", .string(format.rawValue))]) }
        return .object([("id", .string(id)), ("after_seq", .int(afterSeq)), ("limit", .int(limit))])
    }
}

/// `job.prune`: finished jobs in `statuses` that finished before `before` (Unix ms).
public struct PruneParams: MethodParams {
    public var before: Int
    public var statuses: [JobStatus]
    public var dryRun: Bool

    public init(before: Int, statuses: [JobStatus] = JobStatus.terminal, dryRun: Bool = false) {
        self.before = before
        self.statuses = statuses
        self.dryRun = dryRun
    }

    public init(decoding p: Params) throws(RPCError) {
        guard p.raw["before"].map({ !$0.isNull }) == true else {
            throw .invalidParams("'before' (Unix ms: jobs that finished before it are removed) is required")
        }
        before = try p.int("before", default: 0, range: 0...Int(Int64.max / 2))
        statuses = JobStatus.terminal
        if let given = p.raw["statuses"], !given.isNull {
            guard case let .array(items) = given, !items.isEmpty else {
                throw .invalidParams("'statuses' must be a non-empty array of succeeded, failed, cancelled")
            }
            statuses = []
            for item in items {
                guard let word = item.stringValue, let status = JobStatus(rawValue: word), status.isTerminal else {
                    throw .invalidParams(
                        "'statuses' may hold only succeeded, failed, cancelled (queued and running jobs are never pruned), got \(item.encoded)"
                    )
                }
                if !statuses.contains(status) { statuses.append(status) }
            }
        }
        dryRun = try p.bool("dry_run", default: false)
    }

    public var json: JSON {
        .object([
            ("before", .int(before)), ("statuses", .array(statuses.map { .string($0.rawValue) })), ("dry_run", .bool(dryRun)),
        ])
    }
}
