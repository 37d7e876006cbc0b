import Store
import XCTest

@testable import Agents

final class VerdictTests: XCTestCase {
    /// The error `text` is rejected with, after checking a critic would never read it as a pass.
    private func verdictError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let verdict = try Verdict.parse(text)
            XCTFail("accepted \(text) as \(verdict)", file: file, line: line)
            return ""
        } catch {
            guard case .invalid = Agent.interpret(text, role: .critic) else {
                XCTFail("the critic's interpretation of \(text) is not .invalid", file: file, line: line)
                return error.message
            }
            return error.message
        }
    }

    private func assertVerdictError(
        _ text: String, mentions fragments: String..., file: StaticString = #filePath, line: UInt = #line
    ) {
        let message = verdictError(text, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(message.contains(fragment), "\"\(message)\" should mention \(fragment)", file: file, line: line)
        }
    }

    // MARK: Valid verdicts

    func testMinimalVerdict() throws {
        XCTAssertEqual(
            try Verdict.parse(#"{"verdict":"pass","score":0.9,"feedback":"ok"}"#),
            Verdict(outcome: .pass, score: 0.9, feedback: "ok"))
        XCTAssertEqual(
            try Verdict.parse(#" {"feedback": "", "score": 0, "verdict": "fail"} "#),
            Verdict(outcome: .fail, score: 0, feedback: ""))
        XCTAssertEqual(try Verdict.parse(#"{"verdict":"pass","score":1,"feedback":"x"}"#).score, 1)
    }

    func testVerdictWithEveryOptionalField() throws {
        let text = #"""
            {"verdict": "fail", "score": 0.35, "feedback": "missing detail", "suggestion": "add numbers",
             "first_error": "line 2", "confidence": 0.75, "failure_modes": ["incomplete", "vague"]}
            """#
        let expected = Verdict(
            outcome: .fail, score: 0.35, feedback: "missing detail", suggestion: "add numbers", firstError: "line 2",
            confidence: 0.75, failureModes: ["incomplete", "vague"])
        XCTAssertEqual(try Verdict.parse(text), expected)
        XCTAssertEqual(Agent.interpret(text, role: .critic), .verdict(expected))
    }

    func testNullOptionalFieldsAreAbsentAndUnknownFieldsAreIgnored() throws {
        let verdict = try Verdict.parse(
            #"""
            {"verdict":"pass","score":0.5,"feedback":"ok","suggestion":null,"first_error":null,
             "confidence":null,"failure_modes":null,"extra":{"anything":[1]}}
            """#)
        XCTAssertEqual(verdict, Verdict(outcome: .pass, score: 0.5, feedback: "ok"))
        XCTAssertEqual(try Verdict.parse(#"{"verdict":"fail","score":0.5,"feedback":"ok","failure_modes":[]}"#).failureModes, [])
    }

    func testJSONRoundTrip() throws {
        let full = Verdict(
            outcome: .fail, score: 0.25, feedback: "f \"q\"", suggestion: "s", firstError: "e", confidence: 1,
            failureModes: ["a"])
        XCTAssertEqual(try Verdict.parse(full.json.encoded), full)
        let minimal = Verdict(outcome: .pass, score: 1, feedback: "ok")
        XCTAssertEqual(minimal.json.encoded, #"{"verdict":"pass","score":1,"feedback":"ok"}"#)
        XCTAssertEqual(try Verdict.parse(minimal.json.encoded), minimal)
    }

    // MARK: Invalid verdicts

    func testNotJSON() {
        assertVerdictError("not json", mentions: "not JSON")
        assertVerdictError("", mentions: "not JSON")
        assertVerdictError("pass", mentions: "not JSON")
        assertVerdictError("```json\n{\"verdict\":\"pass\",\"score\":1,\"feedback\":\"ok\"}\n``` and more", mentions: "not JSON")
        assertVerdictError(#"{"verdict":"pass","score":1,"feedback":"ok"} and some prose"#, mentions: "not JSON")
    }

    func testACodeFenceAndRawControlCharactersInStringsAreForgiven() throws {
        let fenced = try Verdict.parse("```json\n{\"verdict\":\"pass\",\"score\":1,\"feedback\":\"ok\"}\n```")
        XCTAssertEqual(fenced.outcome, .pass)
        // A constrained decoder wrote a raw newline and tab inside the feedback string.
        let raw = try Verdict.parse("{ \"verdict\": \"fail\", \"score\": 0.2, \"feedback\": \"line one\nline\ttwo\" }")
        XCTAssertEqual(raw.feedback, "line one\nline\ttwo")
        // Outside strings nothing is repaired.
        assertVerdictError("{\"verdict\": \"pass\", \"score\": 1, \"feedback\": \"ok\",}", mentions: "not JSON")
    }

    func testNotAnObject() {
        assertVerdictError(#"["pass"]"#, mentions: "object", "array")
        assertVerdictError(#""pass""#, mentions: "object", "string")
        assertVerdictError("true", mentions: "object", "boolean")
        assertVerdictError("null", mentions: "object", "null")
        assertVerdictError("1", mentions: "object", "number")
    }

    func testVerdictField() {
        assertVerdictError(#"{"score":1,"feedback":"ok"}"#, mentions: "'verdict'", "missing")
        assertVerdictError(#"{"verdict":"maybe","score":1,"feedback":"ok"}"#, mentions: "'verdict'", "maybe")
        assertVerdictError(#"{"verdict":"PASS","score":1,"feedback":"ok"}"#, mentions: "'verdict'")
        assertVerdictError(#"{"verdict":" pass","score":1,"feedback":"ok"}"#, mentions: "'verdict'")
        assertVerdictError(#"{"verdict":true,"score":1,"feedback":"ok"}"#, mentions: "'verdict'")
        assertVerdictError(#"{"verdict":null,"score":1,"feedback":"ok"}"#, mentions: "'verdict'")
        assertVerdictError(#"{"Verdict":"pass","score":1,"feedback":"ok"}"#, mentions: "'verdict'")
    }

    func testScoreField() {
        assertVerdictError(#"{"verdict":"pass","feedback":"ok"}"#, mentions: "'score'", "missing")
        assertVerdictError(#"{"verdict":"pass","score":null,"feedback":"ok"}"#, mentions: "'score'")
        assertVerdictError(#"{"verdict":"pass","score":1.5,"feedback":"ok"}"#, mentions: "'score'", "1.5")
        assertVerdictError(#"{"verdict":"pass","score":-0.1,"feedback":"ok"}"#, mentions: "'score'")
        assertVerdictError(#"{"verdict":"pass","score":"high","feedback":"ok"}"#, mentions: "'score'", "high")
        assertVerdictError(#"{"verdict":"pass","score":"0.9","feedback":"ok"}"#, mentions: "'score'")
        assertVerdictError(#"{"verdict":"pass","score":[1],"feedback":"ok"}"#, mentions: "'score'")
    }

    func testFeedbackField() {
        assertVerdictError(#"{"verdict":"pass","score":1}"#, mentions: "'feedback'", "missing")
        assertVerdictError(#"{"verdict":"pass","score":1,"feedback":null}"#, mentions: "'feedback'", "null")
        assertVerdictError(#"{"verdict":"pass","score":1,"feedback":7}"#, mentions: "'feedback'", "number")
        assertVerdictError(#"{"verdict":"pass","score":1,"feedback":["ok"]}"#, mentions: "'feedback'", "array")
    }

    func testOptionalFieldsMustHaveTheirTypes() {
        assertVerdictError(#"{"verdict":"pass","score":1,"feedback":"ok","suggestion":3}"#, mentions: "'suggestion'", "number")
        assertVerdictError(#"{"verdict":"pass","score":1,"feedback":"ok","first_error":{}}"#, mentions: "'first_error'", "object")
        assertVerdictError(#"{"verdict":"pass","score":1,"feedback":"ok","confidence":2}"#, mentions: "'confidence'")
        assertVerdictError(#"{"verdict":"pass","score":1,"feedback":"ok","confidence":"sure"}"#, mentions: "'confidence'")
    }

    func testFailureModesMustBeStrings() {
        assertVerdictError(#"{"verdict":"fail","score":0,"feedback":"x","failure_modes":[1,2]}"#, mentions: "'failure_modes'")
        assertVerdictError(#"{"verdict":"fail","score":0,"feedback":"x","failure_modes":["a",null]}"#, mentions: "'failure_modes'")
        assertVerdictError(#"{"verdict":"fail","score":0,"feedback":"x","failure_modes":"vague"}"#, mentions: "'failure_modes'")
    }

    func testMessagesStartWithWhatWasExpected() {
        XCTAssertTrue(verdictError("nope").hasPrefix("verdict: "))
        XCTAssertTrue(verdictError(#"{"verdict":"pass"}"#).hasPrefix("verdict: "))
    }

    func testLongBadRepliesAreShortenedInTheMessage() {
        let long = String(repeating: "x", count: 10_000)
        XCTAssertLessThan(verdictError(long).count, 300)
        XCTAssertLessThan(verdictError(#"{"verdict":""# + long + #"","score":1,"feedback":"ok"}"#).count, 300)
    }

    // MARK: Other roles' replies

    func testPlanReply() throws {
        XCTAssertEqual(try PlanReply.parse(#"{"steps":["a","b"]}"#), ["a", "b"])
        XCTAssertEqual(Agent.interpret(#"{"steps":["only"],"note":1}"#, role: .planner), .plan(["only"]))
        let invalid: [(String, String)] = [
            ("not json", "not JSON"),
            (#"["a"]"#, "object"),
            (#"{}"#, "'steps'"),
            (#"{"steps":"a, b"}"#, "'steps'"),
            (#"{"steps":[]}"#, "empty"),
            (#"{"steps":["a", 2]}"#, "steps[1]"),
            (#"{"steps":["a", ""]}"#, "steps[1]"),
            (#"{"steps":[null]}"#, "steps[0]"),
            ("{\"steps\":[" + (0...PlanReply.maxSteps).map { "\"s\($0)\"" }.joined(separator: ",") + "]}", "more than 100"),
        ]
        for (text, fragment) in invalid {
            do {
                let steps = try PlanReply.parse(text)
                XCTFail("accepted \(text.prefix(40)) as \(steps)")
            } catch {
                XCTAssertTrue(error.message.hasPrefix("plan: "), error.message)
                XCTAssertTrue(error.message.contains(fragment), "\"\(error.message)\" should mention \(fragment)")
            }
            guard case .invalid = Agent.interpret(text, role: .planner) else { return XCTFail("planner accepted \(text.prefix(40))") }
        }
        let hundred = "{\"steps\":[" + (0..<PlanReply.maxSteps).map { "\"s\($0)\"" }.joined(separator: ",") + "]}"
        XCTAssertEqual(try PlanReply.parse(hundred).count, 100)
    }

    func testActorReplyFromJSON() throws {
        XCTAssertEqual(try ActorReply.parse(#"{"output":"done"}"#), "done")
        XCTAssertEqual(try ActorReply.parse(#"{"output":"","other":1}"#), "")
        // A structured output is kept as its JSON text.
        XCTAssertEqual(try ActorReply.parse(#"{"output":{"b":1,"a":[true]}}"#), #"{"b":1,"a":[true]}"#)
        XCTAssertEqual(try ActorReply.parse(#"{"output":42}"#), "42")
        XCTAssertThrowsError(try ActorReply.parse(#"{"result":"done"}"#)) { error in
            XCTAssertTrue((error as? ReplyError)?.message.contains("'output'") ?? false, "\(error)")
        }
    }

    func testActorReplyAsPlainText() throws {
        XCTAssertEqual(try ActorReply.parse("Here is the summary."), "Here is the summary.")
        XCTAssertEqual(try ActorReply.parse("  spaced\n"), "  spaced\n")
        // JSON that is not an object is text too.
        XCTAssertEqual(try ActorReply.parse("[1,2]"), "[1,2]")
        XCTAssertEqual(try ActorReply.parse(#""quoted""#), #""quoted""#)
        XCTAssertEqual(try ActorReply.parse(#"{"output": broken"#), #"{"output": broken"#)
        XCTAssertEqual(Agent.interpret("text", role: .actor), .output("text"))
    }

    func testEmptyActorReplyIsAnError() {
        for text in ["", " ", "\n\t \r\n"] {
            XCTAssertThrowsError(try ActorReply.parse(text)) { error in
                XCTAssertEqual((error as? ReplyError)?.message, "actor: empty reply")
            }
            XCTAssertEqual(Agent.interpret(text, role: .actor), .invalid(ReplyError("actor: empty reply")))
        }
    }

    func testVerifierReply() throws {
        let yes = try VerifierReply.parse(#"{"verified":true}"#)
        XCTAssertTrue(yes.verified)
        XCTAssertNil(yes.reason)
        let no = try VerifierReply.parse(#"{"verified":false,"reason":"tests fail"}"#)
        XCTAssertFalse(no.verified)
        XCTAssertEqual(no.reason, "tests fail")
        XCTAssertEqual(
            Agent.interpret(#"{"verified":true,"reason":"ok"}"#, role: .verifier), .verification(verified: true, reason: "ok"))
        let invalid: [(String, String)] = [
            ("yes", "not JSON"),
            ("true", "object"),
            (#"{}"#, "'verified'"),
            (#"{"verified":"true"}"#, "'verified'"),
            (#"{"verified":1}"#, "'verified'"),
            (#"{"verified":null}"#, "'verified'"),
        ]
        for (text, fragment) in invalid {
            do {
                let result = try VerifierReply.parse(text)
                XCTFail("accepted \(text) as \(result)")
            } catch {
                XCTAssertTrue(error.message.hasPrefix("verification: "), error.message)
                XCTAssertTrue(error.message.contains(fragment), "\"\(error.message)\" should mention \(fragment)")
            }
            guard case .invalid = Agent.interpret(text, role: .verifier) else { return XCTFail("verifier accepted \(text)") }
        }
    }

    func testVerifierReasonThatIsNotAStringIsDropped() throws {
        // Documents the behaviour: only `verified` decides; a reason of another type is ignored.
        let result = try VerifierReply.parse(#"{"verified":true,"reason":5}"#)
        XCTAssertTrue(result.verified)
        XCTAssertNil(result.reason)
    }
}

/// These tests are about the shape every record format reads (`ReplyRules.shapeOnly`); what the
/// strict rules of format 3 add is in `StrictRepliesTests`.
extension Verdict {
    fileprivate static func parse(_ text: String) throws(ReplyError) -> Verdict { try parse(text, rules: .shapeOnly) }
}

extension PlanReply {
    fileprivate static func parse(_ text: String) throws(ReplyError) -> [String] { try parse(text, rules: .shapeOnly) }
}

extension VerifierReply {
    fileprivate static func parse(_ text: String) throws(ReplyError) -> (verified: Bool, reason: String?) {
        try parse(text, rules: .shapeOnly)
    }
}

extension Agent {
    fileprivate static func interpret(_ text: String, role: Role) -> Interpretation { interpret(text, role: role, rules: .shapeOnly) }
}
