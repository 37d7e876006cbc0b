/// The payload of a `candidate.started` event (record format 4 on): one candidate of an attempt
/// (`policy.samples` of them; one when the policy asks for one) is about to be asked of the actor. The
/// event's `step` and `attempt` columns place it; `sample` tells it from the attempt's others. Pure.
public struct CandidateStarted: RecordedEvent {
    public static let kind = EventKind.candidateStarted

    /// The candidate's place among its attempt's samples, from 0.
    public var sample: Int
    /// The candidate it revises: the one whose feedback its prompt carries. Nil for a step's first
    /// attempt. The parents make the step's candidates a tree.
    public var parent: CandidateRef?
    /// The actor's sampling temperature for this candidate.
    public var temperature: Double
    /// Its private copy of the job's workspace, when the actor has tools and the policy asks for more
    /// than one sample; nil when it works in the job's workspace (or has none).
    public var workspace: String?

    public init(sample: Int, parent: CandidateRef?, temperature: Double, workspace: String? = nil) {
        self.sample = sample
        self.parent = parent
        self.temperature = temperature
        self.workspace = workspace
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        sample = try r.int("sample")
        parent = try r.optionalObject("parent").map { (p) throws(EventPayloadError) in
            CandidateRef(attempt: try p.int("attempt"), sample: try p.int("sample"))
        }
        temperature = try r.double("temperature")
        workspace = try r.optionalString("workspace")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("sample", .int(sample))]
        if let parent { members.append(("parent", parent.json)) }
        members.append(("temperature", .number(temperature)))
        if let workspace { members.append(("workspace", .string(workspace))) }
        return .object(members)
    }
}

/// One candidate of a step: its attempt and its sample, both from 0. Pure.
public struct CandidateRef: Sendable, Equatable, Hashable {
    public var attempt: Int
    public var sample: Int

    public init(attempt: Int, sample: Int) {
        self.attempt = attempt
        self.sample = sample
    }

    public var json: JSON { .object([("attempt", .int(attempt)), ("sample", .int(sample))]) }
}

/// The payload of a `candidate.judged` event (record format 4 on): what became of one candidate. Its
/// call id is the critic's (the last) call that judged it, when one did. Pure.
public struct CandidateJudged: RecordedEvent {
    public static let kind = EventKind.candidateJudged

    public enum Outcome: String, Sendable, CaseIterable {
        /// The critic passed it.
        case pass
        /// The critic failed it.
        case fail
        /// The actor gave no usable output (an invalid reply, a failed call, tool turns used up).
        case unusable
        /// Its output is the same as an earlier candidate's of the step; that one's judgement stands.
        case duplicate
        /// The critic passed it and a reviewer rejected the output.
        case rejected
    }

    public var sample: Int
    public var outcome: Outcome
    /// The critic's score; nil when no critic judged it.
    public var score: Double?
    /// The critic's feedback, or why the candidate was not judged.
    public var feedback: String

    public init(sample: Int, outcome: Outcome, score: Double?, feedback: String) {
        self.sample = sample
        self.outcome = outcome
        self.score = score
        self.feedback = feedback
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        sample = try r.int("sample")
        let word = try r.string("outcome")
        guard let outcome = Outcome(rawValue: word) else {
            throw .wrongType(
                Self.kind, "outcome", expected: Outcome.allCases.map(\.rawValue).joined(separator: " | "), found: .string(word))
        }
        self.outcome = outcome
        score = try r.optionalDouble("score")
        feedback = try r.string("feedback")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("sample", .int(sample)), ("outcome", .string(outcome.rawValue))]
        if let score { members.append(("score", .number(score))) }
        members.append(("feedback", .string(feedback)))
        return .object(members)
    }
}

/// The payload of a `candidate.chosen` event (record format 4 on): the candidate whose output the job
/// goes on with — the best-scored passing one of its attempt, or under `policy.on_exhausted: best`
/// the best-scored one the step judged. When it worked in a copy of the workspace, that copy becomes
/// the job's workspace. Pure.
public struct CandidateChosen: RecordedEvent {
    public static let kind = EventKind.candidateChosen

    public enum Reason: String, Sendable, CaseIterable {
        /// The best-scored candidate the critic passed.
        case passed
        /// No candidate passed; `policy.on_exhausted: best` goes on with the best-scored one.
        case best
    }

    public var sample: Int
    public var score: Double?
    public var reason: Reason
    /// The copy of the workspace that became the job's; nil when it worked in the job's own.
    public var workspace: String?

    public init(sample: Int, score: Double?, reason: Reason, workspace: String? = nil) {
        self.sample = sample
        self.score = score
        self.reason = reason
        self.workspace = workspace
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        sample = try r.int("sample")
        score = try r.optionalDouble("score")
        let word = try r.string("reason")
        guard let reason = Reason(rawValue: word) else {
            throw .wrongType(Self.kind, "reason", expected: Reason.allCases.map(\.rawValue).joined(separator: " | "), found: .string(word))
        }
        self.reason = reason
        workspace = try r.optionalString("workspace")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("sample", .int(sample))]
        if let score { members.append(("score", .number(score))) }
        members.append(("reason", .string(reason.rawValue)))
        if let workspace { members.append(("workspace", .string(workspace))) }
        return .object(members)
    }
}
