/// The payload of a `jury.convened` event: a jury is about to judge one output (step and attempt
/// columns set). Recorded before any juror is asked; `order` is the order they are asked in, which
/// a replay reads from here rather than computing it again. Pure.
public struct JuryConvened: RecordedEvent {
    public static let kind = EventKind.juryConvened

    /// The rule as written: `majority`, `unanimous`, `mean_score >= 0.7`.
    public var rule: String
    /// The jurors' names, in plan order (a juror's index is its place here).
    public var jurors: [String]
    /// Juror indexes in the order the output was presented to them.
    public var order: [Int]
    /// The seed `order` was shuffled with (derived from the job, re-plan, step and attempt).
    public var seed: Int

    public init(rule: String, jurors: [String], order: [Int], seed: Int) {
        self.rule = rule
        self.jurors = jurors
        self.order = order
        self.seed = seed
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        rule = try r.string("rule")
        jurors = try r.strings("jurors")
        order = try r.ints("order")
        seed = try r.int("seed")
    }

    public var json: JSON {
        .object([
            ("rule", .string(rule)), ("jurors", .array(jurors.map(JSON.string))), ("order", .array(order.map(JSON.int))),
            ("seed", .int(seed)),
        ])
    }
}

/// The payload of a `jury.voted` event: one juror's vote, recorded after every juror answered, one
/// event per juror in juror-index order; the call id is the juror's last call. Pure.
public struct JuryVoted: RecordedEvent {
    public static let kind = EventKind.juryVoted

    public enum Outcome: String, Sendable {
        case pass, fail
        /// The juror gave no valid verdict: its call failed or timed out, or every reply was invalid.
        case error
    }

    public var juror: String
    public var index: Int
    public var outcome: Outcome
    /// The juror's score; nil for an error.
    public var score: Double?
    public var feedback: String
    /// Why the juror gave no verdict (an error only).
    public var error: String?

    public init(juror: String, index: Int, outcome: Outcome, score: Double?, feedback: String, error: String? = nil) {
        self.juror = juror
        self.index = index
        self.outcome = outcome
        self.score = score
        self.feedback = feedback
        self.error = error
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        juror = try r.string("juror")
        index = try r.int("index")
        outcome = try r.required("outcome", "pass, fail or error") { $0.stringValue.flatMap(Outcome.init(rawValue:)) }
        score = try r.optionalDouble("score")
        feedback = try r.string("feedback")
        error = try r.optionalString("error")
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("juror", .string(juror)), ("index", .int(index)), ("outcome", .string(outcome.rawValue))]
        if let score { members.append(("score", .number(score))) }
        members.append(("feedback", .string(feedback)))
        if let error { members.append(("error", .string(error))) }
        return .object(members)
    }
}

/// The payload of a `jury.decided` event: the rule applied to the votes, after the last
/// `jury.voted`. `score` is the mean score of the counted votes (the number a `mean_score` rule
/// compares); `feedback` is what the rerun reads, the dissenting jurors' feedback merged. Pure.
public struct JuryDecided: RecordedEvent {
    public static let kind = EventKind.juryDecided

    public var rule: String
    public var passes: Int
    public var fails: Int
    public var errors: Int
    public var outcome: Outcome
    public var score: Double
    public var feedback: String

    public enum Outcome: String, Sendable { case pass, fail }

    public init(rule: String, passes: Int, fails: Int, errors: Int, outcome: Outcome, score: Double, feedback: String) {
        self.rule = rule
        self.passes = passes
        self.fails = fails
        self.errors = errors
        self.outcome = outcome
        self.score = score
        self.feedback = feedback
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        rule = try r.string("rule")
        passes = try r.int("passes")
        fails = try r.int("fails")
        errors = try r.int("errors")
        outcome = try r.required("outcome", "pass or fail") { $0.stringValue.flatMap(Outcome.init(rawValue:)) }
        score = try r.double("score")
        feedback = try r.string("feedback")
    }

    public var json: JSON {
        .object([
            ("rule", .string(rule)), ("passes", .int(passes)), ("fails", .int(fails)), ("errors", .int(errors)),
            ("outcome", .string(outcome.rawValue)), ("score", .number(score)), ("feedback", .string(feedback)),
        ])
    }
}
