import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// A model critic with read-only tools, through the built daemon: its tool calls are recorded like
/// the actor's and their results reach its next turn, its verdict cites them as `evidence` (shown in
/// the transcripts), its commands cannot change the workspace, a completed tool of its is not run
/// again after a crash, and `agentd replay` reproduces the job.
final class CriticToolsTests: EndToEndTestCase {
    private var workspace: String { harness.dir + "/ws" }

    private func submitScripted(critic: String, sandbox: String = "true", policy: String = "{max_attempts: 1}") throws -> String {
        try harness.start()
        let plan = try harness.preparePlan("critic-tools.yaml", values: ["CRITIC": critic, "SANDBOX": sandbox, "POLICY": policy])
        return try submit(plan)
    }

    func testTheCriticReadsAndRunsCommandsAndCitesItsEvidence() throws {
        try requireBubblewrap()
        let critic = """
            [{turn: 0, reply: {tool_calls: [{id: read-1, name: read_file, arguments: {path: answer.txt}}, \
            {id: check-1, name: run_command, arguments: {argv: [sh, -c, "grep -c 42 answer.txt"]}}]}}, \
            {turn: 1, reply: {verdict: pass, score: 0.9, feedback: "answer.txt holds 42", evidence: [read-1, check-1]}}]
            """
        let id = try submitScripted(critic: critic)
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)
        assertContiguous(events)

        // The critic's two turns are calls c3 and c4 (the actor's were c1 and c2); its tools are c3.0, c3.1.
        let calls = self.events(events, kind: "call.started", role: "critic")
        XCTAssertEqual(calls.compactMap { $0["call"]?.stringValue }, ["c3", "c4"], summary)
        let started = self.events(events, kind: "tool.started", role: "critic")
        XCTAssertEqual(started.compactMap { $0["call"]?.stringValue }, ["c3.0", "c3.1"], summary)
        XCTAssertEqual(started[0]["payload"]?["path"]?.stringValue, "answer.txt")
        XCTAssertEqual(started[1]["payload"]?["argv"], ["sh", "-c", "grep -c 42 answer.txt"])
        XCTAssertEqual(started[1]["payload"]?["idempotency_key"]?.stringValue, "\(id)/c3/1")
        let completed = self.events(events, kind: "tool.completed", role: "critic")
        XCTAssertEqual(completed.count, 2, summary)
        XCTAssertEqual(completed[0]["payload"]?["result"]?["content"]?.stringValue, "42\n", summary)
        XCTAssertEqual(completed[1]["payload"]?["result"]?["stdout"]?.stringValue, "1\n", summary)

        // The first turn is offered the tools and the evidence field, not a response schema (a
        // reply constrained to it could call neither tool); the second carries both results and the schema.
        let first = try XCTUnwrap(calls[0]["payload"]?["request"])
        XCTAssertEqual(first["tools"]?.arrayValue?.compactMap { $0["function"]?["name"]?.stringValue }, ["read_file", "run_command"])
        XCTAssertNil(first["response_schema"], first.encoded)
        let system = first["messages"]?.arrayValue?.first?["content"]?.stringValue ?? ""
        XCTAssertTrue(system.contains("- evidence (optional, a list of texts)"), system)
        XCTAssertTrue(system.contains("nothing you run can change the workspace"), system)
        let second = try XCTUnwrap(calls[1]["payload"]?["request"])
        XCTAssertEqual(second["turn"]?.intValue, 1)
        XCTAssertNotNil(second["response_schema"]?["properties"]?["evidence"], second.encoded)
        let messages = try XCTUnwrap(second["messages"]?.arrayValue)
        XCTAssertEqual(messages.map { $0["role"]?.stringValue ?? "?" }, ["system", "user", "assistant", "tool", "tool"])
        XCTAssertEqual(messages[3]["tool_call_id"]?.stringValue, "read-1")
        XCTAssertEqual(try JSON.parse(messages[3]["content"]?.stringValue ?? "")["content"]?.stringValue, "42\n")
        XCTAssertEqual(try JSON.parse(messages[4]["content"]?.stringValue ?? "")["stdout"]?.stringValue, "1\n")

