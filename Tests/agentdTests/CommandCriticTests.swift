import Foundation
import Store
import XCTest

/// A command critic: its exit status is the verdict, its output the feedback the rerun reads, and it
/// reads the output it judges from `$AGENTD_STEP_OUTPUT`; a command verifier reads every step's
/// output from `$AGENTD_STEP_OUTPUTS`. Through the built daemon, in the real sandbox and outside it.
final class CommandCriticTests: EndToEndTestCase {
    /// Passes an output holding "banana"; otherwise fails, saying so on stderr. It reports what it was
    /// told on stdout and, in the sandbox, whether it could change the file it was given.
    private static func critic(sandboxed: Bool) -> String {
        let tamper = #"(echo tampered > "$AGENTD_STEP_OUTPUT") 2>/dev/null && echo "the file was writable""#
        return """
            echo "step $AGENTD_STEP_INDEX attempt $AGENTD_ATTEMPT: $AGENTD_STEP"
            echo "file $AGENTD_STEP_OUTPUT"
            \(sandboxed ? tamper : "")
            if grep -q banana "$AGENTD_STEP_OUTPUT"; then echo "found banana in: $(cat "$AGENTD_STEP_OUTPUT")"
            else echo "MISSING banana in: $(cat "$AGENTD_STEP_OUTPUT")" >&2; exit 1; fi
            """
    }

    /// Prints the file of every step's output.
    private static let verifier = #"cat "$AGENTD_STEP_OUTPUTS""#

    private func run(sandboxed: Bool = true) throws -> (id: String, job: JSON, events: [JSON]) {
        let settings = sandboxed ? "" : ", sandbox: false"
        try harness.start()
        let plan = try harness.preparePlan(
            "command-critic.yaml",
            values: [
                "CRITIC": "{command: [sh, -c, \(JSON.string(Self.critic(sandboxed: sandboxed)).encoded)]\(settings)}",
                "VERIFIER": "{command: [sh, -c, \(JSON.string(Self.verifier).encoded)]\(settings)}",
            ])
        let id = try submit(plan)
        return (id, try harness.waitForJob(id, timeout: 120), try harness.events(id))
    }

