import Agents
import Foundation
import TestSupport
import XCTest

@testable import Orchestrator

/// How `agentd serve` combines the defaults, the configuration file, the environment and the
/// command line.
final class DaemonConfigurationTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory.remove()
        unsetenv("AGENTD_SOCKET")
    }

    private func write(_ text: String) throws -> String {
        let path = directory.path + "/agentd.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testTheCommandLineWinsOverTheFileWhichWinsOverTheDefaults() throws {
        let file = try write(
            """
            socket: s.sock
            database: d.db
            max_running: 3
            drain_seconds: 1m
            secret_env: [FROM_FILE]
            limits: {max_queued_jobs: 50, max_queued_jobs_per_client: 5}
            endpoints:
              http://a/v1: {max_concurrent: 2}
              http://b/v1: {max_concurrent: 3}
            """)
        var commandLine = ServeConfig()
        commandLine.maxRunning = 7
        commandLine.secretEnv = ["FROM_FLAG"]
        commandLine.endpoints = ["http://b/v1": EndpointLimits(maxConcurrent: 9)]
        let c = try Daemon.Configuration.resolve(file: file, commandLine: commandLine)
        XCTAssertEqual(c.socketPath, directory.path + "/s.sock", "relative to the file's directory")
        XCTAssertEqual(c.databasePath, directory.path + "/d.db")
        XCTAssertEqual(c.maxRunning, 7)
        XCTAssertEqual(c.drainSeconds, 60)
        XCTAssertEqual(c.maxQueuedJobs, 50)
        XCTAssertEqual(c.maxQueuedJobsPerClient, 5)
        XCTAssertEqual(c.limits.maxRequestsInFlight, 1024, "the default")
        XCTAssertEqual(c.limits.frameLimit, 1 << 20, "the default")
        XCTAssertEqual(c.secretEnv, ["FROM_FILE", "FROM_FLAG"], "secrets add up")
        XCTAssertEqual(c.endpoints["http://a/v1"]?.maxConcurrent, 2)
        XCTAssertEqual(c.endpoints["http://b/v1"]?.maxConcurrent, 9)
        XCTAssertEqual(c.file, file)
    }

    func testTheEnvironmentWinsOverTheFileForTheSocket() throws {
        let file = try write("socket: /from/file.sock\n")
        setenv("AGENTD_SOCKET", "/from/env.sock", 1)
        XCTAssertEqual(try Daemon.Configuration.resolve(file: file, commandLine: ServeConfig()).socketPath, "/from/env.sock")
        var commandLine = ServeConfig()
        commandLine.socket = "/from/flag.sock"
        XCTAssertEqual(try Daemon.Configuration.resolve(file: file, commandLine: commandLine).socketPath, "/from/flag.sock")
    }

    func testErrorsNameTheFileOrTheGroup() throws {
        let file = try write("max_running: 1\nlimits:\n  max_queued_jobs: lots\n")
        XCTAssertThrowsError(try Daemon.Configuration.resolve(file: file, commandLine: ServeConfig())) { error in
            XCTAssertEqual("\(error)", "\(file):3:20: limits.max_queued_jobs: expected an integer, found string 'lots'")
        }
        let grouped = try write("allow_group: no-such-group-here\n")
        XCTAssertThrowsError(try Daemon.Configuration.resolve(file: grouped, commandLine: ServeConfig())) { error in
            XCTAssertEqual("\(error)", "no such group 'no-such-group-here' (allow_group in \(grouped))")
        }
    }
}
