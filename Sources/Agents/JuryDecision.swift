import Store

/// One juror's vote: its verdict, or why it gave none (an error).
public struct JuryVote: Sendable, Equatable {
    public var juror: String
    /// Nil when the juror gave no valid verdict.
    public var verdict: Verdict?
    /// Why the juror gave no verdict; nil when it gave one.
    public var error: String?

    public init(juror: String, verdict: Verdict) {
        self.juror = juror
        self.verdict = verdict
    }

    public init(juror: String, error: String) {
        self.juror = juror
        self.error = error
    }
}

/// What a jury decided: the rule applied to its votes (see `JurySpec` for the rules and how an
/// error counts) and the one verdict the step acts on. Pure.
///
/// - `score` is the mean score of the counted votes (an error counts 0 under `on_error: fail` and is
///   left out under `abstain`), rounded to six decimal places; 0 when no vote counts. A
///   `mean_score >= X` rule compares this number with X.
/// - `feedback` is what a rerun reads: a line `RULE: P pass, F fail, E error`, then one line
///   `NAME: FEEDBACK` per dissenting juror — those that voted fail, and under `on_error: fail` those
///   that erred (their error as the feedback). When the jury fails without a dissenter (every
///   counted juror passed but the mean score fell short, or every juror abstained), every juror's
///   line follows instead; when it passes without one, every juror's line too.
/// - The verdict's failure modes and suggestions are the dissenters' (suggestions merged, each
///   named); its confidence is the lowest any counted juror stated; it has no feasibility (a jury
///   never ends a step early).
public struct JuryDecision: Sendable, Equatable {
    public var passes: Int
    public var fails: Int
    public var errors: Int
    public var outcome: Verdict.Outcome
    public var score: Double
    public var feedback: String
    public var verdict: Verdict

    public init(_ jury: JurySpec, votes: [JuryVote]) {
        passes = votes.count(where: { $0.verdict?.outcome == .pass })
        fails = votes.count(where: { $0.verdict?.outcome == .fail })
        errors = votes.count(where: { $0.verdict == nil })
        let errorsCount = jury.onError == .fail
        let counted = votes.filter { $0.verdict != nil || errorsCount }
        let scores = counted.map { $0.verdict?.score ?? 0 }
        score = scores.isEmpty ? 0 : ((scores.reduce(0, +) / Double(scores.count)) * 1e6).rounded() / 1e6
        let failing = fails + (errorsCount ? errors : 0)
        let passed: Bool
        switch jury.rule {
        case .majority: passed = passes > failing
        case .unanimous: passed = passes > 0 && failing == 0
        case let .meanScore(threshold): passed = !counted.isEmpty && score >= threshold
        }
        outcome = passed ? .pass : .fail
        let dissent = counted.filter { $0.verdict?.outcome != .pass }
        let shown = dissent.isEmpty ? votes : dissent
        var lines = ["\(jury.rule.text): \(passes) pass, \(fails) fail, \(errors) error"]
        for vote in shown {
            lines.append("\(vote.juror): " + (vote.verdict?.feedback ?? "gave no verdict: \(vote.error ?? "no reason known")"))
        }
        feedback = lines.joined(separator: "\n")
        var modes: [String] = []
        for mode in dissent.flatMap({ $0.verdict?.failureModes ?? [] }) where !modes.contains(mode) { modes.append(mode) }
        let suggestions = dissent.compactMap { vote in vote.verdict?.suggestion.map { "\(vote.juror): \($0)" } }
        verdict = Verdict(
            outcome: outcome, score: score, feedback: feedback, suggestion: suggestions.isEmpty ? nil : suggestions.joined(separator: "\n"),
            confidence: counted.compactMap { $0.verdict?.confidence }.min(), failureModes: modes.isEmpty ? nil : modes)
    }
}
