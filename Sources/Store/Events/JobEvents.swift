/// The payload of a `job.state` event: a job's status changed. The runner's `running` carries the
/// plan's fixed steps, when it has them; a terminal status carries its reason (null when there is
/// none). Pure; safe from any thread.
public struct JobState: RecordedEvent {
    public static let kind = EventKind.jobState

    public var from: JobStatus
    public var to: JobStatus
    public var reason: String?
    /// The plan's fixed steps, on the change to `running` of a plan without a planner.
    public var steps: [String]?

    public init(from: JobStatus, to: JobStatus, reason: String? = nil, steps: [String]? = nil) {
        self.from = from
        self.to = to
        self.reason = reason
        self.steps = steps
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        from = try r.required("from", "a job status", { $0.stringValue.flatMap(JobStatus.init(rawValue:)) })
        to = try r.required("to", "a job status", { $0.stringValue.flatMap(JobStatus.init(rawValue:)) })
        reason = try r.optionalString("reason")
        steps = try r.optionalStrings("steps")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("from", .string(from.rawValue)), ("to", .string(to.rawValue))]
        if let steps { members.append(("steps", .array(steps.map(JSON.string)))) }
        if to.isTerminal || reason != nil { members.append(("reason", reason.map(JSON.string) ?? .null)) }
        return .object(members)
    }
}

/// The payload of a `job.replanned` event: the planner replaced the steps from `fromStep` on (the
/// `replan`th time). Pure; safe from any thread.
public struct JobReplanned: RecordedEvent {
    public static let kind = EventKind.jobReplanned

    public var replan: Int
    /// The index of the first replaced step.
    public var fromStep: Int
    public var steps: [String]

    public init(replan: Int, fromStep: Int, steps: [String]) {
        self.replan = replan
        self.fromStep = fromStep
        self.steps = steps
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        replan = try r.int("replan")
        fromStep = try r.int("from_step")
        steps = try r.strings("steps")
    }

    public var json: JSON {
        .object([("replan", .int(replan)), ("from_step", .int(fromStep)), ("steps", .array(steps.map(JSON.string)))])
    }
}

/// The payload of a `job.resumed` event: the daemon restarted and the job goes on after replaying
/// its first `replayingEvents` recorded events. Pure; safe from any thread.
public struct JobResumed: RecordedEvent {
    public static let kind = EventKind.jobResumed

    public var replayingEvents: Int

    public init(replayingEvents: Int) {
        self.replayingEvents = replayingEvents
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        replayingEvents = try PayloadReader(Self.kind, payload).int("replaying_events")
    }

    public var json: JSON { .object([("replaying_events", .int(replayingEvents))]) }
}

/// The payload of a `job.retried` event, appended to a finished job when a retry of it is submitted
/// (in the same transaction as the new job): the new job, the step (from 1) it runs live from, and
/// its goal when it was changed. The new job's `job.submitted` links back (`retry_of`). Not part of
/// the runner's sequence. Pure; safe from any thread.
public struct JobRetried: RecordedEvent {
    public static let kind = EventKind.jobRetried

    public var job: String
    public var fromStep: Int
    /// The retry's goal, when it differs from this job's.
    public var goal: String?

    public init(job: String, fromStep: Int, goal: String? = nil) {
        self.job = job
        self.fromStep = fromStep
        self.goal = goal
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        job = try r.string("job")
        fromStep = try r.int("from_step")
        goal = try r.optionalString("goal")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("job", .string(job)), ("from_step", .int(fromStep))]
        if let goal { members.append(("goal", .string(goal))) }
        return .object(members)
    }
}
