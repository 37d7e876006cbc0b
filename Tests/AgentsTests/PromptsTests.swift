import Store
import XCTest

@testable import Agents

final class PromptsTests: XCTestCase {
    private func plan(actorTemperature: Double = 0.5, step: Double = 0.2, planner: Bool = true) -> Plan {
        var policy = Policy()
        policy.retryTemperatureStep = step
        return Plan(
            name: "p",
            models: ["m": ModelSpec(backend: .scripted(Script(rules: [:])))],
            planner: planner ? RoleSpec(model: "m", prompt: "PLANNER PROMPT", temperature: 0.1) : nil,
            actor: RoleSpec(model: "m", prompt: "ACTOR PROMPT", temperature: actorTemperature),
            critic: .model(RoleSpec(model: "m", prompt: "CRITIC PROMPT", temperature: 0)),
            verifier: .model(RoleSpec(model: "m", prompt: "VERIFIER PROMPT", temperature: 0.3)),
            steps: nil, policy: policy)
    }

    private func prompts(_ plan: Plan? = nil, inputs: JSON = .object([]), rules: ReplyRules = .shapeOnly) -> Prompts {
        Prompts(plan: plan ?? self.plan(), jobID: "J1", goal: "write the notes", inputs: inputs, rules: rules)
    }

    private let steps = ["gather facts", "draft", "polish"]

    private func user(_ request: ModelRequest) -> String {
        request.messages.last { $0.role == "user" }?.content ?? ""
    }

    private func occurrences(of fragment: String, in text: String) -> Int {
        text.components(separatedBy: fragment).count - 1
    }

    // MARK: Actor

    func testFirstAttemptHasNoFeedback() {
        let request = prompts().actor(steps: steps, index: 1, attempt: 0, replan: 0, rejected: [])
        XCTAssertEqual(request.messages.map(\.role), ["system", "user"])
        XCTAssertEqual(request.messages[0].content, "ACTOR PROMPT")
        XCTAssertEqual(user(request), "Goal: write the notes\nStep 2 of 3: draft")
        XCTAssertEqual(
            request.context,
            CallContext(
                jobID: "J1", role: .actor, step: 1, attempt: 0, replan: 0, reask: 0, hasFeedback: false, goal: "write the notes"))
        XCTAssertNil(request.responseSchema)
        XCTAssertEqual(request.model, "m")
    }

    func testRerunCarriesEveryRejectedOutputFeedbackAndSuggestion() {
        let rejected = [
            RejectedAttempt(attempt: 0, output: "first draft", feedback: "too short", suggestion: "add the numbers"),
            RejectedAttempt(attempt: 1, output: "second draft", feedback: "wrong tone", suggestion: nil),
        ]
        let request = prompts().actor(steps: steps, index: 1, attempt: 2, replan: 0, rejected: rejected)
        let text = user(request)
        XCTAssertEqual(
            text,
            """
            Goal: write the notes
            Step 2 of 3: draft
            Attempt 1 was rejected.
            Rejected output: first draft
            Critic feedback: too short
            Suggestion: add the numbers
            Attempt 2 was rejected.
            Rejected output: second draft
            Critic feedback: wrong tone
            Revise the output using the feedback.
            """)
        XCTAssertEqual(occurrences(of: "Suggestion:", in: text), 1)
        XCTAssertTrue(request.context.hasFeedback)
        XCTAssertEqual(request.context.attempt, 2)
    }

    func testARerunCarriesTheFirstErrorAndFailureModesOnlyWhenTheCriticGaveThem() {
        let verdict = Verdict(
            outcome: .fail, score: 0.2, feedback: "wrong sum", suggestion: nil, firstError: "the second line",
            failureModes: ["arithmetic", "format"])
        let rejected = [
            RejectedAttempt(attempt: 0, output: "5", verdict: verdict),
            RejectedAttempt(attempt: 1, output: "6", feedback: "still wrong", suggestion: nil),
        ]
        let text = user(prompts().actor(steps: steps, index: 0, attempt: 2, replan: 0, rejected: rejected))
        XCTAssertTrue(
            text.contains(
                "Rejected output: 5\nCritic feedback: wrong sum\nFirst error: the second line\nFailure modes: arithmetic; format\nAttempt 2"
            ),
            text)
        XCTAssertEqual(occurrences(of: "First error:", in: text), 1)
        XCTAssertEqual(occurrences(of: "Failure modes:", in: text), 1)
    }

