import Foundation
import Store
import TestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Base class: every test gets its own harness (temporary directory, socket, database), and every
/// process it started is killed and the directory removed afterwards, whatever happened.
class EndToEndTestCase: XCTestCase {
    private var _harness: DaemonHarness?

    var harness: DaemonHarness {
        guard let _harness else { fatalError("setUp did not create the harness") }
        return _harness
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        continueAfterFailure = false
        _harness = try DaemonHarness()
    }

    override func tearDown() {
        if let harness = _harness {
            if let run = testRun, run.failureCount + run.unexpectedExceptionCount > 0 {
                print("daemon logs of the failed test \(name):\n\(harness.daemonLog())")
            }
            harness.cleanUp()
        }
        _harness = nil
        super.tearDown()
    }

    // MARK: Helpers

    /// Whether `bwrap` (from `PATH`) can start a sandbox here, checked once per test process.
    private static let bubblewrapProblem: String? = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "bwrap", "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "true",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return "bubblewrap cannot be started: \(error)"
        }
        process.waitUntilExit()
        return process.terminationStatus == 0
            ? nil : "bubblewrap cannot create a sandbox on this machine (`bwrap … true` exited \(process.terminationStatus))"
    }()

    /// Skips the test when bubblewrap cannot run here at all: every sandboxed `run_command` would be
    /// refused (a failure where `AGENTD_TEST_REQUIRE` lists `bwrap`; scripts/deps.sh installs it).
    func requireBubblewrap() throws {
        if let problem = Self.bubblewrapProblem { throw Capability.bwrap.missing(problem) }
    }

    /// Asserts that the processes a fixture command started and wrote the pids of (one a line, in
    /// `pidFile`: children that carry no marker in their argv) are dead, or die within `timeout`
    /// seconds; `count` of them when given, and at least one, so that the check cannot pass by
    /// finding nothing to look at.
    func assertKilled(
        pidsIn pidFile: String, count: Int? = nil, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line
    ) {
        let text = (try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? ""
        let pids = text.split(separator: "\n").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
        XCTAssertFalse(pids.isEmpty, "the command recorded the pids of its children in \(pidFile): '\(text)'", file: file, line: line)
        if let count { XCTAssertEqual(pids.count, count, "children recorded: \(pids)", file: file, line: line) }
        var survivors: [ProcessTable.Entry] = []
        let dead = waitUntil(timeout: timeout) {
            survivors = pids.compactMap { ProcessTable.entry($0) }.filter(\.isAlive)
            return survivors.isEmpty
        }
        XCTAssertTrue(
            dead, "the command's children outlived it: \(survivors.map { "\($0.pid) \($0.commandLine)" })", file: file, line: line)
    }

    /// A directory outside /tmp (which the sandbox replaces with an empty tmpfs), writable by everyone
    /// (the sandbox's `nobody` too), so that only the sandbox stops a command writing there; removed
    /// after the test.
    func outsideDirectory() throws -> String {
        var template = Array("/var/tmp/agentd-e2e-out-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw HarnessError("mkdtemp in /var/tmp failed: \(String(cString: strerror(errno)))")
        }
        let path = String(cString: made)
        chmod(path, 0o777)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Parses one line of output as JSON, failing the test with the line if it does not parse.
    func parseJSON(_ text: String, _ what: String = "output", file: StaticString = #filePath, line: UInt = #line) throws -> JSON {
        do {
            return try JSON.parse(text)
        } catch {
            XCTFail("\(what) is not JSON (\(error)): \(text)", file: file, line: line)
            throw error
        }
    }

    /// Submits `plan` with the CLI (`submit PLAN --json`, no waiting) and returns the job id.
    func submit(_ plan: String, _ extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try harness.cli(["submit", plan, "--json"] + extra)
        XCTAssertEqual(result.status, 0, "submit failed: \(result)", file: file, line: line)
        let job = try parseJSON(
            result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "submit --json output", file: file, line: line)
        return try XCTUnwrap(job["id"]?.stringValue, "submit --json printed no id: \(result)", file: file, line: line)
    }

    /// The events of `kind` among `events`.
    func events(_ events: [JSON], kind: String, role: String? = nil) -> [JSON] {
        events.filter { $0["kind"]?.stringValue == kind && (role == nil || $0["role"]?.stringValue == role) }
    }

    /// A readable dump of a transcript for failure messages.
    func dump(_ events: [JSON]) -> String {
        events.map { e in
            "\(e["seq"]?.intValue ?? -1) \(e["kind"]?.stringValue ?? "?") role=\(e["role"]?.stringValue ?? "-") step=\(e["step"]?.intValue.map(String.init) ?? "-") attempt=\(e["attempt"]?.intValue.map(String.init) ?? "-") call=\(e["call"]?.stringValue ?? "-") \(String((e["payload"]?.encoded ?? "").prefix(200)))"
        }.joined(separator: "\n")
    }

    /// Asserts that `events` are numbered 1, 2, 3... without gaps, the way a full transcript must be.
    func assertContiguous(_ events: [JSON], from first: Int = 1, file: StaticString = #filePath, line: UInt = #line) {
        let seqs = events.compactMap { $0["seq"]?.intValue }
        XCTAssertEqual(seqs.count, events.count, "every event has a seq", file: file, line: line)
        XCTAssertEqual(seqs, Array(first..<(first + seqs.count)), "seq numbers run without gaps from \(first)", file: file, line: line)
    }

    /// Waits until the daemon reports its storage degraded with the held job stopped (nothing
    /// running), asserts it takes no jobs and one job waits to resume, and returns the status.
    func waitUntilDegraded(file: StaticString = #filePath, line: UInt = #line) -> JSON {
        var status = JSON.null
        let degraded = waitUntil(timeout: 30, interval: 0.05) {
            status = (try? harness.rpc("daemon.status")) ?? .null
            return status["storage"]?["state"]?.stringValue == "degraded" && status["running"]?.intValue == 0
        }
        XCTAssertTrue(degraded, "the held job's next write fails and the daemon is degraded: \(status.encoded)", file: file, line: line)
        XCTAssertEqual(status["accepting"]?.boolValue, false, file: file, line: line)
        XCTAssertEqual(status["storage"]?["stopped_jobs"]?.intValue, 1, status.encoded, file: file, line: line)
        return status
    }
}
