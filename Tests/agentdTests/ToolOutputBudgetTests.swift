import Foundation
import Store
import XCTest

/// Tool output floods through the built daemon: a command that prints 16 MiB of NUL bytes, and one
/// model turn of 20 such commands. What each result, each turn and the job record stays within the
/// policy's budgets counted JSON-encoded (a NUL costs six bytes there), the calls beyond a budget are
/// answered with an error naming it, and the transcript still renders. Sizes are read from the
/// database itself, as stored.
final class ToolOutputBudgetTests: EndToEndTestCase {
    /// Runs `tools-scripted.yaml` (unsandboxed: the flood is the daemon's problem, not bwrap's) and
    /// returns the job and its events.
    private func runScripted(actor: String, policy: String) throws -> (id: String, job: JSON, events: [JSON]) {
        try harness.start()
        let plan = try harness.preparePlan(
            "tools-scripted.yaml", values: ["ACTOR": actor, "TOOLS": "[run_command]", "SANDBOX": "false", "POLICY": policy])
        let id = try submit(plan)
        let job = try harness.waitForJob(id, timeout: 120)
        return (id, job, try harness.events(id))
    }

    /// `{name: run_command, …}` printing `bytes` NUL bytes.
    private func nulCall(_ bytes: Int) -> String {
        "{name: run_command, arguments: {argv: [head, -c, \"\(bytes)\", /dev/zero]}}"
    }

    /// The stored size of each event of `kind` (the payload's bytes in the database), by call id.
    private func storedSizes(_ id: String, kind: String) throws -> [(call: String, bytes: Int)] {
        try harness.sqlite("SELECT call_id || ' ' || length(payload) FROM events WHERE job_id = '\(id)' AND kind = '\(kind)' ORDER BY seq")
            .split(separator: "\n").map { line in
                let parts = line.split(separator: " ")
                return (String(parts[0]), Int(parts[1]) ?? -1)
            }
    }

    /// The output a recorded result carries, encoded (what the budgets count).
    private func output(_ result: JSON) -> Int {
        ["stdout", "stderr"].reduce(0) { $0 + JSON.escapedCount(of: result[$1]?.stringValue ?? "") }
    }

    /// 16 MiB of NUL bytes under an 8 MiB `tool_output_cap`: the result carries at most 8 MiB once
    /// encoded (about 1.4 million NULs, not 8 million), says it was cut and by which limit, and the
    /// events that record it and the next request stay within a small multiple of the cap.
    func testANulFloodIsCutToTheCapCountedEncoded() throws {
        let cap = 8 << 20
        let actor = "[{turn: 0, reply: {tool_calls: [\(nulCall(16 << 20))]}}, {turn: 1, reply: {output: \"flooded\"}}]"
        let (id, job, events) = try runScripted(actor: actor, policy: "{max_attempts: 1, tool_output_cap: \(cap)}")
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)
        let result = try XCTUnwrap(self.events(events, kind: "tool.completed").first?["payload"]?["result"], summary)
        XCTAssertEqual(result["exit_status"]?.intValue, 0, summary)
        let stdout = result["stdout"]?.stringValue ?? ""
        XCTAssertLessThanOrEqual(JSON.escapedCount(of: stdout), cap, "the output is cut to the cap, encoded")
        XCTAssertGreaterThan(JSON.escapedCount(of: stdout), cap - 6, "and fills it")
        XCTAssertTrue(stdout.utf8.allSatisfy { $0 == 0 }, "what is kept is the output's beginning")
        XCTAssertEqual(result["stdout_truncated"]?.boolValue, true)
        let truncation = result["truncation"]?.stringValue ?? ""
        for needle in ["output cut to 8388608 bytes", "policy.tool_output_cap", "stdout 16777216 bytes, \(stdout.utf8.count) kept"] {
            XCTAssertTrue(truncation.contains(needle), "'\(needle)' in: \(truncation)")
        }

        let completed = try storedSizes(id, kind: "tool.completed")
        XCTAssertEqual(completed.count, 1)
        XCTAssertLessThanOrEqual(completed[0].bytes, cap + 1024, "the stored result: the cap and a few fields")
        let requests = try storedSizes(id, kind: "call.started")
        let largest = requests.map(\.bytes).max() ?? 0
        // The follow-up request carries the result as a string: escaped once more (7 bytes a NUL).
        XCTAssertLessThanOrEqual(largest, cap * 7 / 6 + 64 << 10, "the next request: \(requests)")

