import Store
import XCTest

@testable import Evaluation

/// The report's figures from judged runs written by hand: success and its interval, first-attempt
/// success, the critic's false passes and fails, flips, and the paired comparison.
final class EvalReportTests: XCTestCase {
    private typealias Attempt = EvalResult.Attempt

    private func run(
        _ arm: String, _ task: String, verified: Bool, first: Bool, _ attempts: [Attempt], actorCalls: Int = 1, tokens: Int = 10
    )
        -> EvalResult
    {
        EvalResult(
            key: "\(arm)/\(task)", arm: arm, task: task, rep: 0, jobID: "j-\(arm)-\(task)", status: verified ? "succeeded" : "failed",
            verified: verified, firstAttempt: first, actorCalls: actorCalls, calls: actorCalls * 2, inputTokens: tokens, outputTokens: 0,
            costUSD: nil, attempts: attempts, note: "")
    }

    private func attempt(_ n: Int, correct: Bool, critic: Bool?) -> Attempt {
        Attempt(replan: 0, step: 0, attempt: n, correct: correct, criticPassed: critic)
    }

    func testFiguresPerArm() {
        let results = [
            // loop: t1 right at once and passed; t2 right, rejected, then wrong and passed (a flip);
            // t3 wrong and passed (a false pass).
            run("loop", "t1", verified: true, first: true, [attempt(0, correct: true, critic: true)]),
            run(
                "loop", "t2", verified: false, first: true,
                [attempt(0, correct: true, critic: false), attempt(1, correct: false, critic: true)],
                actorCalls: 2, tokens: 30),
            run("loop", "t3", verified: false, first: false, [attempt(0, correct: false, critic: true)]),
            run("single", "t1", verified: true, first: true, [attempt(0, correct: true, critic: nil)]),
            run("single", "t2", verified: true, first: true, [attempt(0, correct: true, critic: nil)]),
            run("single", "t3", verified: false, first: false, [attempt(0, correct: false, critic: nil)]),
        ]
        let report = EvalReport(suite: "s", tasks: 3, reps: 1, armNames: ["single", "loop"], results: results)
        let loop = report.arms[1]
        XCTAssertEqual(loop.name, "loop")
        XCTAssertEqual(loop.runs, 3)
        XCTAssertEqual(loop.verified, 1)
        XCTAssertEqual(loop.interval, Statistics.wilson(successes: 1, trials: 3))
        XCTAssertEqual(loop.firstAttempt, 2)
        XCTAssertEqual(loop.failedJobs, 2)
        XCTAssertEqual(loop.critic, EvalReport.CriticFigures(wrongJudged: 2, falsePasses: 2, rightJudged: 2, falseFails: 1))
        XCTAssertEqual(loop.criticByAttempt.count, 2)
        XCTAssertEqual(loop.criticByAttempt[1], EvalReport.CriticFigures(wrongJudged: 1, falsePasses: 1, rightJudged: 0, falseFails: 0))
        XCTAssertEqual(loop.flips, 1)
        XCTAssertEqual(loop.flipRate, 1)
        XCTAssertEqual(loop.actorCallsPerRun!, 4.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(loop.tokensPerRun!, 50.0 / 3, accuracy: 1e-12)
        let single = report.arms[0]
        XCTAssertEqual(single.verified, 2)
        XCTAssertEqual(single.critic, EvalReport.CriticFigures(), "attempts no critic judged count nowhere")

        XCTAssertEqual(report.pairs.count, 1)
        let pair = report.pairs[0]
        XCTAssertEqual([pair.first, pair.second], ["single", "loop"])
        XCTAssertEqual([pair.pairs, pair.both, pair.wins, pair.losses], [3, 1, 1, 0])
        XCTAssertEqual(pair.p, 1)
    }

    func testAFlipNeedsAWrongRerun() {
        let rescued = run(
            "a", "t", verified: true, first: true, [attempt(0, correct: true, critic: false), attempt(1, correct: true, critic: true)])
        XCTAssertEqual(rescued.flips, 0, "a right output rejected whose rerun is right too is a false fail, not a flip")
        let flipped = run(
            "a", "t", verified: false, first: true, [attempt(0, correct: true, critic: false), attempt(1, correct: false, critic: false)])
        XCTAssertEqual(flipped.flips, 1)
        let last = run("a", "t", verified: false, first: true, [attempt(0, correct: true, critic: false)])
        XCTAssertEqual(last.flips, 0, "no rerun, no flip")
    }

    func testResultsSurviveTheirStateLine() throws {
        let result = run(
            "a", "t", verified: false, first: true, [attempt(0, correct: true, critic: false), attempt(1, correct: false, critic: nil)])
        XCTAssertEqual(try EvalResult(json: try JSON.parse(result.json.encoded)), result)
    }
}
