import Foundation
import Store
import XCTest

/// A plan's ground-truth `check` through the built daemon over its socket: run on every judged
/// output and recorded as `step.checked`, shown to no agent, counted by `agentd stats` (a flip),
/// reproduced by `agentd replay`, and never run again after a SIGKILL.
final class GroundTruthCheckTests: EndToEndTestCase {
    private var checkRuns: [String] {
        ((try? String(contentsOfFile: harness.dir + "/check-runs.txt", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// The job's `step.checked` events as `step/attempt passed`, each checked to carry its check call's id.
    private func checked(_ events: [JSON], jobID: String) throws -> [String] {
        let summary = dump(events)
        let checkCalls = Set(
            self.events(events, kind: "call.started", role: "critic").filter {
                $0["payload"]?["agent"]?.stringValue == "critic/\(jobID)/check"
            }.compactMap { $0["call"]?.stringValue })
        return try self.events(events, kind: "step.checked").map { e in
            let call = try XCTUnwrap(e["call"]?.stringValue, summary)
            XCTAssertTrue(checkCalls.contains(call), "step.checked names its check's call: \(summary)")
            XCTAssertEqual(e["payload"]?["sample"]?.intValue, 0, summary)
            return "\(e["step"]?.intValue ?? -1)/\(e["attempt"]?.intValue ?? -1) \(e["payload"]?["passed"]?.boolValue ?? false)"
        }
    }

    func testTheCheckIsRecordedHiddenFromTheAgentsAndStatsReportTheFlip() throws {
        try harness.start()
        FileManager.default.createFile(atPath: harness.dir + "/release", contents: nil)
        let plan = try harness.preparePlan("stats-check.yaml")
        let id = try submit(plan)
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "failed", "the verifier rejects it: \(job.encoded)\n\(summary)")

        // Every judged output was checked once: step 1's right first output, its wrong rerun, step 2's.
        XCTAssertEqual(try checked(events, jobID: id), ["0/0 true", "0/1 false", "1/0 true"], summary)
        XCTAssertEqual(checkRuns.count, 3)
        let firstCheck = try XCTUnwrap(self.events(events, kind: "step.checked").first?["payload"], summary)
        XCTAssertTrue(firstCheck["feedback"]?.stringValue?.contains("CHECK-SAYS-SECRET") == true, firstCheck.encoded)
        // No agent was shown it: no request carries the check's words, and the critic still decided.
        for started in self.events(events, kind: "call.started") where started["payload"]?["agent"]?.stringValue != "critic/\(id)/check" {
            XCTAssertFalse(started["payload"]?.encoded.contains("CHECK-SAYS-SECRET") == true, "shown to an agent: \(started.encoded)")
        }
        let rerun = self.events(events, kind: "call.started", role: "actor").first {
            $0["step"]?.intValue == 0 && $0["attempt"]?.intValue == 1
        }
        XCTAssertTrue(rerun?["payload"]?.encoded.contains("try again") == true, "the rerun carries the critic's feedback: \(summary)")

        // stats.get over the socket: the critic's flip, its false pass and fail, the overturned pass.
        let result = try harness.cli(["stats", "--json"])
        XCTAssertEqual(result.status, 0, "\(result)")
        let plans = try XCTUnwrap(try parseJSON(result.stdout)["plans"]?.arrayValue, result.stdout)
        let stats = try XCTUnwrap(plans.first { $0["plan"]?.stringValue == "stats-check" }, result.stdout)
        let critic = try XCTUnwrap(stats["judges"]?.arrayValue?.first, stats.encoded)
        let expected: [(String, JSON)] = [
            ("judge", "critic"), ("judged", 3), ("false_passes", 1), ("false_fails", 1), ("flips", 1), ("flip_rate", 1),
            ("check_agreement", 0.3333), ("passed_jobs", 1), ("passes_overturned", 1), ("overturned_rate", 1),
        ]
        for (key, value) in expected { XCTAssertEqual(critic[key], value, "\(key) in \(critic.encoded)") }
        let roles = stats["roles"]?.arrayValue?.map { "\($0["role"]?.stringValue ?? "?") \($0["calls"]?.intValue ?? -1)" }
        XCTAssertEqual(roles, ["actor 3", "critic 3", "check 3", "verifier 1"])
        XCTAssertEqual(stats["corrected_steps"], 1, "the check's calls are not the critic's verdicts: \(stats.encoded)")

        // `agentd watch` shows the critic's verdicts as the critic's and the check's findings apart.
        let watched = try harness.cli("watch", id).stdout.split(separator: "\n").map {
            $0.dropFirst(6).split(separator: " ").joined(separator: " ")
        }
        XCTAssertEqual(
            watched.filter { $0.hasPrefix("step") && ($0.contains(" critic ") || $0.contains(" check ")) },
            [
                "step 1/2 critic attempt 1 FAIL (score 0.2) try again",
                "step 1/2 check attempt 1 ground truth: right (recorded for stats only)",
                "step 1/2 critic attempt 2 PASS (score 0.9) fine", "step 1/2 check attempt 2 ground truth: wrong (recorded for stats only)",
                "step 2/2 critic attempt 1 PASS (score 0.9) fine", "step 2/2 check attempt 1 ground truth: right (recorded for stats only)",
            ], watched.joined(separator: "\n"))

        // `agentd replay` reproduces the job, its checks answered from the record.
        let replay = try harness.cli(["replay", id, "--db", harness.dbPath, "--json"], socket: false)
        let report = try parseJSON(replay.stdout)
        XCTAssertEqual(report["matches"]?.boolValue, true, "\(replay)")
        XCTAssertEqual(report["replayed_status"]?.stringValue, "failed", "\(replay)")
        XCTAssertEqual(checkRuns.count, 3, "the replay ran no check")

        // The transcript shows the check as notes, not as the critic's verdicts.
        let transcript = try harness.cli(["transcript", id]).stdout
        XCTAssertTrue(transcript.contains("step 1 attempt 1: the ground-truth check found it right"), transcript)
        XCTAssertTrue(transcript.contains("step 1 attempt 2: the ground-truth check found it wrong"), transcript)
        XCTAssertEqual(transcript.components(separatedBy: "  critic c").count - 1, 3, "one critic call per attempt: \(transcript)")

        let text = try harness.cli(["stats"])
        XCTAssertEqual(text.status, 0, "\(text)")
        let row = try XCTUnwrap(text.stdoutLines.first { $0.hasPrefix("stats-check ") && $0.contains(" critic ") }, text.stdout)
        XCTAssertEqual(
            row.split(separator: " ").map(String.init), ["stats-check", "critic", "3", "1", "1", "33%", "1", "100%", "1", "1", "100%"],
            text.stdout)
    }

    /// SIGKILL after every check ran (the verifier is waiting): on restart the job resumes from its
    /// record, and no check runs again.
    func testACompletedCheckIsNotRunAgainAfterACrash() throws {
        try harness.start()
        let plan = try harness.preparePlan("stats-check.yaml")
        let id = try submit(plan)
        XCTAssertTrue(
            waitUntil(timeout: 60) { FileManager.default.fileExists(atPath: harness.dir + "/verifier-started") }, "the verifier started")
        XCTAssertEqual(checkRuns.count, 3, "every check ran before the verifier")
        _ = try harness.crash(killOrphans: true)

        try harness.restart()
        FileManager.default.createFile(atPath: harness.dir + "/release", contents: nil)
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "failed", "\(job.encoded)\n\(dump(events))")
        XCTAssertEqual(self.events(events, kind: "job.resumed").count, 1, dump(events))
        XCTAssertEqual(checkRuns.count, 3, "no check ran again: \(checkRuns)")
        XCTAssertEqual(try checked(events, jobID: id), ["0/0 true", "0/1 false", "1/0 true"], dump(events))
    }
}
