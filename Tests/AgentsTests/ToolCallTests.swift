import Store
import XCTest

@testable import Agents

/// Tool definitions, tool calls and the messages that carry them, as OpenAI's API shapes them.
final class ToolCallTests: XCTestCase {
    private func context(turn: Int = 0) -> CallContext {
        CallContext(jobID: "J1", role: .actor, step: 0, attempt: 0, replan: 0, reask: 0, hasFeedback: false, goal: "g", turn: turn)
    }

    func testMessagesHaveOpenAIsShape() {
        let call = ToolCall(id: "call_1", name: "read_file", arguments: #"{"path":"a.txt"}"#)
        XCTAssertEqual(ChatMessage(role: "user", content: "hi").json.encoded, #"{"role":"user","content":"hi"}"#)
        XCTAssertEqual(
            ChatMessage(role: "assistant", content: "", toolCalls: [call]).json.encoded,
            #"{"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"a.txt\"}"}}]}"#
        )
        XCTAssertEqual(
            ChatMessage(role: "tool", content: "{}", toolCallID: "call_1").json.encoded,
            #"{"role":"tool","tool_call_id":"call_1","content":"{}"}"#)
    }

    func testToolCallListsInBothShapes() {
        let openAI: JSON = [["id": "x", "type": "function", "function": ["name": "run_command", "arguments": "{bad"]]]
        XCTAssertEqual(ToolCall.list(from: openAI), [ToolCall(id: "x", name: "run_command", arguments: "{bad")])
        let short: JSON = [["name": "write_file", "arguments": ["path": "p", "content": "c"]], ["name": "read_file"]]
        XCTAssertEqual(
            ToolCall.list(from: short),
            [
                ToolCall(id: "call_0", name: "write_file", arguments: #"{"path":"p","content":"c"}"#),
                ToolCall(id: "call_1", name: "read_file", arguments: "{}"),
            ])
        XCTAssertNil(ToolCall.list(from: ["name": "x"]), "not a list")
        XCTAssertNil(ToolCall.list(from: [["arguments": "{}"]]), "no name")
    }

    func testActorRequestOffersItsToolsAndNamesASingleOne() {
        func request(_ tools: [String]) -> ModelRequest {
            let plan = Plan(
                name: "p", models: ["m": ModelSpec(backend: .scripted(Script(rules: [:])))], planner: nil,
                actor: RoleSpec(model: "m", prompt: "act", tools: tools), critic: .model(RoleSpec(model: "m", prompt: "judge")),
                verifier: .command(CommandSpec(argv: ["true"], timeoutSeconds: 1)), steps: ["s"], policy: Policy())
            return Prompts(plan: plan, jobID: "J", goal: "g", inputs: [:], rules: .strict(passScore: 0.5)).actor(
                steps: ["s"], index: 0, attempt: 0, replan: 0, rejected: [])
        }
        let one = request(["run_command"]).json
        XCTAssertEqual(one["tools"]?.arrayValue?.first?["function"]?["name"]?.stringValue, "run_command")
        XCTAssertEqual(one["tools"]?.arrayValue?.first?["function"]?["parameters"]?["required"], ["argv"])
        XCTAssertEqual(one["tool_choice"], ["type": "function", "function": ["name": "run_command"]])
        let two = request(["read_file", "write_file"]).json
        XCTAssertEqual(two["tools"]?.arrayValue?.count, 2)
        XCTAssertNil(two["tool_choice"])
        XCTAssertNil(request([]).json["tools"], "no tools: nothing about tools is sent")
    }

    func testFollowUpAppendsTheTurnAndTheResults() {
        let first = ModelRequest(
            model: "m", messages: [ChatMessage(role: "user", content: "u")], temperature: 0, responseSchema: nil, context: context(),
            tools: ["read_file"], toolChoice: "read_file")
        let calls = [ToolCall(id: "a", name: "read_file", arguments: "{}"), ToolCall(id: "b", name: "read_file", arguments: "{}")]
        let prompts = Prompts(
            plan: Plan(
                name: "p", models: [:], planner: nil, actor: RoleSpec(model: "m", prompt: ""),
                critic: .model(RoleSpec(model: "m", prompt: "")),
                verifier: .command(CommandSpec(argv: ["true"], timeoutSeconds: 1)), steps: ["s"], policy: Policy()),
            jobID: "J", goal: "g", inputs: [:], rules: .strict(passScore: 0.5))
        let next = prompts.toolFollowUp(first, reply: ModelReply(content: "", toolCalls: calls), results: ["r1", "r2"])
        XCTAssertEqual(next.context.turn, 1)
        XCTAssertNil(next.toolChoice, "the tool is not forced again")
        XCTAssertEqual(next.tools, ["read_file"])
        XCTAssertEqual(
            next.messages.dropFirst().map(\.json.encoded),
            [
                ChatMessage(role: "assistant", content: "", toolCalls: calls).json.encoded,
                #"{"role":"tool","tool_call_id":"a","content":"r1"}"#, #"{"role":"tool","tool_call_id":"b","content":"r2"}"#,
            ])
        XCTAssertEqual(next.json["turn"]?.intValue, 1)
    }

    func testScriptedRepliesCallToolsByTurn() throws {
        let script = Script(rules: [
            .actor: [
                ScriptRule(
                    turns: [0], reply: .json(["tool_calls": [["name": "run_command", "arguments": ["argv": ["echo", "{goal}"]]]]])),
                ScriptRule(reply: .json(["output": "done"])),
            ]
        ])
        let backend = ScriptedBackend(script: script)
        let first = try backend.reply(to: context(turn: 0))
        XCTAssertEqual(first.content, "")
        XCTAssertEqual(first.toolCalls, [ToolCall(id: "call_0", name: "run_command", arguments: #"{"argv":["echo","g"]}"#)])
        let second = try backend.reply(to: context(turn: 1))
        XCTAssertEqual(second.toolCalls, [])
        XCTAssertEqual(second.content, #"{"output":"done"}"#)
    }

    func testToolCallsAreATurnOnlyWhenToolsWereOffered() {
        let reply = ModelReply(content: "", toolCalls: [ToolCall(id: "a", name: "read_file", arguments: "{}")])
        XCTAssertEqual(Agent.interpret(reply, role: .actor, toolsOffered: true, rules: .strict(passScore: 0.5)), .toolCalls)
        guard case let .invalid(error) = Agent.interpret(reply, role: .critic, toolsOffered: false, rules: .strict(passScore: 0.5)) else {
            return XCTFail("tool calls without tools are not a verdict")
        }
        XCTAssertTrue(error.message.contains("the critic has none"), error.message)
        var withText = reply
        withText.content = "the output"
        XCTAssertEqual(Agent.interpret(withText, role: .actor, toolsOffered: false, rules: .strict(passScore: 0.5)), .output("the output"))
    }
}
