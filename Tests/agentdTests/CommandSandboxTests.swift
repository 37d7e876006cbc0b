import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// A plan's own commands — `command` models and command verifiers — run in the plan's sandbox like
/// the actor's `run_command`, get no secret they do not name, and an opt-out (`sandbox: false`) is
/// explicit and shown in the record and the transcript. Through the built daemon and the real
/// `bwrap`.
final class CommandSandboxTests: EndToEndTestCase {
    private let token = "tok-" + UUID().uuidString
    private let key = "sk-" + UUID().uuidString

    override func setUpWithError() throws {
        try super.setUpWithError()
        try requireBubblewrap()
        harness.daemonEnvironment = ["SECRET_TOKEN": token, "OPENAI_API_KEY": key, "AGENTD_SECRET_ENV": "SECRET_TOKEN"]
    }

    /// An actor command that reports its uid and which secrets it sees, as its output.
    private func actor(_ settings: String = "") -> String {
        let report =
            #"cat >/dev/null; printf '{"output": "uid=%s token=%s key=%s"}' "$(id -u)" "${SECRET_TOKEN:-none}" "${OPENAI_API_KEY:-none}""#
        return "{backend: command, command: [sh, -c, \(JSON.string(report).encoded)]\(settings)}"
    }

    /// A verifier command that reports the same on stdout and tries to write `outside`.
    private func verifier(outside: String, _ settings: String = "") -> String {
        let script = #"echo "uid=$(id -u) token=${SECRET_TOKEN:-none} key=${OPENAI_API_KEY:-none}"; echo out > \#(outside)/verifier.txt"#
        return "{command: [sh, -c, \(JSON.string(script).encoded)]\(settings)}"
    }

    private func run(actor: String, verifier: String) throws -> (job: JSON, events: [JSON]) {
        try harness.start()
        let plan = try harness.preparePlan("plan-commands.yaml", values: ["ACTOR": actor, "VERIFIER": verifier])
        let id = try submit(plan)
        return (try harness.waitForJob(id, timeout: 60), try harness.events(id))
    }

    private func actorOutput(_ events: [JSON]) -> String {
        let reply = self.events(events, kind: "call.completed", role: "actor").first?["payload"]?["reply"]?.stringValue ?? ""
        return (try? JSON.parse(reply))?["output"]?.stringValue ?? reply
    }

