import Store

/// `job.get`'s result: the job object, then `completed_calls` and `usage` per role (roles sorted)
/// and in total, then its retry links when it has any (`retry_of`, `from_step`, `reused_calls`;
/// `retries`). The server encodes one from the store's figures, clients decode one. Pure value;
/// any thread.
public struct JobDetails: Sendable, Equatable {
    public var job: WireJob
    /// Each role's completed calls, tokens and cost, by role name.
    public var usage: [String: RoleUsage]
    /// The job it retries and its retries (`RetryLinks`).
    public var links: RetryLinks

    public init(job: WireJob, usage: [String: RoleUsage], links: RetryLinks = RetryLinks()) {
        self.job = job
        self.usage = usage
        self.links = links
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
        var links = RetryLinks(retryOf: json["retry_of"]?.stringValue, fromStep: json["from_step"]?.intValue)
        links.reusedCalls = json["reused_calls"]?.intValue ?? 0
        for retry in json["retries"]?.arrayValue ?? [] {
            guard let id = retry["job"]?.stringValue, let step = retry["from_step"]?.intValue else {
                throw WireShapeError("job: each of 'retries' must have 'job' and 'from_step'")
            }
            links.retries.append((id, step))
        }
        self.links = links
    }

    public var json: JSON {
        let roles = usage.keys.sorted()
        var out = job.json
            .setting("completed_calls", .object(roles.map { ($0, .int(usage[$0]!.calls)) }))
            .setting("usage", .object(roles.map { ($0, Self.json(usage[$0]!)) } + [("total", Self.json(total))]))
        if let original = links.retryOf {
            out = out.setting("retry_of", .string(original)).setting("from_step", .int(links.fromStep ?? 1))
                .setting("reused_calls", .int(links.reusedCalls))
        }
        if !links.retries.isEmpty {
            out = out.setting(
                "retries", .array(links.retries.map { .object([("job", .string($0.job)), ("from_step", .int($0.fromStep))]) }))
        }
        return out
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
