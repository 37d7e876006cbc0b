import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The actor's tools through the built daemon: each tool call and its result are recorded before the
/// model hears of them, bad calls are answered as tool results, commands are bounded, the loop is
/// bounded, and a recovered job does not run a completed tool again.
final class ToolTests: EndToEndTestCase {
    private var workspace: String { harness.dir + "/ws" }

    /// Runs `tools-scripted.yaml` with the actor's rules `actor` (a YAML flow list) and waits for it.
    private func runScripted(
        actor: String, tools: String = "[run_command, read_file, write_file]", sandbox: String = "true",
        policy: String = "{max_attempts: 1}", file: StaticString = #filePath, line: UInt = #line
    ) throws -> (job: JSON, events: [JSON]) {
        try harness.start()
        let plan = try harness.preparePlan(
            "tools-scripted.yaml", values: ["ACTOR": actor, "TOOLS": tools, "SANDBOX": sandbox, "POLICY": policy])
        let id = try submit(plan, file: file, line: line)
        let job = try harness.waitForJob(id, timeout: 60)
        return (job, try harness.events(id))
    }

    private func payloads(_ events: [JSON], _ kind: String) -> [JSON] {
        self.events(events, kind: kind).compactMap { $0["payload"] }
    }

    func testScriptedActorWritesAFileRunsACommandAndAnswers() throws {
        try requireBubblewrap()
        let actor = """
            [{turn: 0, reply: {tool_calls: [{name: write_file, arguments: {path: "notes/hello.txt", content: "hello from the actor\\n"}}]}}, \
            {turn: 1, reply: {tool_calls: [{id: "cat-1", name: run_command, arguments: {argv: [cat, notes/hello.txt]}}]}}, \
            {turn: 2, reply: {output: "wrote and read the note"}}]
            """
        let (job, events) = try runScripted(actor: actor)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)
        assertContiguous(events)
        XCTAssertEqual(
            try String(contentsOfFile: workspace + "/notes/hello.txt", encoding: .utf8), "hello from the actor\n",
            "write_file wrote inside the workspace, creating the directory")

        let started = self.events(events, kind: "tool.started")
        let completed = self.events(events, kind: "tool.completed")
        XCTAssertEqual(started.count, 2, summary)
        XCTAssertEqual(completed.count, 2, summary)
        XCTAssertEqual(started.map { $0["role"]?.stringValue }, ["actor", "actor"])
        XCTAssertEqual(started.map { $0["step"]?.intValue }, [0, 0])
        XCTAssertEqual(started.map { $0["attempt"]?.intValue }, [0, 0])
        XCTAssertEqual(started[0]["payload"]?["tool"]?.stringValue, "write_file")
        XCTAssertEqual(started[0]["payload"]?["path"]?.stringValue, "notes/hello.txt")
        XCTAssertEqual(started[1]["payload"]?["argv"], ["cat", "notes/hello.txt"])
        XCTAssertEqual(started[1]["payload"]?["tool_call_id"]?.stringValue, "cat-1")
        let jobID = try XCTUnwrap(job["id"]?.stringValue)
        let cat = try XCTUnwrap(completed[1]["payload"])
        XCTAssertEqual(cat["ok"]?.boolValue, true, cat.encoded)
        XCTAssertEqual(cat["result"]?["exit_status"]?.intValue, 0, cat.encoded)
        XCTAssertEqual(cat["result"]?["stdout"]?.stringValue, "hello from the actor\n", cat.encoded)
        XCTAssertNotNil(cat["duration_ms"]?.doubleValue)

        // Each tool.started is in the log before its tool.completed, and both come before the next
        // model turn's request; each model turn is its own call.
        let calls = self.events(events, kind: "call.started", role: "actor")
        XCTAssertEqual(calls.count, 3, summary)
        let callIDs = calls.compactMap { $0["call"]?.stringValue }
        XCTAssertEqual(Set(callIDs).count, 3, "three distinct call ids: \(callIDs)")
        XCTAssertEqual(started.map { $0["call"]?.stringValue }, ["\(callIDs[0]).0", "\(callIDs[1]).0"])
        XCTAssertEqual(started[0]["payload"]?["idempotency_key"]?.stringValue, "\(jobID)/\(callIDs[0])/0")
        func seq(_ e: JSON) -> Int { e["seq"]?.intValue ?? -1 }
        XCTAssertLessThan(seq(started[0]), seq(completed[0]))
        XCTAssertLessThan(seq(completed[0]), seq(calls[1]))
        XCTAssertLessThan(seq(completed[1]), seq(calls[2]))

