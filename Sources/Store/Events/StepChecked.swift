/// The payload of a `step.checked` event: what the plan's ground-truth check (`check`) said of one
/// output the critic judged (the event's step and attempt; its call id is the check's call). Written
/// for `agentd stats` alone: no agent is shown it and the job never acts on it. Pure.
public struct StepChecked: RecordedEvent {
    public static let kind = EventKind.stepChecked

    /// The candidate checked (0 unless the step drew several outputs per attempt).
    public var sample: Int
    /// Whether the check accepted the output (its command exited 0).
    public var passed: Bool
    /// What the check printed, capped like a command critic's feedback.
    public var feedback: String

    public init(sample: Int, passed: Bool, feedback: String) {
        self.sample = sample
        self.passed = passed
        self.feedback = feedback
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        sample = try r.int("sample")
        passed = try r.bool("passed")
        feedback = try r.string("feedback")
    }

    public var json: JSON { .object([("sample", .int(sample)), ("passed", .bool(passed)), ("feedback", .string(feedback))]) }
}