    /// The job of `run`, checked: the first draft of each step failed with the command's output as
    /// feedback, the rerun's request carries it, the rerun passed, and the verifier read both outputs.
    private func checkJob(_ job: JSON, _ events: [JSON], sandboxed: Bool) throws {
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)\n\(summary)")
        let steps = ["write a sentence with the word banana", "write another one"]
        let verdicts = self.events(events, kind: "call.completed", role: "critic")
        XCTAssertEqual(verdicts.count, 4, "two attempts per step: \(summary)")
        for (index, step) in steps.enumerated() {
            let judged = verdicts.filter { $0["step"]?.intValue == index }
            let (first, second) = (try XCTUnwrap(judged.first?["payload"]), try XCTUnwrap(judged.last?["payload"]))
            let draft = "a first draft of step \(index)"
            // The first draft: a fail, score 0, the command's output as the feedback.
            XCTAssertEqual(first["verdict"]?["verdict"]?.stringValue, "fail", first.encoded)
            XCTAssertEqual(first["verdict"]?["score"]?.doubleValue, 0, first.encoded)
            let feedback = try XCTUnwrap(first["verdict"]?["feedback"]?.stringValue, first.encoded)
            XCTAssertTrue(feedback.hasPrefix("step \(index + 1) attempt 1: \(step)\nfile "), feedback)
            XCTAssertTrue(feedback.hasSuffix("MISSING banana in: \(draft)\n"), feedback)
            XCTAssertFalse(feedback.contains("writable"), "the file is read-only to the command: \(feedback)")
            let raw = try XCTUnwrap(first["raw"], first.encoded)
            XCTAssertEqual(raw["argv"]?.arrayValue?.first?.stringValue, "sh", raw.encoded)
            XCTAssertEqual(raw["exit_status"]?.intValue, 1, raw.encoded)
            XCTAssertEqual(raw["sandbox"]?.boolValue, sandboxed, raw.encoded)
            XCTAssertEqual(raw["stderr"]?.stringValue, "MISSING banana in: \(draft)\n", raw.encoded)
            // The critic's recorded request holds the output it judged.
            let started = self.events(events, kind: "call.started", role: "critic").filter { $0["step"]?.intValue == index }
            let messages = started.first?["payload"]?["request"]?["messages"]?.arrayValue ?? []
            XCTAssertEqual(messages.map { $0["content"]?.stringValue ?? "" }.dropFirst(), [step, draft], summary)
            // The rerun's request carries that feedback, and the rerun passes.
            let rerun = self.events(events, kind: "call.started", role: "actor").filter {
                $0["step"]?.intValue == index && $0["attempt"]?.intValue == 1
            }
            let rerunText = rerun.first?["payload"]?["request"]?.encoded ?? ""
            XCTAssertTrue(rerunText.contains("Critic feedback: step \(index + 1) attempt 1: \(step)"), rerunText)
            XCTAssertTrue(rerunText.contains("MISSING banana in: \(draft)"), rerunText)
            XCTAssertEqual(second["verdict"]?["verdict"]?.stringValue, "pass", second.encoded)
            XCTAssertEqual(second["verdict"]?["score"]?.doubleValue, 1, second.encoded)
            let passed = second["verdict"]?["feedback"]?.stringValue ?? ""
            XCTAssertTrue(passed.hasPrefix("step \(index + 1) attempt 2: \(step)\n"), passed)
            XCTAssertTrue(passed.hasSuffix("found banana in: step \(index) says banana at attempt 1\n"), passed)
            // The call's private directory is gone.
            let file = try XCTUnwrap(feedback.split(separator: "\n").dropFirst().first?.dropFirst("file ".count))
            XCTAssertFalse(FileManager.default.fileExists(atPath: String(file)), "removed after the call: \(file)")
            XCTAssertFalse(
                FileManager.default.fileExists(atPath: (String(file) as NSString).deletingLastPathComponent), "its directory too")
        }
        // The verifier read every step's final output from its file.
        let verifierRaw = try XCTUnwrap(self.events(events, kind: "call.completed", role: "verifier").last?["payload"]?["raw"], summary)
        XCTAssertEqual(verifierRaw["sandbox"]?.boolValue, sandboxed, verifierRaw.encoded)
        let outputs = try JSON.parse(verifierRaw["stdout"]?.stringValue ?? "")
        let expected: JSON = .array(
            steps.enumerated().map { .object([("step", .string($1)), ("output", .string("step \($0) says banana at attempt 1"))]) })
        XCTAssertEqual(outputs, expected, verifierRaw.encoded)
    }

    func testACommandCriticInTheSandboxSendsTheDraftBackWithItsOutput() throws {
        try requireBubblewrap()
        let (_, job, events) = try run()
        try checkJob(job, events, sandboxed: true)
    }

    func testACommandCriticOutsideTheSandboxReadsTheSameFiles() throws {
        let (_, job, events) = try run(sandboxed: false)
        try checkJob(job, events, sandboxed: false)
    }

    /// The recorded job replays: the same calls, the critic's request with the output it judged.
    func testAJobWithACommandCriticReplays() throws {
        try requireBubblewrap()
        let (id, job, _) = try run()
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", job.encoded)
        harness.cleanUpDaemon()
        let result = try harness.cli(["replay", id, "--db", harness.dbPath, "--json"], socket: false)
        let report = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "replay --json: \(result)")
        XCTAssertEqual(result.status, 0, report.encoded)
        XCTAssertEqual(report["matches"]?.boolValue, true, report.encoded)
        XCTAssertEqual(report["recorded_calls"]?.intValue, 9, report.encoded)
        XCTAssertEqual(report["replayed_calls"]?.intValue, 9, report.encoded)
        XCTAssertEqual(report["replayed_status"]?.stringValue, "succeeded", report.encoded)
    }
}