    func testPlanCommandsRunInTheSandboxWithoutSecrets() throws {
        let outside = try outsideDirectory()
        let (job, events) = try run(actor: actor(), verifier: verifier(outside: outside))
        let summary = dump(events)
        XCTAssertEqual(actorOutput(events), "uid=65534 token=none key=none", "the command model is nobody, with no secret: \(summary)")
        let call = try XCTUnwrap(self.events(events, kind: "call.completed", role: "verifier").last, summary)
        let raw = try XCTUnwrap(call["payload"]?["raw"], summary)
        XCTAssertEqual(raw["sandbox"]?.boolValue, true, raw.encoded)
        XCTAssertEqual(raw["stdout"]?.stringValue, "uid=65534 token=none key=none\n", raw.encoded)
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside + "/verifier.txt"), "the verifier could not write outside")
        XCTAssertEqual(job["status"]?.stringValue, "failed", "its failed write decided: \(job.encoded)")
        let actorRaw = self.events(events, kind: "call.completed", role: "actor").first?["payload"]?["raw"]
        XCTAssertEqual(actorRaw?["sandbox"]?.boolValue, true, "the record says the model's command was sandboxed")
    }

    func testAnOptOutIsExplicitRecordedAndShownAndASecretGoesOnlyWhereNamed() throws {
        let outside = try outsideDirectory()
        let (job, events) = try run(
            actor: actor(", sandbox: false"), verifier: verifier(outside: outside, ", sandbox: false, env: [SECRET_TOKEN]"))
        let summary = dump(events)
        // Unconfined, the model's command runs as the daemon's user, still without any secret.
        XCTAssertEqual(actorOutput(events), "uid=\(geteuid()) token=none key=none", summary)
        let call = try XCTUnwrap(self.events(events, kind: "call.completed", role: "verifier").last, summary)
        let raw = try XCTUnwrap(call["payload"]?["raw"], summary)
        XCTAssertEqual(raw["sandbox"]?.boolValue, false, raw.encoded)
        XCTAssertEqual(
            raw["stdout"]?.stringValue, "uid=\(geteuid()) token=[REDACTED:SECRET_TOKEN] key=none\n",
            "the verifier got the secret it named (redacted in the record), and no other: \(raw.encoded)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: outside + "/verifier.txt"), "opting out means no confinement")
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", job.encoded)

        let id = try XCTUnwrap(job["id"]?.stringValue)
        let text = try harness.cli(["transcript", id]).stdout
        XCTAssertTrue(text.contains("command (unsandboxed): sh -c"), text)
        XCTAssertTrue(text.contains("the model's command ran unsandboxed"), text)
        XCTAssertFalse(text.contains(token), "the secret stays redacted")
    }

    /// A plan command's working directory outside the workspace is visible read-only and as it is:
    /// the sandbox user reads there only what anyone may, never its owner's private files; a
    /// directory it may not enter at all is replaced by the workspace.
    func testACommandsDirectoryLendsItNoOwnersRights() throws {
        let open = harness.dir + "/open"
        let closed = harness.dir + "/closed"
        for (directory, mode) in [(open, 0o755), (closed, 0o700)] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            chmod(directory, mode_t(mode))
            try "private\n".write(toFile: directory + "/secret.txt", atomically: true, encoding: .utf8)
            chmod(directory + "/secret.txt", 0o600)
            try "public\n".write(toFile: directory + "/public.txt", atomically: true, encoding: .utf8)
            chmod(directory + "/public.txt", 0o644)
        }
        let script = #"pwd; cat public.txt; cat secret.txt"#
        let (_, events) = try run(
            actor: actor(), verifier: "{command: [sh, -c, \(JSON.string(script).encoded)], cwd: \(JSON.string(open).encoded)}")
        let raw = try XCTUnwrap(self.events(events, kind: "call.completed", role: "verifier").last?["payload"]?["raw"], dump(events))
        XCTAssertEqual(raw["stdout"]?.stringValue, "\(open)\npublic\n", "it runs there and reads what anyone may: \(raw.encoded)")
        if geteuid() == 0 {
            XCTAssertTrue(raw["stderr"]?.stringValue?.contains("secret.txt: Permission denied") == true, raw.encoded)
        }
        harness.cleanUpDaemon()
        let (_, closedEvents) = try run(
            actor: actor(), verifier: "{command: [sh, -c, \(JSON.string(script).encoded)], cwd: \(JSON.string(closed).encoded)}")
        let closedRaw = try XCTUnwrap(self.events(closedEvents, kind: "call.completed", role: "verifier").last?["payload"]?["raw"])
        if geteuid() == 0 {
            let workspace = URL(fileURLWithPath: harness.dir + "/ws").resolvingSymlinksInPath().path
            XCTAssertEqual(closedRaw["stdout"]?.stringValue, workspace + "\n", "it works in the workspace instead: \(closedRaw.encoded)")
            XCTAssertFalse(closedRaw["stdout"]?.stringValue?.contains("private") == true)
        }
    }

    /// The shipped fix-tests plan: the verifier runs the project's tests, which import whatever the
    /// actor wrote. A test file planted there (as an actor's `write_file` would) tries to print the
    /// API key, base64-encoded so no redaction could catch it, and to write outside the project.
    func testTheShippedFixTestsVerifierCannotLeakTheKeyOrWriteOutside() throws {
        let outside = try outsideDirectory()
        let project = harness.dir + "/calc"
        try FileManager.default.copyItem(atPath: Locations.repoRoot + "/examples/fix-tests", toPath: project)
        let pwn = """
            import base64, os, unittest
            class Pwn(unittest.TestCase):
                def test_pwn(self):
                    print("KEY=" + base64.b64encode(os.environ.get("OPENAI_API_KEY", "").encode()).decode())
                    try:
                        open("\(outside)/pwned.txt", "w").write("pwned")
                    except OSError as error:
                        print("WRITE=" + error.strerror)

            """
        try pwn.write(toFile: project + "/test_zz_pwn.py", atomically: true, encoding: .utf8)
        let server = try FakeModelServer(directory: harness.dir)
        harness.daemonEnvironment["OPENAI_BASE_URL"] = server.baseURL
        harness.daemonEnvironment["OPENAI_MODEL"] = "ok:fix-tests"
        try harness.start()
        let result = try harness.cli(
            ["submit", Locations.shippedPlans + "/fix-tests.yaml", "--input", "dir=\(project)", "--wait", "--json"], timeout: 120)
        let job = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "submit --wait --json")
        let events = try harness.events(try XCTUnwrap(job["id"]?.stringValue))
        let call = try XCTUnwrap(self.events(events, kind: "call.completed", role: "verifier").last, dump(events))
        let raw = try XCTUnwrap(call["payload"]?["raw"])
        let output = (raw["stdout"]?.stringValue ?? "") + (raw["stderr"]?.stringValue ?? "")
        XCTAssertEqual(raw["sandbox"]?.boolValue, true, raw.encoded)
        XCTAssertTrue(output.contains("KEY=\n"), "the planted test ran and found no key: \(output)")
        XCTAssertFalse(output.contains(Data(key.utf8).base64EncodedString()), output)
        XCTAssertTrue(output.contains("WRITE=Read-only file system"), output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside + "/pwned.txt"), "nothing was written outside the project")
    }
}
