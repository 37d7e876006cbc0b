import Foundation
import Store
import TestSupport
import XCTest

/// Plans on a real model: SmolLM2-135M-Instruct served by llama-cpp-python on loopback
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

    /// Submits `plan` on the local model and waits for it; checks what every job on a real model
    /// must record: each model call's request and raw reply and usage, a reason, a chain that verifies.
    private func runOnTheLocalModel(_ plan: String) throws -> (job: JSON, events: [JSON]) {
        let url = try localModelURL()
        harness.daemonEnvironment = ["OPENAI_BASE_URL": url, "OPENAI_MODEL": "smollm2", "OPENAI_API_KEY": ""]
        try harness.start()
        let result = try harness.cli(["submit", plan, "--goal", "write release notes for agentd 0.1", "--wait", "--json"], timeout: 900)
        let job = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "submit --wait --json")
        let id = try XCTUnwrap(job["id"]?.stringValue)
        XCTAssertTrue(["succeeded", "failed"].contains(job["status"]?.stringValue ?? ""), "the job ended: \(job.encoded)")
        XCTAssertFalse((job["reason"]?.stringValue ?? "").isEmpty, "the reason is recorded: \(job.encoded)")

        let events = try harness.events(id)
        assertContiguous(events)
        let models = self.events(events, kind: "call.completed").filter {
            $0["payload"]?["raw"]?["choices"] != nil || $0["role"]?.stringValue == "actor"
        }
        XCTAssertFalse(models.isEmpty, dump(events))
        for call in models {
            let payload = try XCTUnwrap(call["payload"])
            XCTAssertNotNil(payload["sent"]?["messages"], "the raw request is recorded: \(call.encoded)")
            XCTAssertEqual(payload["sent"]?["model"]?.stringValue, "smollm2", "the model named for the daemon is asked: \(call.encoded)")
            XCTAssertNotNil(payload["raw"]?["choices"], "the raw reply is recorded: \(call.encoded)")
            XCTAssertNotNil(payload["usage"]?["input_tokens"]?.intValue, "token usage is recorded: \(call.encoded)")
        }
        let shown = try parseJSON(try harness.cli("show", id, "--json").stdout, "show --json")
        XCTAssertGreaterThan(shown["usage"]?["total"]?["input_tokens"]?.intValue ?? 0, 0, shown.encoded)
        let verify = try harness.run(["audit", "verify", id, "--db", harness.dbPath])
        XCTAssertEqual(verify.status, 0, "the job's chain verifies: \(verify)")
        return (job, events)
    }

    /// The README demo: a model actor, a check of each step's stated rules as critic and verifier. A
    /// draft the check fails is rerun with the check's output as its feedback.
    func testTheDemoPlanRunsOnTheLocalModel() throws {
        let (job, events) = try runOnTheLocalModel(Locations.shippedPlans + "/demo-model.yaml")
        let verdicts = self.events(events, kind: "call.completed", role: "critic")
        XCTAssertFalse(verdicts.isEmpty, dump(events))
        for verdict in verdicts {
            let payload = verdict["payload"]!
            XCTAssertEqual(payload["raw"]?["argv"]?.arrayValue?.last?.stringValue, "plans/checks/text_rules.py", verdict.encoded)
            XCTAssertEqual(payload["verdict"]?["verdict"]?.stringValue, payload["raw"]?["exit_status"]?.intValue == 0 ? "pass" : "fail")
            XCTAssertEqual(payload["verdict"]?["feedback"]?.stringValue, payload["raw"]?["stdout"]?.stringValue, verdict.encoded)
            guard payload["verdict"]?["verdict"]?.stringValue == "fail" else { continue }
            // A failed draft is rerun (while attempts remain), told what the check printed.
            let (step, attempt) = (verdict["step"]?.intValue ?? -1, verdict["attempt"]?.intValue ?? -1)
            guard attempt + 1 < 3 else { continue }
            let rerun = try XCTUnwrap(
                self.events(events, kind: "call.started", role: "actor").first {
                    $0["step"]?.intValue == step && $0["attempt"]?.intValue == attempt + 1
                }, "a failed draft is rerun: \(dump(events))")
            let text = rerun["payload"]?["request"]?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
            let feedback = payload["verdict"]?["feedback"]?.stringValue ?? "?"
            XCTAssertTrue(text.contains("Critic feedback: " + feedback.trimmingCharacters(in: .newlines)), text)
        }
        // The verifier is the same check over every step's final output, and alone decides.
        if job["status"]?.stringValue == "succeeded" {
            let verifier = try XCTUnwrap(self.events(events, kind: "call.completed", role: "verifier").last?["payload"])
            XCTAssertEqual(verifier["raw"]?["exit_status"]?.intValue, 0, verifier.encoded)
        }
    }

    /// Every role a model: each reply that must fit a schema is asked for with it (in its strict
    /// form, each field described) and recorded parsed or invalid — never taken as it came, and never
    /// a verdict that contradicts itself or a reason that says nothing.
    func testEveryRoleAModelOnTheLocalModel() throws {
        let (_, events) = try runOnTheLocalModel(try harness.preparePlan("local-model-roles.yaml"))
        let completed = self.events(events, kind: "call.completed")
        for call in completed where call["role"]?.stringValue != "actor" {
            let payload = call["payload"]!
            XCTAssertEqual(payload["sent"]?["response_format"]?["type"]?.stringValue, "json_object", "\(call.encoded)")
            XCTAssertNotNil(payload["sent"]?["response_format"]?["schema"]?["properties"], "\(call.encoded)")
            let parsed: Bool
            switch call["role"]?.stringValue {
            case "planner": parsed = payload["steps"] != nil
            case "critic": parsed = payload["verdict"] != nil
            default: parsed = payload["verified"] != nil
            }
            XCTAssertTrue(parsed || payload["invalid"] != nil, "the reply is recorded parsed or invalid: \(call.encoded)")
            if let verdict = payload["verdict"], verdict["verdict"]?.stringValue == "pass" {
                XCTAssertGreaterThanOrEqual(verdict["score"]?.doubleValue ?? 0, 0.5, "no pass below policy.pass_score: \(call.encoded)")
            }
            if let reason = payload["reason"]?.stringValue {
                XCTAssertNotEqual(reason.trimmingCharacters(in: .whitespaces), "...", "\(call.encoded)")
            }
        }
        let critic = self.events(events, kind: "call.started", role: "critic")
        XCTAssertFalse(critic.isEmpty, "the critic was asked: \(dump(events))")
        let system = critic.first?["payload"]?["request"]?["messages"]?.arrayValue?.first?["content"]?.stringValue ?? ""
        XCTAssertTrue(system.contains("Answer with one JSON object with these fields:"), system)
        XCTAssertFalse(system.contains("\"...\""), "no example to copy: \(system)")
    }
}
