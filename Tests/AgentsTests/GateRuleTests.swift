import Store
import XCTest

@testable import Agents

/// A plan's `gates`: what each rule matches, how it reads from YAML and back, and the errors that name
/// a rule that could never match.
final class GateRuleTests: XCTestCase {
    private func plan(tools: String = "[run_command, write_file]", gates: String) -> String {
        """
        name: t
        models:
          m:
            backend: scripted
            script:
              actor:
                - reply: {output: x}
        roles:
          actor: {model: m, prompt: act, tools: \(tools)}
          critic: {model: m, prompt: judge}
          verifier: {command: [sh, -c, "exit 0"]}
        steps: [one]
        gates:
        \(gates)
        """
    }

    private func error(_ yaml: String) -> String {
        do {
            _ = try PlanLoader.parse(yaml: yaml, file: "t.yaml", baseDirectory: nil)
            return "parsed"
        } catch {
            return "\(error)"
        }
    }

    func testWhatARuleMatches() {
        let rm = GateRule(tool: "run_command", commands: ["rm", "git"])
        XCTAssertTrue(rm.matches(tool: "run_command", argv: ["rm", "-rf", "x"], path: nil))
        XCTAssertTrue(rm.matches(tool: "run_command", argv: ["/bin/rm", "x"], path: nil), "by the program's last path component")
        XCTAssertFalse(rm.matches(tool: "run_command", argv: ["ls", "rm"], path: nil))
        XCTAssertFalse(rm.matches(tool: "write_file", argv: nil, path: "rm"))
        let push = GateRule(tool: "*", arguments: ["push"])
        XCTAssertTrue(push.matches(tool: "run_command", argv: ["git", "push", "origin"], path: nil))
        XCTAssertFalse(push.matches(tool: "run_command", argv: ["push"], path: nil), "only arguments after the program")
        XCTAssertFalse(push.matches(tool: "write_file", argv: nil, path: "push"))
        let secrets = GateRule(tool: "write_file", paths: ["*.env", "**/secrets/*"])
        XCTAssertTrue(secrets.matches(tool: "write_file", argv: nil, path: "prod.env"))
        XCTAssertFalse(secrets.matches(tool: "write_file", argv: nil, path: "config/prod.env"), "* stays within a directory")
        XCTAssertTrue(secrets.matches(tool: "write_file", argv: nil, path: "secrets/key"))
        XCTAssertTrue(secrets.matches(tool: "write_file", argv: nil, path: "a/b/secrets/key"))
        XCTAssertTrue(GateRule(tool: "*").matches(tool: "read_file", argv: nil, path: "x"))
    }

    func testRulesReadAndRoundTrip() throws {
        let parsed = try PlanLoader.parse(
            yaml: plan(
                gates: """
                      - {tool: run_command, command: [python3], args: [unittest], review: none}
                      - {tool: run_command, command: [rm], review: critic_then_human, min_confidence: 0.9}
                      - {tool: write_file, path: ["*.env"]}
                    """), file: "t.yaml", baseDirectory: nil)
        XCTAssertEqual(parsed.gates.map(\.review), [.none, .criticThenHuman, .human])
        XCTAssertEqual(parsed.gates[1].minConfidence, 0.9)
        XCTAssertEqual(parsed.gates[2].paths, ["*.env"])
        XCTAssertEqual(try Plan(json: parsed.json), parsed, "the snapshot keeps the gates")
    }

    func testRulesThatCouldNeverMatchAreErrors() {
        XCTAssertEqual(
            error(plan(tools: "[]", gates: "  - {tool: run_command}")),
            "t.yaml:14:3: gates: gates review the actor's tool calls, and the actor has no tools")
        XCTAssertTrue(error(plan(gates: "  - {tool: read_file}")).contains("'read_file' is not one of the actor's tools"))
        XCTAssertTrue(error(plan(gates: "  - {tool: write_file, command: [rm]}")).contains("'command' does not apply to write_file"))
        XCTAssertTrue(error(plan(gates: "  - {tool: run_command, path: [x]}")).contains("'path' does not apply to run_command"))
        XCTAssertTrue(error(plan(gates: "  - {tool: run_command, review: maybe}")).contains("unknown review 'maybe'"))
        XCTAssertTrue(error(plan(gates: "  - {tool: run_command, min_confidence: 0.5}")).contains("only to review: critic_then_human"))
        XCTAssertTrue(error(plan(gates: "  - {command: [rm]}")).contains("missing required key 'tool'"))
    }

    func testAStepMayBeMarkedForReview() throws {
        let yaml = plan(gates: "  - {tool: run_command}").replacingOccurrences(
            of: "steps: [one]", with: "steps: [one, {text: two, review: human}, {text: three, review: critic_then_human}]")
        let parsed = try PlanLoader.parse(yaml: yaml, file: "t.yaml", baseDirectory: nil)
        XCTAssertEqual(parsed.steps, ["one", "two", "three"])
        XCTAssertEqual(parsed.stepReviews, [1: .human, 2: .criticThenHuman])
        XCTAssertEqual(try Plan(json: parsed.json), parsed)
        let critic = plan(gates: "  - {tool: run_command}").replacingOccurrences(
            of: "steps: [one]", with: "steps: [{text: one, review: critic}]")
        XCTAssertTrue(error(critic).contains("a step's review is human or critic_then_human"), error(critic))
    }
}
