import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// `agentd prune`: whole finished jobs older than the cutoff go, through the daemon or (when none
/// runs) directly under the database lock; queued and running jobs stay; every chain left verifies,
/// and the record tells a pruned job from a deleted one.
final class PruneEndToEndTests: EndToEndTestCase {
    private var w1: String { Locations.shippedPlans + "/w1.yaml" }

    private func trimmed(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

    private func count(_ sql: String) throws -> Int { Int(trimmed(try harness.sqlite(sql))) ?? -1 }

    /// Waits until the wall clock is past `millis`, so what starts next finishes after it.
    private func waitPast(_ millis: Int) {
        waitUntil(timeout: 10) { Int(Date().timeIntervalSince1970 * 1000) > millis }
    }

    func testPruneRemovesOnlyWholeFinishedJobsBeforeTheCutoffAndEveryChainStillVerifies() throws {
        try harness.start(extraArguments: ["--max-running", "1"])
        // Finished before the cutoff: one of each ending.
        let succeeded = try submit(w1, ["--idempotency-key", "nightly-1"])
        XCTAssertEqual(try harness.waitForJob(succeeded)["status"]?.stringValue, "succeeded")
        let failed = try submit(try harness.preparePlan("invalid-critic.yaml"))
        XCTAssertEqual(try harness.waitForJob(failed)["status"]?.stringValue, "failed")
        let cancelled = try submit(try harness.preparePlan("cancel-sleep.yaml"))
        try harness.waitForEvent(cancelled, "actor call.started") { $0["kind"]?.stringValue == "call.started" }
        XCTAssertEqual(try harness.rpc("job.cancel", ["id": .string(cancelled)])["status"]?.stringValue, "cancelled")
        XCTAssertEqual(try harness.waitForJob(cancelled)["status"]?.stringValue, "cancelled")
        let old = [succeeded, failed, cancelled]
        let lastFinish = try old.map { try XCTUnwrap(harness.rpc("job.get", ["id": .string($0)])["finished_at"]?.intValue) }.max()!
        waitPast(lastFinish)
        let cutoff = Int(Date().timeIntervalSince1970 * 1000)
        waitPast(cutoff)
        // Finished after the cutoff, running, and queued behind it (one job runs at a time).
        let newer = try submit(w1)
        XCTAssertEqual(try harness.waitForJob(newer)["status"]?.stringValue, "succeeded")
        let running = try submit(try harness.preparePlan("live-watch.yaml"))
        try harness.waitForEvent(running, "actor call.started") { $0["kind"]?.stringValue == "call.started" }
        let queued = try submit(w1)
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(queued)])["status"]?.stringValue, "queued")

        _ = try harness.rpc("job.get", ["id": .string(succeeded)])  // the daemon keeps this answer
        let heads = try Dictionary(
            uniqueKeysWithValues: old.map { id in (id, trimmed(try harness.sqlite("SELECT head FROM job_chains WHERE job_id = '\(id)'"))) })
        let oldEvents = try count("SELECT count(*) FROM events WHERE job_id IN ('\(old.joined(separator: "','"))')")
        let allEvents = try count("SELECT count(*) FROM events")

        let dry = try harness.cli(["prune", "--older-than", "\(cutoff)", "--dry-run"])
        XCTAssertEqual(dry.status, 0, "\(dry)")
        XCTAssertTrue(dry.stdout.hasPrefix("would prune 3 jobs (\(oldEvents) events) that finished before "), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("nothing was removed"), dry.stdout)
        XCTAssertEqual(try count("SELECT count(*) FROM events"), allEvents, "a dry run removes nothing")
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), 6)

        let first = try harness.cli(["prune", "--older-than", "\(cutoff)", "--status", "succeeded", "--json"])
        XCTAssertEqual(first.status, 0, "\(first)")
        let firstResult = try parseJSON(trimmed(first.stdout))
        XCTAssertEqual(firstResult["jobs"]?.intValue, 1, first.stdout)
        XCTAssertEqual(firstResult["statuses"], ["succeeded"])
        XCTAssertThrowsError(try harness.rpc("job.get", ["id": .string(succeeded)]), "a pruned job is gone, kept answers too") {
            XCTAssertEqual(($0 as? RPCFailure)?.code, -32002, "\($0)")
        }
        let second = try harness.cli(["prune", "--older-than", "\(cutoff)"])
        XCTAssertEqual(second.status, 0, "\(second)")
        XCTAssertTrue(second.stdout.hasPrefix("pruned 2 jobs ("), second.stdout)
        XCTAssertTrue(second.stdout.contains("(succeeded, failed, cancelled); recorded as prune 2"), second.stdout)

        // Only the old finished jobs are gone, whole; the others are untouched.
        XCTAssertEqual(try count("SELECT count(*) FROM events"), allEvents - oldEvents)
        XCTAssertEqual(trimmed(try harness.sqlite("SELECT id FROM jobs ORDER BY id")), [newer, running, queued].joined(separator: "\n"))
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(running)])["status"]?.stringValue, "running")
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(queued)])["status"]?.stringValue, "queued")
        XCTAssertEqual(
            trimmed(
                try harness.sqlite("SELECT job_id || ' ' || prune_id || ' ' || status || ' ' || head FROM pruned_jobs ORDER BY job_id")),
            [
                "\(succeeded) 1 succeeded \(heads[succeeded]!)", "\(failed) 2 failed \(heads[failed]!)",
                "\(cancelled) 2 cancelled \(heads[cancelled]!)",
            ].joined(separator: "\n"))

        var verify = try harness.cli(["audit", "verify", "--all", "--db", harness.dbPath], socket: false)
        XCTAssertEqual(verify.status, 0, "\(verify)")
        XCTAssertTrue(verify.stdout.hasPrefix("OK: 3 jobs, "), verify.stdout)
        XCTAssertTrue(verify.stdout.contains("; 3 jobs removed by 2 prunes (the last at "), verify.stdout)
        let gone = try harness.cli(["audit", "verify", failed, "--db", harness.dbPath], socket: false)
        XCTAssertEqual(gone.status, 2, "\(gone)")
        XCTAssertTrue(gone.stderr.contains("\(failed) was pruned (prune 2 at "), gone.stderr)
        XCTAssertTrue(gone.stderr.contains("head \(heads[failed]!)"), gone.stderr)

        // The pruned job's idempotency key makes a new job.
        let again = try harness.cli(["submit", w1, "--idempotency-key", "nightly-1", "--json"], timeout: 20)
        XCTAssertEqual(again.status, 0, "\(again)")
        let resubmitted = try parseJSON(trimmed(again.stdout))
        XCTAssertNotEqual(resubmitted["id"]?.stringValue, succeeded)
        XCTAssertEqual(resubmitted["created"]?.boolValue, true)

        // The jobs that stayed run on, and every chain still verifies.
        _ = FileManager.default.createFile(atPath: harness.dir + "/gate", contents: Data())
        for id in [running, queued, resubmitted["id"]?.stringValue ?? "?"] {
            XCTAssertEqual(try harness.waitForJob(id, timeout: 60)["status"]?.stringValue, "succeeded", id)
        }
        verify = try harness.cli(["audit", "verify", "--all", "--db", harness.dbPath], socket: false)
        XCTAssertEqual(verify.status, 0, "\(verify)")
        XCTAssertTrue(verify.stdout.hasPrefix("OK: 4 jobs, "), verify.stdout)
    }

    func testWithoutADaemonPruneOpensTheDatabaseItselfUnderTheLock() throws {
        try harness.start()
        for i in 0..<2 { XCTAssertEqual(try harness.cli(["submit", w1, "--goal", "job \(i)", "--wait"]).status, 0) }
        harness.cleanUpDaemon()

        let dry = try harness.cli(["prune", "--older-than", "0s", "--dry-run", "--db", harness.dbPath])
        XCTAssertEqual(dry.status, 0, "\(dry)")
        XCTAssertTrue(dry.stdout.hasPrefix("would prune 2 jobs ("), dry.stdout)
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), 2)
        let pruned = try harness.cli(["prune", "--older-than", "0s", "--db", harness.dbPath])
        XCTAssertEqual(pruned.status, 0, "\(pruned)")
        XCTAssertTrue(pruned.stdout.hasPrefix("pruned 2 jobs ("), pruned.stdout)
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), 0)
        XCTAssertEqual(try count("SELECT count(*) FROM events"), 0)
        let verify = try harness.cli(["audit", "verify", "--all", "--db", harness.dbPath], socket: false)
        XCTAssertEqual(verify.status, 0, "\(verify)")
        XCTAssertTrue(
            verify.stdout.hasPrefix("OK: 0 jobs, 0 events, every chain verifies; 2 jobs removed by 1 prune (the last at "), verify.stdout)

        // A daemon that holds the database but answers on another socket: the lock says so.
        let other = try harness.launchServe(socket: harness.dir + "/other.sock")
        defer {
            kill(other.processIdentifier, SIGKILL)
            other.waitUntilExit()
        }
        XCTAssertTrue(waitUntil(timeout: 15) { FileManager.default.fileExists(atPath: harness.dir + "/other.sock") })
        let locked = try harness.cli(["prune", "--older-than", "0s", "--db", harness.dbPath])
        XCTAssertEqual(locked.status, 1, "\(locked)")
        XCTAssertTrue(
            locked.stderr.contains("another agentd (pid \(other.processIdentifier)) is already using the database"), locked.stderr)
    }

    func testBadPruneRequestsAreRefusedWithTheirReason() throws {
        try harness.start()
        let badStatus = try harness.cli(["prune", "--older-than", "7d", "--status", "succeeded,running"])
        XCTAssertNotEqual(badStatus.status, 0)
        XCTAssertTrue(
            badStatus.stderr.contains("--status takes succeeded, failed, cancelled (comma-separated), got 'running'"), badStatus.stderr)
        let badCutoff = try harness.cli(["prune", "--older-than", "seven days"])
        XCTAssertNotEqual(badCutoff.status, 0)
        XCTAssertTrue(badCutoff.stderr.contains("--older-than takes a duration"), badCutoff.stderr)
        for (params, message) in [
            (JSON.object([]), "'before' (Unix ms: jobs that finished before it are removed) is required"),
            (["before": 1, "statuses": ["queued"]], "'statuses' may hold only succeeded, failed, cancelled"),
            (["before": 1, "statuses": .array([])], "'statuses' must be a non-empty array"),
            (["before": 1, "dry_run": "yes"], "'dry_run' must be true or false"),
            (["before": -5], "'before' must be an integer from 0"),
        ] {
            XCTAssertThrowsError(try harness.rpc("job.prune", params), "\(params.encoded)") { error in
                let failure = error as? RPCFailure
                XCTAssertEqual(failure?.code, -32602, "\(error)")
                XCTAssertTrue(failure?.message.contains(message) ?? false, "\(error)")
            }
        }
    }
}
