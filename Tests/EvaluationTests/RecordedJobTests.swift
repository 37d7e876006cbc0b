import Orchestrator
import Store
import XCTest

@testable import Evaluation

/// `RecordedJob` reads the critic's verdicts from a job's events, and only the critic's.
final class RecordedJobTests: XCTestCase {
    private func event(_ kind: String, _ role: String?, step: Int, attempt: Int, call: String, _ payload: JSON) -> JSON {
        [
            "kind": .string(kind), "role": role.map(JSON.string) ?? .null, "step": .int(step), "attempt": .int(attempt),
            "call": .string(call),
            "payload": payload,
        ]
    }

    private func call(_ role: String, agent: String, step: Int, attempt: Int, call: String, _ completed: JSON) -> [JSON] {
        [
            event("call.started", role, step: step, attempt: attempt, call: call, ["agent": .string(agent), "reask": 0, "request": [:]]),
            event("call.completed", role, step: step, attempt: attempt, call: call, completed),
        ]
    }

    /// The ground-truth check is a critic-role call, but its verdict is not the critic's.
    func testTheCheckIsNotTheCritic() {
        let job = WireJob(
            JobRecord(
                id: "J", planName: "p", plan: #"{"name":"p"}"#, goal: "g", inputs: [:], cwd: nil, idempotencyKey: nil, status: .failed,
                createdAt: 1000))
        var events: [JSON] = [["kind": "job.state", "role": .null, "payload": ["from": "queued", "to": "running", "steps": ["s"]]]]
        events += call("actor", agent: "actor/J", step: 0, attempt: 0, call: "c1", ["reply": "{\"output\": \"x\"}", "duration_ms": 1])
        events += call(
            "critic", agent: "critic/J", step: 0, attempt: 0, call: "c2",
            ["reply": "{}", "verdict": ["verdict": "fail", "score": 0, "feedback": "no"], "duration_ms": 1])
        events += call(
            "critic", agent: "critic/J/check", step: 0, attempt: 0, call: "c3",
            ["reply": "{}", "verdict": ["verdict": "pass", "score": 1, "feedback": "right"], "duration_ms": 1])
        let recorded = RecordedJob(details: JobDetails(job: job, usage: [:]), events: events)
        XCTAssertEqual(recorded.attempts.map(\.criticPassed), [false])
        XCTAssertEqual(recorded.attempts.map(\.output), ["x"])
    }
}
