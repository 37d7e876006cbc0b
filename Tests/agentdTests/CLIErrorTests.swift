import Foundation
import Store
import XCTest

/// The CLI's failures: one line on stderr prefixed `agentd: `, and the documented exit codes.
final class CLIErrorTests: EndToEndTestCase {
    private func assertOneErrorLine(
        _ result: CommandResult, status: Int32, mentions: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(result.status, status, "exit status: \(result)", file: file, line: line)
        XCTAssertEqual(result.stderrLines.count, 1, "exactly one stderr line: \(result)", file: file, line: line)
        let message = result.stderrLines.first ?? ""
        XCTAssertTrue(message.hasPrefix("agentd: "), "prefixed 'agentd: ': \(message)", file: file, line: line)
        for word in mentions {
            XCTAssertTrue(message.contains(word), "mentions '\(word)': \(message)", file: file, line: line)
        }
        XCTAssertEqual(result.stdout, "", "nothing on stdout: \(result)", file: file, line: line)
    }

    /// No daemon: exit 3 and a line that says how to start one.
    func testNoDaemon() throws {
        // The harness's socket does not exist: nothing was started.
        for arguments in [["status"], ["ls"], ["show", "X"], ["submit", Locations.shippedPlans + "/w1.yaml"]] {
            let result = try harness.cli(arguments)
            assertOneErrorLine(result, status: 3, mentions: ["agentd serve", harness.socketPath])
        }
        // AGENTD_SOCKET is honoured the same way.
        let env = try harness.cli(["status"], socket: false, env: ["AGENTD_SOCKET": harness.dir + "/elsewhere.sock"])
        assertOneErrorLine(env, status: 3, mentions: ["agentd serve", harness.dir + "/elsewhere.sock"])
    }

    /// Unknown jobs and plan files that do not exist: exit 1 and one line naming them.
    func testUnknownJobAndMissingPlan() throws {
        try harness.start()
        assertOneErrorLine(try harness.cli("show", "NOSUCH"), status: 1, mentions: ["NOSUCH"])
        assertOneErrorLine(try harness.cli("watch", "NOSUCH"), status: 1, mentions: ["NOSUCH"])
        assertOneErrorLine(try harness.cli("cancel", "NOSUCH"), status: 1, mentions: ["NOSUCH"])
        assertOneErrorLine(try harness.cli("transcript", "NOSUCH"), status: 1, mentions: ["NOSUCH"])

        let missing = try harness.cli(["submit", "does-not-exist.yaml"], cwd: harness.dir)
        assertOneErrorLine(missing, status: 1, mentions: [harness.dir + "/does-not-exist.yaml"])
        let missingWait = try harness.cli(["submit", "does-not-exist.yaml", "--wait"], cwd: harness.dir)
        assertOneErrorLine(missingWait, status: 1, mentions: ["does-not-exist.yaml"])

        XCTAssertEqual(try harness.rpc("job.list")["jobs"]?.arrayValue?.count, 0)
        XCTAssertEqual(try harness.cli("status").status, 0, "the daemon still serves")
    }

    /// A mistyped command is named, with the nearest command, before any option after it is looked at;
    /// with none near, the commands there are are listed. Exit 64, as for the parser's own usage errors.
    func testMistypedCommandNamesTheNearestOne() throws {
        let cases: [([String], String)] = [
            (["sumbit", "plan.yaml", "--goal", "x"], "'sumbit' is not a command; did you mean 'submit'? ('agentd --help' lists them)"),
            (
                ["audit", "verfy", "--all"],
                "'audit verfy' is not a command; did you mean 'audit verify'? ('agentd audit --help' lists them)"
            ),
            (["trasncript", "X"], "'trasncript' is not a command; did you mean 'transcript'? ('agentd --help' lists them)"),
            (["sub"], "'sub' is not a command; did you mean 'submit'? ('agentd --help' lists them)"),
            (["audit", "frobnicate"], "'audit frobnicate' is not a command; 'agentd audit' has: verify, search, export"),
        ]
        for (arguments, message) in cases {
            let result = try harness.run(arguments)
            XCTAssertEqual(result.stderrLines, ["agentd: " + message], "\(result)")
            XCTAssertEqual(result.status, 64, "\(result)")
            XCTAssertEqual(result.stdout, "", "\(result)")
        }
        // Well-typed commands reach the parser as before: its own message for a bad option.
        let option = try harness.run(["status", "--bogus"])
        XCTAssertEqual(option.status, 64, "\(option)")
        XCTAssertTrue(option.stderr.contains("Unknown option '--bogus'"), "\(option)")
    }
}
