import Store
import XCTest

@testable import Agents

final class ScriptedBackendTests: XCTestCase {
    private func context(
        _ role: Role, step: Int? = nil, attempt: Int? = nil, replan: Int = 0, reask: Int = 0, feedback: Bool = false,
        goal: String = "the goal"
    ) -> CallContext {
        CallContext(jobID: "J1", role: role, step: step, attempt: attempt, replan: replan, reask: reask, hasFeedback: feedback, goal: goal)
    }

    /// The reply text for `c`, or the error message prefixed with "error: ".
    private func reply(_ rules: [ScriptRule], for c: CallContext) -> String {
        let backend = ScriptedBackend(script: Script(rules: [c.role: rules]))
        do {
            return try backend.reply(to: c).content
        } catch {
            return "error: \(error.message)"
        }
    }

    private func raw(
        _ text: String, steps: Set<Int>? = nil, attempts: Set<Int>? = nil, replans: Set<Int>? = nil,
        reasks: Set<Int>? = nil, feedback: Bool? = nil
    ) -> ScriptRule {
        ScriptRule(steps: steps, attempts: attempts, replans: replans, reasks: reasks, feedback: feedback, reply: .raw(text))
    }

    // MARK: Matching

    func testRuleWithoutConditionsMatchesEveryCall() {
        let rules = [raw("any")]
        XCTAssertEqual(reply(rules, for: context(.actor, step: 3, attempt: 2, replan: 1, reask: 1, feedback: true)), "any")
        XCTAssertEqual(reply(rules, for: context(.actor)), "any")
    }

    func testMatchesByStep() {
        let rules = [raw("one or two", steps: [1, 2]), raw("other")]
        XCTAssertEqual(reply(rules, for: context(.actor, step: 1, attempt: 0)), "one or two")
        XCTAssertEqual(reply(rules, for: context(.actor, step: 2, attempt: 0)), "one or two")
        XCTAssertEqual(reply(rules, for: context(.actor, step: 0, attempt: 0)), "other")
        // A call without a step (planner, verifier) never matches a step condition.
        XCTAssertEqual(reply(rules, for: context(.actor)), "other")
        XCTAssertEqual(
            reply([raw("step 0", steps: [0])], for: context(.planner)), "error: scripted model has no reply for planner")
    }

    func testMatchesByAttempt() {
        let rules = [raw("first", attempts: [0]), raw("later")]
        XCTAssertEqual(reply(rules, for: context(.critic, step: 0, attempt: 0)), "first")
        XCTAssertEqual(reply(rules, for: context(.critic, step: 0, attempt: 1)), "later")
        XCTAssertEqual(reply(rules, for: context(.critic, step: 0, attempt: nil)), "later")
    }

    func testMatchesByReplan() {
        let rules = [raw("original", replans: [0]), raw("replanned")]
        XCTAssertEqual(reply(rules, for: context(.planner, replan: 0)), "original")
        XCTAssertEqual(reply(rules, for: context(.planner, replan: 1)), "replanned")
        XCTAssertEqual(reply(rules, for: context(.planner, replan: 2)), "replanned")
    }

