import Store

/// `job.get`'s result: the job object, then `completed_calls` and `usage` per role (roles sorted)
/// and in total. The server encodes one from the store's figures, clients decode one. Pure value;
/// any thread.
public struct JobDetails: Sendable, Equatable {
    public var job: WireJob
    /// Each role's completed calls, tokens and cost, by role name.
    public var usage: [String: RoleUsage]

    public init(job: WireJob, usage: [String: RoleUsage]) {
        self.job = job
        self.usage = usage
    }

    /// Every role's figures added up; the cost is nil when no role has one.
    public var total: RoleUsage {
        var total = RoleUsage(calls: 0, inputTokens: 0, outputTokens: 0, costUSD: nil)
        for u in usage.values {
            total.calls += u.calls
            total.inputTokens += u.inputTokens
            total.outputTokens += u.outputTokens
            if let cost = u.costUSD { total.costUSD = (total.costUSD ?? 0) + cost }
        }
        return total
    }

    /// Decodes a result. Throws `WireShapeError` naming the member when the shape is wrong.
    public init(json: JSON) throws(WireShapeError) {
        job = try WireJob(json: json)
        guard case let .object(roles)? = json["usage"] else { throw WireShapeError("job: 'usage' must be an object") }
        var usage: [String: RoleUsage] = [:]
        for (role, figures) in roles where role != "total" {
            func int(_ key: String) throws(WireShapeError) -> Int {
                guard let n = figures[key]?.intValue else { throw WireShapeError("job: 'usage.\(role).\(key)' must be an integer") }
                return n
            }
            usage[role] = RoleUsage(
                calls: try int("calls"), inputTokens: try int("input_tokens"), outputTokens: try int("output_tokens"),
                costUSD: figures["cost_usd"]?.doubleValue)
        }
        self.usage = usage
    }

    public var json: JSON {
        let roles = usage.keys.sorted()
        return job.json
            .setting("completed_calls", .object(roles.map { ($0, .int(usage[$0]!.calls)) }))
            .setting("usage", .object(roles.map { ($0, Self.json(usage[$0]!)) } + [("total", Self.json(total))]))
    }

    /// A role's usage as `job.get` shows it; cost rounded to a millionth of a dollar.
    private static func json(_ u: RoleUsage) -> JSON {
        var members: [(String, JSON)] = [
            ("calls", .int(u.calls)), ("input_tokens", .int(u.inputTokens)), ("output_tokens", .int(u.outputTokens)),
        ]
        if let cost = u.costUSD { members.append(("cost_usd", .number((cost * 1e6).rounded() / 1e6))) }
        return .object(members)
    }
}
