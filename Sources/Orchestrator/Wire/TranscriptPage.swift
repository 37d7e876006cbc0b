import Store

/// `job.transcript`'s result: the job, a page of its events, and where the next page starts when
/// this one is full. Events stay JSON here (their payloads are the record's, typed in Store). Pure
/// value; any thread.
public struct TranscriptPage: Sendable, Equatable {
    public var job: WireJob
    public var events: [JSON]
    /// The `after_seq` of the next page; nil on the last page.
    public var nextAfterSeq: Int?

    public init(job: WireJob, events: [JSON], nextAfterSeq: Int?) {
        self.job = job
        self.events = events
        self.nextAfterSeq = nextAfterSeq
    }

    /// Decodes a result. Throws `WireShapeError` naming the member when the shape is wrong.
    public init(json: JSON) throws(WireShapeError) {
        guard let job = json["job"] else { throw WireShapeError("transcript: 'job' is missing") }
        self.job = try WireJob(json: job)
        guard case let .array(events)? = json["events"] else { throw WireShapeError("transcript: 'events' must be an array") }
        self.events = events
        switch json["next_after_seq"] {
        case .none, .null?: nextAfterSeq = nil
        case let value?:
            guard let n = value.intValue else { throw WireShapeError("transcript: 'next_after_seq' must be an integer") }
            nextAfterSeq = n
        }
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("job", job.json), ("events", .array(events))]
        if let nextAfterSeq { members.append(("next_after_seq", .int(nextAfterSeq))) }
        return .object(members)
    }
}