        // The follow-up request carries the assistant's tool calls and the tool result.
        let first = try XCTUnwrap(calls[0]["payload"]?["request"])
        XCTAssertEqual(first["tools"]?.arrayValue?.count, 3, "the tool definitions are recorded: \(first.encoded)")
        XCTAssertNil(first["tool_choice"], "several tools: the model chooses")
        let last = try XCTUnwrap(calls[2]["payload"]?["request"])
        XCTAssertEqual(last["turn"]?.intValue, 2)
        let messages = try XCTUnwrap(last["messages"]?.arrayValue)
        XCTAssertEqual(messages.map { $0["role"]?.stringValue ?? "?" }, ["system", "user", "assistant", "tool", "assistant", "tool"])
        XCTAssertEqual(messages[4]["content"]?.stringValue, "", "an assistant turn with tool calls has empty content, not null")
        XCTAssertEqual(messages[4]["tool_calls"]?.arrayValue?.first?["id"]?.stringValue, "cat-1")
        XCTAssertEqual(messages[4]["tool_calls"]?.arrayValue?.first?["function"]?["name"]?.stringValue, "run_command")
        XCTAssertEqual(messages[5]["tool_call_id"]?.stringValue, "cat-1")
        let result = try JSON.parse(messages[5]["content"]?.stringValue ?? "")
        XCTAssertEqual(result["stdout"]?.stringValue, "hello from the actor\n")
        let answer = try XCTUnwrap(self.events(events, kind: "call.completed", role: "actor").last?["payload"])
        XCTAssertNil(answer["tool_calls"])
        XCTAssertEqual(self.events(events, kind: "call.completed", role: "actor").first?["payload"]?["tool_calls"]?.arrayValue?.count, 1)

