import Foundation
import Store
import TestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// `agentd eval` end to end: the built binary runs the mini suite (Tests/Fixtures/evals) as real jobs
/// through a real daemon, judges them with the suite's checks, reports, and resumes after a SIGKILL of
/// itself or of the daemon.
final class EvalTests: EndToEndTestCase {
    private var evals: String { Locations.fixtures + "/evals" }

    private func arms(_ names: String...) -> String {
        names.map { "\(evals)/arms/\($0).yaml" }.joined(separator: ",")
    }

    /// The four test arms on the mini suite, every figure of the JSON report as worked out by hand from
    /// the scripted actor ("draft" first, "ANSWER" after) and the checks (a wants ANSWER, b draft, c
    /// nothing).
    func testEvalJudgesEveryArmByTheSuitesChecks() throws {
        try harness.start()
        let result = try harness.cli(
            [
                "eval", evals + "/mini", "--plans", arms("single", "oracle", "feedback", "selfcritic"), "--dir", harness.dir + "/eval",
                "--json",
            ],
            timeout: 120)
        XCTAssertEqual(result.status, 0, "\(result)")
        let report = try JSON.parse(result.stdout)
        let byName = Dictionary(uniqueKeysWithValues: (report["arms"]?.arrayValue ?? []).map { ($0["name"]!.stringValue!, $0) })
        func figures(_ arm: String, _ keys: String...) -> [Int] { keys.map { byName[arm]?[$0]?.intValue ?? -1 } }
        // single: only b's draft is right. oracle and feedback: a is rescued by its rerun; c never is
        // (its third attempt repeats the second, so the job fails). selfcritic fails every first
        // attempt: a is rescued, b's right draft is flipped to a wrong ANSWER, c's ANSWER passes wrongly.
        XCTAssertEqual(figures("single", "runs", "verified", "first_attempt", "actor_calls", "flips", "failed_jobs"), [3, 1, 1, 3, 0, 0])
        XCTAssertEqual(figures("oracle", "runs", "verified", "first_attempt", "actor_calls", "flips", "failed_jobs"), [3, 2, 1, 6, 0, 1])
        XCTAssertEqual(figures("feedback", "verified", "first_attempt"), [2, 1])
        XCTAssertEqual(
            figures("selfcritic", "runs", "verified", "first_attempt", "actor_calls", "flips", "failed_jobs"), [3, 1, 1, 6, 1, 0])
        let critic = try XCTUnwrap(byName["selfcritic"]?["critic"])
        XCTAssertEqual(
            ["wrong_judged", "false_passes", "right_judged", "false_fails"].map { critic[$0]?.intValue }, [4, 2, 2, 1],
            "selfcritic's critic: \(critic)")
        XCTAssertEqual(byName["oracle"]?["critic"]?["false_passes"]?.intValue, 0, "the check as critic never passes a wrong output")
        let interval = try XCTUnwrap(byName["oracle"]?["ci95"])
        XCTAssertEqual(interval["lower"]?.doubleValue ?? -1, 0.2076596, accuracy: 1e-6)
        XCTAssertEqual(interval["upper"]?.doubleValue ?? -1, 0.9385081, accuracy: 1e-6)
        let pair = try XCTUnwrap(
            report["pairs"]?.arrayValue?.first { $0["first"]?.stringValue == "single" && $0["second"]?.stringValue == "oracle" })
        XCTAssertEqual(["pairs", "both", "wins", "losses"].map { pair[$0]?.intValue }, [3, 1, 0, 1])
        XCTAssertEqual(pair["p"]?.doubleValue, 1)
        XCTAssertEqual(report["runs"]?.arrayValue?.count, 12)

        // Every run is a real job, submitted under its idempotency key.
        let jobs = try harness.rpc("job.list", ["limit": 100])["jobs"]?.arrayValue ?? []
        XCTAssertEqual(jobs.count, 12)
        XCTAssertTrue(jobs.allSatisfy { $0["idempotency_key"]?.stringValue?.hasPrefix("eval/default/mini/") == true }, "\(jobs)")

        // The same command again runs nothing and reports the same.
        let again = try harness.cli(
            [
                "eval", evals + "/mini", "--plans", arms("single", "oracle", "feedback", "selfcritic"), "--dir", harness.dir + "/eval",
                "--json",
            ],
            timeout: 120)
        XCTAssertEqual(again.status, 0, "\(again)")
        XCTAssertEqual(try JSON.parse(again.stdout), report)
        XCTAssertTrue(again.stderr.contains("12/12 (12 resumed)"), again.stderr)
        XCTAssertEqual(try harness.rpc("job.list", ["limit": 100])["jobs"]?.arrayValue?.count, 12, "no job submitted twice")

        let markdown = try harness.cli(
            ["eval", evals + "/mini", "--plans", arms("single", "oracle"), "--dir", harness.dir + "/eval", "--quiet"], timeout: 120)
        XCTAssertEqual(markdown.stderr, "", "--quiet draws no progress")
        XCTAssertTrue(markdown.stdout.contains("| single | 1/3 (33.3%) | 6.1%–79.2% | 33.3% | 1.00 |"), markdown.stdout)
        XCTAssertTrue(markdown.stdout.contains("| single | oracle | 3 | 1 | 0 | 1 | 1.000 |"), markdown.stdout)
    }