        // The verdict, as recorded, carries its evidence; the transcripts name the calls it cites.
        let verdict = try XCTUnwrap(self.events(events, kind: "call.completed", role: "critic").last?["payload"]?["verdict"])
        XCTAssertEqual(verdict["evidence"], ["read-1", "check-1"], summary)
        let text = try harness.cli("transcript", id).stdout
        XCTAssertTrue(text.contains("evidence: read-1 → c3.0 read_file answer.txt"), text)
        XCTAssertTrue(text.contains("evidence: check-1 → c3.1 run_command [sh, -c, \"grep -c 42 answer.txt\"]"), text)
        XCTAssertTrue(text.contains("tool read_file answer.txt → ok"), text)
        let html = try harness.cli("transcript", id, "--format", "html").stdout
        XCTAssertTrue(html.contains(#"data-evidence="read-1" data-tool-call="c3.0""#), html)
        XCTAssertTrue(html.contains(#"data-tool="run_command" data-role="critic" data-call="c3.1""#), html)
        let jsonl = try harness.cli("transcript", id, "--format", "jsonl").stdout
        XCTAssertTrue(jsonl.contains(#""evidence":["read-1","check-1"]"#), jsonl)

        // The recorded job replays call for call; its tools are answered from the record.
        harness.cleanUpDaemon()
        let replay = try harness.cli(["replay", id, "--db", harness.dbPath, "--json"], socket: false)
        let report = try parseJSON(replay.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "replay --json: \(replay)")
        XCTAssertEqual(replay.status, 0, report.encoded)
        XCTAssertEqual(report["matches"]?.boolValue, true, report.encoded)
        XCTAssertEqual(report["replayed_calls"]?.intValue, 5, report.encoded)
        XCTAssertEqual(report["replayed_status"]?.stringValue, "succeeded", report.encoded)
    }

    /// The critic's commands see the workspace read-only: writing, creating or removing anything in
    /// it fails, while the actor's write_file in the same job wrote it.
    func testTheCriticsCommandsCannotChangeTheWorkspace() throws {
        try requireBubblewrap()
        let critic = """
            [{turn: 0, reply: {tool_calls: [{name: run_command, arguments: {argv: [sh, -c, "echo tampered > answer.txt"]}}, \
            {name: run_command, arguments: {argv: [touch, new.txt]}}, \
            {name: run_command, arguments: {argv: [rm, -f, answer.txt]}}, \
            {name: run_command, arguments: {argv: [mkdir, sub]}}]}}, \
            {turn: 1, reply: {verdict: pass, score: 0.9, feedback: "the answer stands"}}]
            """
        let id = try submitScripted(critic: critic)
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)
        let results = self.events(events, kind: "tool.completed", role: "critic").compactMap { $0["payload"] }
        XCTAssertEqual(results.count, 4, summary)
        for result in results {
            XCTAssertEqual(result["ok"]?.boolValue, false, result.encoded)
            XCTAssertNotEqual(result["result"]?["exit_status"]?.intValue, 0, result.encoded)
        }
        XCTAssertTrue(
            results[0]["result"]?["stderr"]?.stringValue?.contains("Read-only file system") == true, results[0].encoded)
        XCTAssertEqual(try String(contentsOfFile: workspace + "/answer.txt", encoding: .utf8), "42\n", "the actor's file is intact")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: workspace).sorted(), ["answer.txt"], "nothing was created")
    }

    /// A critic's run_command needs the sandbox: a plan that turns it off is refused at submission,
    /// naming the file, the line and the field.
    func testACriticsRunCommandWithoutTheSandboxIsRefused() throws {
        try harness.start()
        let plan = try harness.preparePlan(
            "critic-tools.yaml",
            values: ["CRITIC": "[{reply: {verdict: pass, score: 1, feedback: ok}}]", "SANDBOX": "false", "POLICY": "{}"])
        let result = try harness.cli(["submit", plan, "--goal", "g"])
        XCTAssertNotEqual(result.status, 0, "\(result)")
        XCTAssertTrue(result.stderr.contains("critic-tools.yaml:19"), result.stderr)
        XCTAssertTrue(result.stderr.contains("roles.critic.tools[1]"), result.stderr)
        XCTAssertTrue(result.stderr.contains("the critic's run_command needs the sandbox"), result.stderr)
    }

    /// SIGKILL while the critic's second tool runs: after the restart its first (completed) tool is
    /// not run again, and the interrupted one runs again under the same idempotency key
    /// (`tool.restarted`). The commands count their runs in a file outside the workspace, in a path
    /// the plan's sandbox makes writable.
    func testACriticsCompletedToolIsNotRunAgainAfterACrash() throws {
        try requireBubblewrap()
        let out = try outsideDirectory()
        let nap = "60.\(UInt32.random(in: 100_000_000..<999_999_999))"
        let record = "echo $AGENTD_TOOL_CALL_ID >> \(out)/runs.txt"
        let critic = """
            [{turn: 0, reply: {tool_calls: [{name: run_command, arguments: {argv: [sh, -c, "\(record)"]}}]}}, \
            {turn: 1, reply: {tool_calls: [{name: run_command, arguments: {argv: [sh, -c, "\(record); if [ ! -e \(out)/slow.flag ]; then touch \(out)/slow.flag; sleep \(nap); fi"]}}]}}, \
            {turn: 2, reply: {verdict: pass, score: 0.9, feedback: "checked twice"}}]
            """
        let id = try submitScripted(critic: critic, sandbox: "{writable: [\"\(out)\"]}")
        func lines() -> [String] { CommandResult.lines((try? String(contentsOfFile: out + "/runs.txt", encoding: .utf8)) ?? "") }
        XCTAssertTrue(
            waitUntil(timeout: 30) { lines().count == 2 && !ProcessTable.alive(containing: nap).isEmpty },
            "the critic's second tool runs: \(lines())")
        let before = try harness.events(id)
        XCTAssertEqual(events(before, kind: "tool.completed", role: "critic").count, 1, dump(before))
        let interrupted = try XCTUnwrap(events(before, kind: "tool.started", role: "critic").last?["call"]?.stringValue)

        try harness.crash()
        XCTAssertTrue(waitUntil(timeout: 10) { ProcessTable.alive(containing: nap).isEmpty }, "the sandboxed tool died with the daemon")
        try harness.restart()
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)
        assertContiguous(events)
        let keys = lines()
        XCTAssertEqual(keys.count, 3, "the completed tool ran once, the interrupted one twice: \(keys)")
        XCTAssertEqual(keys[1], keys[2], "the rerun has the same idempotency key")
        XCTAssertEqual(keys[0], "\(id)/c3/0", "the critic's first tool, of its first turn (c3)")
        XCTAssertEqual(keys[1], "\(id)/c4/0")

        let restarted = self.events(events, kind: "tool.restarted")
        XCTAssertEqual(restarted.map { $0["call"]?.stringValue }, [interrupted], summary)
        XCTAssertEqual(restarted.first?["role"]?.stringValue, "critic")
        var completions: [String: Int] = [:]
        for e in self.events(events, kind: "tool.completed") { completions[e["call"]?.stringValue ?? "?", default: 0] += 1 }
        XCTAssertEqual(completions, ["c1.0": 1, "c3.0": 1, "c4.0": 1], "no tool completed twice: \(summary)")
        XCTAssertEqual(self.events(events, kind: "call.completed", role: "critic").count, 3, summary)

        let text = try harness.cli("transcript", id).stdout
        XCTAssertTrue(text.contains("ran again after a restart"), text)
    }
}
