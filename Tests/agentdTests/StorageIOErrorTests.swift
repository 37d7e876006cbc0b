import Foundation
import Store
import TestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon when the disk under its database fails writes with EIO (injected at the system-call
/// edge: `Tests/Fixtures/faults/eio_preload.c`, preloaded into the daemon, fails the database's
/// writes while a trigger file exists). Like a full disk it refuses new jobs with an error naming
/// the I/O error, says so in `daemon.status`, keeps what was committed, and recovers by itself once
/// writes succeed — resuming the job the fault stopped — with every chain still verifying.
final class StorageIOErrorTests: EndToEndTestCase {
    /// Builds the preload library into the harness's directory with the system's C compiler, else
    /// the Swift toolchain's clang.
    private func faultLibrary() throws -> String {
        let library = harness.dir + "/eio_preload.so"
        let source = Locations.fixtures + "/faults/eio_preload.c"
        var outputs: [String] = []
        for compiler in ["cc", "clang"] {
            let (status, output) = try runCapturingOutput("/usr/bin/env", [compiler, "-shared", "-fPIC", "-o", library, source, "-ldl"])
            if status == 0 { return library }
            outputs.append("\(compiler): \(output)")
        }
        throw HarnessError("cannot build \(source): \(outputs.joined(separator: "; "))")
    }

    func testAnIOErrorRefusesNewJobsKeepsWhatWasCommittedAndRecoversWhenWritesSucceed() throws {
        let trigger = harness.dir + "/eio"
        harness.daemonEnvironment = [
            "LD_PRELOAD": try faultLibrary(), "AGENTD_FAULT_PREFIX": harness.dbPath, "AGENTD_FAULT_TRIGGER": trigger,
        ]
        try harness.start()
        let w1 = Locations.shippedPlans + "/w1.yaml"
        let before = try harness.cli(["submit", w1, "--goal", "before the fault", "--wait", "--json"])
        XCTAssertEqual(before.status, 0, "\(before)")
        let done = try XCTUnwrap(try parseJSON(before.stdout)["id"]?.stringValue)

        // A job held in its first model call while the disk fails; its next write fails.
        let held = try submit(try harness.preparePlan("live-watch.yaml"))
        try harness.waitForEvent(held, "actor call.started") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
        }
        let committedBefore = try harness.events(held)
        _ = FileManager.default.createFile(atPath: trigger, contents: Data())
        _ = FileManager.default.createFile(atPath: harness.dir + "/gate", contents: Data())
        let status = waitUntilDegraded()
        let error = status["storage"]?["error"]?.stringValue ?? ""
        XCTAssertTrue(error.hasPrefix("I/O error writing the database (SQLITE_IOERR"), status.encoded)

        // New jobs are refused with the storage error.
        do {
            _ = try harness.rpc("job.submit", ["plan_path": .string(w1), "goal": "during the fault"])
            XCTFail("a submission went through while the disk fails writes")
        } catch let failure as RPCFailure {
            XCTAssertEqual(failure.code, -32010, failure.message)
            XCTAssertTrue(failure.message.hasPrefix("storage unavailable: I/O error writing the database (SQLITE_IOERR"), failure.message)
        }
        let shown = try harness.cli(["status"])
        XCTAssertTrue(shown.stdout.contains("accepting jobs: no (storage unavailable)"), shown.stdout)

        // What was committed is intact.
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(done)])["status"]?.stringValue, "succeeded")
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(held)])["status"]?.stringValue, "running")
        XCTAssertEqual(try harness.events(held).map(\.encoded), committedBefore.map(\.encoded), "nothing of the failed commit is visible")

        // Writes succeed again: the daemon recovers by itself and resumes the stopped job.
        try FileManager.default.removeItem(atPath: trigger)
        XCTAssertTrue(
            waitUntil(timeout: 30, interval: 0.05) { (try? harness.rpc("daemon.status"))?["storage"]?["state"]?.stringValue == "ok" },
            "the daemon leaves the degraded state once writes succeed")
        let resumed = try harness.waitForJob(held, timeout: 60)
        XCTAssertEqual(resumed["status"]?.stringValue, "succeeded", resumed.encoded)
        let events = try harness.events(held)
        assertContiguous(events)
        XCTAssertEqual(self.events(events, kind: "job.resumed").count, 1, dump(events))
        let after = try harness.cli(["submit", w1, "--goal", "after the fault", "--wait"])
        XCTAssertEqual(after.status, 0, "submissions succeed again: \(after)")
        let verify = try harness.cli(["audit", "verify", "--all", "--db", harness.dbPath], socket: false)
        XCTAssertEqual(verify.status, 0, "\(verify)")
        XCTAssertTrue(verify.stdout.hasPrefix("OK: 3 jobs"), verify.stdout)
    }
}