    /// Each attempt is judged in the workspace as that attempt left it, rebuilt from the recorded
    /// `write_file` calls: the first attempt's wrong answer.txt is wrong although the job's workspace
    /// ends with the right one.
    func testEachAttemptIsJudgedInItsOwnWorkspaceSnapshot() throws {
        try harness.start()
        let result = try harness.cli(
            ["eval", evals + "/files", "--plans", arms("files"), "--dir", harness.dir + "/eval", "--json", "--quiet"], timeout: 120)
        XCTAssertEqual(result.status, 0, "\(result)")
        let run = try XCTUnwrap(try JSON.parse(result.stdout)["runs"]?.arrayValue?.first)
        XCTAssertEqual(run["verified"]?.boolValue, true, "the job's own workspace holds the right answer: \(run)")
        XCTAssertEqual(run["first_attempt"]?.boolValue, false)
        let attempts = run["attempts"]?.arrayValue ?? []
        XCTAssertEqual(attempts.map { $0["correct"]?.boolValue }, [false, true], "\(run)")
        XCTAssertEqual(attempts.map { $0["critic"]?.boolValue }, [false, true], "the check as critic agrees")
        let workspace = try XCTUnwrap(
            try FileManager.default.subpathsOfDirectory(atPath: harness.dir + "/eval/workspaces").first { $0.hasSuffix("/w/0") })
        XCTAssertEqual(
            try String(contentsOfFile: harness.dir + "/eval/workspaces/" + workspace + "/answer.txt", encoding: .utf8), "right",
            "the job wrote into the run's copy of the fixture")
    }