        let transcript = try harness.cli(["transcript", id], timeout: 120)
        XCTAssertEqual(transcript.status, 0, transcript.stderr)
        XCTAssertTrue(transcript.stdout.contains("policy.tool_output_cap"), "the transcript shows the cut")
    }

    /// Turns of 20 commands that print 128 KiB of NULs each: per result at most `tool_output_cap`
    /// (encoded), per turn at most `turn_tool_output_cap`, then `max_tool_calls_per_turn`, and per job
    /// `job_tool_output_cap`; each call beyond a budget is recorded with an error naming the key, and
    /// the calls in a later turn get the job's remainder. The largest request the job records stays
    /// within the job's budget escaped once more.
    func testTurnsOfNulFloodsStayWithinTheTurnAndJobBudgets() throws {
        let (cap, turnCap, jobCap) = (64 << 10, 256 << 10, 512 << 10)
        let turn = "[" + Array(repeating: nulCall(128 << 10), count: 20).joined(separator: ", ") + "]"
        let actor = """
            [{turn: 0, reply: {tool_calls: \(turn)}}, {turn: 1, reply: {tool_calls: \(turn)}}, \
            {turn: 2, reply: {tool_calls: [\(nulCall(16))]}}, {turn: 3, reply: {output: "flooded"}}]
            """
        let policy =
            "{max_attempts: 1, tool_output_cap: \(cap), turn_tool_output_cap: \(turnCap), job_tool_output_cap: \(jobCap), max_tool_calls_per_turn: 16}"
        let (id, job, events) = try runScripted(actor: actor, policy: policy)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)
        let completed = self.events(events, kind: "tool.completed")
        XCTAssertEqual(completed.count, 41, summary)

        var byTurn: [String: Int] = [:]
        for event in completed {
            let result = try XCTUnwrap(event["payload"]?["result"])
            XCTAssertLessThanOrEqual(output(result), cap, "one result: \(event["call"]?.stringValue ?? "")")
            let modelCall = String((event["call"]?.stringValue ?? "").prefix { $0 != "." })
            byTurn[modelCall, default: 0] += output(result)
        }
        XCTAssertEqual(byTurn.count, 3, "three turns called tools")
        XCTAssertTrue(byTurn.values.allSatisfy { $0 <= turnCap }, "each turn within its budget: \(byTurn)")
        XCTAssertLessThanOrEqual(byTurn.values.reduce(0, +), jobCap, "the job within its budget")

        func error(_ index: Int) -> String { completed[index]["payload"]?["result"]?["error"]?.stringValue ?? "" }
        let ran = completed.map { $0["payload"]?["result"]?["error"] == nil }
        XCTAssertEqual(ran.prefix(20).filter { $0 }.count, 4, "four 64 KiB results fill the first turn's 256 KiB")
        XCTAssertTrue(
            error(4).contains("this turn's tool output budget of 262144 bytes (policy.turn_tool_output_cap) is used up"), error(4))
        XCTAssertTrue(error(16).contains("one model turn may make 16 tool calls (policy.max_tool_calls_per_turn)"), error(16))
        XCTAssertEqual(ran[20..<40].filter { $0 }.count, 4, "the second turn has room for four more")
        XCTAssertTrue(error(24).contains("the job's tool output budget of 524288 bytes (policy.job_tool_output_cap) is used up"), error(24))
        XCTAssertTrue(error(40).contains("policy.job_tool_output_cap"), "a later turn is refused too: \(error(40))")
        XCTAssertTrue(completed.allSatisfy { $0["payload"]?["ok"] != nil }, "every call has a recorded result")

        let requests = try storedSizes(id, kind: "call.started")
        XCTAssertLessThanOrEqual(requests.map(\.bytes).max() ?? 0, jobCap * 7 / 6 + 64 << 10, "the largest request: \(requests)")
        let transcript = try harness.cli(["transcript", id], timeout: 120)
        XCTAssertEqual(transcript.status, 0, transcript.stderr)
        XCTAssertTrue(transcript.stdout.contains("policy.turn_tool_output_cap"), "the transcript shows the refusals")
    }
}