        let text = try harness.cli("transcript", jobID).stdout
        XCTAssertTrue(text.contains("tool run_command") || text.contains("tool.started"), text)
    }

    func testEscapingPathsAndBadCallsAreToolResults() throws {
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        try "secret\n".write(toFile: harness.dir + "/secret.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: workspace + "/out", withDestinationPath: harness.dir)
        let actor = """
            [{turn: 0, reply: {tool_calls: [\
            {name: read_file, arguments: {path: "../secret.txt"}}, \
            {name: read_file, arguments: {path: "out/secret.txt"}}, \
            {name: write_file, arguments: {path: "out/planted.txt", content: "x"}}, \
            {name: read_file, arguments: {path: "/etc/hostname"}}, \
            {name: run_command, arguments: "{not json"}, \
            {name: run_command, arguments: {argv: "ls -l"}}, \
            {name: write_file, arguments: {path: "a.txt"}}, \
            {name: shell, arguments: {cmd: ls}}]}}, \
            {turn: 1, reply: {output: "gave up"}}]
            """
        let (job, events) = try runScripted(actor: actor)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "bad tool calls do not fail the job: \(summary)")
        let completed = payloads(events, "tool.completed")
        XCTAssertEqual(completed.count, 8, summary)
        let errors = completed.map { $0["result"]?["error"]?.stringValue ?? "" }
        let expected = [
            "outside the workspace", "outside the workspace", "outside the workspace", "is absolute", "not valid JSON",
            "must be a list of strings", "needs 'content'", "unknown tool 'shell'",
        ]
        for (error, text) in zip(errors, expected) {
            XCTAssertTrue(error.contains(text), "'\(error)' should say '\(text)'")
        }
        XCTAssertTrue(completed.allSatisfy { $0["ok"]?.boolValue == false }, summary)
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.dir + "/planted.txt"), "nothing was written outside")
        let started = payloads(events, "tool.started")
        XCTAssertEqual(started[4]["arguments"]?.stringValue, "{not json", "malformed arguments are recorded as sent")
        XCTAssertNotNil(started[4]["invalid"]?.stringValue)
        // The model is told, in the tool messages of its next turn.
        let followUp = try XCTUnwrap(self.events(events, kind: "call.started", role: "actor").last?["payload"]?["request"])
        let tools = followUp["messages"]?.arrayValue?.filter { $0["role"]?.stringValue == "tool" } ?? []
        XCTAssertEqual(tools.count, 8)
        XCTAssertTrue(tools[0]["content"]?.stringValue?.contains("outside the workspace") == true, tools[0].encoded)
    }

    func testAHangingToolCommandTimesOutAndEverythingItStartedIsKilled() throws {
        try requireBubblewrap()
        try hangingCommandTimesOut(sandbox: "true")
    }

    func testAHangingUnsandboxedToolCommandTimesOutAndItsProcessGroupIsKilled() throws {
        try hangingCommandTimesOut(sandbox: "false")
    }

    /// A shell (the harness's marker in its argv) that starts a background `sleep` and waits on
    /// another, both of a duration no other process has, so every process it started can be found.
    private func hangingCommandTimesOut(sandbox: String) throws {
        let nap = "30.\(UInt32.random(in: 100_000_000..<999_999_999))"
        let actor = """
            [{turn: 0, reply: {tool_calls: [{name: run_command, arguments: {argv: [sh, -c, "sleep \(nap) & sleep \(nap); echo never", "\(harness.marker)"]}}]}}, \
            {turn: 1, reply: {output: "the command hung"}}]
            """
        let started = Date()
        let (job, events) = try runScripted(
            actor: actor, tools: "[run_command]", sandbox: sandbox, policy: "{max_attempts: 1, tool_timeout: 1s}")
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)
        XCTAssertLessThan(Date().timeIntervalSince(started), 20, "the tool did not run its 30 s")
        let result = try XCTUnwrap(payloads(events, "tool.completed").first?["result"], summary)
        XCTAssertEqual(result["timed_out"]?.boolValue, true, result.encoded)
        XCTAssertEqual(result["signal"]?.intValue, Int(SIGKILL), result.encoded)
        XCTAssertTrue(result["error"]?.stringValue?.contains("timed out after 1.0s") == true, result.encoded)
        XCTAssertEqual(result["stdout"]?.stringValue, "", "it never got to echo")
        func left() -> [String] {
            (ProcessTable.alive(containing: harness.marker) + ProcessTable.alive(containing: nap)).map(\.commandLine)
        }
        XCTAssertTrue(waitUntil(timeout: 5) { left().isEmpty }, "everything the tool started is gone: \(left())")
        let request = try XCTUnwrap(self.events(events, kind: "call.started", role: "actor").first?["payload"]?["request"])
        XCTAssertEqual(request["tool_choice"]?["function"]?["name"]?.stringValue, "run_command", "one tool: named in tool_choice")
        let followUp = try XCTUnwrap(self.events(events, kind: "call.started", role: "actor").last?["payload"]?["request"])
        XCTAssertNil(followUp["tool_choice"], "not named again after its result")
    }

    func testMaxToolTurnsBoundsTheLoop() throws {
        let actor = "[{reply: {tool_calls: [{name: run_command, arguments: {argv: [\"true\"]}}]}}]"
        let (job, events) = try runScripted(actor: actor, tools: "[run_command]", policy: "{max_attempts: 2, max_tool_turns: 3}")
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "failed", summary)
        let reason = job["reason"]?.stringValue ?? ""
        XCTAssertTrue(reason.contains("still calling tools after 3 model turns (policy.max_tool_turns)"), reason)
        XCTAssertEqual(
            self.events(events, kind: "call.started", role: "actor").count, 6, "3 model turns per attempt, 2 attempts: \(summary)")
        XCTAssertEqual(self.events(events, kind: "tool.completed").count, 4, "the last turn's calls are not run: \(summary)")
        XCTAssertEqual(self.events(events, kind: "call.started", role: "critic").count, 0, "no output to judge")
        let rerun = try XCTUnwrap(self.events(events, kind: "call.started", role: "actor")[3]["payload"]?["request"])
        let user = rerun["messages"]?.arrayValue?[1]["content"]?.stringValue ?? ""
        XCTAssertTrue(user.contains("max_tool_turns"), "the rerun is told why: \(user)")
    }

    /// SIGKILL while the second tool runs: after the restart the first (completed) tool is not run
    /// again, the interrupted one runs again under the same idempotency key, noted by tool.restarted.
    /// In its sandbox the interrupted command dies with the daemon (`--die-with-parent`, and its PID
    /// namespace goes with bwrap), so it is not still running when its rerun starts.
    func testACompletedToolIsNotRunAgainAfterACrash() throws {
        try requireBubblewrap()
        try crashWhileASecondToolRuns(sandboxed: true)
    }

    /// The same without the sandbox: the interrupted command outlives the daemon (its own process
    /// group), as after a crash of the daemon alone.
    func testACompletedUnsandboxedToolIsNotRunAgainAfterACrash() throws {
        try crashWhileASecondToolRuns(sandboxed: false)
    }

    private func crashWhileASecondToolRuns(sandboxed: Bool) throws {
        let runs = workspace + "/runs.txt"
        let flag = workspace + "/slow.flag"
        let nap = "60.\(UInt32.random(in: 100_000_000..<999_999_999))"
        let record = "echo $AGENTD_TOOL_CALL_ID >> runs.txt"
        let actor = """
            [{turn: 0, reply: {tool_calls: [{name: run_command, arguments: {argv: [sh, -c, "\(record)"]}}]}}, \
            {turn: 1, reply: {tool_calls: [{name: run_command, arguments: {argv: [sh, -c, "\(record); if [ ! -e slow.flag ]; then echo $$ > slow.flag; sleep \(nap); fi"]}}]}}, \
            {turn: 2, reply: {output: "both tools ran"}}]
            """
        try harness.start()
        let plan = try harness.preparePlan(
            "tools-scripted.yaml",
            values: ["ACTOR": actor, "TOOLS": "[run_command]", "SANDBOX": sandboxed ? "true" : "false", "POLICY": "{max_attempts: 1}"])
        let id = try submit(plan)
        func lines() -> [String] { CommandResult.lines((try? String(contentsOfFile: runs, encoding: .utf8)) ?? "") }
        XCTAssertTrue(
            waitUntil(timeout: 20) { lines().count == 2 && !ProcessTable.alive(containing: nap).isEmpty },
            "the second tool runs: \(lines())")
        let before = try harness.events(id)
        XCTAssertEqual(events(before, kind: "tool.completed").count, 1, dump(before))
        XCTAssertEqual(events(before, kind: "tool.started").count, 2, dump(before))
        let interrupted = try XCTUnwrap(events(before, kind: "tool.started").last?["call"]?.stringValue)

        try harness.crash(killOrphans: false)
        if sandboxed {
            // bwrap carries the workspace in its argv, the shell and its sleep the unique duration.
            func survivors() -> [String] {
                (ProcessTable.alive(containing: nap) + ProcessTable.alive(containing: workspace)).map(\.commandLine)
            }
            XCTAssertTrue(waitUntil(timeout: 10) { survivors().isEmpty }, "the sandboxed tool died with the daemon: \(survivors())")
        } else {
            // The tool's shell and its sleep outlive the daemon (their own process group); they are
            // killed as a group so the daemon's exit can be seen.
            let group = try XCTUnwrap(
                Int32((try String(contentsOfFile: flag, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
            XCTAssertFalse(ProcessTable.alive(inGroup: group).isEmpty, "the interrupted tool outlived the daemon")
            kill(-group, SIGKILL)
        }
        _ = try harness.waitForExit(timeout: 10)
        try harness.restart()
        let job = try harness.waitForJob(id, timeout: 30)
        let events = try harness.events(id)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)
        assertContiguous(events)
        let keys = lines()
        XCTAssertEqual(keys.count, 3, "the first tool ran once, the interrupted one twice: \(keys)")
        XCTAssertEqual(Set(keys).count, 2, keys.description)
        XCTAssertEqual(keys[1], keys[2], "the rerun has the same idempotency key")
        XCTAssertTrue(keys.allSatisfy { $0.hasPrefix("\(id)/c") }, keys.description)

        let restarted = self.events(events, kind: "tool.restarted")
        XCTAssertEqual(restarted.count, 1, summary)
        XCTAssertEqual(restarted.first?["call"]?.stringValue, interrupted)
        XCTAssertEqual(restarted.first?["payload"]?["idempotency_key"]?.stringValue, keys[2])
        var completions: [String: Int] = [:]
        for e in self.events(events, kind: "tool.completed") { completions[e["call"]?.stringValue ?? "?", default: 0] += 1 }
        XCTAssertEqual(completions.count, 2, summary)
        XCTAssertTrue(completions.values.allSatisfy { $0 == 1 }, "no tool completed twice: \(summary)")
        XCTAssertEqual(self.events(events, kind: "tool.started").count, 2, "the rerun is not a second tool.started: \(summary)")
    }

    func testOpenAIActorCallsEachToolOnTheFakeServer() throws {
        try requireBubblewrap()
        let server = try FakeModelServer(directory: harness.dir)
        try harness.start()
        var ids: [String: String] = [:]
        for tool in ["write_file", "read_file", "run_command"] {
            let plan = try harness.preparePlan(
                "openai-tools.yaml", values: ["BASE_URL": server.baseURL, "MODEL": "ok:\(tool)", "TOOL": tool])
            let result = try harness.cli(["submit", plan, "--goal", "use \(tool)", "--wait", "--json"], timeout: 60)
            let job = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "submit --wait --json")
            let id = try XCTUnwrap(job["id"]?.stringValue, "\(result)")
            let events = try harness.events(id)
            let summary = dump(events)
            XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(tool): \(summary)")
            ids[tool] = id

            let started = try XCTUnwrap(self.events(events, kind: "tool.started").first?["payload"], summary)
            XCTAssertEqual(started["tool"]?.stringValue, tool)
            let completed = try XCTUnwrap(self.events(events, kind: "tool.completed").first?["payload"], summary)
            XCTAssertEqual(completed["ok"]?.boolValue, true, "\(tool): \(completed.encoded)")
            XCTAssertEqual(self.events(events, kind: "tool.completed").count, 1, summary)

            let actorCalls = self.events(events, kind: "call.completed", role: "actor")
            XCTAssertEqual(actorCalls.count, 2, "a tool turn, then the answer: \(summary)")
            let first = try XCTUnwrap(actorCalls[0]["payload"])
            XCTAssertEqual(first["sent"]?["tools"]?.arrayValue?.first?["function"]?["name"]?.stringValue, tool)
            XCTAssertEqual(first["sent"]?["tool_choice"]?["function"]?["name"]?.stringValue, tool)
            XCTAssertEqual(first["tool_calls"]?.arrayValue?.first?["function"]?["name"]?.stringValue, tool, first.encoded)
            XCTAssertTrue(first["raw"]?["choices"]?.arrayValue?.first?["message"]?["content"]?.isNull == true, "content was null")
            let second = try XCTUnwrap(actorCalls[1]["payload"]?["sent"])
            XCTAssertNil(second["tool_choice"])
            let messages = second["messages"]?.arrayValue ?? []
            XCTAssertEqual(messages.map { $0["role"]?.stringValue ?? "?" }, ["system", "user", "assistant", "tool"])
            XCTAssertEqual(messages[2]["content"]?.stringValue, "", "never null")
            XCTAssertEqual(messages[3]["tool_call_id"]?.stringValue, messages[2]["tool_calls"]?.arrayValue?.first?["id"]?.stringValue)
            XCTAssertTrue(actorCalls[1]["payload"]?["reply"]?.stringValue?.hasPrefix("done: ") == true, summary)

            switch tool {
            case "write_file":
                XCTAssertEqual(try String(contentsOfFile: workspace + "/notes.txt", encoding: .utf8), "hello")
            case "read_file":
                XCTAssertEqual(completed["result"]?["content"]?.stringValue, "hello", completed.encoded)
            default:
                XCTAssertEqual(started["argv"], ["echo", "hello"])
                XCTAssertEqual(completed["result"]?["stdout"]?.stringValue, "hello\n", completed.encoded)
            }
        }
        XCTAssertEqual(ids.count, 3)
    }
}
