import Store

/// A job as the protocol shows it.
public enum WireJob {
    public static func json(_ job: JobRecord) -> JSON {
        .object([
            ("id", .string(job.id)), ("plan", .string(job.planName)), ("goal", .string(job.goal)),
            ("status", .string(job.status.rawValue)), ("reason", job.reason.map(JSON.string) ?? .null),
            ("inputs", job.inputs), ("idempotency_key", job.idempotencyKey.map(JSON.string) ?? .null),
            ("created_at", .number(Double(job.createdAt))),
            ("started_at", job.startedAt.map { .number(Double($0)) } ?? .null),
            ("finished_at", job.finishedAt.map { .number(Double($0)) } ?? .null),
        ])
    }

    /// A role's usage as `job.get` shows it; cost rounded to a millionth of a dollar.
    public static func usage(_ u: RoleUsage) -> JSON {
        var members: [(String, JSON)] = [
            ("calls", .int(u.calls)), ("input_tokens", .int(u.inputTokens)), ("output_tokens", .int(u.outputTokens)),
        ]
        if let cost = u.costUSD { members.append(("cost_usd", .number((cost * 1e6).rounded() / 1e6))) }
        return .object(members)
    }

    /// `job.get`'s answer: the job, then `completed_calls` and `usage` per role (sorted) and in total.
    public static func json(_ job: JobRecord, usage: [String: RoleUsage]) -> JSON {
        let roles = usage.keys.sorted()
        var total = RoleUsage(calls: 0, inputTokens: 0, outputTokens: 0, costUSD: nil)
        var perRole: [(String, JSON)] = []
        for role in roles {
            let u = usage[role]!
            total.calls += u.calls
            total.inputTokens += u.inputTokens
            total.outputTokens += u.outputTokens
            if let cost = u.costUSD { total.costUSD = (total.costUSD ?? 0) + cost }
            perRole.append((role, Self.usage(u)))
        }
        return Self.json(job)
            .setting("completed_calls", .object(roles.map { ($0, .int(usage[$0]!.calls)) }))
            .setting("usage", .object(perRole + [("total", Self.usage(total))]))
    }
}
