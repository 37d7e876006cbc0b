import Store

/// `audit.verify`: one job's hash chain, or every job's when `job` is nil.
public struct VerifyParams: MethodParams {
    public var job: String?

    public init(job: String? = nil) {
        self.job = job
    }

    public init(decoding p: Params) throws(RPCError) {
        job = try p.string("job")
        if job?.isEmpty == true { throw .invalidParams("'job' must be a job id (leave it out to verify every job)") }
    }

    public var json: JSON { job.map { ["job": .string($0)] } ?? .object([]) }
}

/// `audit.search`: a full-text query over every event's text, with `agentd audit search`'s filters.
public struct SearchParams: MethodParams {
    public static let roles = ["planner", "actor", "critic", "verifier"]

    public var query: String
    public var job: String?
    public var role: String?
    public var kind: String?
    /// Only events recorded at or after this Unix time (ms).
    public var since: Int64?
    public var limit: Int
    public var order: SearchQuery.Order

    public init(
        query: String, job: String? = nil, role: String? = nil, kind: String? = nil, since: Int64? = nil, limit: Int = 20,
        order: SearchQuery.Order = .newest
    ) {
        self.query = query
        self.job = job
        self.role = role
        self.kind = kind
        self.since = since
        self.limit = limit
        self.order = order
    }

    public init(decoding p: Params) throws(RPCError) {
        guard let query = try p.string("query"), !query.isEmpty else {
            throw .invalidParams("'query' (an FTS5 query) is required")
        }
        self.query = query
        job = try p.string("job")
        role = try p.string("role")
        if let role, !Self.roles.contains(role) {
            throw .invalidParams("'role' must be one of \(Self.roles.joined(separator: ", ")), got '\(role)'")
        }
        kind = try p.string("kind")
        if p.raw["since"].map({ !$0.isNull }) == true {
            since = Int64(try p.int("since", default: 0, range: 0...Int(Int64.max / 2)))
        }
        limit = try p.int("limit", default: 20, range: 1...10_000)
        let word = try p.string("order") ?? SearchQuery.Order.newest.rawValue
        guard let order = SearchQuery.Order(rawValue: word) else {
            throw .invalidParams("'order' must be newest or rank, got '\(word)'")
        }
        self.order = order
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("query", .string(query))]
        if let job { members.append(("job", .string(job))) }
        if let role { members.append(("role", .string(role))) }
        if let kind { members.append(("kind", .string(kind))) }
        if let since { members.append(("since", .int(Int(since)))) }
        members.append(("limit", .int(limit)))
        members.append(("order", .string(order.rawValue)))
        return .object(members)
    }

    /// The store's query.
    public var searchQuery: SearchQuery {
        SearchQuery(text: query, jobID: job, role: role, kind: kind, since: since, limit: limit, order: order)
    }
}

/// `stats.get`: `agentd stats`'s figures over the jobs of `plan` created at or after `since` (Unix ms).
public struct StatsParams: MethodParams {
    public var plan: String?
    public var since: Int64?

    public init(plan: String? = nil, since: Int64? = nil) {
        self.plan = plan
        self.since = since
    }

    public init(decoding p: Params) throws(RPCError) {
        plan = try p.string("plan")
        if p.raw["since"].map({ !$0.isNull }) == true {
            since = Int64(try p.int("since", default: 0, range: 0...Int(Int64.max / 2)))
        }
    }

    public var json: JSON {
        var members: [(String, JSON)] = []
        if let plan { members.append(("plan", .string(plan))) }
        if let since { members.append(("since", .int(Int(since)))) }
        return .object(members)
    }

    public var filter: CriticStats.Filter { CriticStats.Filter(plan: plan, sinceMillis: since) }
}

/// `daemon.backup`: a copy of the database, into the daemon's backup directory unless the owner
/// names an absolute `path`.
public struct BackupParams: MethodParams {
    public var path: String?

    public init(path: String? = nil) {
        self.path = path
    }

    public init(decoding p: Params) throws(RPCError) {
        path = try p.string("path")
        if let path, !path.hasPrefix("/") { throw .invalidParams("'path' must be absolute, got \(path)") }
    }

    public var json: JSON { path.map { ["path": .string($0)] } ?? .object([]) }
}
