import Store

/// A job as the protocol shows it (docs/protocol.md, "The job object"): the server encodes one from
/// a `JobRecord`, clients decode one from a result. Pure value; any thread.
public struct WireJob: Sendable, Equatable {
    public var id: String
    /// The plan's `name`.
    public var plan: String
    public var goal: String
    public var status: JobStatus
    public var reason: String?
    public var inputs: JSON
    public var idempotencyKey: String?
    /// Unix milliseconds.
    public var createdAt: Int64
    public var startedAt: Int64?
    public var finishedAt: Int64?

    public init(_ job: JobRecord) {
        id = job.id
        plan = job.planName
        goal = job.goal
        status = job.status
        reason = job.reason
        inputs = job.inputs
        idempotencyKey = job.idempotencyKey
        createdAt = job.createdAt
        startedAt = job.startedAt
        finishedAt = job.finishedAt
    }

    /// Decodes a job object (extra members, e.g. `job.get`'s `usage`, are ignored). Throws
    /// `WireShapeError` naming the member when the shape is wrong.
    public init(json: JSON) throws(WireShapeError) {
        func string(_ key: String) throws(WireShapeError) -> String {
            guard let s = json[key]?.stringValue else { throw WireShapeError("job: '\(key)' must be a string") }
            return s
        }
        func optional<T>(_ key: String, _ read: (JSON) -> T?) throws(WireShapeError) -> T? {
            guard let value = json[key], !value.isNull else { return nil }
            guard let t = read(value) else { throw WireShapeError("job: '\(key)' has the wrong type, got \(value.typeName)") }
            return t
        }
        let millis = { (v: JSON) in v.doubleValue.map { Int64($0) } }
        id = try string("id")
        plan = try string("plan")
        goal = try string("goal")
        let word = try string("status")
        guard let status = JobStatus(rawValue: word) else { throw WireShapeError("job: unknown status '\(word)'") }
        self.status = status
        reason = try optional("reason", \.stringValue)
        inputs = json["inputs"] ?? .object([])
        idempotencyKey = try optional("idempotency_key", \.stringValue)
        guard let created = try optional("created_at", millis) else { throw WireShapeError("job: 'created_at' must be a number") }
        createdAt = created
        startedAt = try optional("started_at", millis)
        finishedAt = try optional("finished_at", millis)
    }

    /// The job object, members in the documented order.
    public var json: JSON {
        .object([
            ("id", .string(id)), ("plan", .string(plan)), ("goal", .string(goal)),
            ("status", .string(status.rawValue)), ("reason", reason.map(JSON.string) ?? .null),
            ("inputs", inputs), ("idempotency_key", idempotencyKey.map(JSON.string) ?? .null),
            ("created_at", .number(Double(createdAt))),
            ("started_at", startedAt.map { .number(Double($0)) } ?? .null),
            ("finished_at", finishedAt.map { .number(Double($0)) } ?? .null),
        ])
    }

    public static func json(_ job: JobRecord) -> JSON { WireJob(job).json }
}
