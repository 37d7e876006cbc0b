import Foundation
import Store
import XCTest

/// Every secret of the daemon — `OPENAI_API_KEY`, a variable `AGENTD_SECRET_ENV` lists and one
/// `--secret-env` names — is protected alike, through the built daemon: wiped from the daemon's own
/// environment block (read from `/proc/PID/environ`, as any process of its user could) while the
/// daemon still uses the copy it read at start; never in the environment of an unsandboxed tool, a
/// `command` model or a command verifier (each prints its environment in base64, which no redaction
/// catches, and the test decodes it); refused in a plan's `sandbox.env` at submission; and redacted
/// from the record however JSON escapes it.
final class SecretEnvironmentTests: EndToEndTestCase {
    private let apiKey = "sk-e2e-\(UUID().uuidString)"
    private let listed = "listed-\(UUID().uuidString)"
    private let flagged = "flagged-\(UUID().uuidString)"

    /// Starts the daemon with the three secrets and one ordinary variable.
    private func startWithSecrets(_ extra: [String] = []) throws {
        harness.daemonEnvironment = [
            "OPENAI_API_KEY": apiKey, "AGENTD_SECRET_ENV": "E2E_LISTED", "E2E_LISTED": listed, "E2E_FLAGGED": flagged,
            "E2E_PLAIN": "plain-value-kept",
        ]
        try harness.start(extraArguments: ["--secret-env", "E2E_FLAGGED"] + extra)
    }

    private var secrets: [String: String] { ["OPENAI_API_KEY": apiKey, "E2E_LISTED": listed, "E2E_FLAGGED": flagged] }

