import Store

/// `job.submit`'s result: the job, then `created` — false when an idempotency key returned the job
/// it had already made. Pure value; any thread.
public struct SubmitResult: Sendable, Equatable {
    public var job: WireJob
    public var created: Bool

    public init(job: WireJob, created: Bool) {
        self.job = job
        self.created = created
    }

    /// Decodes a result. Throws `WireShapeError` naming the member when the shape is wrong.
    public init(json: JSON) throws(WireShapeError) {
        job = try WireJob(json: json)
        guard let created = json["created"]?.boolValue else { throw WireShapeError("submit: 'created' must be true or false") }
        self.created = created
    }

    /// The job object with `created` appended.
    public var json: JSON { job.json.setting("created", .bool(created)) }
}
