import Foundation
import Store
import XCTest

/// `agentd retry` through the built daemon: a new job from a finished job's step, whose calls before
/// that step are answered from the original's record (a ledger written by every model and command
/// run proves none is made again), linked to the original both ways, recovered after SIGKILL
/// without re-running what it reused, and replayable.
final class RetryTests: EndToEndTestCase {
    private var ledger: String { harness.dir + "/ledger.txt" }
    private func ledgerLines() -> [String] { CommandResult.lines((try? String(contentsOfFile: ledger, encoding: .utf8)) ?? "") }

    /// Runs the retry plan with step 2 broken: the job fails at step 2. Returns its id.
    private func failedJob() throws -> String {
        try harness.start()
        _ = FileManager.default.createFile(atPath: harness.dir + "/broken", contents: nil)
        let id = try submit(try harness.preparePlan("retry.yaml"))
        let job = try harness.waitForJob(id)
        XCTAssertEqual(job["status"]?.stringValue, "failed", job.encoded)
        XCTAssertEqual(ledgerLines(), ["step=0 attempt=0", "critic step=1", "step=1 attempt=0", "critic step=2"])
        try FileManager.default.removeItem(atPath: harness.dir + "/broken")
        return id
    }

    private func retry(_ arguments: [String]) throws -> String {
        let result = try harness.cli(["retry"] + arguments)
        XCTAssertEqual(result.status, 0, "\(result)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testARetryFromStep2MakesNoCallForStep1AndLinksBothJobs() throws {
        let original = try failedJob()
        _ = FileManager.default.createFile(atPath: harness.dir + "/slow-step-started.flag", contents: nil)  // no sleep
        let id = try retry([original, "--from-step", "2"])
        let job = try harness.waitForJob(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", job.encoded)
        // Step 1's actor and critic did not run again; step 2 and 3 ran live.
        XCTAssertEqual(
            ledgerLines().dropFirst(4), ["step=1 attempt=0", "critic step=2", "step=2 attempt=0", "critic step=3"], "\(ledgerLines())")

        let events = try harness.events(id)
        let summary = dump(events)
        assertContiguous(events)
        let submitted = try XCTUnwrap(events.first?["payload"], summary)
        XCTAssertEqual(submitted["retry_of"]?.stringValue, original, summary)
        XCTAssertEqual(submitted["from_step"]?.intValue, 2, summary)
        // Step 1's two calls and its candidate's record are copies of the original's, marked with its
        // seqs; nothing after them is.
        let originalEvents = try harness.events(original)
        let reused = events.filter { $0["payload"]?["reused_from"] != nil }
        XCTAssertEqual(
            reused.map { $0["kind"]?.stringValue ?? "" },
            [
                "job.state", "candidate.started", "call.started", "call.completed", "call.started", "call.completed", "candidate.judged",
                "candidate.chosen",
            ], summary)
        for copy in reused {
            let source = try XCTUnwrap(originalEvents.first { $0["seq"]?.intValue == copy["payload"]?["reused_from"]?.intValue }, summary)
            XCTAssertEqual(copy["kind"], source["kind"])
            XCTAssertEqual(copy["call"], source["call"])
            XCTAssertEqual(copy["step"]?.intValue ?? 0, 0, "only step 1 is reused: \(summary)")
        }
        XCTAssertEqual(self.events(events, kind: "call.restarted").count, 0, summary)
        XCTAssertEqual(self.events(events, kind: "job.resumed").count, 0, summary)

        // The original is linked to the retry by its last event, and both show it.
        let link = try XCTUnwrap(harness.events(original).last, "\(originalEvents)")
        XCTAssertEqual(link["kind"]?.stringValue, "job.retried")
        XCTAssertEqual(link["payload"]?["job"]?.stringValue, id)
        XCTAssertEqual(link["payload"]?["from_step"]?.intValue, 2)
        let shownRetry = try harness.cli("show", id).stdout
        XCTAssertTrue(shownRetry.contains("retry of:         \(original) from step 2 (2 calls reused)"), shownRetry)
        XCTAssertTrue(shownRetry.contains("completed calls:  5 (actor 2, critic 2, verifier 1)"), shownRetry)
        let shownOriginal = try harness.cli("show", original).stdout
        XCTAssertTrue(shownOriginal.contains("retried as:       \(id) from step 2"), shownOriginal)
        let transcript = try harness.cli("transcript", id).stdout
        XCTAssertTrue(transcript.contains("a retry of job \(original) from step 2"), transcript)
        XCTAssertTrue(transcript.contains("reused from the retried job's record"), transcript)

        // A new goal changes every request that quotes it: nothing is answered from the original.
        let withGoal = try retry([original, "--from-step", "2", "--goal", "another goal"])
        XCTAssertEqual(try harness.waitForJob(withGoal)["status"]?.stringValue, "succeeded")
        XCTAssertEqual(ledgerLines().dropFirst(8).first, "step=0 attempt=0", "step 1 ran live: \(ledgerLines())")
        let calls = self.events(try harness.events(withGoal), kind: "call.started")
        XCTAssertEqual(calls.filter { $0["payload"]?["reused_from"] != nil }.count, 0, dump(calls))
        let links = try parseJSON(try harness.cli("show", original, "--json").stdout)["retries"]
        XCTAssertEqual(links?.arrayValue?.compactMap { $0["job"]?.stringValue }, [id, withGoal])

        // The record holds: the chains verify, and both jobs replay as recorded.
        harness.cleanUpDaemon()
        let verify = try harness.cli(["audit", "verify", "--all", "--db", harness.dbPath], socket: false)
        XCTAssertEqual(verify.status, 0, "\(verify)")
        // Stats count each call once, in the job that made it: the original's 2 steps, the retry's 2 live
        // ones (not its copy of step 1), the retry with a new goal's 3.
        let stats = try harness.cli(["stats", "--db", harness.dbPath, "--plan", "retry", "--json"], socket: false)
        let row = try parseJSON(stats.stdout, "stats --json: \(stats)")["plans"]?.arrayValue?.first
        XCTAssertEqual(row?["jobs"]?.intValue, 3, stats.stdout)
        XCTAssertEqual(row?["steps"]?.intValue, 7, stats.stdout)
        for job in [id, original] {
            let result = try harness.cli(["replay", job, "--db", harness.dbPath, "--json"], socket: false)
            let report = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "replay --json: \(result)")
            XCTAssertEqual(report["matches"]?.boolValue, true, report.encoded)
        }
    }

    func testARetryOfAnUnknownOrRunningJobOrAStepOutOfRangeIsRefused() throws {
        let original = try failedJob()
        let unknown = try harness.cli("retry", "01J0000000000000000000000X")
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("no such job: 01J0000000000000000000000X"), "\(unknown)")
        let outOfRange = try harness.cli("retry", original, "--from-step", "3")
        XCTAssertNotEqual(outOfRange.status, 0)
        XCTAssertTrue(
            outOfRange.stderr.contains("'from_step' 3 is out of range for job \(original): it reached steps 1 to 2"), "\(outOfRange)")
        let zero = try harness.cli("retry", original, "--from-step", "0")
        XCTAssertNotEqual(zero.status, 0)
        XCTAssertTrue(zero.stderr.contains("--from-step counts steps from 1, got 0"), "\(zero)")
        // Over the protocol: the same checks, as errors.
        let conn = try harness.connect()
        let bad = try conn.request("job.retry", ["id": .string(original), "from_step": 0])
        XCTAssertEqual(bad["error"]?["code"]?.intValue, -32602, bad.encoded)

        // A running job (its step 3 sleeps) cannot be retried.
        let running = try retry([original, "--from-step", "2"])
        try harness.waitForEvent(running, "step 3 actor call.started") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor" && $0["step"]?.intValue == 2
        }
        let refused = try harness.cli("retry", running)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(
            refused.stderr.contains("job \(running) is running: only a finished job (succeeded, failed or cancelled) can be retried"),
            "\(refused)")
        XCTAssertEqual(try harness.rpc("job.cancel", ["id": .string(running)])["status"]?.stringValue, "cancelled")
        // Nothing was linked by the refusals: the original has one retry.
        XCTAssertEqual(try harness.events(original).filter { $0["kind"]?.stringValue == "job.retried" }.count, 1)
    }

    /// SIGKILL while the retry's step 3 call is in flight: the restarted daemon recovers the retry
    /// from its own log, and neither the reused step 1 nor the completed step 2 runs again.
    func testARetryRecoveredAfterSIGKILLDoesNotRerunReusedCalls() throws {
        let original = try failedJob()
        let id = try retry([original, "--from-step", "2"])
        XCTAssertTrue(
            waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: harness.dir + "/slow-step-started.flag") },
            "step 3's call started: \(ledgerLines())")
        _ = try harness.crash(killOrphans: true)
        try harness.restart()
        let job = try harness.waitForJob(id, timeout: 60)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", job.encoded)
        XCTAssertEqual(
            ledgerLines().dropFirst(4), ["step=1 attempt=0", "critic step=2", "step=2 attempt=0", "step=2 attempt=0", "critic step=3"],
            "only the interrupted call ran twice: \(ledgerLines())")
        let events = try harness.events(id)
        let summary = dump(events)
        assertContiguous(events)
        XCTAssertEqual(self.events(events, kind: "job.resumed").count, 1, summary)
        XCTAssertEqual(self.events(events, kind: "call.restarted").map { $0["step"]?.intValue }, [2], summary)
        XCTAssertEqual(events.filter { $0["payload"]?["reused_from"] != nil }.count, 8, summary)

        harness.cleanUpDaemon()
        let result = try harness.cli(["replay", id, "--db", harness.dbPath, "--json"], socket: false)
        let report = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "replay --json: \(result)")
        XCTAssertEqual(report["matches"]?.boolValue, true, report.encoded)
    }

    /// A tool the original ran in a reused step is not run again: its recorded result is the copy's.
    func testARetryDoesNotRunAgainTheToolsOfTheStepsItReuses() throws {
        try checkToolsAreReused(gates: "[]", original: ["ran step 0", "ran step 1"])
    }

    /// Nor when a gate had the critic review it: the review and its decision are reused with it
    /// (the same request, the same decision), and the gate of the live step is asked again.
    func testARetryReusesAGatedToolWithItsDecision() throws {
        try checkToolsAreReused(gates: "[{tool: run_command, review: critic}]", original: ["ran step 0"])
        let events = try harness.events(try XCTUnwrap(retryID))
        let summary = dump(events)
        XCTAssertEqual(
            self.events(events, kind: "gate.decided").map { $0["payload"]?["reused_from"] != nil }, [true, false], summary)
        XCTAssertEqual(
            self.events(events, kind: "gate.decided").map { $0["payload"]?["decision"]?.stringValue ?? "" }, ["approved", "approved"],
            summary)
    }

    private var retryID: String?

    /// Runs retry-tools.yaml with `gates` and step 2 broken (the tool ledger then holds `original`),
    /// then a retry from step 2: step 1's tool does not run again, step 2's does.
    private func checkToolsAreReused(gates: String, original ran: [String]) throws {
        try harness.start()
        let toolLedger = harness.dir + "/tool-ledger.txt"
        let lines = { CommandResult.lines((try? String(contentsOfFile: toolLedger, encoding: .utf8)) ?? "") }
        _ = FileManager.default.createFile(atPath: harness.dir + "/broken", contents: nil)
        try FileManager.default.createDirectory(atPath: harness.dir + "/ws", withIntermediateDirectories: true)
        let original = try submit(try harness.preparePlan("retry-tools.yaml", values: ["GATES": gates]))
        XCTAssertEqual(try harness.waitForJob(original)["status"]?.stringValue, "failed")
        XCTAssertEqual(lines(), ran)
        try FileManager.default.removeItem(atPath: harness.dir + "/broken")

        let id = try retry([original, "--from-step", "2"])
        retryID = id
        let job = try harness.waitForJob(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", job.encoded)
        XCTAssertEqual(lines(), ran + ["ran step 1"], "step 1's tool did not run again")
        let events = try harness.events(id)
        let summary = dump(events)
        let tools = self.events(events, kind: "tool.started")
        XCTAssertEqual(tools.map { $0["payload"]?["reused_from"] != nil }, [true, false], summary)
        // The copy carries the retry's own idempotency key; its result is the original's.
        XCTAssertEqual(tools.first?["payload"]?["idempotency_key"]?.stringValue, "\(id)/c1/0", summary)
        let results = self.events(events, kind: "tool.completed")
        let originalResult = self.events(try harness.events(original), kind: "tool.completed").first?["payload"]?["result"]
        XCTAssertEqual(results.first?["payload"]?["result"], originalResult, summary)
    }
}
