import Foundation
import Store
import TestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// `agentd transcript --format text|md|html` against jobs run by the real daemon.
final class TranscriptEndToEndTests: EndToEndTestCase {
    /// The re-plan fixture: step 1 fails twice (a rerun), a re-plan replaces it, the new step passes.
    private func runReplanJob(maxReplans: Int = 1) throws -> (id: String, status: String) {
        let plan = try harness.preparePlan("replan.yaml", values: ["MAX_REPLANS": "\(maxReplans)"])
        let result = try harness.cli("submit", plan, "--wait", "--json")
        let job = try parseJSON(result.stdout)
        return (try XCTUnwrap(job["id"]?.stringValue, "\(result)"), job["status"]?.stringValue ?? "?")
    }

    func testTextAndMarkdownTranscriptsOfAReplannedJob() throws {
        try harness.start()
        let (id, status) = try runReplanJob()
        XCTAssertEqual(status, "succeeded")
        let text = try harness.cli("transcript", id)
        XCTAssertEqual(text.status, 0, "\(text)")
        for needle in [
            "Step 1: original step A", "Attempt 2 (rerun)", "feedback carried into this rerun: step 0 cannot be done this way (attempt 0)",
            "FAIL (score 0.10)", "Re-plan #1 from step 1", "Step 1 (plan 2): replacement step X", "PASS (score 0.90): ok",
            "VERIFIED: done after re-planning", "reruns: 1", "re-plans: 1", "calls: 9 (planner 2, actor 3, critic 3, verifier 1)",
        ] {
            XCTAssertTrue(text.stdout.contains(needle), "text transcript lacks \(needle):\n\(text.stdout)")
        }
        let md = try harness.cli("transcript", id, "--format", "md")
        XCTAssertEqual(md.status, 0, "\(md)")
        XCTAssertTrue(md.stdout.hasPrefix("# Job \(id)"), md.stdout)
        XCTAssertTrue(md.stdout.contains("## Re-plan \\#1 from step 1"), md.stdout)
        XCTAssertTrue(md.stdout.contains("### Attempt 2 (rerun)"), md.stdout)

        let file = harness.dir + "/out/transcript.md"
        try FileManager.default.createDirectory(atPath: harness.dir + "/out", withIntermediateDirectories: true)
        let written = try harness.cli("transcript", id, "--format", "md", "-o", file)
        XCTAssertEqual(written.status, 0, "\(written)")
        XCTAssertEqual(written.stdout, "", "-o writes nothing to stdout")
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), md.stdout)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: harness.dir + "/out")
        XCTAssertEqual(leftovers, ["transcript.md"], "the atomic write leaves no temporary file")

        let jsonl = try harness.cli("transcript", id, "--format", "jsonl")
        XCTAssertEqual(jsonl.stdoutLines.count, try harness.events(id).count)
    }

    /// The HTML transcript of a real job with a rerun and a re-plan, loaded in headless Chromium with
    /// no network: the DOM holds every step, attempt and verdict the log has, and the summary.
    func testHTMLTranscriptInHeadlessChromium() throws {
        guard
            let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            throw Capability.chromium.missing(
                "chromium is not installed (apt-get install -y chromium, as scripts/deps.sh does): the HTML transcript was not loaded in a browser"
            )
        }
        try harness.start()
        let (id, status) = try runReplanJob()
        XCTAssertEqual(status, "succeeded")
        let file = harness.dir + "/transcript.html"
        let result = try harness.cli("transcript", id, "--format", "html", "-o", file)
        XCTAssertEqual(result.status, 0, "\(result)")
        XCTAssertEqual(result.stdout, "")

        let dom = try dumpDOM(chromium: chromium, file: file)
        XCTAssertTrue(dom.contains("data-loaded=\"1\""), "the page loaded and its script ran:\n\(dom.prefix(2000))")
        XCTAssertFalse(dom.contains("chrome-error://") || dom.contains("ERR_FILE_NOT_FOUND"), "an error page:\n\(dom.prefix(2000))")
        XCTAssertTrue(dom.contains("<title>agentd transcript \(id)</title>"), String(dom.prefix(2000)))

        // The summary.
        let summary = try XCTUnwrap(openingTag(in: dom, id: "summary"), "no #summary in the DOM")
        for (attribute, value) in [
            ("data-status", "succeeded"), ("data-calls", "9"), ("data-reruns", "1"), ("data-replans", "1"), ("data-steps", "2"),
            ("data-attempts", "3"), ("data-tokens", "0"),
        ] {
            XCTAssertTrue(summary.contains("\(attribute)=\"\(value)\""), "#summary lacks \(attribute)=\(value): \(summary)")
        }
        XCTAssertTrue(dom.contains("done after re-planning"))

        // Every step and attempt the log has, by (re-plans so far, step, attempt).
        let events = try harness.events(id)
        var replans = 0
        var attempts = Set<String>()
        var steps = Set<String>()
        for event in events {
            if event["kind"]?.stringValue == "job.replanned" { replans += 1 }
            guard event["kind"]?.stringValue == "call.started", event["role"]?.stringValue == "actor",
                let step = event["step"]?.intValue, let attempt = event["attempt"]?.intValue
            else { continue }
            steps.insert("step-r\(replans)-s\(step)")
            attempts.insert("attempt-r\(replans)-s\(step)-a\(attempt)")
        }
        XCTAssertEqual(steps, ["step-r0-s0", "step-r1-s0"])
        XCTAssertEqual(attempts.count, 3)
        for id in steps.union(attempts) {
            XCTAssertNotNil(openingTag(in: dom, id: id), "the DOM lacks #\(id)")
        }
        XCTAssertEqual(dom.components(separatedBy: "class=\"attempt ").count - 1, 3)
        XCTAssertNotNil(openingTag(in: dom, id: "replan-1"))
        XCTAssertTrue(openingTag(in: dom, id: "step-r0-s0")?.contains("data-outcome=\"exhausted\"") == true)
        XCTAssertTrue(openingTag(in: dom, id: "step-r1-s0")?.contains("data-outcome=\"passed\"") == true)

        // Every verdict, with its colour class.
        let verdicts = self.events(events, kind: "call.completed", role: "critic")
        XCTAssertEqual(verdicts.count, 3)
        for v in verdicts {
            let call = try XCTUnwrap(v["call"]?.stringValue)
            let verdict = try XCTUnwrap(v["payload"]?["verdict"]?["verdict"]?.stringValue)
            XCTAssertTrue(
                dom.contains("class=\"verdict verdict-\(verdict)\" data-verdict=\"\(verdict)\" data-call=\"\(call)\""),
                "the DOM lacks the \(verdict) verdict of \(call)")
        }
        let verifier = try XCTUnwrap(openingTag(in: dom, id: "verifier"))
        XCTAssertTrue(verifier.contains("data-verified=\"verified\""), verifier)
        XCTAssertTrue(dom.contains("<details class=\"prompt\">"), "prompts are collapsible")
    }

    /// The opening tag of the element with this id, if any.
    private func openingTag(in dom: String, id: String) -> String? {
        guard let range = dom.range(of: "id=\"\(id)\"") else { return nil }
        guard let open = dom[..<range.lowerBound].lastIndex(of: "<"), let close = dom[range.upperBound...].firstIndex(of: ">") else {
            return nil
        }
        return String(dom[open...close])
    }

    /// `chromium --headless --dump-dom` with networking disabled: in a new network namespace when
    /// `unshare -n` works here, and always with a dead proxy and unresolvable host names.
    private func dumpDOM(chromium: String, file: String) throws -> String {
        let profile = harness.dir + "/chromium-profile"
        let flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + profile,
            "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom", URL(fileURLWithPath: file).absoluteString,
        ]
        var command = [chromium] + flags
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"),
            run(["/usr/bin/unshare", "-n", "true"], timeout: 10).status == 0
        {
            command = ["/usr/bin/unshare", "-n"] + command
        }
        let result = run(command, timeout: 90)
        guard result.status == 0 else {
            throw HarnessError("chromium exited \(result.status): \(result.stderr.suffix(2000))")
        }
        return result.stdout
    }

    /// Runs a command with its output in files (no pipe to fill), killed after `timeout`.
    private func run(_ argv: [String], timeout: Double) -> (status: Int32, stdout: String, stderr: String) {
        let out = harness.dir + "/run-\(UUID().uuidString).out"
        let err = out + ".err"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.environment = harness.environment(["HOME": harness.dir])
        guard let o = FileHandle(forWritingAtPath: out), let e = FileHandle(forWritingAtPath: err) else {
            return (-1, "", "no output files")
        }
        process.standardOutput = o
        process.standardError = e
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return (-1, "", "\(error)") }
        try? o.close()
        try? e.close()
        if !waitUntil(timeout: timeout, interval: 0.02, { !process.isRunning }) {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        return (
            process.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
            (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        )
    }
}
