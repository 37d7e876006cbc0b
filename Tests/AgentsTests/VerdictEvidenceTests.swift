import Store
import XCTest

@testable import Agents

/// A critic with tools: its request offers them and the verdict's `evidence` field (and the verdict's
/// schema whenever a server would still call a tool), its evidence must name tool calls it made (under strict rules), and a critic without
/// tools is asked and read exactly as before.
final class VerdictEvidenceTests: XCTestCase {
    private let strict = ReplyRules.strict(passScore: 0.5)

    private func plan(criticTools: [String]) -> Plan {
        Plan(
            name: "p", models: ["m": ModelSpec(backend: .scripted(Script(rules: [:])))], planner: nil,
            actor: RoleSpec(model: "m", prompt: "ACT"), critic: .model(RoleSpec(model: "m", prompt: "JUDGE", tools: criticTools)),
            verifier: .model(RoleSpec(model: "m", prompt: "VERIFY")), steps: ["one"], policy: Policy())
    }

    private func criticRequest(tools: [String], rules: ReplyRules) -> ModelRequest {
        Prompts(plan: plan(criticTools: tools), jobID: "J", goal: "g", inputs: .object([]), rules: rules)
            .critic(steps: ["one"], index: 0, attempt: 0, replan: 0, output: "out")
    }

    func testACriticWithoutToolsIsAskedAsBefore() {
        for rules in [strict, .shapeOnly] {
            let request = criticRequest(tools: [], rules: rules)
            XCTAssertEqual(request.responseSchema, Verdict.schema(rules))
            XCTAssertTrue(request.tools.isEmpty)
            XCTAssertFalse(request.json.encoded.contains("evidence"), request.json.encoded)
        }
        // Its reply's evidence is not read at all.
        let verdict = try? Verdict.parse(#"{"verdict":"pass","score":1,"feedback":"ok","evidence":["x"]}"#, rules: strict)
        XCTAssertNil(verdict?.evidence)
    }

    func testACriticWithToolsIsOfferedThemAndTheEvidenceField() {
        let request = criticRequest(tools: ["read_file", "run_command"], rules: strict)
        XCTAssertEqual(request.tools, ["read_file", "run_command"])
        XCTAssertNil(request.toolChoice, "several tools: the model chooses")
        XCTAssertNil(request.responseSchema, "a first turn constrained to the verdict could call none of several tools")
        let one = criticRequest(tools: ["read_file"], rules: strict)
        XCTAssertEqual(one.responseSchema, Verdict.schema(strict, evidence: true), "the one tool is named: the server calls it")
        let next = Prompts(
            plan: plan(criticTools: ["read_file", "run_command"]), jobID: "J", goal: "g", inputs: .object([]), rules: strict
        )
        .toolFollowUp(request, reply: ModelReply(content: "", toolCalls: []), results: [])
        XCTAssertEqual(next.responseSchema, Verdict.schema(strict, evidence: true), "after the tools, the verdict")
        XCTAssertTrue(request.messages[0].content.contains("- evidence (optional, a list of texts)"), request.messages[0].content)
        XCTAssertEqual(criticRequest(tools: ["read_file"], rules: strict).toolChoice, "read_file")
        XCTAssertNotNil(ReplyForm.verdict(passScore: 0.5, evidence: true).schema["properties"]?["evidence"])
        XCTAssertNil(ReplyForm.verdict(passScore: 0.5).schema["properties"]?["evidence"])
    }

    func testEvidenceMustNameToolCallsTheCriticMade() throws {
        let made = ["read-1", "call_0"]
        let cited = #"{"verdict":"pass","score":0.9,"feedback":"the file holds 42","evidence":["read-1"]}"#
        XCTAssertEqual(try Verdict.parse(cited, rules: strict, toolCalls: made).evidence, ["read-1"])
        XCTAssertEqual(try Verdict.parse(cited, rules: strict, toolCalls: made).json["evidence"], ["read-1"])
        let invented = #"{"verdict":"pass","score":0.9,"feedback":"the file holds 42","evidence":["read-1","ls-9"]}"#
        XCTAssertThrowsError(try Verdict.parse(invented, rules: strict, toolCalls: made)) { error in
            XCTAssertEqual(
                "\(error)",
                #"verdict: 'evidence' names "ls-9", which is not one of your tool calls (your tool calls are read-1, call_0); cite only results you received"#
            )
        }
        XCTAssertThrowsError(try Verdict.parse(cited, rules: strict, toolCalls: [])) { error in
            XCTAssertTrue("\(error)".contains("you called no tool"), "\(error)")
        }
        XCTAssertThrowsError(
            try Verdict.parse(#"{"verdict":"pass","score":0.9,"feedback":"fine","evidence":"read-1"}"#, rules: strict, toolCalls: made)
        ) { error in
            XCTAssertTrue("\(error)".contains("field 'evidence' must be a list"), "\(error)")
        }
        // Formats 1 and 2 read only the shape.
        XCTAssertEqual(try Verdict.parse(invented, rules: .shapeOnly, toolCalls: made).evidence, ["read-1", "ls-9"])
    }

    /// The ids a reply may cite are those of the request's own conversation.
    func testTheInterpretationReadsTheToolCallsOfTheRequest() {
        var request = criticRequest(tools: ["read_file"], rules: strict)
        let call = ToolCall(id: "read-1", name: "read_file", arguments: #"{"path":"a"}"#)
        request = Prompts(plan: plan(criticTools: ["read_file"]), jobID: "J", goal: "g", inputs: .object([]), rules: strict)
            .toolFollowUp(request, reply: ModelReply(content: "", toolCalls: [call]), results: [#"{"content":"x"}"#])
        let reply = ModelReply(content: #"{"verdict":"pass","score":0.9,"feedback":"a holds x","evidence":["read-1"]}"#)
        guard case let .verdict(verdict) = Agent.interpret(reply, to: request, role: .critic, rules: strict) else {
            return XCTFail("not a verdict")
        }
        XCTAssertEqual(verdict.evidence, ["read-1"])
        let other = ModelReply(content: #"{"verdict":"pass","score":0.9,"feedback":"a holds x","evidence":["read-2"]}"#)
        guard case .invalid = Agent.interpret(other, to: request, role: .critic, rules: strict) else {
            return XCTFail("evidence of a call never made was accepted")
        }
    }
}
