import Store
import TestSupport
import Transcript
import XCTest

@testable import Orchestrator

/// Each method's params: what a client encodes, the server decodes to the same value, and bad params
/// are refused with `-32602` naming the field.
final class MethodParamsTests: XCTestCase {
    private func roundTrip<P: MethodParams>(_ params: P, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try P(decoding: Params(params.json)), params, "\(params.json.encoded)", file: file, line: line)
    }

    private func refusal<P: MethodParams>(_ type: P.Type, _ raw: JSON) -> String? {
        do {
            _ = try P(decoding: Params(raw))
            return nil
        } catch {
            XCTAssertEqual(error.code, RPCError.Code.invalidParams.rawValue)
            return error.message
        }
    }

    func testEveryParamsTypeRoundTrips() throws {
        try roundTrip(SubmitParams(planPath: "/p.yaml", inputs: ["dir": "/tmp"], cwd: "/home"))
        try roundTrip(
            SubmitParams(
                planText: "name: x", planName: "x.yaml", baseDirectory: "/b", goal: "g", inputs: .object([]), cwd: nil,
                idempotencyKey: "k"))
        try roundTrip(JobIDParams(id: "01J"))
        try roundTrip(ListParams())
        try roundTrip(ListParams(status: .failed, limit: 3))
        try roundTrip(WatchParams(id: "01J", since: 7))
        try roundTrip(TranscriptParams(id: "01J", afterSeq: 2, limit: 5))
        try roundTrip(PruneParams(before: 10, statuses: [.cancelled], dryRun: true))
    }

    func testDefaultsOfOmittedParams() throws {
        XCTAssertEqual(try ListParams(decoding: Params(.object([]))), ListParams(status: nil, limit: 100))
        XCTAssertEqual(try WatchParams(decoding: Params(["id": "j"])), WatchParams(id: "j", since: 0))
        XCTAssertEqual(try TranscriptParams(decoding: Params(["id": "j"])), TranscriptParams(id: "j", afterSeq: 0, limit: 10_000))
        XCTAssertEqual(try PruneParams(decoding: Params(["before": 5])), PruneParams(before: 5, statuses: JobStatus.terminal))
        let submit = try SubmitParams(decoding: Params(["plan_path": "/p"]))
        XCTAssertEqual(submit, SubmitParams(planPath: "/p"))
        XCTAssertNil(submit.goal)
    }

    /// The messages clients and docs/protocol.md quote.
    func testRefusalsNameTheField() {
        XCTAssertEqual(
            refusal(SubmitParams.self, .object([])),
            "invalid params: give exactly one of 'plan_path' (an absolute path) or 'plan' (the plan's text)")
        XCTAssertEqual(refusal(SubmitParams.self, ["plan_path": "p"]), "invalid params: 'plan_path' must be absolute, got p")
        XCTAssertEqual(refusal(SubmitParams.self, ["plan": "x", "inputs": 3]), "invalid params: 'inputs' must be an object")
        XCTAssertEqual(refusal(SubmitParams.self, ["plan": "x", "goal": 3]), "invalid params: 'goal' must be a string, got number")
        XCTAssertEqual(refusal(JobIDParams.self, .object([])), "invalid params: 'id' (the job id) is required")
        XCTAssertEqual(
            refusal(ListParams.self, ["status": "done"]),
            "invalid params: unknown status 'done' (one of queued, running, awaiting_approval, succeeded, failed, cancelled)")
        XCTAssertEqual(refusal(ListParams.self, ["limit": 0]), "invalid params: 'limit' must be an integer from 1 to 100000")
        XCTAssertEqual(
            refusal(WatchParams.self, ["id": "j", "since": -1]), "invalid params: 'since' must be an integer from 0 to 2147483647")
        XCTAssertEqual(
            refusal(PruneParams.self, .object([])),
            "invalid params: 'before' (Unix ms: jobs that finished before it are removed) is required")
        XCTAssertEqual(
            refusal(PruneParams.self, ["before": 1, "statuses": ["running"]]),
            "invalid params: 'statuses' may hold only succeeded, failed, cancelled (queued and running jobs are never pruned), got \"running\""
        )
        XCTAssertEqual(
            refusal(PruneParams.self, ["before": 1, "dry_run": "yes"]), "invalid params: 'dry_run' must be true or false, got string")
        let gate: JSON = ["id": "j", "gate": "c1.0", "request_sha256": "ab", "decision": "reject"]
        XCTAssertEqual(refusal(GateDecideParams.self, gate), "invalid params: a rejection needs a 'note' saying why (the actor reads it)")
        XCTAssertEqual(
            refusal(GateDecideParams.self, ["id": "j", "gate": "c1.0", "request_sha256": "ab", "decision": "approve", "arguments": "[1]"]),
            "invalid params: 'arguments' must be a JSON object (as text), the tool's arguments")
        XCTAssertEqual(
            refusal(GateDecideParams.self, ["id": "j", "gate": "c1.0", "decision": "approve"]),
            "invalid params: 'request_sha256' (the gate's request digest, from gate.list) is required")
        XCTAssertEqual(
            refusal(RetryParams.self, ["id": "j", "from_step": 0]), "invalid params: 'from_step' must be a step number from 1, got 0")
        XCTAssertEqual(
            refusal(RetryParams.self, ["id": "j", "from_step": "2"]), "invalid params: 'from_step' must be a step number from 1, got \"2\"")
        XCTAssertEqual(
            refusal(RetryParams.self, ["id": "j", "goal": ""]),
            "invalid params: 'goal' must not be empty (leave it out to keep the job's goal)")
        XCTAssertEqual(refusal(SearchParams.self, .object([])), "invalid params: 'query' (an FTS5 query) is required")
        XCTAssertEqual(
            refusal(SearchParams.self, ["query": "q", "role": "boss"]),
            "invalid params: 'role' must be one of planner, actor, critic, verifier, got 'boss'")
        XCTAssertEqual(
            refusal(SearchParams.self, ["query": "q", "order": "best"]), "invalid params: 'order' must be newest or rank, got 'best'")
        XCTAssertEqual(refusal(BackupParams.self, ["path": "b.db"]), "invalid params: 'path' must be absolute, got b.db")
        XCTAssertEqual(
            refusal(TranscriptParams.self, ["id": "j", "format": "pdf"]),
            "invalid params: unknown format 'pdf' (one of text, md, jsonl, html)")
        XCTAssertEqual(
            refusal(TranscriptParams.self, ["id": "j", "format": "md", "after_seq": 3]),
            "invalid params: 'after_seq' pages the events; with 'format' the whole job is rendered, so leave it out")
    }

    /// A call names its own method and decodes back to itself from the request it writes.
    func testEveryCallRoundTripsThroughItsRequest() throws {
        let calls: [MethodCall] = [
            .submit(SubmitParams(planPath: "/p.yaml", goal: "g")), .get(JobIDParams(id: "a")), .list(ListParams(status: .queued, limit: 2)),
            .cancel(JobIDParams(id: "b")), .wait(JobIDParams(id: "c")), .watch(WatchParams(id: "d", since: 4)),
            .transcript(TranscriptParams(id: "e", afterSeq: 1, limit: 9)), .prune(PruneParams(before: 3)), .status, .gates,
            .decide(
                GateDecideParams(job: "f", gate: "c1.0", requestSHA256: "ab", approve: true, note: "n", arguments: #"{"argv":["ls"]}"#)),
            .retry(RetryParams(id: "f", fromStep: 2, goal: "g2")), .retry(RetryParams(id: "h")),
            .transcript(TranscriptParams(id: "f", format: .html)), .verify(VerifyParams(job: "g")), .verify(VerifyParams()),
            .search(SearchParams(query: "q", job: "h", role: "critic", kind: "call.completed", since: 5, limit: 3, order: .rank)),
            .stats(StatsParams(plan: "w1", since: 6)), .backup(BackupParams()), .backup(BackupParams(path: "/b.db")),
        ]
        XCTAssertEqual(Set(calls.map(\.method)), Set(RPCMethod.allCases), "one call per method")
        for call in calls {
            let request = call.request(id: 7)
            XCTAssertEqual(request["method"]?.stringValue, call.method.rawValue)
            let method = try XCTUnwrap(RPCMethod(rawValue: request["method"]?.stringValue ?? ""))
            XCTAssertEqual(try MethodCall(method, Params(request["params"] ?? .null)), call, request.encoded)
        }
        XCTAssertEqual(
            MethodCall.wait(JobIDParams(id: "j")).request(id: 1).encoded,
            #"{"jsonrpc":"2.0","id":1,"method":"job.wait","params":{"id":"j"}}"#)
    }
}
