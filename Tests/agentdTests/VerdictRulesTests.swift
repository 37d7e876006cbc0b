import Foundation
import Store
import XCTest

/// Record format 3's verdict rules through the built daemon: a verdict that contradicts itself or
/// says nothing is recorded as invalid and asked again, never passed; a critic's low `feasibility`
/// re-plans at once; and `agentd replay` reproduces both.
final class VerdictRulesTests: EndToEndTestCase {
    private func run(_ plan: String) throws -> (id: String, job: JSON, events: [JSON]) {
        let id = try submit(plan)
        return (id, try harness.waitForJob(id, timeout: 60), try harness.events(id))
    }

    private func replay(_ id: String) throws -> JSON {
        let result = try harness.cli(["replay", id, "--db", harness.dbPath, "--json"], socket: false)
        XCTAssertEqual(result.status, 0, "\(result)")
        return try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "replay --json: \(result)")
    }

    func testContradictoryVerdictsAreAskedAgainAndNeverPass() throws {
        try harness.start()
        let (id, job, events) = try run(try harness.preparePlan("contradictory-verdicts.yaml"))
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)\n\(summary)")
        XCTAssertEqual(job["reason"]?.stringValue, "the step named a fruit", "the placeholder reason was asked again")
        XCTAssertEqual(
            (try harness.sqlite("SELECT json_extract(payload, '$.format') FROM events WHERE job_id = '\(id)' AND seq = 1"))
                .trimmingCharacters(in: .whitespacesAndNewlines), "4", "a new job is written in the current record format (strict since 3)")

        // Attempt 1: three replies, each recorded as invalid with the contradiction it made, none a verdict.
        let judged = self.events(events, kind: "call.completed", role: "critic")
        let first = judged.filter { $0["attempt"]?.intValue == 0 }.map { $0["payload"] ?? .null }
        guard first.count == 3 else { return XCTFail("three replies to attempt 1: \(summary)") }
        XCTAssertTrue(first.allSatisfy { $0["verdict"] == nil }, "no contradictory reply is recorded as a verdict: \(summary)")
        let problems = first.map { $0["invalid"]?.stringValue ?? "" }
        XCTAssertTrue(problems[0].hasPrefix(#"verdict: "pass" with score 0.2, below the pass threshold 0.5"#), problems[0])
        XCTAssertTrue(problems[1].hasPrefix(#"verdict: "fail" with the perfect score 1"#), problems[1])
        XCTAssertTrue(problems[2].hasPrefix("verdict: field 'feedback' says nothing"), problems[2])
        // Each was asked again with the reason it was refused.
        let asked = self.events(events, kind: "call.started", role: "critic").filter { $0["attempt"]?.intValue == 0 }
        XCTAssertEqual(asked.map { $0["payload"]?["reask"]?.intValue }, [0, 1, 2])
        let lastAsk = asked.last?["payload"]?["request"]?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
        XCTAssertTrue(lastAsk.hasPrefix(#"That reply was invalid: verdict: "fail" with the perfect score 1"#), lastAsk)

        // The attempt failed: the rerun is told why, and its valid pass is the only pass.
        let rerun = try XCTUnwrap(
            self.events(events, kind: "call.started", role: "actor").first { $0["attempt"]?.intValue == 1 }, summary)
        let user = rerun["payload"]?["request"]?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
        XCTAssertTrue(
            user.contains("Critic feedback: no valid verdict after 3 tries: verdict: field 'feedback' says nothing"), user)
        let verdicts = judged.compactMap { $0["payload"]?["verdict"] }
        XCTAssertEqual(verdicts.map { $0["verdict"]?.stringValue }, ["pass"], summary)
        XCTAssertEqual(judged.last?["attempt"]?.intValue, 1)

        // The verifier's placeholder reason was refused and asked again.
        let verified = self.events(events, kind: "call.completed", role: "verifier").map { $0["payload"] ?? .null }
        guard verified.count == 2 else { return XCTFail("two verifier replies: \(summary)") }
        XCTAssertTrue(verified[0]["invalid"]?.stringValue?.hasPrefix("verification: field 'reason' says nothing") == true, summary)

        // The transcript shows the refusals; a replay makes the same calls.
        let transcript = try harness.cli("transcript", id)
        XCTAssertTrue(transcript.stdout.contains("below the pass threshold 0.5"), transcript.stdout)
        harness.cleanUpDaemon()
        let report = try replay(id)
        XCTAssertEqual(report["matches"]?.boolValue, true, report.encoded)
        XCTAssertEqual(report["replayed_calls"]?.intValue, 8, report.encoded)
    }

    func testALowFeasibilityReplansAtOnce() throws {
        try harness.start()
        let (id, job, events) = try run(try harness.preparePlan("infeasible-step.yaml", values: ["REPLAN_BELOW": "0.2"]))
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)\n\(summary)")
        // One attempt at the hopeless step, not three.
        let replannedAt = try XCTUnwrap(self.events(events, kind: "job.replanned").first?["seq"]?.intValue, summary)
        let before = self.events(events, kind: "call.started", role: "actor").filter { ($0["seq"]?.intValue ?? 0) < replannedAt }
        XCTAssertEqual(before.count, 1, summary)
        let infeasible = try XCTUnwrap(self.events(events, kind: "step.infeasible").first, summary)
        XCTAssertEqual(
            infeasible["payload"], ["attempts": 1, "feasibility": 0.05, "replan_below": 0.2, "feedback": "nobody can count them"])
        XCTAssertEqual(infeasible["step"]?.intValue, 0)
        XCTAssertEqual(self.events(events, kind: "step.exhausted").count, 0, summary)
        // The re-plan is told the critic's feedback and replaces the step.
        let replanned = try XCTUnwrap(self.events(events, kind: "job.replanned").first, summary)
        XCTAssertEqual(replanned["payload"]?["steps"], ["estimate the stars visible to the eye", "write the number down"])
        let planner = self.events(events, kind: "call.started", role: "planner")
        let replanText = planner.last?["payload"]?["request"]?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
        XCTAssertTrue(replanText.contains("This step failed after every attempt: count the stars in the sky"), replanText)
        XCTAssertTrue(replanText.contains("Critic feedback: nobody can count them"), replanText)

        let transcript = try harness.cli("transcript", id)
        XCTAssertTrue(
            transcript.stdout.contains("judged infeasible after 1 attempt (feasibility 0.05 below policy.replan_below 0.2)"),
            transcript.stdout)
        harness.cleanUpDaemon()
        let report = try replay(id)
        XCTAssertEqual(report["matches"]?.boolValue, true, report.encoded)
    }

    /// The default `replan_below` of 0 never ends a step early: the same verdicts spend every attempt.
    func testWithoutAThresholdTheStepSpendsItsAttempts() throws {
        try harness.start()
        let (_, job, events) = try run(try harness.preparePlan("infeasible-step.yaml", values: ["REPLAN_BELOW": "0"]))
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)\n\(summary)")
        XCTAssertEqual(self.events(events, kind: "step.infeasible").count, 0, summary)
        XCTAssertEqual(self.events(events, kind: "step.exhausted").first?["payload"]?["attempts"]?.intValue, 3, summary)
    }
}
