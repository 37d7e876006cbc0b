import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The trust model (docs/security.md, "Who can reach the socket") with a second real Unix user in
/// `allow_group`: a submitter cannot make the daemon read a file, run a command outside the sandbox
/// or work in a directory it does not own, each refusal naming its rule and quoting nothing; what it
/// may do works.
final class TrustTests: EndToEndTestCase {
    private var submitter: uid_t = 0

    override func setUpWithError() throws {
        try super.setUpWithError()
        try OtherUser.ensure()
        try requireBubblewrap()
        submitter = try XCTUnwrap(getpwnam(OtherUser.name)).pointee.pw_uid
    }

    /// Starts the daemon with the other user's group allowed and `config` as its configuration file.
    private func start(config: String = "") throws {
        let file = harness.dir + "/agentd.yaml"
        try config.write(toFile: file, atomically: true, encoding: .utf8)
        try harness.start(extraArguments: ["--allow-group", try OtherUser.groupName(), "--config", file])
        OtherUser.openTheWay(harness)
    }

    /// The other user's `job.submit` of the plan text `plan`, from its own directory `cwd`.
    private func submitText(_ plan: String, cwd: String) throws -> JSON {
        try OtherUser.rpc(harness, "job.submit", ["plan": .string(plan), "cwd": .string(cwd), "goal": "g"])
    }

    /// A plan whose actor writes a file with its tools; `extra` adds top-level keys.
    private func toolsPlan(
        workspace: String, extra: String = "", critic: String = "{model: script, prompt: c}",
        verifier: String = "{model: script, prompt: v}"
    ) -> String {
        """
        name: trust
        workspace: "\(workspace)"
        models:
          script:
            backend: scripted
            script:
              actor:
                - {turn: 0, reply: {tool_calls: [{name: write_file, arguments: {path: out.txt, content: hi}}]}}
                - {turn: 1, reply: {output: done}}
              critic: [{reply: {verdict: pass, score: 1, feedback: ok}}]
              verifier: [{reply: {verified: true, reason: ok}}]
        roles:
          actor: {model: script, prompt: a, tools: [write_file]}
          critic: \(critic)
          verifier: \(verifier)
        steps: [one]
        \(extra)
        """
    }

