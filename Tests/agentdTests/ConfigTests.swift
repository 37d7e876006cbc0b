import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's configuration file (`serve --config`) and its reload on SIGHUP, with the built
/// binary and real signals: new limits take effect while a job keeps running, a broken file changes
/// nothing, and what needs a restart says so.
final class ConfigTests: EndToEndTestCase {
    private var configPath: String { harness.dir + "/agentd.yaml" }

    private func writeConfig(_ text: String) throws {
        // Written beside and renamed, as an editor or a deployment would: the daemon never reads half a file.
        try text.write(toFile: configPath + ".new", atomically: false, encoding: .utf8)
        XCTAssertEqual(rename(configPath + ".new", configPath), 0)
    }

    private func configStatus() throws -> JSON {
        try XCTUnwrap(try harness.rpc("daemon.status")["config"], "daemon.status has no config")
    }

    /// Sends SIGHUP and waits until the daemon reports the configuration generation `generation`.
    private func reload(expecting generation: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        harness.sendSignal(SIGHUP)
        let reloaded = try waitUntil(timeout: 15) { try configStatus()["generation"]?.intValue == generation }
        XCTAssertTrue(
            reloaded, "the daemon did not reach configuration generation \(generation):\n\(harness.daemonLog())", file: file, line: line)
    }

    /// Sends SIGHUP and waits until the daemon's log holds `text` (a reload that changes nothing
    /// visible in `daemon.status`).
    private func reload(loggingText text: String, file: StaticString = #filePath, line: UInt = #line) {
        harness.sendSignal(SIGHUP)
        let logged = waitUntil(timeout: 15) { harness.daemonLog().contains(text) }
        XCTAssertTrue(logged, "the log does not say '\(text)':\n\(harness.daemonLog())", file: file, line: line)
    }

    /// A `job.submit` of the W1 plan on a fresh connection: the whole reply, result or error.
    private func submitW1() throws -> JSON {
        try harness.connect().request("job.submit", ["plan_path": .string(Locations.shippedPlans + "/w1.yaml"), "goal": "queued"])
    }

