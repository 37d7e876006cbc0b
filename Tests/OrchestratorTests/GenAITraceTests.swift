import Store
import TestSupport
import XCTest

@testable import Orchestrator
@testable import Telemetry

final class GenAITraceTests: XCTestCase {
    private let plan = """
        {"name":"p","models":{"gpt":{"backend":"openai","model":"gpt-4o-mini"},"script":{"backend":"scripted"}}}
        """

    private func job(status: JobStatus = .succeeded) -> JobRecord {
        JobRecord(
            id: "01JOB", planName: "p", plan: plan, goal: "g", inputs: [:], cwd: nil, idempotencyKey: nil, status: status,
            createdAt: 1000, startedAt: 1001, finishedAt: 1100)
    }

    private var events: [EventRecord] {
        [
            EventRecord(
                jobID: "01JOB", seq: 1, at: 1000, kind: EventKind.jobSubmitted.rawValue,
                payload: JobSubmitted(plan: plan, goal: "g", inputs: [:]).json),
            EventRecord(
                jobID: "01JOB", seq: 2, at: 1010, kind: EventKind.callStarted.rawValue, role: "actor", step: 0, attempt: 0, callID: "c1",
                payload: CallStarted(agent: "actor/01JOB", reask: 0, request: ["model": "gpt", "temperature": 0.5]).json),
            EventRecord(
                jobID: "01JOB", seq: 3, at: 1020, kind: EventKind.callCompleted.rawValue, role: "actor", step: 0, attempt: 0, callID: "c1",
                payload: CallCompleted(
                    reply: "", usage: .init(inputTokens: 12, outputTokens: 3), sent: ["model": "gpt-4o-mini"], durationMs: 20
                ).json),
            EventRecord(
                jobID: "01JOB", seq: 4, at: 1030, kind: EventKind.toolStarted.rawValue, role: "actor", step: 0, attempt: 0, callID: "c1.0",
                payload: ToolStarted(tool: "run_command", toolCallID: "t1", idempotencyKey: "01JOB/c1/0", argv: ["false"]).json),
            EventRecord(
                jobID: "01JOB", seq: 5, at: 1040, kind: EventKind.toolCompleted.rawValue, role: "actor", step: 0, attempt: 0,
                callID: "c1.0",
                payload: ToolCompleted(tool: "run_command", toolCallID: "t1", ok: false, result: ["exit_status": 1], durationMs: 2).json),
            EventRecord(
                jobID: "01JOB", seq: 6, at: 1050, kind: EventKind.callStarted.rawValue, role: "critic", step: 0, attempt: 0, callID: "c2",
                payload: CallStarted(agent: "critic/01JOB", reask: 0, request: ["model": "script"]).json),
            EventRecord(
                jobID: "01JOB", seq: 7, at: 1060, kind: EventKind.callFailed.rawValue, role: "critic", step: 0, attempt: 0, callID: "c2",
                payload: CallFailed(error: "timeout", message: "no reply in 5 s", durationMs: 5000).json),
            EventRecord(
                jobID: "01JOB", seq: 8, at: 1070, kind: EventKind.callStarted.rawValue, role: "verifier", callID: "c3",
                payload: CallStarted(agent: "verifier/01JOB", reask: 0, request: ["model": "script"]).json),
        ]
    }

