#if canImport(Glibc)
    import Glibc
#endif

/// The statistics an eval report rests on: a binomial proportion's confidence interval and an exact
/// paired test. Pure functions; any thread.
public enum Statistics {
    /// A two-sided interval of a proportion, both ends in 0...1.
    public struct Interval: Sendable, Equatable {
        public var lower: Double
        public var upper: Double

        public init(lower: Double, upper: Double) {
            self.lower = lower
            self.upper = upper
        }
    }

    /// The normal quantile of a two-sided 95% interval.
    public static let z95 = 1.959963984540054

    /// The Wilson score interval of `successes` out of `trials` (Wilson 1927): unlike the normal
    /// ("Wald") interval it stays inside 0...1 and is not degenerate at 0 or n successes, which small
    /// eval samples hit often. With no trials it is the whole of 0...1.
    public static func wilson(successes: Int, trials: Int, z: Double = z95) -> Interval {
        precondition(successes >= 0 && successes <= trials, "wilson: successes must lie in 0...trials")
        guard trials > 0 else { return Interval(lower: 0, upper: 1) }
        let n = Double(trials)
        let p = Double(successes) / n
        let z2 = z * z
        let centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        let half = z / (1 + z2 / n) * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()
        // At 0 or n successes the exact bound is 0 or 1; rounding must not move it.
        let lower = successes == 0 ? 0 : max(0, centre - half)
        let upper = successes == trials ? 1 : min(1, centre + half)
        return Interval(lower: lower, upper: upper)
    }

    /// The exact McNemar test of paired outcomes: `wins` pairs where the first arm alone succeeded,
    /// `losses` where the second alone did (pairs where both or neither did carry no information).
    /// Under the null hypothesis each discordant pair is a fair coin, so this is the two-sided exact
    /// binomial (sign) test: p = min(1, 2 · P(X ≤ min(wins, losses))), X ~ Binomial(wins + losses, ½).
    /// With no discordant pair p is 1.
    public static func exactMcNemar(wins: Int, losses: Int) -> Double {
        precondition(wins >= 0 && losses >= 0, "exactMcNemar: counts must not be negative")
        let n = wins + losses
        guard n > 0 else { return 1 }
        let k = min(wins, losses)
        // Summed in log space: C(n, i) / 2^n underflows a Double long before n is large for an eval.
        var tail = 0.0
        for i in 0...k {
            tail += exp(logChoose(n, i) - Double(n) * log(2.0))
        }
        return min(1, 2 * tail)
    }

    /// ln C(n, k).
    static func logChoose(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// `part / whole`, or nil when `whole` is 0 (a rate of nothing is not 0%).
    public static func rate(_ part: Int, _ whole: Int) -> Double? {
        whole == 0 ? nil : Double(part) / Double(whole)
    }
}