    private func assertRefused(
        _ reply: JSON, limit: String, max: Int, queued: Int, file: StaticString = #filePath, line: UInt = #line
    ) {
        let error = reply["error"]
        XCTAssertEqual(error?["code"]?.intValue, -32009, reply.encoded, file: file, line: line)
        XCTAssertEqual(error?["data"]?["limit"]?.stringValue, limit, reply.encoded, file: file, line: line)
        XCTAssertEqual(error?["data"]?["max"]?.intValue, max, reply.encoded, file: file, line: line)
        XCTAssertEqual(error?["data"]?["queued"]?.intValue, queued, reply.encoded, file: file, line: line)
        let message = error?["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("the limit is \(max) (\(limit))"), message, file: file, line: line)
    }

    func testSIGHUPAppliesNewLimitsWhileAJobRunsAndKeepsThemWhenTheFileIsBroken() throws {
        try writeConfig(
            """
            # one job at a time; two may wait per client
            max_running: 1
            limits:
              max_queued_jobs_per_client: 2
            """)
        try harness.start(extraArguments: ["--config", configPath])
        var config = try configStatus()
        XCTAssertEqual(config["file"]?.stringValue, configPath)
        XCTAssertEqual(config["generation"]?.intValue, 1)
        XCTAssertEqual(config["max_running"]?.intValue, 1)
        XCTAssertEqual(config["limits"]?["max_queued_jobs_per_client"]?.intValue, 2)

        // A job that runs until the test opens its gate, and two that wait behind it.
        let running = try submit(try harness.preparePlan("live-watch.yaml"))
        try harness.waitForEvent(running, "the gated actor call") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
        }
        var queued = [try submit(Locations.shippedPlans + "/w1.yaml"), try submit(Locations.shippedPlans + "/w1.yaml")]
        assertRefused(try submitW1(), limit: "max_queued_jobs_per_client", max: 2, queued: 2)

        // Raised to 3: one more is admitted, the next refused — while the first job keeps running.
        try writeConfig("max_running: 1\nlimits:\n  max_queued_jobs_per_client: 3\n")
        try reload(expecting: 2)
        config = try configStatus()
        XCTAssertEqual(config["limits"]?["max_queued_jobs_per_client"]?.intValue, 3)
        XCTAssertGreaterThan(config["loaded_at"]?.doubleValue ?? 0, 0)
        let admitted = try submitW1()
        XCTAssertNil(admitted["error"], admitted.encoded)
        queued.append(try XCTUnwrap(admitted["result"]?["id"]?.stringValue))
        assertRefused(try submitW1(), limit: "max_queued_jobs_per_client", max: 3, queued: 3)
        XCTAssertTrue(harness.daemonLog().contains("max_queued_jobs_per_client: 2 -> 3"), harness.daemonLog())

        // A broken file: the error names the file, line, column and field, and generation 2 stays.
        try writeConfig("max_running: 1\nlimits:\n  max_queued_jobs_per_client: 30\n  max_queue: 5\n")
        reload(loggingText: "\(configPath):4:3: limits.max_queue: unknown key 'max_queue' in the limits")
        XCTAssertTrue(harness.daemonLog().contains("configuration not reloaded"), harness.daemonLog())
        XCTAssertEqual(try configStatus()["generation"]?.intValue, 2)
        assertRefused(try submitW1(), limit: "max_queued_jobs_per_client", max: 3, queued: 3)

        // What cannot change live is reported, and keeps its running value.
        try writeConfig("max_running: 1\nallow_group: root\nlimits:\n  max_queued_jobs_per_client: 3\n")
        try reload(expecting: 3)
        XCTAssertTrue(harness.daemonLog().contains("allow_group changed in the configuration: needs a restart"), harness.daemonLog())
        XCTAssertEqual(try configStatus()["allow_group"], .null)

        // The job that ran through every reload finishes normally, without being restarted.
        _ = FileManager.default.createFile(atPath: harness.dir + "/gate", contents: nil)
        let job = try harness.waitForJob(running)
        let events = try harness.events(running)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        XCTAssertTrue(self.events(events, kind: "job.resumed").isEmpty, dump(events))
        XCTAssertTrue(self.events(events, kind: "call.restarted").isEmpty, dump(events))
        XCTAssertEqual(self.events(events, kind: "call.started", role: "actor").count, 2, "one call per step:\n\(dump(events))")
        for id in queued {
            XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        }
    }