    func testSpansFollowTheGenAIConventions() throws {
        let spans = GenAITrace.spans(job: job(), events: events)
        XCTAssertEqual(
            spans.map(\.name),
            [
                "job p", "invoke_agent actor", "chat gpt-4o-mini", "invoke_agent critic", "chat script", "invoke_agent verifier",
                "chat script", "execute_tool run_command",
            ])
        let root = spans[0]
        XCTAssertNil(root.parentSpanID)
        XCTAssertEqual(root.startMillis, 1000)
        XCTAssertEqual(root.endMillis, 1100)
        let actor = spans[1]
        let chat = spans[2]
        XCTAssertEqual(actor.parentSpanID, root.spanID)
        XCTAssertEqual(chat.parentSpanID, actor.spanID)
        XCTAssertEqual(actor.attribute("gen_ai.operation.name"), "invoke_agent")
        XCTAssertEqual(actor.attribute("gen_ai.agent.name"), "actor")
        XCTAssertEqual(actor.attribute("gen_ai.conversation.id"), "01JOB")
        XCTAssertEqual(chat.attribute("gen_ai.operation.name"), "chat")
        XCTAssertEqual(chat.attribute("gen_ai.provider.name"), "openai")
        XCTAssertEqual(chat.attribute("gen_ai.request.model"), "gpt-4o-mini")
        XCTAssertEqual(chat.attribute("gen_ai.request.temperature"), 0.5)
        XCTAssertEqual(chat.attribute("gen_ai.usage.input_tokens"), 12)
        XCTAssertEqual(chat.attribute("gen_ai.usage.output_tokens"), 3)
        XCTAssertEqual(chat.kind, 3)
        XCTAssertEqual([chat.startMillis, chat.endMillis], [1010, 1020])
        XCTAssertEqual(actor.endMillis, 1040, "the agent call covers the tools it asked for")

        let tool = spans[7]
        XCTAssertEqual(tool.parentSpanID, actor.spanID)
        XCTAssertEqual(tool.attribute("gen_ai.operation.name"), "execute_tool")
        XCTAssertEqual(tool.attribute("gen_ai.tool.name"), "run_command")
        XCTAssertEqual(tool.attribute("gen_ai.tool.call.id"), "t1")
        XCTAssertEqual(tool.attribute("error.type"), "tool_error")

        let critic = spans[3]
        XCTAssertEqual(critic.attribute("gen_ai.provider.name"), "scripted")
        XCTAssertEqual(critic.attribute("error.type"), "timeout")
        XCTAssertEqual(critic.error, "no reply in 5 s")
        XCTAssertEqual(spans[4].attribute("error.type"), "timeout")
        XCTAssertEqual(spans[4].json["status"]?["code"]?.intValue, 2)
        XCTAssertEqual(actor.json["status"]?["code"]?.intValue, 1)

        let verifier = spans[5]
        XCTAssertEqual(verifier.attribute("error.type"), "incomplete", "a call without a reply ends with the job as an error")
        XCTAssertEqual(verifier.endMillis, 1100)
    }

    /// A gate is a span from its request to its decision, under the agent call that proposed the tool call.
    func testAGateIsASpan() throws {
        let gated =
            Array(events.prefix(3)) + [
                EventRecord(
                    jobID: "01JOB", seq: 4, at: 1025, kind: EventKind.gateRequested.rawValue, role: "actor", step: 0, attempt: 0,
                    callID: "c1.0",
                    payload: GateRequested(
                        gate: "c1.0", rule: 0, review: "human", tool: "run_command", arguments: "{}", requestSHA256: "ab"
                    ).json),
                EventRecord(
                    jobID: "01JOB", seq: 5, at: 1029, kind: EventKind.gateDecided.rawValue, step: 0, attempt: 0, callID: "c1.0",
                    payload: GateDecided(
                        gate: "c1.0", decision: .approved, by: .person, requestSHA256: "ab", user: "ann", editedArguments: "{}", waitedMs: 4
                    ).json),
            ]
        let spans = GenAITrace.spans(job: job(), events: gated)
        let gate = try XCTUnwrap(spans.first { $0.name == "gate run_command" })
        XCTAssertEqual(gate.parentSpanID, GenAITrace.spanID(job: "01JOB", name: "agent/c1"))
        XCTAssertEqual(gate.endMillis - gate.startMillis, 4)
        XCTAssertEqual(gate.attribute("agentd.gate.decision"), "approved")
        XCTAssertEqual(gate.attribute("agentd.gate.decided_by"), "person")
        XCTAssertEqual(gate.attribute("agentd.gate.user"), "ann")
        XCTAssertEqual(gate.attribute("agentd.gate.edited"), true)
        let waiting = try XCTUnwrap(GenAITrace.spans(job: job(), events: Array(gated.dropLast())).first { $0.name == "gate run_command" })
        XCTAssertEqual(waiting.attribute("agentd.gate.decision"), "pending")
    }