    func testInputsAreShownWithTheGoal() {
        let request = prompts(inputs: ["version": "0.1", "n": 3]).actor(steps: steps, index: 0, attempt: 0, replan: 0, rejected: [])
        XCTAssertEqual(user(request), "Goal: write the notes\nInputs: {\"version\":\"0.1\",\"n\":3}\nStep 1 of 3: gather facts")
    }

    func testTemperatureRisesPerAttempt() {
        let p = prompts(plan(actorTemperature: 0.5, step: 0.2))
        let temperatures = (0..<4).map { p.actor(steps: steps, index: 0, attempt: $0, replan: 0, rejected: []).temperature }
        for (got, want) in zip(temperatures, [0.5, 0.7, 0.9, 1.1]) {
            XCTAssertEqual(got, want, accuracy: 1e-9)
        }
        // A zero step keeps it flat.
        let flat = prompts(plan(actorTemperature: 0.4, step: 0))
        XCTAssertEqual(flat.actor(steps: steps, index: 0, attempt: 5, replan: 0, rejected: []).temperature, 0.4)
    }

    func testTemperatureIsCappedAtTwo() {
        let p = prompts(plan(actorTemperature: 1.5, step: 0.4))
        XCTAssertEqual(p.actor(steps: steps, index: 0, attempt: 1, replan: 0, rejected: []).temperature, 1.9, accuracy: 1e-9)
        XCTAssertEqual(p.actor(steps: steps, index: 0, attempt: 2, replan: 0, rejected: []).temperature, 2)
        XCTAssertEqual(p.actor(steps: steps, index: 0, attempt: 50, replan: 0, rejected: []).temperature, 2)
    }

    func testOnlyTheActorsTemperatureRises() {
        let p = prompts()
        XCTAssertEqual(p.critic(steps: steps, index: 0, attempt: 3, replan: 0, output: "x").temperature, 0)
    }

    // MARK: Critic, planner, verifier

    func testCriticRequest() {
        let request = prompts().critic(steps: steps, index: 2, attempt: 1, replan: 1, output: "the polished text")
        XCTAssertTrue(request.messages[0].content.hasPrefix("CRITIC PROMPT\n"))
        XCTAssertTrue(request.messages[0].content.contains("\"verdict\""))
        XCTAssertEqual(user(request), "Goal: write the notes\nStep 3 of 3: polish\nOutput to judge:\nthe polished text")
        XCTAssertEqual(request.responseSchema, Verdict.schema(.shapeOnly))
        XCTAssertEqual(request.context.role, .critic)
        XCTAssertEqual(request.context.step, 2)
        XCTAssertEqual(request.context.attempt, 1)
        XCTAssertEqual(request.context.replan, 1)
        XCTAssertFalse(request.context.hasFeedback)
    }

    func testPlannerRequest() {
        let first = prompts().planner(replan: 0, context: nil)
        XCTAssertEqual(user(first), "Goal: write the notes")
        XCTAssertEqual(first.responseSchema, PlanReply.schema(.shapeOnly))
        XCTAssertEqual(first.temperature, 0.1)
        XCTAssertFalse(first.context.hasFeedback)
        XCTAssertNil(first.context.step)

        let context = ReplanContext(completed: [(step: "gather facts", output: "facts")], failedStep: "draft", lastFeedback: "too vague")
        let replan = prompts().planner(replan: 1, context: context)
        XCTAssertEqual(
            user(replan),
            """
            Goal: write the notes
            Completed steps:
            1. gather facts => facts
            This step failed after every attempt: draft
            Critic feedback: too vague
            Plan the remaining work as new steps.
            """)
        XCTAssertTrue(replan.context.hasFeedback)
        XCTAssertEqual(replan.context.replan, 1)

        let nothingDone = prompts().planner(
            replan: 1, context: ReplanContext(completed: [], failedStep: "gather facts", lastFeedback: "no"))
        XCTAssertTrue(user(nothingDone).contains("Completed steps: none"), user(nothingDone))
    }