    /// A raised `max_running` starts queued jobs at once, without waiting for the running one.
    func testSIGHUPRaisingMaxRunningStartsQueuedJobs() throws {
        try writeConfig("max_running: 1\n")
        try harness.start(extraArguments: ["--config", configPath])
        let plan = try harness.preparePlan("live-watch.yaml")
        let first = try submit(plan)
        let second = try submit(plan)
        try harness.waitForEvent(first, "the first job's actor call") { $0["kind"]?.stringValue == "call.started" }
        XCTAssertEqual(try harness.rpc("daemon.status")["queued"]?.intValue, 1, "the second job waits")
        try writeConfig("max_running: 2\n")
        try reload(expecting: 2)
        try harness.waitForEvent(second, "the second job's actor call, while the first still runs") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
        }
        XCTAssertEqual(try harness.rpc("daemon.status")["running"]?.intValue, 2)
        _ = FileManager.default.createFile(atPath: harness.dir + "/gate", contents: nil)
        XCTAssertEqual(try harness.waitForJob(first)["status"]?.stringValue, "succeeded")
        XCTAssertEqual(try harness.waitForJob(second)["status"]?.stringValue, "succeeded")
    }

    /// The command line wins over the file; the file over the defaults.
    func testCommandLineOptionsWinOverTheFile() throws {
        try writeConfig("max_running: 3\ndrain_seconds: 7s\nlimits: {max_queued_jobs: 50, max_queued_jobs_per_client: 40}\n")
        try harness.start(extraArguments: ["--config", configPath, "--max-running", "5"])
        let config = try configStatus()
        XCTAssertEqual(config["max_running"]?.intValue, 5, "the option wins")
        XCTAssertEqual(config["drain_seconds"]?.doubleValue, 2, "the harness's --drain-seconds 2 wins")
        XCTAssertEqual(config["limits"]?["max_queued_jobs"]?.intValue, 50, "the file's value")
        XCTAssertEqual(config["limits"]?["max_queued_jobs_per_client"]?.intValue, 40)
        XCTAssertEqual(config["limits"]?["max_requests_in_flight_per_connection"]?.intValue, 1024, "the default")
        let status = try harness.cli("status")
        XCTAssertTrue(status.stdout.contains("config: \(configPath) (generation 1, loaded "), status.stdout)
        XCTAssertTrue(status.stdout.contains("limits: max running 5, queued 50 (per client 40)"), status.stdout)
    }

    /// An invalid file at start: the daemon does not start, and says where the problem is.
    func testAnInvalidFileStopsTheStartWithItsLocation() throws {
        try writeConfig("max_running: 2\nendpoints:\n  \"http://127.0.0.1:9/v1\":\n    max_concurrent: many\n")
        let result = try harness.run(["serve", "--socket", harness.socketPath, "--db", harness.dbPath, "--config", configPath])
        XCTAssertEqual(result.status, 2, "\(result)")
        XCTAssertEqual(
            result.stderr,
            "agentd: \(configPath):4:21: endpoints.http://127.0.0.1:9/v1.max_concurrent: expected an integer, found string 'many'\n")
        let missing = try harness.run([
            "serve", "--socket", harness.socketPath, "--db", harness.dbPath, "--config", harness.dir + "/none.yaml",
        ])
        XCTAssertEqual(missing.status, 2, "\(missing)")
        XCTAssertTrue(missing.stderr.contains("none.yaml: cannot read the configuration file: No such file or directory"), missing.stderr)
    }

    /// A daemon started without a file says so on SIGHUP and goes on.
    func testSIGHUPWithoutAFileChangesNothing() throws {
        try harness.start()
        reload(loggingText: "there is no configuration file to reload")
        XCTAssertEqual(try configStatus()["generation"]?.intValue, 1)
        XCTAssertEqual(try configStatus()["file"], .null)
    }

    /// `endpoints:` in the file overrides a plan's budget for that endpoint, and a reload applies a
    /// new one: here two requests per one-second window instead of the plan's thousand per minute.
    func testAnEndpointBudgetFromTheFileOverridesThePlans() throws {
        let server = try FakeModelServer(directory: harness.dir)
        try writeConfig("max_running: 4\n")
        try harness.start(extraArguments: ["--config", configPath])
        try writeConfig(
            """
            max_running: 4
            endpoints:
              "\(server.baseURL)/":
                requests_per_minute: 2
                rate_window: 1s
            """)
        try reload(expecting: 2)
        XCTAssertEqual(
            try configStatus()["endpoints"]?[server.baseURL]?["requests_per_minute"]?.intValue, 2,
            "the key is the base URL without its trailing slash")
        let plan = try server.preparePlan(in: harness, model: "ok:configured", modelKeys: "requests_per_minute: 1000")
        let result = try harness.cli(["submit", plan, "--goal", "budgeted", "--wait", "--json"], timeout: 60)
        XCTAssertEqual(result.status, 0, "\(result)")
        let arrivals = try XCTUnwrap(server.stats()["arrivals"]?["ok:configured"]?.arrayValue?.compactMap(\.doubleValue))
        XCTAssertGreaterThan(arrivals.count, 2, "more requests than one window allows")
        for i in 2..<arrivals.count {
            // Any three consecutive requests are spread over about the window (a request reaches the
            // server some time after its admission, more on a loaded machine, hence half of it);
            // without the budget they would arrive milliseconds apart.
            XCTAssertGreaterThanOrEqual(arrivals[i] - arrivals[i - 2], 0.5, "requests \(i - 2)...\(i) within one window: \(arrivals)")
        }
    }
}
