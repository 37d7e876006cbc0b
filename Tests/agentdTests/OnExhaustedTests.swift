import Foundation
import Store
import XCTest

/// `policy.on_exhausted` through the built daemon: `best` goes on with the best-scored output of a
/// step whose every attempt failed, marked so in the record; `fail` ends the job without re-planning.
final class OnExhaustedTests: EndToEndTestCase {
    func testBestGoesOnWithTheBestScoredAttempt() throws {
        try harness.start()
        let id = try submit(try harness.preparePlan("on-exhausted.yaml", values: ["ON_EXHAUSTED": "best"]))
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let events = try harness.events(id)
        let exhausted = try XCTUnwrap(self.events(events, kind: "step.exhausted").first?["payload"], dump(events))
        XCTAssertEqual(exhausted["best_attempt"]?.intValue, 1)
        XCTAssertEqual(exhausted["best_score"]?.doubleValue, 0.4)
        XCTAssertEqual(self.events(events, kind: "job.replanned").count, 0, "no re-plan")
        let verifier = try XCTUnwrap(self.events(events, kind: "call.completed", role: "verifier").last?["payload"]?["raw"]?["stdout"])
        let outputs = try parseJSON(verifier.stringValue ?? "").arrayValue?.compactMap { $0["output"]?.stringValue }
        XCTAssertEqual(outputs, ["draft 1", "draft 0"], "the best-scored draft is the step's output")
        let transcript = try harness.cli("transcript", id).stdout
        XCTAssertTrue(transcript.contains("the job goes on with attempt 2 (score 0.4), the best scored"), transcript)
        harness.cleanUpDaemon()
        XCTAssertEqual(try harness.cli(["replay", id, "--db", harness.dbPath], socket: false).status, 0)
    }

    func testFailEndsTheJobWithoutReplanning() throws {
        try harness.start()
        let id = try submit(try harness.preparePlan("on-exhausted.yaml", values: ["ON_EXHAUSTED": "fail"]))
        let job = try harness.waitForJob(id)
        XCTAssertEqual(job["status"]?.stringValue, "failed")
        XCTAssertTrue(job["reason"]?.stringValue?.contains("failed 3 attempts and policy.on_exhausted is fail") == true, job.encoded)
        XCTAssertEqual(self.events(try harness.events(id), kind: "job.replanned").count, 0)
    }
}
