import Store
import XCTest

@testable import Agents

/// What record format 3's strict rules add to reading a reply: a verdict that contradicts itself or
/// says nothing is invalid (never a pass), optional texts that say nothing are dropped, and the
/// prompts describe each field instead of showing an example to copy.
final class StrictRepliesTests: XCTestCase {
    private let strict = ReplyRules.strict(passScore: 0.5)

    private func refused(_ text: String, _ rules: ReplyRules? = nil, file: StaticString = #filePath, line: UInt = #line) -> String {
        guard case let .invalid(error) = Agent.interpret(text, role: .critic, rules: rules ?? strict) else {
            XCTFail("accepted \(text)", file: file, line: line)
            return ""
        }
        return error.message
    }

    func testAPassScoredBelowThePassThresholdIsInvalid() {
        let message = refused(#"{"verdict":"pass","score":0,"feedback":"success"}"#)
        XCTAssertEqual(
            message,
            #"verdict: "pass" with score 0, below the pass threshold 0.5 (policy.pass_score): a pass scores at least 0.5, otherwise the verdict is "fail""#
        )
        XCTAssertTrue(refused(#"{"verdict":"pass","score":0.7,"feedback":"fine"}"#, .strict(passScore: 0.8)).contains("0.7, below"))
        // At the threshold it stands; the shape alone (formats 1 and 2) never looked at the score.
        XCTAssertEqual(
            try Verdict.parse(#"{"verdict":"pass","score":0.5,"feedback":"fine"}"#, rules: strict).outcome, .pass)
        XCTAssertEqual(try Verdict.parse(#"{"verdict":"pass","score":0,"feedback":"success"}"#, rules: .shapeOnly).outcome, .pass)
    }

    func testAFailWithAPerfectScoreIsInvalid() {
        XCTAssertEqual(
            refused(#"{"verdict":"fail","score":1,"feedback":"wrong total"}"#),
            #"verdict: "fail" with the perfect score 1: a fail scores below 1, otherwise the verdict is "pass""#)
        XCTAssertEqual(try Verdict.parse(#"{"verdict":"fail","score":0.99,"feedback":"wrong total"}"#, rules: strict).outcome, .fail)
    }

    func testFeedbackThatRepeatsAPlaceholderIsInvalid() {
        for feedback in ["...", "…", "", "  ", "string", "<feedback>", "Feedback", "your feedback", "TODO", "-"] {
            let text = JSON.object([("verdict", "fail"), ("score", 0.2), ("feedback", .string(feedback))]).encoded
            let message = refused(text)
            XCTAssertTrue(message.hasPrefix("verdict: field 'feedback' says nothing"), "\(feedback): \(message)")
        }
        // A short real remark is not a placeholder.
        XCTAssertEqual(try Verdict.parse(#"{"verdict":"pass","score":0.9,"feedback":"ok"}"#, rules: strict).feedback, "ok")
    }

    func testOptionalTextsThatSayNothingAreDroppedAndFeasibilityIsRead() throws {
        let verdict = try Verdict.parse(
            #"""
            {"verdict":"fail","score":0.2,"feedback":"the total is wrong","suggestion":"...","first_error":"",
             "failure_modes":["string","arithmetic"],"feasibility":0.1}
            """#, rules: strict)
        XCTAssertNil(verdict.suggestion)
        XCTAssertNil(verdict.firstError)
        XCTAssertEqual(verdict.failureModes, ["arithmetic"])
        XCTAssertEqual(verdict.feasibility, 0.1)
        XCTAssertTrue(refused(#"{"verdict":"fail","score":0.2,"feedback":"x","feasibility":2}"#).contains("'feasibility'"))
        // Formats 1 and 2 never read feasibility.
        XCTAssertNil(try Verdict.parse(#"{"verdict":"fail","score":0.2,"feedback":"x","feasibility":0.1}"#, rules: .shapeOnly).feasibility)
    }

    func testAVerifierReasonAndAPlanStepThatSayNothingAreInvalid() {
        guard case let .invalid(error) = Agent.interpret(#"{"verified":true,"reason":"..."}"#, role: .verifier, rules: strict) else {
            return XCTFail("a placeholder reason was accepted")
        }
        XCTAssertTrue(error.message.hasPrefix("verification: field 'reason' says nothing"), error.message)
        XCTAssertEqual(
            Agent.interpret(#"{"verified":true}"#, role: .verifier, rules: strict), .verification(verified: true, reason: nil))
        guard case let .invalid(plan) = Agent.interpret(#"{"steps":["gather facts","..."]}"#, role: .planner, rules: strict) else {
            return XCTFail("a placeholder step was accepted")
        }
        XCTAssertTrue(plan.message.hasPrefix("plan: steps[1] says nothing"), plan.message)
        XCTAssertEqual(
            Agent.interpret(#"{"steps":["gather facts","..."]}"#, role: .planner, rules: .shapeOnly), .plan(["gather facts", "..."]))
    }

    func testStrictPromptsDescribeEveryFieldAndShowNothingToCopy() throws {
        var policy = Policy()
        policy.passScore = 0.6
        let plan = Plan(
            name: "p", models: ["m": ModelSpec(backend: .scripted(Script(rules: [:])))],
            planner: RoleSpec(model: "m", prompt: "PLAN"), actor: RoleSpec(model: "m", prompt: "ACT"),
            critic: .model(RoleSpec(model: "m", prompt: "JUDGE")), verifier: .model(RoleSpec(model: "m", prompt: "VERIFY")), steps: nil,
            policy: policy)
        let prompts = Prompts(plan: plan, jobID: "J", goal: "g", inputs: [:], rules: .strict(passScore: 0.6))
        let critic = prompts.critic(steps: ["s"], index: 0, attempt: 0, replan: 0, output: "o")
        let system = critic.messages[0].content
        XCTAssertTrue(
            system.hasPrefix("JUDGE\nAnswer with one JSON object with these fields:\n- verdict (required, \"pass\" or \"fail\"): "), system)
        for field in [
            "score (required, a number from 0 to 1)", "feedback (required, text)", "suggestion (optional, text)", "first_error",
            "failure_modes", "confidence", "feasibility (optional, a number from 0 to 1)",
        ] {
            XCTAssertTrue(system.contains("- " + field), "\(field) in \(system)")
        }
        XCTAssertTrue(system.contains("a pass scores at least 0.6"), system)
        let requests = [
            critic, prompts.planner(replan: 0, context: nil), prompts.verifier(spec: plan.roleSpec(.verifier)!, results: [], replan: 0),
        ]
        for request in requests {
            XCTAssertFalse(request.messages[0].content.contains("..."), "nothing to copy: \(request.messages[0].content)")
            XCTAssertFalse(request.messages[0].content.contains("Answer with JSON: {"), request.messages[0].content)
        }
        // The schema carries each field's meaning as its description.
        let schema = try XCTUnwrap(critic.responseSchema)
        XCTAssertEqual(schema["required"], ["verdict", "score", "feedback"])
        XCTAssertEqual(schema["properties"]?["feasibility"]?["maximum"], 1)
        XCTAssertTrue(schema["properties"]?["score"]?["description"]?.stringValue?.contains("at least 0.6") == true)

        // Formats 1 and 2 keep the example they were recorded with.
        let recorded = Prompts(plan: plan, jobID: "J", goal: "g", inputs: [:], rules: .shapeOnly)
        XCTAssertEqual(
            recorded.critic(steps: ["s"], index: 0, attempt: 0, replan: 0, output: "o").messages[0].content,
            #"JUDGE\#nAnswer with JSON: {"verdict": "pass" or "fail", "score": 0..1, "feedback": "...", "suggestion": "..."}."#)
        XCTAssertEqual(recorded.planner(replan: 0, context: nil).messages[0].content, #"PLAN\#nAnswer with JSON: {"steps": ["..."]}."#)
        XCTAssertEqual(recorded.planner(replan: 0, context: nil).responseSchema, PlanReply.schema(.shapeOnly))
    }

    func testTheRulesFollowTheRecordFormat() {
        var policy = Policy()
        policy.passScore = 0.7
        XCTAssertEqual(ReplyRules(format: 1, policy: policy), .shapeOnly)
        XCTAssertEqual(ReplyRules(format: 2, policy: policy), .shapeOnly)
        XCTAssertEqual(ReplyRules(format: 3, policy: policy), .strict(passScore: 0.7))
    }
}