    func testBadSuitesAndArmsAreNamed() throws {
        try harness.start()
        let missing = try harness.cli(["eval", harness.dir + "/nowhere", "--plans", arms("single"), "--dir", harness.dir + "/eval"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "agentd: suite \(harness.dir)/nowhere: no such file or directory\n")
        let unknownTask = try harness.cli([
            "eval", evals + "/mini", "--plans", arms("single"), "--tasks", "a,zz", "--dir", harness.dir + "/e",
        ])
        XCTAssertEqual(unknownTask.status, 2)
        XCTAssertEqual(unknownTask.stderr, "agentd: --tasks: the suite mini has no task 'zz'\n")
        try "name: broken\n".write(toFile: harness.dir + "/broken.yaml", atomically: true, encoding: .utf8)
        let broken = try harness.cli([
            "eval", evals + "/mini", "--plans", harness.dir + "/broken.yaml", "--dir", harness.dir + "/e2", "--quiet", "--concurrency", "1",
        ])
        XCTAssertEqual(broken.status, 1)
        XCTAssertTrue(broken.stderr.hasPrefix("agentd: submit a under broken: invalid plan: "), broken.stderr)
    }

    // MARK: Resumption

    /// An arm whose actor is `gate_actor.py`: task c ("slow") waits for the gate file.
    private func gatedArm() throws -> (plan: String, gate: String) {
        let gate = harness.dir + "/gate"
        let plan = harness.dir + "/gated.yaml"
        try """
        name: eval-gated
        models:
          gate:
            backend: command
            command: ["python3", "\(evals)/gate_actor.py", "\(gate)"]
            sandbox: false
        roles:
          actor: {model: gate, prompt: "Do the step."}
          critic: {command: ["true"]}
          verifier: {command: ["true"]}
        steps: ["Do what the goal says."]
        sandbox: false
        policy: {max_attempts: 1, max_replans: 0}

        """.write(toFile: plan, atomically: true, encoding: .utf8)
        return (plan, gate)
    }

    /// Starts `agentd eval` in the background, one job at a time, with a ledger of every check it runs.
    private func launchEval(plan: String) throws -> (process: Process, stdout: String, stderr: String) {
        let out = harness.dir + "/eval-\(UUID().uuidString).out"
        let err = out + ".err"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: harness.agentd)
        process.arguments = [
            "eval", evals + "/mini", "--plans", plan, "--concurrency", "1", "--dir", harness.dir + "/eval", "--json", "--socket",
            harness.socketPath,
        ]
        process.environment = harness.environment(["EVAL_CHECK_LEDGER": harness.dir + "/ledger"])
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, out, err)
    }

    /// Waits until task c's job is in its actor call (held at the gate), a and b judged before it.
    private func waitForSlowJob() throws -> String {
        var slow: String?
        let held = try waitUntil(timeout: 60) {
            let jobs = try harness.rpc("job.list", ["limit": 100])["jobs"]?.arrayValue ?? []
            guard let c = jobs.first(where: { $0["goal"]?.stringValue?.contains("slow") == true }), let id = c["id"]?.stringValue else {
                return false
            }
            slow = id
            return try harness.events(id).contains { $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor" }
        }
        XCTAssertTrue(held, "task c's job never reached its actor call")
        let state = try String(contentsOfFile: harness.dir + "/eval/state.jsonl", encoding: .utf8)
        XCTAssertEqual(state.split(separator: "\n").count, 2, "a and b are judged before c is submitted (one job at a time)")
        return try XCTUnwrap(slow)
    }

    private func ledger() -> [String] {
        ((try? String(contentsOfFile: harness.dir + "/ledger", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// SIGKILL of the eval while a job runs: run again, it judges only what it had not, finds the job
    /// it had submitted through its key, and reports every run.
    func testEvalResumesAfterItIsKilled() throws {
        try harness.start()
        let (plan, gate) = try gatedArm()
        let first = try launchEval(plan: plan)
        defer { if first.process.isRunning { kill(first.process.processIdentifier, SIGKILL) } }
        let slow = try waitForSlowJob()
        XCTAssertEqual(ledger().sorted(), ["ANSWER attempt 1", "ANSWER final", "draft attempt 1", "draft final"])
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        XCTAssertEqual(first.process.terminationReason, .uncaughtSignal)

        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        let second = try harness.cli(
            ["eval", evals + "/mini", "--plans", plan, "--concurrency", "1", "--dir", harness.dir + "/eval", "--json"],
            env: ["EVAL_CHECK_LEDGER": harness.dir + "/ledger"], timeout: 120)
        XCTAssertEqual(second.status, 0, "\(second)")
        XCTAssertTrue(second.stderr.contains("(2 resumed)"), second.stderr)
        let report = try JSON.parse(second.stdout)
        let arm = try XCTUnwrap(report["arms"]?.arrayValue?.first)
        XCTAssertEqual(["runs", "verified"].map { arm[$0]?.intValue }, [3, 1])
        let runs = report["runs"]?.arrayValue ?? []
        XCTAssertEqual(runs.first { $0["task"]?.stringValue == "c" }?["job"]?.stringValue, slow, "c's job was found again, not made anew")
        XCTAssertEqual(try harness.rpc("job.list", ["limit": 100])["jobs"]?.arrayValue?.count, 3, "no job submitted twice")
        // a and b were not judged again; c was judged once.
        XCTAssertEqual(
            ledger().sorted(), ["ANSWER attempt 1", "ANSWER final", "draft attempt 1", "draft final", "nothing attempt 1", "nothing final"])
    }

    /// SIGKILL of the daemon while the eval waits for a job: the eval reconnects to the restarted
    /// daemon, which resumes the job; the eval finishes with every run judged once.
    func testEvalCarriesOnWhenTheDaemonIsKilled() throws {
        try harness.start()
        let (plan, gate) = try gatedArm()
        let eval = try launchEval(plan: plan)
        defer { if eval.process.isRunning { kill(eval.process.processIdentifier, SIGKILL) } }
        let slow = try waitForSlowJob()
        // The eval names the harness's directory on its command line, so the harness would take it for
        // the daemon's orphan: the held actor is left for the next daemon to reap, as in production.
        try harness.crash(killOrphans: false)
        XCTAssertTrue(eval.process.isRunning, "the eval waits for the daemon to come back")
        try harness.restart()
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        XCTAssertTrue(waitUntil(timeout: 120) { !eval.process.isRunning }, "the eval did not finish after the daemon came back")
        let stdout = try String(contentsOfFile: eval.stdout, encoding: .utf8)
        let stderr = try String(contentsOfFile: eval.stderr, encoding: .utf8)
        XCTAssertEqual(eval.process.terminationStatus, 0, "stdout:\n\(stdout)\nstderr:\n\(stderr)")
        let report = try JSON.parse(stdout)
        XCTAssertEqual(report["runs"]?.arrayValue?.count, 3)
        XCTAssertTrue(try harness.events(slow).contains { $0["kind"]?.stringValue == "job.resumed" }, "the daemon resumed c's job")
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(slow)])["status"]?.stringValue, "succeeded")
        XCTAssertEqual(try harness.rpc("job.list", ["limit": 100])["jobs"]?.arrayValue?.count, 3, "no job submitted twice")
        XCTAssertEqual(ledger().filter { $0.hasPrefix("nothing") }.sorted(), ["nothing attempt 1", "nothing final"], "c judged once")
    }

    // MARK: The HTML report

    /// The report page of the mini suite, loaded in headless Chromium with no network: its script ran,
    /// every arm's row and bar are there with the figures of the JSON report, and it fetched nothing.
    func testHTMLReportInHeadlessChromium() throws {
        guard
            let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            throw Capability.chromium.missing(
                "chromium is not installed (apt-get install -y chromium, as scripts/deps.sh does): the eval's HTML report was not loaded in a browser"
            )
        }
        try harness.start()
        let page = harness.dir + "/report.html"
        let result = try harness.cli(
            [
                "eval", evals + "/mini", "--plans", arms("single", "oracle", "selfcritic"), "--dir", harness.dir + "/eval", "--quiet", "-o",
                page,
            ],
            timeout: 120)
        XCTAssertEqual(result.status, 0, "\(result)")
        let html = try String(contentsOfFile: page, encoding: .utf8)
        XCTAssertFalse(html.contains("http://") && !html.contains("http://www.w3.org/2000/svg"), "the page names no outside resource")
        XCTAssertFalse(html.contains("src=") || html.contains("href="), "the page loads nothing")

        let dom = try dumpDOM(chromium: chromium, file: page)
        XCTAssertTrue(dom.contains("data-loaded=\"1\""), "the page loaded and its script ran:\n\(dom.prefix(2000))")
        XCTAssertTrue(dom.contains("<title>agentd eval mini</title>"), String(dom.prefix(2000)))
        for (arm, verified, flips) in [("single", 1, 0), ("oracle", 2, 0), ("selfcritic", 1, 1)] {
            let row = try XCTUnwrap(openingTag(in: dom, id: "arm-\(arm)"), "no row for \(arm)")
            XCTAssertTrue(row.contains("data-runs=\"3\" data-verified=\"\(verified)\""), row)
            XCTAssertTrue(row.contains("data-flips=\"\(flips)\""), row)
            XCTAssertTrue(dom.contains("<rect class=\"bar\" data-arm=\"\(arm)\""), "no bar for \(arm) in the chart")
        }
        XCTAssertNotNil(openingTag(in: dom, id: "success-chart"))
        XCTAssertNotNil(openingTag(in: dom, id: "tokens-chart"))
        XCTAssertEqual(dom.components(separatedBy: "class=\"pair\"").count - 1, 3, "three pairs of three arms")
    }

    private func openingTag(in dom: String, id: String) -> String? {
        guard let range = dom.range(of: "id=\"\(id)\"") else { return nil }
        guard let open = dom[..<range.lowerBound].lastIndex(of: "<"), let close = dom[range.upperBound...].firstIndex(of: ">") else {
            return nil
        }
        return String(dom[open...close])
    }

    /// `chromium --headless --dump-dom` with networking disabled (as the transcript's test loads its page).
    private func dumpDOM(chromium: String, file: String) throws -> String {
        let flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--user-data-dir=" + harness.dir + "/chromium-profile", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--dump-dom", URL(fileURLWithPath: file).absoluteString,
        ]
        let out = harness.dir + "/dom.out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = flags
        process.environment = harness.environment(["HOME": harness.dir])
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        guard waitUntil(timeout: 90, interval: 0.02, { !process.isRunning }) else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw HarnessError("chromium did not finish within 90 s")
        }
        guard process.terminationStatus == 0 else { throw HarnessError("chromium exited \(process.terminationStatus)") }
        return try String(contentsOfFile: out, encoding: .utf8)
    }
}