    func testVerifierRequest() throws {
        let spec = try XCTUnwrap(plan().roleSpec(.verifier))
        let request = prompts().verifier(spec: spec, results: [(step: "a", output: "A"), (step: "b", output: "B")], replan: 0)
        XCTAssertEqual(user(request), "Goal: write the notes\nResults:\n1. a => A\n2. b => B")
        XCTAssertEqual(request.responseSchema, VerifierReply.schema(.shapeOnly))
        XCTAssertEqual(request.temperature, 0.3)
        XCTAssertEqual(request.context.role, .verifier)
    }

    // MARK: Re-asking

    func testReaskAppendsTheBadReplyAndTheError() {
        let original = prompts().critic(steps: steps, index: 0, attempt: 0, replan: 0, output: "x")
        let error = ReplyError("verdict: missing field 'score'")
        let again = prompts().reask(original, badReply: "{\"verdict\":\"pass\"}", error: error)
        XCTAssertEqual(Array(again.messages.prefix(original.messages.count)), original.messages)
        XCTAssertEqual(again.messages.count, original.messages.count + 2)
        XCTAssertEqual(again.messages[again.messages.count - 2], ChatMessage(role: "assistant", content: "{\"verdict\":\"pass\"}"))
        XCTAssertEqual(again.messages.last?.role, "user")
        XCTAssertTrue(again.messages.last?.content.contains("verdict: missing field 'score'") ?? false)
        XCTAssertEqual(again.context.reask, 1)
        XCTAssertEqual(again.temperature, original.temperature)
        XCTAssertEqual(again.responseSchema, original.responseSchema)
        var sameApartFromReask = again.context
        sameApartFromReask.reask = 0
        XCTAssertEqual(sameApartFromReask, original.context)

        let third = prompts().reask(again, badReply: "still bad", error: ReplyError("verdict: reply is not JSON"))
        XCTAssertEqual(third.context.reask, 2)
        XCTAssertEqual(third.messages.count, original.messages.count + 4)
        XCTAssertEqual(third.messages[third.messages.count - 2].content, "still bad")
    }

    // MARK: Determinism

    func testSameInputsGiveEqualRequests() {
        let rejected = [RejectedAttempt(attempt: 0, output: "o", feedback: "f", suggestion: "s")]
        let context = ReplanContext(completed: [(step: "a", output: "b")], failedStep: "c", lastFeedback: "d")
        let inputs: JSON = ["b": 1, "a": ["x"]]
        let a = prompts(inputs: inputs)
        let b = prompts(inputs: inputs)
        let pairs: [(ModelRequest, ModelRequest)] = [
            (
                a.actor(steps: steps, index: 1, attempt: 1, replan: 0, rejected: rejected),
                b.actor(steps: steps, index: 1, attempt: 1, replan: 0, rejected: rejected)
            ),
            (
                a.critic(steps: steps, index: 1, attempt: 1, replan: 0, output: "o"),
                b.critic(steps: steps, index: 1, attempt: 1, replan: 0, output: "o")
            ),
            (a.planner(replan: 1, context: context), b.planner(replan: 1, context: context)),
            (
                a.reask(a.planner(replan: 0, context: nil), badReply: "x", error: ReplyError("e")),
                b.reask(b.planner(replan: 0, context: nil), badReply: "x", error: ReplyError("e"))
            ),
        ]
        for (x, y) in pairs {
            XCTAssertEqual(x, y)
            XCTAssertEqual(x.json.encoded, y.json.encoded)
        }
        // And different inputs give different requests.
        XCTAssertNotEqual(
            a.actor(steps: steps, index: 1, attempt: 1, replan: 0, rejected: rejected),
            a.actor(steps: steps, index: 1, attempt: 1, replan: 0, rejected: []))
    }

    func testRequestJSONIsWhatIsRecorded() {
        let request = prompts().actor(steps: steps, index: 0, attempt: 1, replan: 0, rejected: [])
        let json = request.json
        XCTAssertEqual(json.objectValue?.map(\.0), ["model", "role", "messages", "temperature", "step", "attempt"])
        XCTAssertEqual(json["role"], "actor")
        XCTAssertEqual(json["step"], 0)
        XCTAssertEqual(json["attempt"], 1)
        XCTAssertEqual(json["messages"]?.arrayValue?.count, 2)
        let planner = prompts().planner(replan: 0, context: nil).json
        XCTAssertNil(planner["step"])
        XCTAssertNotNil(planner["response_schema"])
    }
}
