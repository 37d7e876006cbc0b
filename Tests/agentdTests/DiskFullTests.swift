import Foundation
import Store
import TestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon on a database whose file system really fills up (a small tmpfs): it refuses new jobs
/// with an error naming the full disk, says so in `agentd status`, keeps what was committed, and
/// recovers by itself once space is back — resuming the job the fault stopped — with every chain
/// still verifying.
final class DiskFullTests: EndToEndTestCase {
    private var fs: SmallFileSystem?

    override func tearDown() {
        // The daemon holds the database open on the mount: it goes first.
        harness.cleanUpDaemon()
        fs?.unmount()
        fs = nil
        super.tearDown()
    }

    func testAFullDiskRefusesNewJobsKeepsWhatWasCommittedAndRecoversWhenSpaceReturns() throws {
        let fs = try SmallFileSystem(megabytes: 24)
        self.fs = fs
        harness.dbPath = fs.path + "/agentd.db"
        try harness.start()

        // Committed before the disk fills.
        let w1 = Locations.shippedPlans + "/w1.yaml"
        var done: [String] = []
        for i in 0..<2 {
            let result = try harness.cli(["submit", w1, "--goal", "before the fault \(i)", "--wait", "--json"])
            XCTAssertEqual(result.status, 0, "\(result)")
            done.append(try XCTUnwrap(try parseJSON(result.stdout)["id"]?.stringValue))
        }
        // A job held in its first model call while the disk fills; its next write will fail.
        let gate = harness.dir + "/gate"
        let held = try submit(try harness.preparePlan("live-watch.yaml"))
        try harness.waitForEvent(held, "actor call.started") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
        }
        let committedBefore = try harness.events(held)

        try fs.fill()
        _ = FileManager.default.createFile(atPath: gate, contents: Data())
        let status = waitUntilDegraded()
        XCTAssertTrue(
            status["storage"]?["error"]?.stringValue?.hasPrefix("disk full writing the database (SQLITE_FULL)") ?? false, status.encoded)

        // A client waiting for the stopped job is answered when it finishes, not with "running" now.
        let waiter = try harness.connect()
        try waiter.send(line: #"{"jsonrpc":"2.0","id":"w","method":"job.wait","params":{"id":"\#(held)"}}"#)

        // New jobs are refused with the storage error, on the socket and in the CLI.
        do {
            _ = try harness.rpc("job.submit", ["plan_path": .string(w1), "goal": "during the fault"])
            XCTFail("a submission went through on a full disk")
        } catch let failure as RPCFailure {
            XCTAssertEqual(failure.code, -32010, failure.message)
            XCTAssertEqual(
                failure.message,
                "storage unavailable: disk full writing the database (SQLITE_FULL); agentd accepts no new jobs until writes succeed again")
        }
        let refused = try harness.cli(["submit", w1])
        XCTAssertEqual(refused.status, 1, "\(refused)")
        XCTAssertTrue(refused.stderr.contains("agentd: storage unavailable: disk full writing the database (SQLITE_FULL)"), "\(refused)")
        let shown = try harness.cli(["status"])
        XCTAssertEqual(shown.status, 0, "\(shown)")
        XCTAssertTrue(shown.stdout.contains("accepting jobs: no (storage unavailable)"), shown.stdout)
        XCTAssertTrue(shown.stdout.contains("storage: DEGRADED since "), shown.stdout)
        XCTAssertTrue(shown.stdout.contains("disk full writing the database (SQLITE_FULL)"), shown.stdout)

        // What was committed is intact: the finished jobs, and the held job up to its last commit.
        for id in done { XCTAssertEqual(try harness.rpc("job.get", ["id": .string(id)])["status"]?.stringValue, "succeeded") }
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(held)])["status"]?.stringValue, "running")
        XCTAssertEqual(try harness.events(held).map(\.encoded), committedBefore.map(\.encoded), "nothing of the failed commit is visible")
        let verifyWhileFull = try harness.cli(["audit", "verify", "--all", "--db", harness.dbPath], socket: false)
        XCTAssertEqual(verifyWhileFull.status, 0, "\(verifyWhileFull)")

        // Space comes back: the daemon recovers by itself and resumes the job the fault stopped.
        fs.drain()
        XCTAssertTrue(
            waitUntil(timeout: 30, interval: 0.05) {
                (try? harness.rpc("daemon.status"))?["storage"]?["state"]?.stringValue == "ok"
            }, "the daemon leaves the degraded state once writes succeed")
        let waited = try waiter.readMessage(timeout: 60)
        XCTAssertEqual(waited["result"]?["status"]?.stringValue, "succeeded", waited.encoded)
        let resumed = try harness.waitForJob(held, timeout: 60)
        XCTAssertEqual(resumed["status"]?.stringValue, "succeeded", resumed.encoded)
        let events = try harness.events(held)
        assertContiguous(events)
        XCTAssertEqual(self.events(events, kind: "job.resumed").count, 1, dump(events))
        XCTAssertEqual(
            self.events(events, kind: "call.restarted").map { $0["call"]?.stringValue }, ["c1"],
            "the call whose reply was not recorded is made again:\n\(dump(events))")

        let after = try harness.cli(["submit", w1, "--goal", "after the fault", "--wait"])
        XCTAssertEqual(after.status, 0, "submissions succeed again: \(after)")
        XCTAssertTrue(try harness.cli(["status"]).stdout.contains("storage: ok"))
        let verify = try harness.cli(["audit", "verify", "--all", "--db", harness.dbPath], socket: false)
        XCTAssertEqual(verify.status, 0, "\(verify)")
        XCTAssertTrue(verify.stdout.hasPrefix("OK: 4 jobs"), verify.stdout)

        let log = harness.daemonLog()
        XCTAssertEqual(log.components(separatedBy: "storage unavailable: no new jobs").count - 1, 1, "logged once on entering:\n\(log)")
        XCTAssertEqual(log.components(separatedBy: "storage available again").count - 1, 1, "logged once on leaving:\n\(log)")
    }
}
