import Store
import XCTest

@testable import Agents

/// A jury critic in a plan: what it reads, its defaults, its snapshot, and each refusal with its
/// file, line and field.
final class JurySpecTests: XCTestCase {
    /// A plan whose critic is `jury` (the lines of the critic's mapping, indented under `critic:`).
    /// The jury's first line is line 14.
    static func plan(_ jury: String, gates: String = "") -> String {
        """
        name: t
        models:
          m:
            backend: scripted
            script:
              actor:
                - reply: {output: x}
          n:
            backend: scripted
            script: {}
        roles:
          actor: {model: m, prompt: act, tools: [run_command]}
          critic:
        \(jury)
          verifier: {command: [sh, -c, "exit 0"]}
        steps: [one]
        \(gates)
        """
    }

    func parse(_ yaml: String) throws(PlanError) -> Plan {
        try PlanLoader.parse(yaml: yaml, file: "t.yaml", baseDirectory: nil)
    }

    func assertError(_ yaml: String, field: String, line expected: Int, _ text: String, file: StaticString = #filePath, line: UInt = #line)
    {
        do {
            let plan = try parse(yaml)
            XCTFail("expected an error, got \(plan)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.file, "t.yaml", file: file, line: line)
            XCTAssertEqual(error.field, field, "\(error)", file: file, line: line)
            XCTAssertEqual(error.line, expected, "\(error)", file: file, line: line)
            XCTAssertTrue(error.message.contains(text), "'\(error.message)' does not contain '\(text)'", file: file, line: line)
        }
    }

    func testAJuryOfModelAndCommandJurorsWithDefaultNames() throws {
        let plan = try parse(
            Self.plan(
                """
                    jury:
                      - {name: facts, model: m, prompt: "Check the facts.", temperature: 0}
                      - {model: n, prompt: "Check the style."}
                      - {command: [make, check], cwd: tests, timeout: 30s, sandbox: false}
                    rule: "mean_score>=0.75"
                """))
        var command = CommandSpec(argv: ["make", "check"], cwd: "tests", timeoutSeconds: 30)
        command.sandboxed = false
        let expected = JurySpec(
            jurors: [
                Juror(name: "facts", kind: .model(RoleSpec(model: "m", prompt: "Check the facts.", temperature: 0))),
                Juror(name: "juror2", kind: .model(RoleSpec(model: "n", prompt: "Check the style."))),
                Juror(name: "juror3", kind: .command(command)),
            ], rule: .meanScore(atLeast: 0.75), onError: .fail)
        XCTAssertEqual(plan.critic, .jury(expected))
        XCTAssertEqual(JurySpec.Rule.meanScore(atLeast: 0.75).text, "mean_score >= 0.75", "recorded as written, spaced")
        XCTAssertNil(plan.roleSpec(.critic), "a jury has no single model role")
        XCTAssertEqual(plan.critic.commands, [command], "the trust policy sees the command juror")
        // The snapshot round-trips, names written out, and is canonical.
        let snapshot = plan.json.encoded
        XCTAssertTrue(snapshot.contains(#""jury":[{"name":"facts""#), snapshot)
        XCTAssertTrue(snapshot.contains(#""rule":"mean_score >= 0.75","on_error":"fail""#), snapshot)
        XCTAssertEqual(try Plan(json: plan.json), plan)
        XCTAssertEqual(try Plan(json: plan.json).json.encoded, snapshot)
    }

    func testRulesAndOnError() throws {
        for (text, rule) in [
            ("majority", JurySpec.Rule.majority), ("unanimous", .unanimous), ("'mean_score >= 0'", .meanScore(atLeast: 0)),
        ] {
            let plan = try parse(Self.plan("    jury: [{model: m, prompt: a}]\n    rule: \(text)\n    on_error: abstain"))
            XCTAssertEqual(
                plan.critic,
                .jury(
                    JurySpec(
                        jurors: [Juror(name: "juror1", kind: .model(RoleSpec(model: "m", prompt: "a")))], rule: rule, onError: .abstain)))
            XCTAssertEqual(try Plan(json: plan.json), plan)
        }
    }

    func testRefusals() {
        assertError(Self.plan("    jury: []\n    rule: majority"), field: "roles.critic.jury", line: 14, "a jury needs at least one juror")
        assertError(
            Self.plan("    jury: [\(Array(repeating: "{model: m, prompt: a}", count: 33).joined(separator: ", "))]\n    rule: majority"),
            field: "roles.critic.jury", line: 14, "a jury has at most 32 jurors, found 33")
        assertError(Self.plan("    jury: [{model: m, prompt: a}]"), field: "roles.critic.rule", line: 13, "missing required key 'rule'")
        assertError(
            Self.plan("    jury: [{model: m, prompt: a}]\n    rule: most"), field: "roles.critic.rule", line: 15,
            "unknown jury rule 'most' (known: majority, unanimous, 'mean_score >= X' (X from 0 to 1))")
        assertError(
            Self.plan("    jury: [{model: m, prompt: a}]\n    rule: mean_score >= 1.5"), field: "roles.critic.rule", line: 15,
            "the mean score to reach must be from 0 to 1, found 1.5")
        assertError(
            Self.plan("    jury: [{model: m, prompt: a}]\n    rule: majority\n    on_error: ignore"), field: "roles.critic.on_error",
            line: 16,
            "unknown on_error 'ignore' (known: fail")
        assertError(
            Self.plan("    jury: [{model: m, prompt: a}]\n    rule: majority\n    model: m"), field: "roles.critic.model", line: 16,
            "unknown key 'model' in a jury critic (allowed: jury, rule, on_error)")
        assertError(
            Self.plan("    jury:\n      - {name: a, model: m, prompt: a}\n      - {name: a, model: n, prompt: b}\n    rule: majority"),
            field: "roles.critic.jury[1].name", line: 16, "juror 2 is named 'a' like juror 1; each juror needs its own name")
        assertError(
            Self.plan("    jury:\n      - {model: m, prompt: a}\n      - {name: juror1, model: n, prompt: b}\n    rule: majority"),
            field: "roles.critic.jury[1].name", line: 16, "(one without 'name' is juror1…jurorN by its position)")
        assertError(
            Self.plan("    jury: [{name: 'a/b', model: m, prompt: a}]\n    rule: majority"), field: "roles.critic.jury[0].name", line: 14,
            "a juror's name is 1 to 64 letters, digits, '_', '-' or '.', found 'a/b'")
        assertError(
            Self.plan("    jury: [{name: check, model: m, prompt: a}]\n    rule: majority"), field: "roles.critic.jury[0].name", line: 14,
            "'check' names the plan's ground-truth check's agent (critic/JOB/check); give the juror another name")
        assertError(
            Self.plan("    jury: [{model: x, prompt: a}]\n    rule: majority"), field: "roles.critic.jury[0].model", line: 14,
            "unknown model 'x' (known: m, n)")
        assertError(
            Self.plan("    jury: [{model: m, prompt: a, tools: [run_command]}]\n    rule: majority"), field: "roles.critic.jury[0].tools",
            line: 14, "a juror has no tools (a single model critic may have read-only tools); leave 'tools' out")
        assertError(
            Self.plan("    jury: [{command: [x], model: m}]\n    rule: majority"), field: "roles.critic.jury[0].model", line: 14,
            "a juror is either a command or a model role, not both")
        assertError(
            Self.plan("    jury: [{command: []}]\n    rule: majority"), field: "roles.critic.jury[0].command", line: 14,
            "expected a non-empty list")
        assertError(
            Self.plan("    jury: {model: m, prompt: a}\n    rule: majority"), field: "roles.critic.jury", line: 14,
            "expected a list of jurors")
        assertError(
            Self.plan("    jury: [{model: m, prompt: a}]\n    rule: majority", gates: "gates: [{tool: run_command, review: critic}]"),
            field: "gates[0].review", line: 18, "a jury does not review gates; use review: human or none")
    }

    func testAGateAPersonReviewsIsAllowedBesideAJury() throws {
        let plan = try parse(Self.plan("    jury: [{model: m, prompt: a}]\n    rule: majority", gates: "gates: [{tool: run_command}]"))
        XCTAssertEqual(plan.gates.first?.review, .human)
    }
}