    func testMatchesByReask() {
        let rules = [raw("not json", reasks: [0]), raw(#"{"verdict":"pass"}"#, reasks: [1, 2])]
        XCTAssertEqual(reply(rules, for: context(.critic, step: 0, attempt: 0, reask: 0)), "not json")
        XCTAssertEqual(reply(rules, for: context(.critic, step: 0, attempt: 0, reask: 1)), #"{"verdict":"pass"}"#)
        XCTAssertEqual(
            reply(rules, for: context(.critic, step: 0, attempt: 0, reask: 3)),
            "error: scripted model has no reply for critic at step 1, attempt 1 (no rule matches step: 0, attempt: 0)")
    }

    func testMatchesByFeedback() {
        let rules = [raw("revised", feedback: true), raw("first try", feedback: false)]
        XCTAssertEqual(reply(rules, for: context(.actor, step: 0, attempt: 1, feedback: true)), "revised")
        XCTAssertEqual(reply(rules, for: context(.actor, step: 0, attempt: 0, feedback: false)), "first try")
    }

    func testEveryConditionMustMatch() {
        let rule = raw("specific", steps: [1], attempts: [0], replans: [0], reasks: [0], feedback: false)
        let rules = [rule, raw("fallback")]
        XCTAssertEqual(reply(rules, for: context(.critic, step: 1, attempt: 0)), "specific")
        XCTAssertEqual(reply(rules, for: context(.critic, step: 2, attempt: 0)), "fallback")
        XCTAssertEqual(reply(rules, for: context(.critic, step: 1, attempt: 1)), "fallback")
        XCTAssertEqual(reply(rules, for: context(.critic, step: 1, attempt: 0, replan: 1)), "fallback")
        XCTAssertEqual(reply(rules, for: context(.critic, step: 1, attempt: 0, reask: 1)), "fallback")
        XCTAssertEqual(reply(rules, for: context(.critic, step: 1, attempt: 0, feedback: true)), "fallback")
        XCTAssertTrue(rule.matches(context(.critic, step: 1, attempt: 0)))
        XCTAssertFalse(rule.matches(context(.critic, step: 1, attempt: nil)))
    }

    func testFirstMatchingRuleWins() {
        let rules = [raw("general"), raw("specific", steps: [0])]
        XCTAssertEqual(reply(rules, for: context(.actor, step: 0, attempt: 0)), "general")
        let ordered = [raw("specific", steps: [0]), raw("general")]
        XCTAssertEqual(reply(ordered, for: context(.actor, step: 0, attempt: 0)), "specific")
        XCTAssertEqual(reply(ordered, for: context(.actor, step: 1, attempt: 0)), "general")
    }

    func testRulesAreKeptPerRole() {
        let backend = ScriptedBackend(script: Script(rules: [.actor: [raw("actor reply")], .critic: [raw("critic reply")]]))
        XCTAssertEqual(try backend.reply(to: context(.actor, step: 0, attempt: 0)).content, "actor reply")
        XCTAssertEqual(try backend.reply(to: context(.critic, step: 0, attempt: 0)).content, "critic reply")
        XCTAssertThrowsError(try backend.reply(to: context(.verifier))) { error in
            XCTAssertEqual(error as? ModelCallError, ModelCallError(.badReply, "scripted model has no reply for verifier"))
        }
    }

    func testNoMatchingRuleIsABadReplyError() {
        let backend = ScriptedBackend(script: Script(rules: [.critic: [raw("x", steps: [5])]]))
        XCTAssertThrowsError(try backend.reply(to: context(.critic, step: 2, attempt: 1))) { error in
            let callError = error as? ModelCallError
            XCTAssertEqual(callError?.kind, .badReply)
            XCTAssertEqual(
                callError?.message, "scripted model has no reply for critic at step 3, attempt 2 (no rule matches step: 2, attempt: 1)")
        }
        let empty = ScriptedBackend(script: Script(rules: [:]))
        XCTAssertThrowsError(try empty.reply(to: context(.planner)))
    }

    // MARK: Replies and templates

    func testRawReplyIsSentExactly() {
        let text = "  {not json}\n\"quoted\" \\ \u{1}"
        XCTAssertEqual(reply([raw(text)], for: context(.actor, step: 0, attempt: 0)), text)
    }

    func testJSONReplyIsEncodedCompactly() {
        let rule = ScriptRule(reply: .json(["verdict": "pass", "score": 0.9, "feedback": "ok", "modes": [], "n": nil]))
        XCTAssertEqual(
            reply([rule], for: context(.critic, step: 0, attempt: 0)),
            #"{"verdict":"pass","score":0.9,"feedback":"ok","modes":[],"n":null}"#)
    }

    func testTemplatesInRawText() {
        let rule = raw("step {step}, attempt {attempt}, replan {replan}, goal {goal}; again {step}")
        XCTAssertEqual(
            reply([rule], for: context(.actor, step: 2, attempt: 1, replan: 3, goal: "ship it")),
            "step 2, attempt 1, replan 3, goal ship it; again 2")
        // No step or attempt: empty.
        XCTAssertEqual(reply([rule], for: context(.planner, replan: 0, goal: "g")), "step , attempt , replan 0, goal g; again ")
        // Counted from 1, as people read them; empty without a step or attempt.
        let numbers = raw("step {step_number} of the plan, attempt {attempt_number}; index {step}")
        XCTAssertEqual(reply([numbers], for: context(.actor, step: 2, attempt: 0)), "step 3 of the plan, attempt 1; index 2")
        XCTAssertEqual(reply([numbers], for: context(.planner)), "step  of the plan, attempt ; index ")
        // Unknown placeholders and lone braces stay.
        XCTAssertEqual(reply([raw("{nope} {step")], for: context(.actor, step: 1, attempt: 0)), "{nope} {step")
    }

    func testTemplatesInJSONStringsButNotKeys() {
        let rule = ScriptRule(
            reply: .json([
                "output": "step {step} attempt {attempt}",
                "{step}": ["nested {replan}", ["deep": "{goal}"], 7, true],
            ]))
        XCTAssertEqual(
            reply([rule], for: context(.actor, step: 4, attempt: 2, replan: 1, goal: "g")),
            #"{"output":"step 4 attempt 2","{step}":["nested 1",{"deep":"g"},7,true]}"#)
    }

    func testGoalIsFilledBeforeEncodingSoQuotesStayValidJSON() throws {
        let goal = "say \"hi\"\nand {step} \\ done"
        let rule = ScriptRule(reply: .json(["output": "goal: {goal}"]))
        let text = reply([rule], for: context(.actor, step: 0, attempt: 0, goal: goal))
        // The goal's own "{step}" is not filled in: it is text, not template.
        XCTAssertEqual(try JSON.parse(text)["output"]?.stringValue, "goal: " + goal)
        XCTAssertEqual(try ActorReply.parse(text), "goal: " + goal)
    }

    func testCompleteUsesTheRequestContext() async throws {
        let backend = ScriptedBackend(script: Script(rules: [.actor: [raw("step {step}")]]))
        let request = ModelRequest(
            model: "script", messages: [ChatMessage(role: "user", content: "ignored")], temperature: 0.2, responseSchema: nil,
            context: context(.actor, step: 6, attempt: 0))
        let reply = try await backend.complete(request)
        XCTAssertEqual(reply, ModelReply(content: "step 6"))
    }
}
