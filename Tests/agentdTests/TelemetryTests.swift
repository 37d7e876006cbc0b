import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// OpenTelemetry export of real jobs: `agentd audit export --otlp`, validated against the OTLP
/// protobuf JSON mapping by Python's `opentelemetry-proto`, and the daemon's live OTLP/HTTP export to a
/// tiny collector (`Tests/Fixtures/otlp_collector.py`).
final class TelemetryTests: EndToEndTestCase {
    /// The Python that has `opentelemetry-proto` (scripts/deps.sh installs it).
    static func otelPython() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let venv =
            env["AGENTD_OTEL_VENV"]
            ?? (env["XDG_CACHE_HOME"] ?? ((env["HOME"] ?? "/root") + "/.cache")) + "/agentd/py-otel"
        let python = venv + "/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw HarnessError("no opentelemetry-proto venv at \(venv): run scripts/deps.sh (or set AGENTD_OTEL_VENV)")
        }
        return python
    }

    /// Parses `file` with `json_format.Parse(text, ExportTraceServiceRequest())`; returns the spans.
    func validated(_ file: String, line: UInt = #line) throws -> [JSON] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.otelPython())
        process.arguments = [Locations.fixtures + "/otlp_check.py", file]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "otlp_check.py: \(errors)", line: line)
        let result = try JSON.parse(Array(data))
        XCTAssertEqual(result["resources"]?.arrayValue?.first?["service.name"]?.stringValue, "agentd", line: line)
        return result["spans"]?.arrayValue ?? []
    }

    private func named(_ spans: [JSON], _ prefix: String) -> [JSON] {
        spans.filter { $0["name"]?.stringValue?.hasPrefix(prefix) == true }
    }

    func testExportOfAJobWithToolsFollowsTheGenAIConventions() throws {
        try requireBubblewrap()
        try harness.start()
        let actor = """
            [{turn: 0, reply: {tool_calls: [{id: "w-1", name: write_file, arguments: {path: "a.txt", content: "hi\\n"}}]}}, \
            {turn: 1, reply: {tool_calls: [{id: "cat-1", name: run_command, arguments: {argv: [cat, a.txt]}}]}}, \
            {turn: 2, reply: {output: "done"}}]
            """
        let plan = try harness.preparePlan(
            "tools-scripted.yaml",
            values: ["ACTOR": actor, "TOOLS": "[run_command, write_file]", "SANDBOX": "true", "POLICY": "{max_attempts: 1}"])
        let id = try submit(plan)
        XCTAssertEqual(try harness.waitForJob(id, timeout: 60)["status"]?.stringValue, "succeeded")

        let file = harness.dir + "/trace.json"
        let result = try harness.cli(["audit", "export", id, "--otlp", file, "--db", harness.dbPath], socket: false)
        XCTAssertEqual(result.status, 0, "\(result)")
        let spans = try validated(file)

        let root = try XCTUnwrap(spans.first)
        XCTAssertEqual(root["name"]?.stringValue, "job tools-scripted")
        XCTAssertEqual(root["parent_span_id"]?.stringValue, "")
        XCTAssertEqual(root["attributes"]?["gen_ai.conversation.id"]?.stringValue, id)
        let trace = try XCTUnwrap(root["trace_id"]?.stringValue)
        XCTAssertEqual(trace.count, 32)
        XCTAssertTrue(spans.allSatisfy { $0["trace_id"]?.stringValue == trace })

        let agents = named(spans, "invoke_agent ")
        let chats = named(spans, "chat ")
        let tools = named(spans, "execute_tool ")
        // Actor turns 0, 1, 2, the critic and the verifier (fixed steps: no planner).
        XCTAssertEqual(agents.count, 5, "\(spans)")
        XCTAssertEqual(chats.count, 5)
        XCTAssertEqual(tools.map { $0["name"]?.stringValue }, ["execute_tool write_file", "execute_tool run_command"])
        XCTAssertEqual(
            Set(agents.compactMap { $0["name"]?.stringValue }), ["invoke_agent actor", "invoke_agent critic", "invoke_agent verifier"])
        let agentIDs = Set(agents.compactMap { $0["span_id"]?.stringValue })
        for agent in agents {
            XCTAssertEqual(agent["parent_span_id"]?.stringValue, root["span_id"]?.stringValue)
            let attributes = try XCTUnwrap(agent["attributes"])
            XCTAssertEqual(attributes["gen_ai.operation.name"]?.stringValue, "invoke_agent")
            XCTAssertEqual(attributes["gen_ai.provider.name"]?.stringValue, "scripted")
            XCTAssertEqual(attributes["gen_ai.conversation.id"]?.stringValue, id)
            XCTAssertNotNil(attributes["gen_ai.agent.name"]?.stringValue)
            XCTAssertEqual(attributes["gen_ai.request.model"]?.stringValue, "script")
        }
        for chat in chats {
            XCTAssertTrue(agentIDs.contains(chat["parent_span_id"]?.stringValue ?? ""), "a chat is under its agent call")
            XCTAssertEqual(chat["attributes"]?["gen_ai.operation.name"]?.stringValue, "chat")
            XCTAssertEqual(chat["name"]?.stringValue, "chat script")
            XCTAssertEqual(chat["kind"]?.intValue, 3, "SPAN_KIND_CLIENT")
        }
        for tool in tools {
            XCTAssertTrue(agentIDs.contains(tool["parent_span_id"]?.stringValue ?? ""), "a tool is under the agent call that asked for it")
            XCTAssertEqual(tool["attributes"]?["gen_ai.operation.name"]?.stringValue, "execute_tool")
            XCTAssertNotNil(tool["attributes"]?["gen_ai.tool.name"]?.stringValue)
            XCTAssertLessThanOrEqual(tool["start"]?.doubleValue ?? 0, tool["end"]?.doubleValue ?? -1)
        }
        XCTAssertEqual(tools.compactMap { $0["attributes"]?["gen_ai.tool.call.id"]?.stringValue }, ["w-1", "cat-1"])

        // Deterministic: exporting again gives the same bytes.
        let again = try harness.cli(["audit", "export", id, "--otlp", "-", "--db", harness.dbPath], socket: false)
        XCTAssertEqual(again.status, 0, "\(again)")
        XCTAssertEqual(again.stdout, try String(contentsOfFile: file, encoding: .utf8))

        let missing = try harness.cli(["audit", "export", "NOSUCHJOB", "--otlp", "-", "--db", harness.dbPath], socket: false)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("no job NOSUCHJOB"), "\(missing)")
    }

    func testTheDaemonSendsEachFinishedJobToTheCollector() throws {
        let received = harness.dir + "/otlp"
        let collector = try Collector(directory: harness.dir, received: received, arguments: ["--fail-first", "1"])
        defer { collector.stop() }
        harness.daemonEnvironment["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:\(collector.port)/"
        harness.daemonEnvironment["OTEL_EXPORTER_OTLP_HEADERS"] = "x-agentd-test=yes%21,authorization=Bearer t0k"
        try harness.start(extraArguments: ["--log-level", "debug"])
        let result = try harness.cli(["submit", Locations.shippedPlans + "/w1.yaml", "--wait", "--json"], timeout: 60)
        XCTAssertEqual(result.status, 0, "\(result)")
        let id = try XCTUnwrap(try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["id"]?.stringValue)

        // The first POST gets a 503 and is retried.
        let body = received + "/request-2.json"
        XCTAssertTrue(
            waitUntil(timeout: 15, interval: 0.05) { FileManager.default.fileExists(atPath: body) },
            "the collector received the job: \(collector.log())\n\(harness.daemonLog())")
        let headers = try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: received + "/request-2.headers.json"))))
        XCTAssertEqual(headers["content-type"]?.stringValue, "application/json")
        XCTAssertEqual(headers["x-agentd-test"]?.stringValue, "yes!")
        XCTAssertEqual(headers["authorization"]?.stringValue, "Bearer t0k")
        let spans = try validated(body)
        XCTAssertEqual(spans.first?["attributes"]?["gen_ai.conversation.id"]?.stringValue, id)
        XCTAssertEqual(named(spans, "invoke_agent ").count, 14, "W1 makes 14 calls")
        XCTAssertEqual(named(spans, "chat ").count, 14)

        // The same trace as the CLI exports.
        let file = harness.dir + "/cli.json"
        XCTAssertEqual(try harness.cli(["audit", "export", id, "--otlp", file, "--db", harness.dbPath], socket: false).status, 0)
        XCTAssertEqual(try validated(file).map { $0["span_id"]?.stringValue }, spans.map { $0["span_id"]?.stringValue })

        // A collector that is gone does not affect jobs.
        collector.stop()
        let second = try harness.cli(["submit", Locations.shippedPlans + "/w1.yaml", "--wait", "--json"], timeout: 60)
        XCTAssertEqual(second.status, 0, "\(second)")
        XCTAssertTrue(
            waitUntil(timeout: 15, interval: 0.1) { self.harness.daemonLog().contains("OTLP export failed") }, harness.daemonLog())
        XCTAssertNotNil(try harness.rpc("daemon.status")["pid"]?.intValue)
    }
}

/// `Tests/Fixtures/otlp_collector.py`: an OTLP/HTTP collector that writes what it receives to `received`.
final class Collector {
    private let server: FixtureServer

    var port: Int { server.port }

    init(directory: String, received: String, arguments: [String] = []) throws {
        server = try FixtureServer(
            script: "otlp_collector.py", arguments: ["--dir", received] + arguments, directory: directory, what: "the collector")
    }

    func stop() { server.stop() }

    func log() -> String { server.log() }
}
