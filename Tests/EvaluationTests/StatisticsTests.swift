import XCTest

@testable import Evaluation

/// Known inputs, known answers: the Wilson intervals as published (Newcombe 1998 gives 0.490–0.943
/// for 8/10) and exact binomial tails computed by hand.
final class StatisticsTests: XCTestCase {
    private func assertInterval(
        _ k: Int, _ n: Int, _ lower: Double, _ upper: Double, file: StaticString = #filePath, line: UInt = #line
    ) {
        let ci = Statistics.wilson(successes: k, trials: n)
        XCTAssertEqual(ci.lower, lower, accuracy: 1e-7, "lower bound of \(k)/\(n)", file: file, line: line)
        XCTAssertEqual(ci.upper, upper, accuracy: 1e-7, "upper bound of \(k)/\(n)", file: file, line: line)
    }

    func testWilsonIntervalsOfKnownProportions() {
        assertInterval(8, 10, 0.4901625, 0.9433178)
        assertInterval(50, 100, 0.4038315, 0.5961685)
        assertInterval(1, 3, 0.0614919, 0.7923404)
        assertInterval(13, 60, 0.1312304, 0.3362003)
    }

    func testWilsonIntervalAtTheEdgesIsExactlyZeroOrOne() {
        assertInterval(0, 10, 0, 0.2775328)
        assertInterval(10, 10, 0.7224672, 1)
        XCTAssertEqual(Statistics.wilson(successes: 10, trials: 10).upper, 1, "not 0.9999…")
        XCTAssertEqual(Statistics.wilson(successes: 0, trials: 0), Statistics.Interval(lower: 0, upper: 1), "no trials: no information")
    }

    func testExactMcNemarIsTheTwoSidedBinomialTail() {
        // 2 · Σ_{i ≤ min} C(n, i) / 2^n.
        XCTAssertEqual(Statistics.exactMcNemar(wins: 1, losses: 5), 14.0 / 64, accuracy: 1e-12)
        XCTAssertEqual(Statistics.exactMcNemar(wins: 5, losses: 1), 14.0 / 64, accuracy: 1e-12, "symmetric")
        XCTAssertEqual(Statistics.exactMcNemar(wins: 0, losses: 10), 2.0 / 1024, accuracy: 1e-12)
        XCTAssertEqual(Statistics.exactMcNemar(wins: 2, losses: 10), 2.0 * 79 / 4096, accuracy: 1e-12)
        XCTAssertEqual(Statistics.exactMcNemar(wins: 3, losses: 12), 2.0 * 576 / 32768, accuracy: 1e-12)
    }

    func testExactMcNemarIsOneWithoutEvidence() {
        XCTAssertEqual(Statistics.exactMcNemar(wins: 0, losses: 0), 1)
        XCTAssertEqual(Statistics.exactMcNemar(wins: 5, losses: 5), 1, "a balanced split is capped at 1, not 2 · P")
        XCTAssertEqual(Statistics.exactMcNemar(wins: 0, losses: 1), 1)
    }

    func testExactMcNemarStaysFiniteForLargeSamples() {
        // 2 · P(X ≤ 400) for X ~ Bin(1000, ½) is about 2.7e-10; computed in log space, not 0 or NaN.
        let p = Statistics.exactMcNemar(wins: 400, losses: 600)
        XCTAssertGreaterThan(p, 1e-11)
        XCTAssertLessThan(p, 1e-9)
    }
}
