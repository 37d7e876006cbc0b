import Agents
import Foundation
import Orchestrator
import XCTest

/// The daemon's configuration file: every key, and the strict errors (file, line, column, field)
/// the YAML reader gives for anything else.
final class ServeConfigTests: XCTestCase {
    static let everything = """
        # agentd serve --config
        socket: run/agentd.sock
        database: /var/lib/agentd/agentd.db
        max_running: 64
        drain_seconds: 30s
        max_frame_bytes: 2097152
        max_connections: 256
        allow_group: agents
        secret_env: [GITHUB_TOKEN, DEPLOY_KEY]
        limits:
          max_queued_jobs: 5000
          max_queued_jobs_per_client: 500
          max_requests_in_flight_per_connection: 128
        endpoints:
          "http://127.0.0.1:8080/v1/":
            max_concurrent: 4
            requests_per_minute: 600
            tokens_per_minute: 200000
            rate_window: 30s
          https://api.openai.com/v1:
            max_concurrent: 32

        """

    func testEveryKey() throws {
        let config = try ServeConfig.parse(yaml: Self.everything, file: "agentd.yaml", baseDirectory: "/etc/agentd")
        var expected = ServeConfig()
        expected.socket = "/etc/agentd/run/agentd.sock"
        expected.database = "/var/lib/agentd/agentd.db"
        expected.maxRunning = 64
        expected.drainSeconds = 30
        expected.maxFrameBytes = 2_097_152
        expected.maxConnections = 256
        expected.allowGroup = "agents"
        expected.secretEnv = ["GITHUB_TOKEN", "DEPLOY_KEY"]
        expected.maxQueuedJobs = 5000
        expected.maxQueuedJobsPerClient = 500
        expected.maxRequestsInFlightPerConnection = 128
        expected.endpoints = [
            "http://127.0.0.1:8080/v1": EndpointLimits(
                maxConcurrent: 4, requestsPerMinute: 600, tokensPerMinute: 200_000, rateWindowSeconds: 30),
            "https://api.openai.com/v1": EndpointLimits(maxConcurrent: 32),
        ]
        XCTAssertEqual(config, expected)
    }

    func testAnEmptyFileSetsNothing() throws {
        XCTAssertEqual(try ServeConfig.parse(yaml: "", file: "a.yaml", baseDirectory: nil), ServeConfig())
        XCTAssertEqual(try ServeConfig.parse(yaml: "# nothing yet\n", file: "a.yaml", baseDirectory: nil), ServeConfig())
    }

    func testTheShippedExampleLoads() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/agentd.example.yaml").path
        let config = try ServeConfig.load(path: path)
        XCTAssertNotNil(config.maxRunning)
        XCTAssertNotNil(config.maxQueuedJobsPerClient)
        XCTAssertFalse(config.endpoints.isEmpty)
    }

    private func assertError(
        _ yaml: String, field: String, line expectedLine: Int, column: Int, contains text: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let config = try ServeConfig.parse(yaml: yaml, file: "agentd.yaml", baseDirectory: nil)
            XCTFail("expected an error, got \(config)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.file, "agentd.yaml", file: file, line: line)
            XCTAssertEqual(error.field, field, "\(error)", file: file, line: line)
            XCTAssertEqual(error.line, expectedLine, "\(error)", file: file, line: line)
            XCTAssertEqual(error.column, column, "\(error)", file: file, line: line)
            XCTAssertTrue(error.message.contains(text), "'\(error.message)' does not contain '\(text)'", file: file, line: line)
        }
    }

    func testUnknownKeysAreErrors() {
        assertError("max_running: 2\nmax_runing: 3\n", field: "max_runing", line: 2, column: 1, contains: "unknown key 'max_runing'")
        assertError(
            "limits:\n  max_queued: 5\n", field: "limits.max_queued", line: 2, column: 3,
            contains: "unknown key 'max_queued' in the limits (allowed: max_queued_jobs, max_queued_jobs_per_client")
        assertError(
            "endpoints:\n  http://h/v1:\n    max_concurrency: 2\n", field: "endpoints.http://h/v1.max_concurrency", line: 3, column: 5,
            contains: "allowed: max_concurrent, requests_per_minute, tokens_per_minute, rate_window")
    }

    func testWrongTypesAndRangesAreErrors() {
        assertError("max_running: ten\n", field: "max_running", line: 1, column: 14, contains: "expected an integer, found string 'ten'")
        assertError("max_running: 0\n", field: "max_running", line: 1, column: 14, contains: "must be between 1 and 100000")
        assertError("max_frame_bytes: 100\n", field: "max_frame_bytes", line: 1, column: 18, contains: "must be between 1024 and")
        assertError("drain_seconds: soon\n", field: "drain_seconds", line: 1, column: 16, contains: "expected a duration")
        assertError("allow_group: 12\n", field: "allow_group", line: 1, column: 14, contains: "expected a string, found integer 12")
        assertError(
            "secret_env: TOKEN\n", field: "secret_env", line: 1, column: 13, contains: "expected a list of environment variable names")
        assertError(
            "secret_env: [A-B]\n", field: "secret_env[0]", line: 1, column: 14, contains: "expected the NAME of an environment variable")
        assertError("limits: 5\n", field: "limits", line: 1, column: 9, contains: "expected the limits (a mapping)")
        assertError(
            "limits:\n  max_queued_jobs_per_client: -1\n", field: "limits.max_queued_jobs_per_client", line: 2, column: 31,
            contains: "must be between 1 and")
        assertError("[1, 2]\n", field: "", line: 1, column: 1, contains: "expected the daemon's configuration (a mapping)")
    }

    func testEndpointsAreBaseURLs() {
        assertError(
            "endpoints:\n  localhost:8080:\n    max_concurrent: 2\n", field: "endpoints.localhost:8080", line: 2, column: 3,
            contains: "expected a base URL (http:// or https://)")
        assertError(
            "endpoints:\n  http://h/v1: {max_concurrent: 2}\n  http://h/v1/: {max_concurrent: 3}\n", field: "endpoints.http://h/v1/",
            line: 3, column: 3, contains: "the endpoint http://h/v1 is listed twice")
        assertError(
            "endpoints:\n  http://h/v1: {tokens_per_minute: 0}\n", field: "endpoints.http://h/v1.tokens_per_minute", line: 2, column: 36,
            contains: "must be between 1 and")
    }

    func testSyntaxErrorsNameTheLine() {
        assertError("max_running: 2\nlimits: [\n", field: "", line: 3, column: 1, contains: "YAML syntax error")
    }

    func testAnUnreadableFileIsNamed() {
        XCTAssertThrowsError(try ServeConfig.load(path: "/nonexistent/agentd.yaml")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/agentd.yaml: cannot read the configuration file: No such file or directory")
        }
    }
}
