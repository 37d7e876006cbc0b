import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Cancelling a job while its actor's `run_command` tool runs: every process the command started
/// (a grandchild in the background included) is killed, the record ends with the cancellation, and
/// nothing of the job runs afterwards — not in this daemon, not in the next one.
final class ToolCancellationTests: EndToEndTestCase {
    private var workspace: String { harness.dir + "/ws" }

    func testCancellingAJobWhileItsCommandToolRunsKillsTheCommandsWholeProcessTree() throws {
        try cancelWhileAToolRuns(sandbox: false)
    }

    func testCancellingAJobWhileItsSandboxedCommandToolRunsKillsTheCommandsWholeProcessTree() throws {
        try requireBubblewrap()
        try cancelWhileAToolRuns(sandbox: true)
    }

    /// The tool is a shell that notes its run, starts a background `sleep` of a duration no other
    /// process has (its pid written to a file, outside the sandbox the host's pid), and waits.
    private func cancelWhileAToolRuns(sandbox: Bool) throws {
        let nap = "40.\(UInt32.random(in: 100_000_000..<999_999_999))"
        let script = "echo run >> runs.txt; sleep \(nap) & echo $! > grandchild.pid; wait; echo never >> runs.txt"
        let actor = """
            [{turn: 0, reply: {tool_calls: [{name: run_command, arguments: {argv: [sh, -c, "\(script)", "\(harness.marker)"]}}]}}, \
            {turn: 1, reply: {output: "the tool finished"}}]
            """
        try harness.start()
        let plan = try harness.preparePlan(
            "tools-scripted.yaml",
            values: ["ACTOR": actor, "TOOLS": "[run_command]", "SANDBOX": sandbox ? "true" : "false", "POLICY": "{max_attempts: 1}"])
        let id = try submit(plan)
        let pidFile = workspace + "/grandchild.pid"
        XCTAssertTrue(
            waitUntil(timeout: 30) {
                FileManager.default.fileExists(atPath: pidFile) && !ProcessTable.alive(containing: nap).isEmpty
            }, "the tool runs, its grandchild sleeps")
        let sleepers = ProcessTable.alive(containing: nap)
        if !sandbox {
            let pid = try XCTUnwrap(
                Int32((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
            let grandchild = sleepers.filter { $0.commandLine.hasPrefix("sleep ") }
            XCTAssertEqual(grandchild.map(\.pid), [pid], "the pid written is the grandchild's: \(sleepers.map(\.commandLine))")
        }
        let before = try harness.events(id)
        XCTAssertEqual(events(before, kind: "tool.started").count, 1, dump(before))
        XCTAssertEqual(events(before, kind: "tool.completed").count, 0, dump(before))

        let cancel = try harness.cli("cancel", id, "--json")
        XCTAssertEqual(cancel.status, 0, "\(cancel)")
        XCTAssertEqual(try parseJSON(cancel.stdout)["status"]?.stringValue, "cancelled", "\(cancel)")
        func left() -> [String] {
            (sleepers.compactMap { ProcessTable.entry($0.pid) }.filter(\.isAlive) + ProcessTable.alive(containing: harness.marker)
                + ProcessTable.alive(containing: nap)).map { "\($0.pid) \($0.commandLine)" }
        }
        XCTAssertTrue(waitUntil(timeout: 30) { left().isEmpty }, "the tool's shell and its grandchild are killed: \(left())")

        // Stopping the daemon ends everything it might still do: the record is final then.
        harness.sendSignal(SIGTERM)
        XCTAssertEqual(try harness.waitForExit(timeout: 60).status, 0, harness.daemonLog())
        let recorded = CommandResult.lines(
            try harness.sqlite("SELECT kind || ' ' || coalesce(role, '-') FROM events WHERE job_id = '\(id)' ORDER BY seq"))
        XCTAssertEqual(recorded.last, "job.state -", "\(recorded)")
        XCTAssertEqual(
            try harness.sqlite(
                "SELECT json_extract(payload, '$.to') FROM events WHERE job_id = '\(id)' AND kind = 'job.state' ORDER BY seq DESC LIMIT 1"),
            "cancelled\n")
        XCTAssertEqual(try harness.sqlite("SELECT status FROM jobs WHERE id = '\(id)'"), "cancelled\n")
        XCTAssertFalse(recorded.contains { $0.hasPrefix("tool.completed") }, "the killed tool has no result: \(recorded)")
        XCTAssertEqual(recorded.filter { $0.hasPrefix("call.started") }.count, 1, "no model call after the tool's: \(recorded)")

        // A new daemon leaves the cancelled job alone: nothing resumes, the tool never runs again.
        try harness.restart()
        let status = try harness.rpc("daemon.status")
        XCTAssertEqual(status["running"]?.intValue, 0, status.encoded)
        XCTAssertEqual(status["queued"]?.intValue, 0, status.encoded)
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(id)])["status"]?.stringValue, "cancelled")
        harness.sendSignal(SIGTERM)
        XCTAssertEqual(try harness.waitForExit(timeout: 60).status, 0, harness.daemonLog())
        XCTAssertEqual(try harness.sqlite("SELECT count(*) FROM events WHERE job_id = '\(id)'"), "\(recorded.count)\n")
        XCTAssertEqual(
            try String(contentsOfFile: workspace + "/runs.txt", encoding: .utf8), "run\n", "the tool ran once and never finished")
    }
}
