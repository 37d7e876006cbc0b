import Agents
import Foundation
import XCTest

@testable import Evaluation

/// The suite format's refusals name the file, the line and the member; the shipped suites load.
final class EvalSuiteTests: XCTestCase {
    private func refusal(_ text: String) -> String {
        do {
            _ = try EvalSuite.parse(text, file: "s.jsonl")
            return "accepted"
        } catch {
            return error.message
        }
    }

    func testBadTasksAreRefusedByLineAndMember() {
        XCTAssertEqual(
            refusal("{\"id\": \"a\", \"goal\": \"g\"}"),
            "suite s.jsonl line 1: task a: 'check' is required: an argv, a non-empty array of strings")
        XCTAssertEqual(
            refusal("# comment\n\n{\"id\": \"a\", \"goal\": \"g\", \"check\": [\"true\"], \"chek\": 1}"),
            "suite s.jsonl line 3: unknown member 'chek' (allowed: check, goal, id, inputs, step_check, timeout, workspace)")
        XCTAssertEqual(
            refusal("{\"id\": \"a\", \"goal\": \"g\", \"check\": [\"true\"]}\n{\"id\": \"a\", \"goal\": \"h\", \"check\": [\"true\"]}"),
            "suite s.jsonl line 2: task id 'a' is used twice")
        XCTAssertEqual(
            refusal("{\"id\": \"a b\", \"goal\": \"g\", \"check\": [\"true\"]}"),
            "suite s.jsonl line 1: 'id' must be a non-empty string of letters, digits, '.', '_' and '-'")
        XCTAssertEqual(
            refusal("{\"id\": \"a\", \"goal\": \"g\", \"check\": []}"),
            "suite s.jsonl line 1: task a: 'check' must be an argv, a non-empty array of strings whose first is not empty")
        XCTAssertEqual(
            refusal("{\"id\": \"a\", \"goal\": \"g\", \"check\": [\"true\"], \"workspace\": \"../x\"}"),
            "suite s.jsonl line 1: task a: 'workspace' must be a relative directory inside the suite")
        XCTAssertTrue(refusal("{\"id\": ").hasPrefix("suite s.jsonl line 1: not JSON"))
        XCTAssertEqual(refusal("# only a comment\n"), "suite s.jsonl: no tasks")
    }

    func testShippedSuitesLoad() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let instructions = try EvalSuite.load(root + "/evals/instructions")
        XCTAssertGreaterThanOrEqual(instructions.tasks.count, 60)
        XCTAssertEqual(instructions.name, "instructions")
        let code = try EvalSuite.load(root + "/evals/code")
        XCTAssertGreaterThanOrEqual(code.tasks.count, 20)
        XCTAssertTrue(code.tasks.allSatisfy { $0.workspace == "workspace" })
    }

    private static let codeArms = ["feedback.yaml", "model-critic.yaml", "resample.yaml", "single.yaml"]
    private static let textArms = codeArms + ["best-of-3.yaml", "critic-tools.yaml", "jury.yaml"]

    /// Every shipped arm is a plan that loads once a task's check is spliced in.
    func testShippedArmsLoadAsPlans() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        for (suiteName, armDirectory) in [("instructions", "evals/arms"), ("code", "evals/arms/code")] {
            let suite = try EvalSuite.load(root + "/evals/" + suiteName)
            let files = try FileManager.default.contentsOfDirectory(atPath: root + "/" + armDirectory).filter { $0.hasSuffix(".yaml") }
            XCTAssertEqual(
                Set(files), suiteName == "code" ? Set(Self.codeArms) : Set(Self.textArms), "the shipped arms of \(armDirectory)")
            for file in files {
                let arm = try EvalArm.load(root + "/" + armDirectory + "/" + file)
                let text = arm.planText(for: suite.tasks[0], suite: suite)
                XCTAssertFalse(text.contains("{eval."), "\(file): a placeholder is left")
                XCTAssertNoThrow(
                    try PlanLoader.parse(yaml: text, file: arm.path, baseDirectory: root + "/" + armDirectory), "\(armDirectory)/\(file)")
            }
        }
    }

    func testAnArmSplicesTheTasksCheckIntoItsPlan() throws {
        let task = try EvalSuite.parse(
            "{\"id\": \"a\", \"goal\": \"g\", \"check\": [\"python3\", \"c.py\", \"it's \\\"x\\\"\"]}", file: "f")[0]
        let suite = EvalSuite(name: "s", directory: "/suites/s", tasks: [task])
        let arm = EvalArm(
            name: "arm", path: "/a/arm.yaml",
            text: "critic: {command: \"{eval.check}\", cwd: \"{eval.suite}\"}\nother: {command: \"{eval.check_quiet}\"}\n")
        XCTAssertEqual(
            arm.planText(for: task, suite: suite),
            "critic: {command: [\"python3\",\"c.py\",\"it's \\\"x\\\"\"], cwd: \"/suites/s\"}\n"
                + "other: {command: [\"sh\",\"-c\",\"\\\"$@\\\" >/dev/null 2>&1\",\"sh\",\"python3\",\"c.py\",\"it's \\\"x\\\"\"]}\n")
        XCTAssertNotEqual(
            arm.key(run: "r", suite: suite, task: task, rep: 0), arm.key(run: "r", suite: suite, task: task, rep: 1))
        var edited = arm
        edited.text += "# edited\n"
        XCTAssertNotEqual(
            arm.key(run: "r", suite: suite, task: task, rep: 0), edited.key(run: "r", suite: suite, task: task, rep: 0),
            "an edited plan makes new jobs")
    }
}
