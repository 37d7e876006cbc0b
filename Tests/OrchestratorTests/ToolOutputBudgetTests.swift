import Agents
import Foundation
import Store
import TestSupport
import XCTest

@testable import Orchestrator

/// The budgets on tool output: what each call may return, when a call is refused and which limit the
/// refusal names, and how an allowance cuts a command's streams and a file's content, counted
/// JSON-encoded.
final class ToolOutputBudgetTests: XCTestCase {
    private func policy(cap: Int, turn: Int, job: Int, calls: Int = 16) -> Policy {
        var policy = Policy()
        policy.toolOutputCap = cap
        policy.turnToolOutputCap = turn
        policy.jobToolOutputCap = job
        policy.maxToolCallsPerTurn = calls
        return policy
    }

    private func result(stdout: Int) -> JSON {
        .object([("exit_status", 0), ("stdout", .string(String(repeating: "x", count: stdout))), ("stderr", "")])
    }

    /// Asserts that call `index` may return `bytes`, set by the limit that mentions `limit`.
    private func assertAllowance(
        _ budget: ToolOutputBudget, call index: Int, _ bytes: Int, _ limit: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        switch budget.allowance(callIndex: index) {
        case let .success(allowance):
            XCTAssertEqual(allowance.bytes, bytes, file: file, line: line)
            XCTAssertTrue(allowance.limit.contains(limit), allowance.limit, file: file, line: line)
        case let .failure(problem): XCTFail("refused: \(problem.message)", file: file, line: line)
        }
    }

    /// Asserts that call `index` is refused with a message containing `text`.
    private func assertRefused(
        _ budget: ToolOutputBudget, call index: Int, _ text: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        guard case let .failure(problem) = budget.allowance(callIndex: index) else { return XCTFail("not refused", file: file, line: line) }
        XCTAssertTrue(problem.message.contains(text), problem.message, file: file, line: line)
    }

    func testAllowancesShrinkWithTheTurnAndTheJobAndRefusalsNameTheLimit() {
        var budget = ToolOutputBudget(policy: policy(cap: 4000, turn: 10_000, job: 15_000, calls: 5))
        budget.startTurn()
        assertAllowance(budget, call: 0, 4000, "policy.tool_output_cap")
        budget.charge(result(stdout: 4000))
        budget.charge(result(stdout: 4000))
        assertAllowance(budget, call: 2, 2000, "what is left of this turn's policy.turn_tool_output_cap")
        budget.charge(result(stdout: 1500))
        assertRefused(budget, call: 3, "this turn's tool output budget of 10000 bytes (policy.turn_tool_output_cap)")
        assertRefused(budget, call: 5, "one model turn may make 5 tool calls (policy.max_tool_calls_per_turn)")

        budget.startTurn()
        budget.charge(.object([("error", "refusals carry no output and cost nothing")]))
        assertAllowance(budget, call: 0, 4000, "policy.tool_output_cap")
        budget.charge(result(stdout: 4000))
        assertAllowance(budget, call: 1, 1500, "what is left of the job's policy.job_tool_output_cap")
        budget.charge(result(stdout: 1200))
        assertRefused(budget, call: 2, "the job's tool output budget of 15000 bytes (policy.job_tool_output_cap) is used up")
    }

    /// Both streams fit whole when they can; otherwise stderr keeps up to half (more when stdout
    /// needs less) and stdout the rest, NULs counting six.
    func testACommandsStreamsShareTheAllowance() {
        let allowance = ToolAllowance(bytes: 120, limit: "policy.tool_output_cap")
        let small = allowance.fit(stdout: Array("out\n".utf8), stderr: Array("err".utf8))
        XCTAssertEqual([small.stdout.text, small.stderr.text], ["out\n", "err"])
        XCTAssertTrue(small.stdout.complete && small.stderr.complete)

        let flood = allowance.fit(stdout: [UInt8](repeating: 0, count: 1000), stderr: Array(String(repeating: "e", count: 1000).utf8))
        XCTAssertEqual(flood.stderr.escapedCount, 60, "half for stderr")
        XCTAssertEqual(flood.stdout.escapedCount, 60, "ten NULs in the other half")
        XCTAssertEqual(flood.stdout.text.utf8.count, 10)
        XCTAssertFalse(flood.stdout.complete || flood.stderr.complete)

        let quietOut = allowance.fit(stdout: Array("ok".utf8), stderr: [UInt8](repeating: 0x41, count: 1000))
        XCTAssertEqual(quietOut.stdout.text, "ok")
        XCTAssertEqual(quietOut.stderr.escapedCount, 118, "stderr takes what stdout leaves")
    }

    /// `read_file` cuts a file of control bytes to the cap counted encoded, and says so.
    func testReadFileCutsContentCountedEncoded() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let root = try ToolBox.create(directory.path + "/ws", daemonFiles: DaemonFiles(paths: [])).get()
        try Data(repeating: 1, count: 100).write(to: URL(fileURLWithPath: root + "/ctl.bin"))
        let read = ToolBox.read("ctl.bin", root: root, cap: 60, daemonFiles: DaemonFiles(paths: []))
        XCTAssertEqual(read.json["content"]?.stringValue?.utf8.count, 10, read.json.encoded)
        XCTAssertEqual(read.json["truncated"]?.boolValue, true)
        XCTAssertEqual(
            read.json["truncation"]?.stringValue,
            "output cut to 60 bytes as JSON-encoded (policy.tool_output_cap; a control byte counts 6, a quote, backslash or newline 2): content 100 bytes, 10 kept"
        )
        XCTAssertNil(
            ToolBox.read("ctl.bin", root: root, cap: 600, daemonFiles: DaemonFiles(paths: [])).json["truncation"], "no cut, no note")
    }
}
