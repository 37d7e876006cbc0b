import Foundation
import Store
import XCTest

/// `agentd replay`: a recorded job runs again from its recorded replies and must make the same calls
/// with the same requests; an edited recording (or a changed plan) is reported at the first difference.
final class ReplayTests: EndToEndTestCase {
    /// Runs the demo plan (a critic fail, a rerun with feedback) on the daemon and stops it.
    private func recordDemo() throws -> String {
        try harness.start()
        let id = try submit(Locations.shippedPlans + "/demo.yaml", ["--goal", "write release notes for agentd 0.1"])
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        harness.cleanUpDaemon()
        return id
    }

    private func replay(_ id: String) throws -> (status: Int32, report: JSON) {
        let result = try harness.cli(["replay", id, "--db", harness.dbPath, "--json"], socket: false)
        return (result.status, try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "replay --json: \(result)"))
    }

    func testARecordedJobReplaysTheSameCalls() throws {
        let id = try recordDemo()
        let (status, report) = try replay(id)
        XCTAssertEqual(status, 0, report.encoded)
        XCTAssertEqual(report["matches"]?.boolValue, true)
        XCTAssertEqual(report["recorded_calls"]?.intValue, 10)
        XCTAssertEqual(report["replayed_calls"]?.intValue, 10)
        XCTAssertEqual(report["replayed_status"]?.stringValue, "succeeded")
        let text = try harness.cli(["replay", id, "--db", harness.dbPath], socket: false)
        XCTAssertTrue(text.stdout.contains("the same 10 calls in the same order"), "\(text)")
    }

    func testAChangedPromptIsReportedAtTheFirstCallItChanges() throws {
        let id = try recordDemo()
        _ = try harness.sqlite("UPDATE jobs SET plan = replace(plan, 'You review.', 'You review harshly.') WHERE id = '\(id)'")
        let (status, report) = try replay(id)
        XCTAssertEqual(status, 1, report.encoded)
        let divergence = report["divergence"]?.stringValue ?? ""
        XCTAssertTrue(divergence.contains("call c3 (critic)") && divergence.contains("You review harshly."), divergence)
    }

    func testAnEditedReplyChangesWhatFollowsAndIsReported() throws {
        let id = try recordDemo()
        // The critic's first verdict on step 2 was "fail" (score 0.4); make the recording say "pass" (0.9).
        let edited = try harness.sqlite(
            """
            DROP TRIGGER events_append_only_update;
            UPDATE events SET payload = replace(payload, '\\"verdict\\":\\"fail\\",\\"score\\":0.4', '\\"verdict\\":\\"pass\\",\\"score\\":0.9')
             WHERE job_id = '\(id)' AND kind = 'call.completed' AND role = 'critic' AND step = 1 AND attempt = 0;
            SELECT changes();
            """)
        XCTAssertEqual(edited.trimmingCharacters(in: .whitespacesAndNewlines), "1")
        let (status, report) = try replay(id)
        XCTAssertEqual(status, 1, report.encoded)
        let divergence = report["divergence"]?.stringValue ?? ""
        // With a pass the runner goes on with the candidate, where the recording has the rerun of step 2.
        XCTAssertTrue(divergence.contains("expected candidate.chosen , the log has candidate.started"), divergence)
    }

    /// A recording cut short: the replay's first call beyond it is named with its step and attempt counted
    /// from 1, as watch and transcripts count them (the record's are zero-based).
    func testACallBeyondTheRecordingIsNamedWithItsStepCountedFromOne() throws {
        let id = try recordDemo()
        let cut = try harness.sqlite(
            """
            DROP TRIGGER events_append_only_delete;
            DELETE FROM events WHERE job_id = '\(id)' AND seq >= (SELECT min(seq) FROM events
             WHERE job_id = '\(id)' AND kind = 'call.started' AND role = 'actor' AND step = 2);
            SELECT changes();
            """)
        XCTAssertGreaterThan(Int(cut.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 0, cut)
        let (status, report) = try replay(id)
        XCTAssertEqual(status, 1, report.encoded)
        let divergence = report["divergence"]?.stringValue ?? ""
        XCTAssertTrue(divergence.hasPrefix("the replay made a call the recording does not have: "), divergence)
        XCTAssertTrue(divergence.hasSuffix("(actor, step 3, attempt 1)"), divergence)
    }
}