    private func assertRefused(_ reply: JSON, rule: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNil(reply["result"], "refused: \(reply.encoded)", file: file, line: line)
        let message = reply["error"]?["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("(rule: \(rule))"), "the rule is named: \(message)", file: file, line: line)
        XCTAssertFalse(message.contains("root:"), "nothing of a file is quoted: \(message)", file: file, line: line)
    }

    func testASubmitterCannotMakeTheDaemonReadFilesOrLeaveTheSandbox() throws {
        try start()
        let own = try OtherUser.ownDirectory(harness, "mine")
        // A plan by path outside the plan directories: refused before the file is opened.
        let byPath = try OtherUser.rpc(harness, "job.submit", ["plan_path": "/etc/shadow", "cwd": .string(own)])
        assertRefused(byPath, rule: "submitters.plan_dirs")
        XCTAssertEqual(byPath["error"]?["code"]?.intValue, -32008)
        // A plan text that names a file for the daemon to read.
        let scriptFile = """
            name: t
            models: {m: {backend: scripted, script_file: /etc/shadow}}
            roles: {actor: {model: m, prompt: a}, critic: {model: m, prompt: c}, verifier: {model: m, prompt: v}}
            steps: [one]
            """
        assertRefused(try submitText(scriptFile, cwd: own), rule: "submitters.plan_files")
        // Commands outside the sandbox, for the whole plan or one command.
        assertRefused(try submitText(toolsPlan(workspace: own, extra: "sandbox: false"), cwd: own), rule: "submitters.unsandboxed")
        assertRefused(
            try submitText(toolsPlan(workspace: own, verifier: "{command: [\"true\"], sandbox: false}"), cwd: own),
            rule: "submitters.unsandboxed")
        assertRefused(
            try submitText(toolsPlan(workspace: own, critic: "{command: [\"true\"], sandbox: false}"), cwd: own),
            rule: "submitters.unsandboxed")
        assertRefused(
            try submitText(toolsPlan(workspace: own, extra: "check: {command: [\"true\"], sandbox: false}"), cwd: own),
            rule: "submitters.unsandboxed")
        assertRefused(
            try submitText(
                toolsPlan(
                    workspace: own, critic: "{jury: [{model: script, prompt: c}, {command: [\"true\"], sandbox: false}], rule: majority}"),
                cwd: own),
            rule: "submitters.unsandboxed")
        // Directories that are not the submitter's.
        assertRefused(try submitText(toolsPlan(workspace: "/etc"), cwd: own), rule: "submitters.own_directories")
        assertRefused(
            try submitText(toolsPlan(workspace: own, verifier: "{command: [\"true\"], cwd: /etc}"), cwd: own),
            rule: "submitters.own_directories")
        assertRefused(
            try submitText(toolsPlan(workspace: own, critic: "{command: [\"true\"], cwd: /etc}"), cwd: own),
            rule: "submitters.own_directories")
        assertRefused(
            try submitText(toolsPlan(workspace: own, extra: "check: {command: [\"true\"], cwd: /etc}"), cwd: own),
            rule: "submitters.own_directories")
        assertRefused(
            try submitText(toolsPlan(workspace: own, critic: "{jury: [{command: [\"true\"], cwd: /etc}], rule: unanimous}"), cwd: own),
            rule: "submitters.own_directories")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/etc/out.txt"))
        XCTAssertEqual(try harness.rpc("daemon.status")["jobs"]?["queued"]?.intValue ?? 0, 0, "no job was created")
    }

    func testASubmittersJobRunsInItsOwnDirectoryAndTheCLISendsItsPlanAsText() throws {
        try start()
        let own = try OtherUser.ownDirectory(harness, "mine")
        let reply = try submitText(toolsPlan(workspace: own), cwd: own)
        let id = try XCTUnwrap(reply["result"]?["id"]?.stringValue, reply.encoded)
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        XCTAssertEqual(try String(contentsOfFile: own + "/out.txt", encoding: .utf8), "hi")
        let submitted = try XCTUnwrap(events(try harness.events(id), kind: "job.submitted").first)
        XCTAssertEqual(submitted["payload"]?["submitter_uid"]?.intValue, Int(submitter), "the record names the submitter")

        // The CLI sends a plan outside the plan directories as its text, read with the user's rights.
        let planFile = own + "/plan.yaml"
        try toolsPlan(workspace: own).write(toFile: planFile, atomically: true, encoding: .utf8)
        chmod(planFile, 0o644)
        let cli = try OtherUser.run(harness, ["submit", planFile, "--wait", "--socket", harness.socketPath], cwd: own)
        XCTAssertEqual(cli.status, 0, cli.output)
        XCTAssertTrue(cli.output.contains("succeeded"), cli.output)
    }

    /// The check is made again when the tool runs, by a restarted daemon too: the submitter is
    /// recovered from the job's record.
    func testAWorkspaceSwappedAfterSubmissionIsRefusedWhenTheToolRunsEvenAfterARestart() throws {
        try start(config: "max_running: 1\n")
        let own = try OtherUser.ownDirectory(harness, "mine")
        let workspace = own + "/ws"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        chown(workspace, submitter, getpwnam(OtherUser.name)!.pointee.pw_gid)
        // The daemon's queue is held by a running job of the owner, so the submitter's job waits.
        let first = try submit(try harness.preparePlan("cancel-sleep.yaml"))
        let reply = try submitText(toolsPlan(workspace: workspace), cwd: own)
        let id = try XCTUnwrap(reply["result"]?["id"]?.stringValue, reply.encoded)
        // Swapped for a directory of root's while it waits.
        try FileManager.default.removeItem(atPath: workspace)
        let target = harness.dir + "/roots"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: workspace, withDestinationPath: target)
        _ = try harness.crash(killOrphans: true)
        try harness.restart()
        _ = try harness.cli(["cancel", first])
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        let result = self.events(events, kind: "tool.completed").first?["payload"]?["result"]
        XCTAssertTrue((result?["error"]?.stringValue ?? "").contains("rule: submitters.own_directories"), dump(events))
        XCTAssertFalse(FileManager.default.fileExists(atPath: target + "/out.txt"), "nothing was written into root's directory")
        XCTAssertNotNil(job["status"])
    }

    func testAPlanFromTheConfiguredDirectoriesMayBeSubmittedByPath() throws {
        let plans = harness.dir + "/plans"
        try FileManager.default.createDirectory(atPath: plans, withIntermediateDirectories: true)
        try start(config: "submitters:\n  plan_dirs: [\(plans)]\n")
        let own = try OtherUser.ownDirectory(harness, "mine")
        try toolsPlan(workspace: own).write(toFile: plans + "/shared.yaml", atomically: true, encoding: .utf8)
        let reply = try OtherUser.rpc(harness, "job.submit", ["plan_path": .string(plans + "/shared.yaml"), "cwd": .string(own)])
        let id = try XCTUnwrap(reply["result"]?["id"]?.stringValue, reply.encoded)
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let outside = try OtherUser.rpc(harness, "job.submit", ["plan_path": .string(harness.dir + "/agentd.yaml"), "cwd": .string(own)])
        assertRefused(outside, rule: "submitters.plan_dirs")
    }
}
