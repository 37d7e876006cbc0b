import Store

/// `job.retry`'s result: the new job, then `retry_of` (the job it retries) and `from_step` (the step,
/// from 1, it runs live from; the calls before it are answered from the original's record).
/// Pure value; any thread.
public struct RetryResult: Sendable, Equatable {
    public var job: WireJob
    public var retryOf: String
    public var fromStep: Int

    public init(job: WireJob, retryOf: String, fromStep: Int) {
        self.job = job
        self.retryOf = retryOf
        self.fromStep = fromStep
    }

    /// Decodes a result. Throws `WireShapeError` naming the member when the shape is wrong.
    public init(json: JSON) throws(WireShapeError) {
        job = try WireJob(json: json)
        guard let original = json["retry_of"]?.stringValue else { throw WireShapeError("retry: 'retry_of' must be a string") }
        guard let step = json["from_step"]?.intValue else { throw WireShapeError("retry: 'from_step' must be an integer") }
        retryOf = original
        fromStep = step
    }

    /// The job object with `retry_of` and `from_step` appended.
    public var json: JSON { job.json.setting("retry_of", .string(retryOf)).setting("from_step", .int(fromStep)) }
}
