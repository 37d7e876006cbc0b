import Foundation
import Store
import XCTest

/// Bad input of every kind: each gets the right error, and the daemon keeps serving.
final class ProtocolErrorTests: EndToEndTestCase {
    private func assertError(
        _ reply: JSON, code: Int, id: JSON = .null, _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(reply["jsonrpc"]?.stringValue, "2.0", "\(what): \(reply.encoded)", file: file, line: line)
        XCTAssertNil(reply["result"], "\(what): no result: \(reply.encoded)", file: file, line: line)
        XCTAssertEqual(reply["error"]?["code"]?.intValue, code, "\(what): error code: \(reply.encoded)", file: file, line: line)
        XCTAssertFalse((reply["error"]?["message"]?.stringValue ?? "").isEmpty, "\(what): a message", file: file, line: line)
        XCTAssertEqual(reply["id"], id, "\(what): id: \(reply.encoded)", file: file, line: line)
    }

    private func assertServes(_ connection: WireConnection, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let status = try connection.call("daemon.status", timeout: 10)
            XCTAssertNotNil(status["pid"]?.intValue, "after \(what): daemon.status answers", file: file, line: line)
        } catch {
            XCTFail("after \(what): daemon.status on the same connection failed: \(error)", file: file, line: line)
        }
    }

    /// `daemon.status` names the protocol version (an integer), with its members in their documented
    /// order: clients rely on both.
    func testStatusReportsProtocolVersion() throws {
        try harness.start()
        let status = try harness.rpc("daemon.status")
        XCTAssertEqual(status["protocol_version"]?.intValue, 1, status.encoded)
        guard case let .object(members) = status else { return XCTFail("not an object: \(status.encoded)") }
        XCTAssertEqual(
            members.map(\.0),
            [
                "accepting", "uptime_ms", "running", "queued", "watchers", "jobs", "store", "storage", "version", "protocol_version",
                "pid", "socket", "config", "connections",
            ])
    }

    /// Frames that are not requests, unknown methods and bad params, all on one connection.
    func testMalformedRequestsOnOneConnection() throws {
        try harness.start()
        let connection = try harness.connect()

        let frames: [(String, Int, JSON, String)] = [
            ("{not json", -32700, .null, "malformed JSON"),
            ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"", -32700, .null, "truncated JSON"),
            ("[1,2]", -32600, .null, "an array frame"),
            ("\"x\"", -32600, .null, "a string frame"),
            ("42", -32600, .null, "a number frame"),
            ("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"no.such.method\"}", -32601, 7, "an unknown method"),
            ("{\"jsonrpc\":\"2.0\",\"id\":\"g\",\"method\":\"job.get\",\"params\":{}}", -32602, "g", "job.get without id"),
            (
                "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"job.submit\",\"params\":{\"plan_path\":\"plans/w1.yaml\"}}", -32602, 8,
                "job.submit with a relative plan_path"
            ),
            (
                "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"job.list\",\"params\":{\"status\":\"bogus\"}}", -32602, 9,
                "job.list with an unknown status"
            ),
            (
                "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"job.get\",\"params\":{\"id\":\"NOSUCH\"}}", -32002, 10,
                "job.get of an unknown job"
            ),
        ]
        for (frame, code, id, what) in frames {
            try connection.send(line: frame)
            let reply = try connection.readMessage(timeout: 10)
            assertError(reply, code: code, id: id, what)
            assertServes(connection, what)
        }
        let relative = try connection.request("job.submit", ["plan_path": "plans/w1.yaml"])
        XCTAssertTrue(relative["error"]?["message"]?.stringValue?.contains("plans/w1.yaml") == true, relative.encoded)
        let bogus = try connection.request("job.list", ["status": "bogus"])
        XCTAssertTrue(bogus["error"]?["message"]?.stringValue?.contains("bogus") == true, bogus.encoded)

        // A fresh connection is served too.
        assertServes(try harness.connect(), "all the bad frames")
        XCTAssertEqual(try harness.rpc("job.list")["jobs"]?.arrayValue?.count, 0, "no job was created by any of them")
    }

    /// One line over the 1 MiB limit: -32001, and the stream stays in sync.
    func testOversizedFrame() throws {
        try harness.start()
        let connection = try harness.connect()
        let padding = String(repeating: "x", count: (1 << 20) + 1000)
        try connection.send(line: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\",\"params\":{\"pad\":\"\(padding)\"}}")
        let reply = try connection.readMessage(timeout: 15)
        assertError(reply, code: -32001, "a frame over 1 MiB")
        assertServes(connection, "an oversized frame")
        // Just under the limit is still accepted (the params are ignored by daemon.status).
        let fits = String(repeating: "y", count: (1 << 20) - 200)
        let ok = try connection.request("daemon.status", ["pad": .string(fits)])
        XCTAssertNotNil(ok["result"]?["pid"], "a frame under the limit is served: \(String(ok.encoded.prefix(300)))")
        assertServes(try harness.connect(), "an oversized frame (new connection)")
    }

    /// Broken plan files: -32003 naming the file, the line and (where there is one) the field.
    func testBrokenPlanFiles() throws {
        try harness.start()
        let connection = try harness.connect()

        let syntax = Locations.fixturePlans + "/broken-syntax.yaml"
        let syntaxLine = try lineNumber(of: "this: is", in: syntax)
        let reply = try connection.request("job.submit", ["plan_path": .string(syntax)])
        assertError(reply, code: -32003, id: 1, "a YAML syntax error")
        let syntaxMessage = reply["error"]?["message"]?.stringValue ?? ""
        XCTAssertTrue(syntaxMessage.contains("\(syntax):\(syntaxLine):"), "names file and line \(syntaxLine): \(syntaxMessage)")
        XCTAssertTrue(syntaxMessage.contains("YAML syntax error"), syntaxMessage)
        assertServes(connection, "a YAML syntax error")

        let unknown = Locations.fixturePlans + "/unknown-model.yaml"
        let unknownLine = try lineNumber(of: "model: gpt", in: unknown)
        let reply2 = try connection.request("job.submit", ["plan_path": .string(unknown)])
        assertError(reply2, code: -32003, id: 3, "an unknown model")
        let unknownMessage = reply2["error"]?["message"]?.stringValue ?? ""
        XCTAssertTrue(unknownMessage.contains("\(unknown):\(unknownLine):"), "names file and line \(unknownLine): \(unknownMessage)")
        XCTAssertTrue(unknownMessage.contains("roles.critic.model"), "names the field: \(unknownMessage)")
        XCTAssertTrue(unknownMessage.contains("'gpt'"), unknownMessage)
        assertServes(connection, "an unknown model")

        // The CLI shows the same diagnostic as one line.
        let cli = try harness.cli("submit", unknown)
        XCTAssertEqual(cli.status, 1, "\(cli)")
        XCTAssertEqual(cli.stderrLines.count, 1, "\(cli)")
        XCTAssertTrue(cli.stderr.hasPrefix("agentd: ") && cli.stderr.contains("roles.critic.model"), "\(cli)")
        XCTAssertEqual(try harness.rpc("job.list")["jobs"]?.arrayValue?.count, 0, "no job was created")
    }

    /// A critic that never replies with JSON: each reply is recorded invalid and asked again, no
    /// attempt passes, and the job fails.
    func testInvalidVerdictIsNeverAPass() throws {
        try harness.start()
        let plan = try harness.preparePlan("invalid-critic.yaml")
        let result = try harness.cli("submit", plan, "--wait", "--json")
        XCTAssertEqual(result.status, 1, "\(result)")
        let job = try parseJSON(result.stdout)
        XCTAssertEqual(job["status"]?.stringValue, "failed", "\(job.encoded)")
        let events = try harness.events(try XCTUnwrap(job["id"]?.stringValue))
        let summary = dump(events)

        let critic = self.events(events, kind: "call.completed", role: "critic")
        XCTAssertEqual(critic.count, 4, "2 attempts x (1 + 1 re-ask):\n\(summary)")
        for c in critic {
            XCTAssertNotNil(c["payload"]?["invalid"]?.stringValue, "recorded invalid: \(c.encoded)")
            XCTAssertNil(c["payload"]?["verdict"], "no verdict: \(c.encoded)")
            XCTAssertEqual(c["payload"]?["reply"]?.stringValue, "not json", "the raw reply is kept")
        }
        let asks = self.events(events, kind: "call.started", role: "critic")
        XCTAssertEqual(asks.map { $0["payload"]?["reask"]?.intValue ?? -1 }, [0, 1, 0, 1], summary)
        XCTAssertEqual(asks.map { $0["attempt"]?.intValue ?? -1 }, [0, 0, 1, 1], summary)
        for reask in asks where reask["payload"]?["reask"]?.intValue == 1 {
            let messages = reask["payload"]?["request"]?["messages"]?.arrayValue ?? []
            XCTAssertTrue(
                messages.contains { $0["role"]?.stringValue == "assistant" && $0["content"]?.stringValue == "not json" },
                "the re-ask shows the model its bad reply: \(reask.encoded)")
        }
        XCTAssertEqual(self.events(events, kind: "step.exhausted").count, 1, summary)
        XCTAssertEqual(self.events(events, kind: "call.started", role: "verifier").count, 0, "never verified:\n\(summary)")
        XCTAssertEqual(self.events(events, kind: "call.started", role: "actor").count, 2, summary)
    }

    /// A command actor that hangs past its timeout: call.failed "timeout", the job goes on to its next
    /// attempt and fails, the process is killed, and the daemon answers throughout.
    func testHangingCommandTimesOut() throws {
        try harness.start()
        let plan = try harness.preparePlan("hanging-actor.yaml")
        let id = try submit(plan)
        try harness.waitForEvent(id, "actor call.started") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
        }
        XCTAssertNotNil(try harness.rpc("daemon.status", timeout: 2)["pid"], "the daemon answers while the call hangs")

        let job = try harness.waitForJob(id, timeout: 20)
        XCTAssertEqual(job["status"]?.stringValue, "failed", "\(job.encoded)")
        let reason = job["reason"]?.stringValue ?? ""
        XCTAssertTrue(reason.contains("step 1"), reason)
        XCTAssertTrue(reason.contains("timed out"), "the reason says the call timed out: \(reason)")

        let events = try harness.events(id)
        let summary = dump(events)
        let failed = self.events(events, kind: "call.failed", role: "actor")
        XCTAssertEqual(failed.count, 2, "both attempts time out:\n\(summary)")
        XCTAssertEqual(failed.map { $0["payload"]?["error"]?.stringValue ?? "?" }, ["timeout", "timeout"], summary)
        XCTAssertEqual(failed.map { $0["attempt"]?.intValue ?? -1 }, [0, 1])
        XCTAssertEqual(self.events(events, kind: "call.started", role: "critic").count, 0, "nothing to judge:\n\(summary)")
        XCTAssertTrue(waitUntil(timeout: 5) { ProcessTable.alive(containing: harness.marker).isEmpty }, "the hanging commands are killed")
        assertKilled(pidsIn: harness.dir + "/grandchildren", count: 2)
        XCTAssertNotNil(try harness.rpc("daemon.status")["pid"])
    }

    /// `policy.call_timeout` bounds every agent call, including a command model that sets no
    /// `timeout` of its own.
    func testPolicyCallTimeoutBoundsCommandCall() throws {
        try harness.start()
        let plan = try harness.preparePlan("policy-call-timeout.yaml")
        let result = try harness.cli(["submit", plan, "--wait", "--json"], timeout: 20)
        XCTAssertEqual(result.status, 1, "\(result)")
        let job = try parseJSON(result.stdout)
        XCTAssertEqual(job["status"]?.stringValue, "failed", "\(job.encoded)")
        let events = try harness.events(try XCTUnwrap(job["id"]?.stringValue))
        let failed = self.events(events, kind: "call.failed", role: "actor")
        XCTAssertEqual(failed.count, 1, dump(events))
        XCTAssertEqual(failed.first?["payload"]?["error"]?.stringValue, "timeout", "the call times out after 500ms: \(dump(failed))")
        // The record's own clock: the call ended no sooner than the 500 ms limit, and before the
        // command's 5 s were up (it was not waited for).
        let started = try XCTUnwrap(self.events(events, kind: "call.started", role: "actor").first?["at"]?.doubleValue, dump(events))
        let ended = try XCTUnwrap(failed.first?["at"]?.doubleValue)
        XCTAssertGreaterThanOrEqual(ended - started, 500, "the limit is not cut short: \(dump(events))")
        XCTAssertLessThan(ended - started, 5000, "the call ended before the command would have: \(dump(events))")
    }

    private func lineNumber(of text: String, in path: String) throws -> Int {
        let lines = try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
        return try XCTUnwrap(lines.firstIndex { $0.contains(text) }, "\(text) in \(path)") + 1
    }
}
