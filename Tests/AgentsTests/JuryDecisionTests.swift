import XCTest

@testable import Agents

/// The rules on votes: ties, errors under each `on_error`, the mean at its threshold, and the
/// feedback passed on.
final class JuryDecisionTests: XCTestCase {
    func jury(_ rule: JurySpec.Rule, _ onError: JurySpec.OnError = .fail) -> JurySpec {
        JurySpec(jurors: [], rule: rule, onError: onError)
    }

    func pass(_ name: String, _ score: Double, _ feedback: String = "good") -> JuryVote {
        JuryVote(juror: name, verdict: Verdict(outcome: .pass, score: score, feedback: feedback))
    }

    func fail(_ name: String, _ score: Double, _ feedback: String = "bad", suggestion: String? = nil, modes: [String]? = nil) -> JuryVote {
        JuryVote(
            juror: name, verdict: Verdict(outcome: .fail, score: score, feedback: feedback, suggestion: suggestion, failureModes: modes))
    }

    func error(_ name: String) -> JuryVote { JuryVote(juror: name, error: "timed out") }

    func testMajorityTieFails() {
        let tie = JuryDecision(jury(.majority), votes: [pass("a", 0.9), fail("b", 0.1)])
        XCTAssertEqual(tie.outcome, .fail)
        XCTAssertEqual(tie.feedback, "majority: 1 pass, 1 fail, 0 error\nb: bad")
        XCTAssertEqual(JuryDecision(jury(.majority), votes: [pass("a", 0.9), pass("b", 0.8), fail("c", 0.1)]).outcome, .pass)
    }

    func testAnErrorCountsAsAFailOrAbstains() {
        let votes = [pass("a", 0.9), pass("b", 0.7), error("c")]
        let failing = JuryDecision(jury(.majority), votes: votes + [error("d")])
        XCTAssertEqual(failing.outcome, .fail, "2 passes against 2 errors counted as fails: a tie")
        XCTAssertEqual([failing.passes, failing.fails, failing.errors], [2, 0, 2])
        XCTAssertEqual(failing.feedback, "majority: 2 pass, 0 fail, 2 error\nc: gave no verdict: timed out\nd: gave no verdict: timed out")
        XCTAssertEqual(failing.score, 0.4, "the errors count 0 in the mean")
        let abstaining = JuryDecision(jury(.majority, .abstain), votes: votes + [error("d")])
        XCTAssertEqual(abstaining.outcome, .pass)
        XCTAssertEqual(abstaining.score, 0.8, "the mean of the counted votes")
        XCTAssertEqual(
            abstaining.feedback,
            "majority: 2 pass, 0 fail, 2 error\na: good\nb: good\nc: gave no verdict: timed out\nd: gave no verdict: timed out",
            "no dissenter: every juror")

        XCTAssertEqual(JuryDecision(jury(.unanimous), votes: votes).outcome, .fail)
        XCTAssertEqual(JuryDecision(jury(.unanimous, .abstain), votes: votes).outcome, .pass)
        XCTAssertEqual(JuryDecision(jury(.unanimous, .abstain), votes: [error("a")]).outcome, .fail, "no counted vote fails")
        XCTAssertEqual(JuryDecision(jury(.majority, .abstain), votes: [error("a")]).outcome, .fail)
        XCTAssertEqual(JuryDecision(jury(.meanScore(atLeast: 0), .abstain), votes: [error("a")]).outcome, .fail)
        XCTAssertEqual(JuryDecision(jury(.meanScore(atLeast: 0.5)), votes: [pass("a", 0.9), error("b")]).outcome, .fail, "0.45")
        XCTAssertEqual(JuryDecision(jury(.meanScore(atLeast: 0.5), .abstain), votes: [pass("a", 0.9), error("b")]).outcome, .pass)
    }

    func testTheMeanScoreIsComparedRoundedAtItsThreshold() {
        // 0.7 + 0.7 + 0.7 is 2.0999999999999996 in binary; the mean still reaches 0.7.
        let exact = JuryDecision(jury(.meanScore(atLeast: 0.7)), votes: [fail("a", 0.7), fail("b", 0.7), fail("c", 0.7)])
        XCTAssertEqual(exact.score, 0.7)
        XCTAssertEqual(exact.outcome, .pass, "the rule decides, not the jurors' verdicts")
        XCTAssertEqual(exact.feedback, "mean_score >= 0.7: 0 pass, 3 fail, 0 error\na: bad\nb: bad\nc: bad")
        let short = JuryDecision(jury(.meanScore(atLeast: 0.7)), votes: [pass("a", 0.9), pass("b", 0.5), pass("c", 0.6)])
        XCTAssertEqual(short.score, 0.666667)
        XCTAssertEqual(short.outcome, .fail)
        XCTAssertEqual(short.feedback, "mean_score >= 0.7: 3 pass, 0 fail, 0 error\na: good\nb: good\nc: good", "no dissenter: every juror")
    }

    func testTheVerdictCarriesTheDissentersSuggestionsAndFailureModes() {
        let decision = JuryDecision(
            jury(.unanimous),
            votes: [
                pass("a", 0.9), fail("b", 0.2, "no date", suggestion: "add it", modes: ["incomplete", "format"]),
                fail("c", 0.3, "too long", suggestion: "cut it", modes: ["format"]),
            ])
        XCTAssertEqual(decision.verdict.outcome, .fail)
        XCTAssertEqual(decision.verdict.score, decision.score)
        XCTAssertEqual(decision.verdict.feedback, "unanimous: 1 pass, 2 fail, 0 error\nb: no date\nc: too long")
        XCTAssertEqual(decision.verdict.suggestion, "b: add it\nc: cut it")
        XCTAssertEqual(decision.verdict.failureModes, ["incomplete", "format"])
        XCTAssertNil(decision.verdict.feasibility)
    }

    func testTheConfidenceIsTheLowestStated() {
        var sure = pass("a", 0.9)
        sure.verdict?.confidence = 0.9
        var unsure = pass("b", 0.8)
        unsure.verdict?.confidence = 0.4
        XCTAssertEqual(JuryDecision(jury(.majority), votes: [sure, unsure, pass("c", 0.7)]).verdict.confidence, 0.4)
        XCTAssertNil(JuryDecision(jury(.majority), votes: [pass("c", 0.7)]).verdict.confidence)
    }

    func testJurorNames() {
        XCTAssertTrue(Juror.isValidName("a.b-c_1"))
        XCTAssertFalse(Juror.isValidName(""))
        XCTAssertFalse(Juror.isValidName("a b"))
        XCTAssertFalse(Juror.isValidName("é"))
        XCTAssertFalse(Juror.isValidName(String(repeating: "a", count: 65)))
        XCTAssertTrue(Juror.isValidName(String(repeating: "a", count: 64)))
    }
}
