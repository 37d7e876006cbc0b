import Foundation
import Store
import XCTest

/// `agentd run`: one job in the CLI's own process, no daemon and no socket. It prints every event
/// as it is committed, then the job; exits 0 only when the job succeeded; and the job is recorded
/// in the database like a daemon's, chain included.
final class RunCommandTests: EndToEndTestCase {
    func testRunRecordsTheJobPrintsEveryEventAndExitsZeroWhenItSucceeds() throws {
        let db = harness.dir + "/run.db"
        let result = try harness.run(
            ["run", Locations.shippedPlans + "/demo.yaml", "--goal", "write release notes for agentd 0.1", "--json", "--db", db],
            timeout: 120)
        XCTAssertEqual(result.status, 0, "\(result)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.socketPath), "no daemon, no socket")
        var lines = try result.stdoutLines.map { try parseJSON($0, "run --json output") }
        let job = try XCTUnwrap(lines.popLast(), "\(result)")
        let id = try XCTUnwrap(job["id"]?.stringValue, job.encoded)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(result)")
        XCTAssertNotNil(job["finished_at"]?.doubleValue, job.encoded)

        // Every printed line before the job is one of its events, in order, and together they are
        // the whole record.
        assertContiguous(lines)
        XCTAssertTrue(lines.allSatisfy { $0["job"]?.stringValue ?? id == id }, dump(lines))
        let stored = CommandResult.lines(
            try harness.sqlite("SELECT seq || ' ' || kind FROM events WHERE job_id = '\(id)' ORDER BY seq", db: db))
        XCTAssertEqual(lines.map { "\($0["seq"]?.intValue ?? -1) \($0["kind"]?.stringValue ?? "?")" }, stored)
        XCTAssertEqual(try harness.sqlite("SELECT status FROM jobs WHERE id = '\(id)'", db: db), "succeeded\n")
        // The demo's story: the critic sends step 1 back once, the rerun passes, the verifier decides.
        XCTAssertEqual(events(lines, kind: "call.completed", role: "critic").count, 4, dump(lines))
        XCTAssertEqual(events(lines, kind: "call.completed", role: "verifier").count, 1, dump(lines))
        XCTAssertEqual(lines.last?["kind"]?.stringValue, "job.state", dump(lines))
        XCTAssertEqual(lines.last?["payload"]?["to"]?.stringValue, "succeeded", dump(lines))

        let verify = try harness.run(["audit", "verify", id, "--db", db])
        XCTAssertEqual(verify.status, 0, "the job's chain verifies: \(verify)")
        // A job run this way is a job like any other: a daemon on the same database lists it.
        harness.dbPath = db
        try harness.start()
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(id)])["status"]?.stringValue, "succeeded")
    }

    func testRunShowsProgressAndExitsOneWhenTheJobFails() throws {
        let db = harness.dir + "/run.db"
        let plan = try harness.preparePlan("verifier-fails.yaml")
        let result = try harness.run(["run", plan, "--goal", "fail at the end", "--db", db], timeout: 120)
        XCTAssertEqual(result.status, 1, "a failed job exits 1: \(result)")
        let last = try XCTUnwrap(result.stdoutLines.last, "\(result)")
        XCTAssertTrue(last.hasPrefix("job "), last)
        XCTAssertTrue(last.contains(" failed: "), "the last line says the job failed, and why: \(last)")
        XCTAssertGreaterThan(result.stdoutLines.count, 1, "progress is printed before the end: \(result)")
        XCTAssertEqual(try harness.sqlite("SELECT status FROM jobs", db: db), "failed\n")
    }
}
