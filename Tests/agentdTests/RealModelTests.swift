import Foundation
import Store
import TestSupport
import XCTest

/// The README demo plan on a real model: SmolLM2-135M-Instruct served by llama.cpp on loopback
/// (`scripts/model.sh`). It asserts the wiring and the record — each call's request and raw reply,
/// token usage, verdicts recorded as verdicts or as invalid replies, a chain that verifies — never
/// the quality of the answers. Skipped when the model is not installed, unless `AGENTD_TEST_REQUIRE`
/// names `model` (CI's `.ci/run` sets the model up and does): then a missing model fails the test.
/// `scripts/test-model.sh` installs and starts it, then runs these tests.
final class RealModelTests: EndToEndTestCase {
    private func localModelURL() throws -> String {
        let script = Locations.repoRoot + "/scripts/model.sh"
        let status = try runScript([script, "status"], timeout: 30)
        guard status.output.contains("installed: yes") else {
            throw Capability.model.missing("the local model is not installed: run scripts/model.sh setup (or scripts/test-model.sh)")
        }
        let started = try runScript([script, "start"], timeout: 600)
        guard started.status == 0, let url = started.stdout.split(separator: "\n").last.map(String.init), url.hasPrefix("http") else {
            throw HarnessError("scripts/model.sh start failed: \(started)")
        }
        return url
    }

    /// Runs a script with its output in files (a server it starts in the background may keep pipes open).
    private func runScript(_ argv: [String], timeout: Double) throws -> (status: Int32, stdout: String, output: String) {
        let out = harness.dir + "/script-\(UUID().uuidString.prefix(8))"
        _ = FileManager.default.createFile(atPath: out + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: out + ".err", contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = argv
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out + ".out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: out + ".err"))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        guard waitUntil(timeout: timeout, interval: 0.05, { !process.isRunning }) else {
            process.terminate()
            throw HarnessError("\(argv.joined(separator: " ")) did not finish within \(timeout)s")
        }
        let stdout = (try? String(contentsOfFile: out + ".out", encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: out + ".err", encoding: .utf8)) ?? ""
        return (process.terminationStatus, stdout, stdout + stderr)
    }

    func testTheDemoPlanRunsOnTheLocalModel() throws {
        let url = try localModelURL()
        harness.daemonEnvironment = ["OPENAI_BASE_URL": url, "OPENAI_MODEL": "smollm2", "OPENAI_API_KEY": ""]
        try harness.start()
        let plan = Locations.shippedPlans + "/demo-model.yaml"
        let result = try harness.cli(["submit", plan, "--goal", "write release notes for agentd 0.1", "--wait", "--json"], timeout: 900)
        let job = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "submit --wait --json")
        let id = try XCTUnwrap(job["id"]?.stringValue)
        let status = job["status"]?.stringValue ?? ""
        XCTAssertTrue(["succeeded", "failed"].contains(status), "the job ended: \(job.encoded)")
        XCTAssertFalse((job["reason"]?.stringValue ?? "").isEmpty, "the reason is recorded: \(job.encoded)")

        let events = try harness.events(id)
        assertContiguous(events)
        let completed = self.events(events, kind: "call.completed")
        XCTAssertFalse(completed.isEmpty, dump(events))
        for call in completed {
            let payload = try XCTUnwrap(call["payload"])
            XCTAssertNotNil(payload["sent"]?["messages"], "the raw request is recorded: \(call.encoded)")
            XCTAssertEqual(payload["sent"]?["model"]?.stringValue, "smollm2", "the model named for the daemon is asked: \(call.encoded)")
            XCTAssertNotNil(payload["raw"]?["choices"], "the raw reply is recorded: \(call.encoded)")
            XCTAssertNotNil(payload["usage"]?["input_tokens"]?.intValue, "token usage is recorded: \(call.encoded)")
        }
        // Every reply that must fit a schema was asked for with it, and is recorded either parsed or
        // as invalid (and asked again) — never taken as it came. Whether the model answered well is
        // not this test's business.
        for call in completed where call["role"]?.stringValue != "actor" {
            let payload = call["payload"]!
            XCTAssertEqual(payload["sent"]?["response_format"]?["type"]?.stringValue, "json_object", "\(call.encoded)")
            XCTAssertNotNil(payload["sent"]?["response_format"]?["schema"], "\(call.encoded)")
            let parsed: Bool
            switch call["role"]?.stringValue {
            case "planner": parsed = payload["steps"] != nil
            case "critic": parsed = payload["verdict"] != nil
            default: parsed = payload["verdict"] != nil || payload["verified"] != nil
            }
            XCTAssertTrue(parsed || payload["invalid"] != nil, "the reply is recorded parsed or invalid: \(call.encoded)")
        }
        let critic = completed.filter { $0["role"]?.stringValue == "critic" }
        XCTAssertFalse(critic.isEmpty, "the critic's verdicts are recorded: \(dump(events))")
        let shown = try parseJSON(try harness.cli("show", id, "--json").stdout, "show --json")
        XCTAssertGreaterThan(shown["usage"]?["total"]?["input_tokens"]?.intValue ?? 0, 0, shown.encoded)
        let verify = try harness.run(["audit", "verify", id, "--db", harness.dbPath])
        XCTAssertEqual(verify.status, 0, "the job's chain verifies: \(verify)")
    }
}
