import Store

/// The figures of an eval, per arm and per pair of arms, computed from the judged runs. Rendered as
/// Markdown, JSON and HTML (`EvalReport+Markdown`, `+JSON`, `+HTML`). Pure value; any thread.
///
/// Definitions (the rest of agentd uses the same):
/// - **verified**: the suite's check accepted the job's result (a job that did not succeed has none);
/// - **first attempt**: the check accepted the first actor output of every step;
/// - **false pass / false fail**: over the attempts the critic judged, the share of wrong outputs it
///   passed and of right outputs it failed (right and wrong as the check says);
/// - **flip**: a right output the critic rejected whose rerun is wrong; the flip rate is flips per
///   right output the critic rejected;
/// - **paired comparison**: the same task and repetition under two arms; wins are where only the
///   first arm's result is verified, losses where only the second's; p is the exact McNemar test.
public struct EvalReport: Sendable {
    /// The critic's record on a set of attempts.
    public struct CriticFigures: Sendable, Equatable {
        /// Wrong outputs the critic judged, and how many of them it passed.
        public var wrongJudged = 0
        public var falsePasses = 0
        /// Right outputs the critic judged, and how many of them it failed.
        public var rightJudged = 0
        public var falseFails = 0

        public var falsePassRate: Double? { Statistics.rate(falsePasses, wrongJudged) }
        public var falseFailRate: Double? { Statistics.rate(falseFails, rightJudged) }

        mutating func add(_ a: EvalResult.Attempt) {
            guard let passed = a.criticPassed else { return }
            if a.correct {
                rightJudged += 1
                if !passed { falseFails += 1 }
            } else {
                wrongJudged += 1
                if passed { falsePasses += 1 }
            }
        }
    }

    public struct Arm: Sendable {
        public var name: String
        public var runs: Int
        public var verified: Int
        public var interval: Statistics.Interval
        public var firstAttempt: Int
        /// Jobs that did not succeed (the critic rejected every attempt, a call failed, …).
        public var failedJobs: Int
        public var actorCalls: Int
        public var calls: Int
        public var inputTokens: Int
        public var outputTokens: Int
        public var costUSD: Double?
        public var critic: CriticFigures
        /// The critic's figures on the attempts numbered 1, 2, … (index 0 is attempt 1).
        public var criticByAttempt: [CriticFigures]
        public var flips: Int

        public var successRate: Double? { Statistics.rate(verified, runs) }
        public var firstAttemptRate: Double? { Statistics.rate(firstAttempt, runs) }
        public var flipRate: Double? { Statistics.rate(flips, critic.falseFails) }
        func perRun(_ total: Int) -> Double? { runs == 0 ? nil : Double(total) / Double(runs) }
        public var actorCallsPerRun: Double? { perRun(actorCalls) }
        public var callsPerRun: Double? { perRun(calls) }
        public var tokensPerRun: Double? { perRun(inputTokens + outputTokens) }
        public var costPerRun: Double? { costUSD.flatMap { runs == 0 ? nil : $0 / Double(runs) } }
    }

    public struct Pair: Sendable {
        public var first: String
        public var second: String
        /// Runs of the same task and repetition under both arms.
        public var pairs: Int
        public var both: Int
        public var wins: Int
        public var losses: Int
        public var p: Double
    }

    public var suite: String
    public var tasks: Int
    public var reps: Int
    public var arms: [Arm]
    public var pairs: [Pair]
    public var results: [EvalResult]

    /// The report of `results` (runs of `armNames`, in that order).
    public init(suite: String, tasks: Int, reps: Int, armNames: [String], results: [EvalResult]) {
        self.suite = suite
        self.tasks = tasks
        self.reps = reps
        self.results = results
        arms = armNames.map { name in
            let mine = results.filter { $0.arm == name }
            var critic = CriticFigures()
            var byAttempt: [CriticFigures] = []
            for a in mine.flatMap(\.attempts) {
                critic.add(a)
                while byAttempt.count <= a.attempt { byAttempt.append(CriticFigures()) }
                byAttempt[a.attempt].add(a)
            }
            let verified = mine.filter(\.verified).count
            let costs = mine.compactMap(\.costUSD)
            return Arm(
                name: name, runs: mine.count, verified: verified, interval: Statistics.wilson(successes: verified, trials: mine.count),
                firstAttempt: mine.filter(\.firstAttempt).count, failedJobs: mine.filter { $0.status != "succeeded" }.count,
                actorCalls: mine.map(\.actorCalls).reduce(0, +), calls: mine.map(\.calls).reduce(0, +),
                inputTokens: mine.map(\.inputTokens).reduce(0, +), outputTokens: mine.map(\.outputTokens).reduce(0, +),
                costUSD: costs.isEmpty ? nil : costs.reduce(0, +), critic: critic, criticByAttempt: byAttempt,
                flips: mine.map(\.flips).reduce(0, +))
        }
        var pairs: [Pair] = []
        for (i, first) in armNames.enumerated() {
            for second in armNames[(i + 1)...] {
                var outcome: [String: Bool] = [:]
                for r in results where r.arm == second { outcome["\(r.task)/\(r.rep)"] = r.verified }
                var pair = Pair(first: first, second: second, pairs: 0, both: 0, wins: 0, losses: 0, p: 1)
                for r in results where r.arm == first {
                    guard let other = outcome["\(r.task)/\(r.rep)"] else { continue }
                    pair.pairs += 1
                    if r.verified && other { pair.both += 1 }
                    if r.verified && !other { pair.wins += 1 }
                    if !r.verified && other { pair.losses += 1 }
                }
                pair.p = Statistics.exactMcNemar(wins: pair.wins, losses: pair.losses)
                pairs.append(pair)
            }
        }
        self.pairs = pairs
    }
}

/// Figures as the reports print them.
enum Figure {
    static func percent(_ rate: Double?) -> String {
        guard let rate else { return "–" }
        return fixed(rate * 100, 1) + "%"
    }

    static func number(_ value: Double?, _ digits: Int = 1) -> String {
        guard let value else { return "–" }
        return fixed(value, digits)
    }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = String(rounded)
        if text.hasSuffix(".0") && digits == 0 { text.removeLast(2) }
        if let dot = text.firstIndex(of: ".") {
            let decimals = text.distance(from: dot, to: text.endIndex) - 1
            if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
        } else if digits > 0 {
            text += "." + String(repeating: "0", count: digits)
        }
        return text
    }

    static func p(_ value: Double) -> String {
        value < 0.001 ? "<0.001" : fixed(value, 3)
    }
}
