import Agents
import Foundation
import Store
import TestSupport
import XCTest

@testable import Orchestrator

final class BusTests: XCTestCase {
    private let context = CallContext(
        jobID: "J1", role: .critic, step: 0, attempt: 0, replan: 0, reask: 0, hasFeedback: false, goal: "g")
    private var request: ModelRequest { ModelRequest(model: "m", messages: [], temperature: 0, responseSchema: nil, context: context) }

    private func completion(_ role: Role, _ reply: Result<ModelReply, ModelCallError>, _ interpretation: Interpretation?) -> EventDraft {
        Bus.completion(
            AgentReply(reply: reply, interpretation: interpretation, durationNanos: 1_500_000), id: AgentID(role: role, key: "k"),
            context: context, callID: "c1")
    }

    /// One event of each shape the bus writes for a reply.
    private var replies: [EventDraft] {
        let model = ModelReply(content: "ok", usage: TokenUsage(input: 3, output: 4), attempts: 2)
        var priced = model
        priced.costUSD = 0.5
        return [
            completion(.critic, .success(priced), .verdict(Verdict(outcome: .pass, score: 1, feedback: "good"))),
            completion(.verifier, .success(model), .verification(verified: true, reason: "fine")),
            completion(.planner, .success(model), .invalid(ReplyError("not a plan"))),
            completion(.planner, .success(model), .plan(["a", "b"])),
            completion(.actor, .failure(ModelCallError(.timeout, "too slow", stderr: "e")), nil),
        ]
    }

    func testCompletionIsStoredInItsOneJSONForm() throws {
        // The member order is part of the stored bytes the chain covers.
        let verifier = replies[1]
        XCTAssertEqual(verifier.kind, "call.completed")
        XCTAssertEqual(
            verifier.payload.encoded,
            #"{"reply":"ok","usage":{"input_tokens":3,"output_tokens":4},"http_attempts":2,"duration_ms":1.5,"verified":true,"reason":"fine"}"#
        )
        XCTAssertEqual(replies[4].kind, "call.failed")
        XCTAssertEqual(replies[4].payload.encoded, #"{"error":"timeout","message":"too slow","stderr":"e","duration_ms":1.5}"#)
    }

    func testEveryReplyPayloadDecodesToItsTypedValueAndBack() throws {
        for draft in replies {
            let again =
                draft.kind == "call.failed" ? try CallFailed(payload: draft.payload).json : try CallCompleted(payload: draft.payload).json
            XCTAssertEqual(again.encoded, draft.payload.encoded)
        }
    }

    func testARecordedReplyIsRebuiltAsItWas() throws {
        // The interpretation is recomputed from the reply's text on replay, so the text must parse
        // for the role: here a critic's verdict, and a failed call.
        let verdict = #"{"verdict":"fail","score":0.25,"feedback":"short"}"#
        let model = ModelReply(content: verdict, usage: TokenUsage(input: 1, output: 2), raw: ["id": "x"], attempts: 1)
        let drafts = [
            completion(.critic, .success(model), .verdict(try Verdict.parse(verdict, rules: .strict(passScore: 0.5)))),
            completion(.critic, .failure(ModelCallError(.http, "503")), nil),
        ]
        for draft in drafts {
            let event = EventRecord(jobID: "J1", seq: 2, at: 0, kind: draft.kind, role: "critic", payload: draft.payload)
            let rebuilt = try Bus.reply(from: event, to: request, role: .critic, rules: .strict(passScore: 0.5))
            let again = Bus.completion(rebuilt, id: AgentID(role: .critic, key: "k"), context: context, callID: "c1")
            XCTAssertEqual(again.payload.encoded, draft.payload.encoded)
        }
    }

    func testAWrongShapeIsRefusedNamingTheKindAndTheField() {
        let event = EventRecord(jobID: "J1", seq: 2, at: 0, kind: "call.completed", payload: ["reply": "ok", "duration_ms": "slow"])
        XCTAssertThrowsError(try Bus.reply(from: event, to: request, role: .actor, rules: .strict(passScore: 0.5))) { error in
            XCTAssertEqual("\(error)", "a call.completed event's payload member duration_ms is a string, not a number")
        }
    }

    func testEveryJSONExtractPathInTheSQLNamesAFieldTheTypedEventsWrite() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
        var paths: Set<String> = []
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
        let pattern = try NSRegularExpression(pattern: #"json_extract\(\s*payload\s*,\s*'\$\.([A-Za-z0-9_.]+)'\s*\)"#)
        for case let file as URL in files where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                paths.insert(String(text[Range(match.range(at: 1), in: text)!]))
            }
        }
        // Stats and StoreReader: a pattern that stops matching must not pass by finding nothing.
        XCTAssertEqual(
            paths,
            [
                "verdict.verdict", "verified", "usage.input_tokens", "usage.output_tokens", "duration_ms", "cost_usd", "error", "invalid",
                "decision", "by", "edited_arguments", "waited_ms", RetryPrefix.member,
            ])
        // The gates' figures read the runner's `gate.decided`, every member written.
        let decided = GateDecided(
            gate: "c1.0", decision: .approved, by: .person, requestSHA256: "ab", uid: 1, user: "u", note: "n", editedArguments: "{}",
            waitedMs: 1)
        let payloads = replies.map(\.payload) + [decided.json]
        for path in paths {
            let written = payloads.contains { payload in
                // A retry's copy of a call event is the event with its mark (`JobLog`).
                let payload = path == RetryPrefix.member ? RetryPrefix.marking(payload, from: 1) : payload
                let value = path.split(separator: ".").reduce(Optional(payload)) { $0?[String($1)] }
                return value.map { !$0.isNull } ?? false
            }
            XCTAssertTrue(written, "json_extract reads $.\(path), which no event the runner writes has")
        }
    }
}
