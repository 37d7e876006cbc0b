/// The payload of a `step.exhausted` event: a step used all its attempts without a pass. Pure.
public struct StepExhausted: RecordedEvent {
    public static let kind = EventKind.stepExhausted

    public var attempts: Int
    /// The last critic feedback (or why the last attempt was unusable); a re-plan is given it.
    public var lastFeedback: String
    /// Under `policy.on_exhausted: best`: the attempt (0-based) the job goes on with, the best scored
    /// one the critic judged, and its score. Nil otherwise.
    public var bestAttempt: Int?
    public var bestScore: Double?

    public init(attempts: Int, lastFeedback: String, bestAttempt: Int? = nil, bestScore: Double? = nil) {
        self.attempts = attempts
        self.lastFeedback = lastFeedback
        self.bestAttempt = bestAttempt
        self.bestScore = bestScore
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        attempts = try r.int("attempts")
        lastFeedback = try r.string("last_feedback")
        bestAttempt = try r.optionalInt("best_attempt")
        bestScore = try r.optionalDouble("best_score")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("attempts", .int(attempts)), ("last_feedback", .string(lastFeedback))]
        if let bestAttempt { members.append(("best_attempt", .int(bestAttempt))) }
        if let bestScore { members.append(("best_score", .number(bestScore))) }
        return .object(members)
    }
}

/// The payload of a `step.timed_out` event: a step ran past `policy.step_timeout`; what it had in
/// flight was abandoned. Pure.
public struct StepTimedOut: RecordedEvent {
    public static let kind = EventKind.stepTimedOut

    public var timeoutSeconds: Double
    public var reason: String

    public init(timeoutSeconds: Double, reason: String) {
        self.timeoutSeconds = timeoutSeconds
        self.reason = reason
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        timeoutSeconds = try r.double("timeout_s")
        reason = try r.string("reason")
    }

    public var json: JSON { .object([("timeout_s", .number(timeoutSeconds)), ("reason", .string(reason))]) }
}

/// The payload of a `step.infeasible` event (record format 3 on): the critic judged a failing
/// attempt unlikely to succeed on a rerun (`feasibility` below `policy.replan_below`), so the step
/// ends at once and the work is re-planned instead of spending the remaining attempts. Pure.
public struct StepInfeasible: RecordedEvent {
    public static let kind = EventKind.stepInfeasible

    /// The attempts the step used, the judged one included.
    public var attempts: Int
    public var feasibility: Double
    /// `policy.replan_below` when it was recorded.
    public var replanBelow: Double
    /// The critic's feedback on the judged attempt; the re-plan is given it.
    public var feedback: String

    public init(attempts: Int, feasibility: Double, replanBelow: Double, feedback: String) {
        self.attempts = attempts
        self.feasibility = feasibility
        self.replanBelow = replanBelow
        self.feedback = feedback
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        attempts = try r.int("attempts")
        feasibility = try r.double("feasibility")
        replanBelow = try r.double("replan_below")
        feedback = try r.string("feedback")
    }

    public var json: JSON {
        .object([
            ("attempts", .int(attempts)), ("feasibility", .number(feasibility)), ("replan_below", .number(replanBelow)),
            ("feedback", .string(feedback)),
        ])
    }
}

/// The payload of an `attempt.duplicate` event: the actor repeated a rejected output, which is not
/// judged again; the earlier attempt's feedback stands. Pure.
public struct AttemptDuplicate: RecordedEvent {
    public static let kind = EventKind.attemptDuplicate

    /// The rejected attempt (0-based) whose output this one repeats.
    public var sameAsAttempt: Int
    public var feedback: String

    public init(sameAsAttempt: Int, feedback: String) {
        self.sameAsAttempt = sameAsAttempt
        self.feedback = feedback
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        sameAsAttempt = try r.int("same_as_attempt")
        feedback = try r.string("feedback")
    }

    public var json: JSON { .object([("same_as_attempt", .int(sameAsAttempt)), ("feedback", .string(feedback))]) }
}