    /// The NAME=VALUE entries of `text`, base64 of NUL- or newline-separated entries.
    private func decodedEnvironment(_ base64: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let data = try XCTUnwrap(Data(base64Encoded: base64), "not base64: \(base64.prefix(80))", file: file, line: line)
        return String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == "\0" || $0 == "\n" }).map(String.init)
    }

    /// Asserts that no entry of `environment` holds a secret's value (by any name).
    private func assertNoSecret(_ environment: [String], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(environment.contains("E2E_PLAIN=plain-value-kept"), "\(what) was read: \(environment)", file: file, line: line)
        for (name, value) in secrets {
            XCTAssertFalse(environment.contains { $0.contains(value) }, "\(what) holds the value of \(name)", file: file, line: line)
        }
    }

    func testTheDaemonWipesItsSecretsFromItsOwnEnvironmentAndStillUsesThem() throws {
        let server = try FakeModelServer(directory: harness.dir, expectKey: apiKey)
        try startWithSecrets()
        let pid = try XCTUnwrap(harness.daemonPID)
        let environ = ProcessTable.environment(of: pid).map { String(decoding: $0, as: UTF8.self) }
        assertNoSecret(environ, "/proc/\(pid)/environ")
        XCTAssertTrue(environ.contains("OPENAI_API_KEY="), "the name stays, with its value wiped: \(environ)")

        // The key still reaches the endpoint: the fake server refuses a request without it.
        let plan = try server.preparePlan(in: harness, model: "ok:basic")
        let result = try harness.cli(["submit", plan, "--goal", "use the key", "--wait", "--json"], timeout: 60)
        let job = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(result)\n\(server.log())")
    }

    func testNoCommandTheDaemonStartsGetsASecret() throws {
        try startWithSecrets()
        let id = try submit(try harness.preparePlan("secret-commands.yaml"))
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)

        let tool = try XCTUnwrap(self.events(events, kind: "tool.completed").first?["payload"]?["result"], summary)
        let lines = CommandResult.lines(tool["stdout"]?.stringValue ?? "")
        XCTAssertEqual(lines.count, 2, tool.encoded)
        assertNoSecret(try decodedEnvironment(lines[0]), "the unsandboxed tool's environment")
        assertNoSecret(try decodedEnvironment(lines[1]), "the daemon's /proc environ, read by the tool")

        let critic = try XCTUnwrap(self.events(events, kind: "call.completed", role: "critic").first?["payload"], summary)
        assertNoSecret(try decodedEnvironment(critic["verdict"]?["feedback"]?.stringValue ?? ""), "the command critic's environment")
        let verifier = try XCTUnwrap(self.events(events, kind: "call.completed", role: "verifier").first?["payload"], summary)
        let verifierEnvironment = try decodedEnvironment(verifier["raw"]?["stdout"]?.stringValue ?? "")
        assertNoSecret(verifierEnvironment, "the command verifier's environment")
        XCTAssertTrue(
            verifierEnvironment.contains { $0.hasPrefix("AGENTD_DAEMON_DB=") },
            "commands still carry the daemon's mark: \(verifierEnvironment)")
    }

    func testAPlanThatPassesADaemonSecretToCommandsIsRefusedAtSubmission() throws {
        try startWithSecrets()
        for name in ["E2E_FLAGGED", "E2E_LISTED"] {
            let plan = try harness.preparePlan(
                "tools-scripted.yaml",
                values: [
                    "ACTOR": "[{reply: {output: x}}]", "TOOLS": "[run_command]", "SANDBOX": "{env: [PATH, \(name)]}", "POLICY": "{}",
                ])
            let reply = try harness.connect().request("job.submit", ["plan_path": .string(plan)])
            XCTAssertEqual(reply["error"]?["code"]?.intValue, -32003, reply.encoded)
            XCTAssertEqual(
                reply["error"]?["message"]?.stringValue,
                "invalid plan: sandbox.env names '\(name)', which this daemon holds as a secret (OPENAI_API_KEY, AGENTD_SECRET_ENV, secret_env or --secret-env); commands never get a secret"
            )
        }
        XCTAssertEqual(try harness.rpc("daemon.status")["queued"]?.intValue, 0, "nothing was admitted")
    }

    /// A secret with a quote and a backslash, read from a workspace file by `read_file`: it is in the
    /// tool's result escaped once and in the next request escaped twice, and in neither form (nor as
    /// it is, in the goal) does it reach the database.
    func testASecretThatJSONEscapesIsRedactedInEveryForm() throws {
        let secret = #"q"u\o-"# + UUID().uuidString
        harness.daemonEnvironment = ["E2E_ODD": secret]
        try harness.start(extraArguments: ["--secret-env", "E2E_ODD"])
        try FileManager.default.createDirectory(atPath: harness.dir + "/ws", withIntermediateDirectories: true)
        try "token: \(secret)\n".write(toFile: harness.dir + "/ws/token.txt", atomically: true, encoding: .utf8)
        let actor = "[{turn: 0, reply: {tool_calls: [{name: read_file, arguments: {path: token.txt}}]}}, {turn: 1, reply: {output: read}}]"
        let plan = try harness.preparePlan(
            "tools-scripted.yaml", values: ["ACTOR": actor, "TOOLS": "[read_file]", "SANDBOX": "true", "POLICY": "{max_attempts: 1}"])
        let id = try submit(plan, ["--goal", "keep \(secret) safe"])
        XCTAssertEqual(try harness.waitForJob(id, timeout: 60)["status"]?.stringValue, "succeeded")
        let events = try harness.events(id)
        let read = self.events(events, kind: "tool.completed").first?["payload"]?["result"]?["content"]?.stringValue
        XCTAssertEqual(read, "token: [REDACTED:E2E_ODD]\n", dump(events))
        let request = try XCTUnwrap(self.events(events, kind: "call.started", role: "actor").last?["payload"]?["request"])
        XCTAssertTrue(request.encoded.contains("[REDACTED:E2E_ODD]"), "the follow-up request carries the redacted result")

        harness.cleanUpDaemon()
        let once = JSON.escaped(secret)
        let twice = JSON.escaped(String(decoding: once, as: UTF8.self))
        for path in [harness.dbPath, harness.dbPath + "-wal"] {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            for (form, needle) in [("raw", Array(secret.utf8)), ("escaped", once), ("double-escaped", twice)] {
                XCTAssertNil(Array(data).firstRange(of: needle), "the \(form) secret is in \(path)")
            }
        }
    }
}