    /// A jury's jurors, asked concurrently (calls `c2-1-1`, `c2-2-1`), completing in either order:
    /// each is its own pair of spans, ended by its own completion, and names its juror agent; the
    /// jury's events (with and without a call id) add no span.
    func testJurorsAreSpansOfTheirOwn() throws {
        func at(_ seq: Int, _ kind: EventKind, _ call: String?, _ payload: JSON) -> EventRecord {
            EventRecord(
                jobID: "01JOB", seq: seq, at: Int64(1000 + seq * 10), kind: kind.rawValue, role: "critic", step: 0, attempt: 0,
                callID: call,
                payload: payload)
        }
        let jury =
            Array(events.prefix(3)) + [
                at(4, .juryConvened, nil, JuryConvened(rule: "majority", jurors: ["a", "b"], order: [1, 0], seed: 9).json),
                at(5, .callStarted, "c2-1-1", CallStarted(agent: "critic/01JOB/b", reask: 0, request: ["model": "script"]).json),
                at(6, .callStarted, "c2-2-1", CallStarted(agent: "critic/01JOB/a", reask: 0, request: ["model": "script"]).json),
                at(7, .callCompleted, "c2-2-1", CallCompleted(reply: "{}", durationMs: 10).json),
                at(8, .callCompleted, "c2-1-1", CallCompleted(reply: "{}", durationMs: 30).json),
                at(9, .juryVoted, "c2-2-1", JuryVoted(juror: "a", index: 0, outcome: .pass, score: 1, feedback: "f").json),
                at(10, .juryVoted, "c2-1-1", JuryVoted(juror: "b", index: 1, outcome: .pass, score: 1, feedback: "f").json),
                at(
                    11, .juryDecided, nil,
                    JuryDecided(rule: "majority", passes: 2, fails: 0, errors: 0, outcome: .pass, score: 1, feedback: "f").json),
            ]
        let spans = GenAITrace.spans(job: job(), events: jury)
        XCTAssertEqual(
            spans.map(\.name),
            ["job p", "invoke_agent actor", "chat gpt-4o-mini", "invoke_agent critic", "chat script", "invoke_agent critic", "chat script"])
        XCTAssertEqual(Set(spans.map(\.spanID)).count, spans.count)
        let agents = spans.filter { $0.name == "invoke_agent critic" }
        XCTAssertEqual(agents.map { $0.attribute("gen_ai.agent.id") }, ["critic/01JOB/b", "critic/01JOB/a"])
        XCTAssertEqual(agents.map { $0.attribute("agentd.call.id") }, ["c2-1-1", "c2-2-1"])
        XCTAssertEqual(agents.map { $0.endMillis - $0.startMillis }, [30, 10], "each ends at its own completion")
        XCTAssertTrue(spans.allSatisfy { $0.error == nil }, "every call completed")
    }

    func testIdsAreDeterministicHexAndDistinct() {
        let a = GenAITrace.spans(job: job(), events: events)
        let b = GenAITrace.spans(job: job(), events: events)
        XCTAssertEqual(a, b)
        XCTAssertEqual(GenAITrace.request(job: job(), events: events).encoded, GenAITrace.request(job: job(), events: events).encoded)
        XCTAssertEqual(Set(a.map(\.spanID)).count, a.count)
        XCTAssertTrue(a.allSatisfy { $0.traceID.count == 32 && $0.spanID.count == 16 })
        XCTAssertTrue(a.allSatisfy { $0.traceID.allSatisfy(\.isHexDigit) && $0.spanID.allSatisfy(\.isHexDigit) })
        XCTAssertNotEqual(GenAITrace.traceID(job: "01JOB"), GenAITrace.traceID(job: "01JOC"))
    }

    func testOTLPJSONShape() throws {
        let request = GenAITrace.request(job: job(status: .failed), events: events)
        let span = try XCTUnwrap(request["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"]?[0])
        XCTAssertEqual(span["startTimeUnixNano"]?.stringValue, "1000000000")
        XCTAssertEqual(span["endTimeUnixNano"]?.stringValue, "1100000000")
        XCTAssertEqual(span["status"]?["code"]?.intValue, 2, "a failed job's root span is an error")
        let attributes = try XCTUnwrap(span["attributes"]?.arrayValue)
        XCTAssertEqual(attributes.first?["key"]?.stringValue, "gen_ai.conversation.id")
        XCTAssertEqual(attributes.first?["value"]?["stringValue"]?.stringValue, "01JOB")
        let chat = try XCTUnwrap(request["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"]?[2])
        let tokens = chat["attributes"]?.arrayValue?.first { $0["key"]?.stringValue == "gen_ai.usage.input_tokens" }
        XCTAssertEqual(tokens?["value"]?["intValue"]?.stringValue, "12", "int64 as a string, per the JSON mapping")
    }

    func testExporterConfigurationFromTheEnvironment() {
        XCTAssertNil(OTLPExporter.Configuration.from(environment: [:]))
        let base = OTLPExporter.Configuration.from(environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/", "OTEL_EXPORTER_OTLP_HEADERS": "a=1, b = x%20y ,bad",
        ])
        XCTAssertEqual(base?.url, "http://c:4318/v1/traces")
        XCTAssertEqual(base?.headers, ["a": "1", "b": "x y"])
        let traces = OTLPExporter.Configuration.from(environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/traces",
        ])
        XCTAssertEqual(traces?.url, "http://t/traces")
    }
}

extension JSON {
    fileprivate subscript(index: Int) -> JSON? {
        guard let array = arrayValue, index < array.count else { return nil }
        return array[index]
    }
}
