import Foundation
import Store
import XCTest

@testable import Agents

final class PlanLoaderTests: XCTestCase {
    // MARK: Fixtures

    /// A plan using every key of the format; `fixtures/script.yaml` (below) must sit next to it.
    static let everything = """
        name: everything
        description: "Uses every key of the format."
        models:
          script:
            backend: scripted
            script:
              planner:
                - replan: [0, 1]
                  reply: {steps: ["a", "b"]}
              actor:
                - step: 1
                  attempt: [0, 2]
                  reask: 0
                  feedback: false
                  reply:
                    output: "step {step}"
                    nothing: ~
                    empty:
                    flag: yes
                    on: true
                    count: 42
                    ratio: 0.5
                    hex: 0x1F
                    big: 1e3
                    quoted: "42"
                    single: 'true'
                    list: [1, two, null]
                    nested: {z: 1, a: 2}
                - turn: 1
                  reply: {tool_calls: [{name: run_command, arguments: {argv: [ls]}}]}
                - raw: "not json at all"
          fixture:
            backend: scripted
            script_file: fixtures/script.yaml
          helper:
            backend: command
            command: [python3, agent.py, "{goal}"]
            cwd: tools
            timeout: 1.5m
        roles:
          planner: {model: script, prompt: "You plan.", temperature: 0.7}
          actor: {model: helper, prompt: "You act.", tools: [run_command, read_file]}
          critic:
            model: fixture
            prompt: |
              You judge.
              Be strict.
            temperature: 0
          verifier:
            command: [sh, -c, "test -f out.txt"]
            cwd: /tmp
            timeout: 250ms
        steps:
          - "step 0: gather"
          - "step 1: write"
        workspace: "work/{input.name}"
        workspace_shared: true
        sandbox:
          enabled: true
          network: true
          cpu_seconds: 20
          memory_mb: 512
          processes: 64
          writable: [/var/cache/pip]
          env: [PIP_INDEX_URL, PATH]
        policy:
          max_attempts: 5
          max_replans: 0
          max_invalid_replies: 1
          call_timeout: 30s
          job_timeout: 1h
          retry_temperature_step: 0.1
          tool_timeout: 90s
          max_tool_turns: 3
          tool_output_cap: 4096
          step_timeout: 5m

        """

    static let everythingScript = """
        critic:
          - step: [1, 3]
            attempt: 0
            reply: {verdict: fail, score: 0.35, feedback: "step {step}: more"}
          - reply: {verdict: pass, score: 0.9, feedback: ok}

        """

    static var everythingPlan: Plan {
        let actorReply: JSON = [
            "output": "step {step}", "nothing": nil, "empty": nil, "flag": "yes", "on": true, "count": 42,
            "ratio": 0.5, "hex": 31, "big": 1000, "quoted": "42", "single": "true", "list": [1, "two", nil],
            "nested": ["z": 1, "a": 2],
        ]
        let script = Script(rules: [
            .planner: [ScriptRule(replans: [0, 1], reply: .json(["steps": ["a", "b"]]))],
            .actor: [
                ScriptRule(steps: [1], attempts: [0, 2], reasks: [0], feedback: false, reply: .json(actorReply)),
                ScriptRule(turns: [1], reply: .json(["tool_calls": [["name": "run_command", "arguments": ["argv": ["ls"]]]]])),
                ScriptRule(reply: .raw("not json at all")),
            ],
        ])
        let fixture = Script(rules: [
            .critic: [
                ScriptRule(
                    steps: [1, 3], attempts: [0],
                    reply: .json(["verdict": "fail", "score": 0.35, "feedback": "step {step}: more"])),
                ScriptRule(reply: .json(["verdict": "pass", "score": 0.9, "feedback": "ok"])),
            ]
        ])
        var policy = Policy()
        policy.maxAttempts = 5
        policy.maxReplans = 0
        policy.maxInvalidReplies = 1
        policy.callTimeoutSeconds = 30
        policy.jobTimeoutSeconds = 3600
        policy.retryTemperatureStep = 0.1
        policy.toolTimeoutSeconds = 90
        policy.maxToolTurns = 3
        policy.toolOutputCap = 4096
        policy.stepTimeoutSeconds = 300
        var sandbox = Sandbox()
        sandbox.network = true
        sandbox.cpuSeconds = 20
        sandbox.memoryMB = 512
        sandbox.processes = 64
        sandbox.writable = ["/var/cache/pip"]
        sandbox.environment = ["PIP_INDEX_URL", "PATH"]
        return Plan(
            name: "everything",
            description: "Uses every key of the format.",
            models: [
                "script": ModelSpec(backend: .scripted(script)),
                "fixture": ModelSpec(backend: .scripted(fixture)),
                "helper": ModelSpec(
                    backend: .command(CommandSpec(argv: ["python3", "agent.py", "{goal}"], cwd: "tools", timeoutSeconds: 90))),
            ],
            planner: RoleSpec(model: "script", prompt: "You plan.", temperature: 0.7),
            actor: RoleSpec(model: "helper", prompt: "You act.", tools: ["run_command", "read_file"]),
            critic: .model(RoleSpec(model: "fixture", prompt: "You judge.\nBe strict.\n", temperature: 0)),
            verifier: .command(CommandSpec(argv: ["sh", "-c", "test -f out.txt"], cwd: "/tmp", timeoutSeconds: 0.25)),
            steps: ["step 0: gather", "step 1: write"], workspace: "work/{input.name}", workspaceShared: true, sandbox: sandbox,
            policy: policy)
    }

    /// A small valid plan; the error tests change one line of it. Line numbers matter.
    static let minimal = """
        name: t
        models:
          m:
            backend: scripted
            script:
              actor:
                - reply: {output: x}
        roles:
          actor: {model: m, prompt: act}
          critic: {model: m, prompt: judge}
          verifier: {command: [sh, -c, "exit 0"]}
        steps: [one]

        """

    var tempDirectory: URL!

    override func setUpWithError() throws {
        tempDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("plan-loader-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: tempDirectory.appendingPathComponent("fixtures"), withIntermediateDirectories: true)
        try Self.everythingScript.write(
            to: tempDirectory.appendingPathComponent("fixtures/script.yaml"), atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tempDirectory)
    }

    /// `minimal` with line `number` (one-based) replaced by `replacement` (which may span lines).
    func minimal(replacing number: Int, with replacement: String) -> String {
        minimal(replacing: number...number, with: replacement)
    }

    /// `minimal` with the lines `numbers` (one-based) replaced by `replacement`.
    func minimal(replacing numbers: ClosedRange<Int>, with replacement: String) -> String {
        var lines = Self.minimal.components(separatedBy: "\n")
        lines.replaceSubrange((numbers.lowerBound - 1)...(numbers.upperBound - 1), with: [replacement])
        return lines.joined(separator: "\n")
    }

    /// The error parsing `yaml` throws; fails the test when it parses.
    func parseError(_ yaml: String, base: String? = nil, file: StaticString = #filePath, line: UInt = #line) -> PlanError? {
        do {
            let plan = try PlanLoader.parse(yaml: yaml, file: "t.yaml", baseDirectory: base)
            XCTFail("expected an error, got \(plan)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func assertError(
        _ yaml: String, field: String, line expectedLine: Int, contains text: String, base: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        guard let error = parseError(yaml, base: base, file: file, line: line) else { return }
        XCTAssertEqual(error.file, "t.yaml", file: file, line: line)
        XCTAssertEqual(error.field, field, "\(error)", file: file, line: line)
        XCTAssertEqual(error.line, expectedLine, "\(error)", file: file, line: line)
        XCTAssertNotNil(error.column, "\(error)", file: file, line: line)
        XCTAssertTrue(error.message.contains(text), "'\(error.message)' does not contain '\(text)'", file: file, line: line)
    }

    // MARK: Valid plans

    func testMinimalPlanTakesDefaults() throws {
        let plan = try PlanLoader.parse(yaml: Self.minimal, file: "t.yaml", baseDirectory: nil)
        XCTAssertEqual(plan.name, "t")
        XCTAssertNil(plan.description)
        XCTAssertNil(plan.planner)
        XCTAssertEqual(plan.actor, RoleSpec(model: "m", prompt: "act", tools: [], temperature: 0.2))
        XCTAssertEqual(plan.verifier, .command(CommandSpec(argv: ["sh", "-c", "exit 0"], timeoutSeconds: 300)))
        XCTAssertEqual(plan.steps, ["one"])
        XCTAssertEqual(plan.policy, Policy())
        XCTAssertEqual(
            plan.models["m"], ModelSpec(backend: .scripted(Script(rules: [.actor: [ScriptRule(reply: .json(["output": "x"]))]]))))
    }

    func testPlanUsingEveryFeature() throws {
        let plan = try PlanLoader.parse(yaml: Self.everything, file: "everything.yaml", baseDirectory: tempDirectory.path)
        XCTAssertEqual(plan, Self.everythingPlan)
        // Key order of a reply survives (JSON equality compares it).
        guard case let .scripted(script) = plan.models["script"]?.backend, case let .json(reply)? = script.rules[.actor]?.first?.reply
        else { return XCTFail("no actor reply") }
        XCTAssertEqual(reply.objectValue?.map(\.0).first, "output")
        XCTAssertEqual(reply["nested"]?.objectValue?.map(\.0), ["z", "a"])
    }

    func testLoadResolvesScriptFileAgainstThePlansDirectory() throws {
        let path = tempDirectory.appendingPathComponent("everything.yaml").path
        try Self.everything.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try PlanLoader.load(path: path), Self.everythingPlan)
    }

    func testModelCommandTimeoutDefaultsTo120Seconds() throws {
        let yaml = minimal(replacing: 3, with: "  h: {backend: command, command: [./agent]}\n  m:")
        let plan = try PlanLoader.parse(yaml: yaml, file: "t.yaml", baseDirectory: nil)
        XCTAssertEqual(plan.models["h"], ModelSpec(backend: .command(CommandSpec(argv: ["./agent"], timeoutSeconds: 120))))
    }

    func testDurations() throws {
        let cases: [(String, Double)] = [
            ("250ms", 0.25), ("30s", 30), ("2m", 120), ("1h", 3600), ("1.5s", 1.5), ("7", 7), ("0.5", 0.5), ("'10s'", 10),
        ]
        for (text, seconds) in cases {
            let plan = try PlanLoader.parse(yaml: Self.minimal + "policy: {call_timeout: \(text)}\n", file: "t.yaml", baseDirectory: nil)
            XCTAssertEqual(plan.policy.callTimeoutSeconds, seconds, text)
        }
        let plan = try PlanLoader.parse(yaml: Self.minimal + "policy: {job_timeout: 0}\n", file: "t.yaml", baseDirectory: nil)
        XCTAssertEqual(plan.policy.jobTimeoutSeconds, 0)
    }

    func testModelVerifierAndPlannerRequiredWithoutSteps() throws {
        let yaml = minimal(
            replacing: 11, with: "  verifier: {model: m, prompt: check, temperature: 1}\n  planner: {model: m, prompt: plan}"
        )
        .replacingOccurrences(of: "steps: [one]\n", with: "")
        let plan = try PlanLoader.parse(yaml: yaml, file: "t.yaml", baseDirectory: nil)
        XCTAssertNil(plan.steps)
        XCTAssertEqual(plan.planner, RoleSpec(model: "m", prompt: "plan"))
        XCTAssertEqual(plan.verifier, .model(RoleSpec(model: "m", prompt: "check", temperature: 1)))
        XCTAssertEqual(plan.roleSpec(.verifier), RoleSpec(model: "m", prompt: "check", temperature: 1))
    }

    // MARK: Snapshot round trip

    func testRoundTripOfEveryFeature() throws {
        let plan = Self.everythingPlan
        let snapshot = plan.json.encoded
        XCTAssertFalse(snapshot.contains("script_file"))
        XCTAssertEqual(try PlanLoader.parse(yaml: snapshot, file: "<snapshot>", baseDirectory: nil), plan)
        XCTAssertEqual(try Plan(json: plan.json), plan)
        // The snapshot is canonical: encoding the reloaded plan gives the same text.
        XCTAssertEqual(try Plan(json: plan.json).json.encoded, snapshot)
    }

    func testRoundTripOfAwkwardStrings() throws {
        var plan = try PlanLoader.parse(yaml: Self.minimal, file: "t.yaml", baseDirectory: nil)
        plan.description = "tab\there \"quoted\" back\\slash\nnew line, unicode é ✓ 🚀, # not a comment, {step}: ~ null 12"
        plan.actor.prompt = ""
        plan.steps = ["- dash", "yes", "1e3", "null", "'single'", "key: value", "[x]"]
        plan.models["m"] = ModelSpec(
            backend: .scripted(
                Script(rules: [
                    .verifier: [ScriptRule(reply: .json(["n": 0.1, "m": -3, "big": 12345678901234, "s": "007", "e": [:], "a": []]))],
                    .critic: [],
                ])))
        XCTAssertEqual(try Plan(json: plan.json), plan)
    }

    func testShippedPlansLoadAndRoundTrip() throws {
        let directory = Self.plansDirectory
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertTrue(files.contains("w1.yaml") && files.contains("demo.yaml"), "\(files)")
        for name in files {
            let plan = try PlanLoader.load(path: directory.appendingPathComponent(name).path)
            XCTAssertEqual(try PlanLoader.parse(yaml: plan.json.encoded, file: "<snapshot>", baseDirectory: nil), plan, name)
        }
    }

    func testReadmeExampleLoads() throws {
        let readme = try String(contentsOf: Self.plansDirectory.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try XCTUnwrap(readme.range(of: "```yaml\n"))
        let end = try XCTUnwrap(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let plan = try PlanLoader.parse(yaml: String(readme[start.upperBound..<end.lowerBound]), file: "README.md", baseDirectory: nil)
        XCTAssertEqual(plan.name, "review")
        XCTAssertEqual(plan.policy.callTimeoutSeconds, 30)
    }

    // MARK: Shipped plans behave as specified

    /// Runs the W1 workflow against the plan's scripted model and checks every reply docs/benchmarks.md fixes.
    func testW1PlanAnswersAsTheBenchmarkSpecifies() throws {
        let plan = try loadShipped("w1")
        XCTAssertNil(plan.steps)
        XCTAssertEqual(plan.policy.maxAttempts, 3)
        let run = try simulate(plan)
        XCTAssertEqual(run.calls, 14)
        XCTAssertEqual(run.steps, (1...4).map { "do part \($0) of the task" })
        XCTAssertEqual(run.attempts, [1, 2, 1, 2])
        XCTAssertEqual(run.replies[.actor]?[1], #"{"output":"output for step 2, attempt 1"}"#)
        XCTAssertEqual(run.replies[.actor]?[2], #"{"output":"output for step 2, attempt 2 (revised after feedback)"}"#)
        XCTAssertEqual(
            run.replies[.critic]?[1], #"{"verdict":"fail","score":0.35,"feedback":"step 2: missing detail, be more specific"}"#)
        XCTAssertEqual(run.replies[.critic]?[0], #"{"verdict":"pass","score":0.9,"feedback":"ok"}"#)
        XCTAssertEqual(run.replies[.verifier], [#"{"verified":true}"#])
    }

    func testDemoPlanFailsStepOneOnceThenVerifies() throws {
        let plan = try loadShipped("demo")
        let run = try simulate(plan)
        XCTAssertEqual(run.steps.count, 3)
        XCTAssertEqual(run.attempts, [1, 2, 1])
        let fail = try JSON.parse(run.replies[.critic]![1])
        XCTAssertEqual(fail["verdict"], "fail")
        XCTAssertNotNil(fail["suggestion"]?.stringValue)
        let verdict = try JSON.parse(run.replies[.verifier]![0])
        XCTAssertEqual(verdict["verified"], true)
        XCTAssertNotNil(verdict["reason"]?.stringValue)
    }

    /// The repository's `plans` directory.
    static var plansDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("plans")
    }

    func loadShipped(_ name: String) throws -> Plan {
        try PlanLoader.load(path: Self.plansDirectory.appendingPathComponent("\(name).yaml").path)
    }

    /// The plan's scripted replies for one job: plan, then per step actor and critic until a pass.
    func simulate(_ plan: Plan) throws -> (calls: Int, steps: [String], attempts: [Int], replies: [Role: [String]]) {
        var replies: [Role: [String]] = [:]
        var calls = 0
        func call(_ role: Role, step: Int?, attempt: Int?, feedback: Bool) throws -> String {
            guard let spec = plan.roleSpec(role), case let .scripted(script)? = plan.models[spec.model]?.backend else {
                throw PlanError(file: "", message: "\(role) is not scripted")
            }
            let context = CallContext(
                jobID: "j", role: role, step: step, attempt: attempt, replan: 0, reask: 0, hasFeedback: feedback, goal: "g")
            let text = try ScriptedBackend(script: script).reply(to: context).content
            replies[role, default: []].append(text)
            calls += 1
            return text
        }
        let planned = try JSON.parse(call(.planner, step: nil, attempt: nil, feedback: false))
        let steps = try XCTUnwrap(planned["steps"]?.arrayValue?.compactMap(\.stringValue))
        var attempts: [Int] = []
        for step in steps.indices {
            var attempt = 0
            while true {
                _ = try call(.actor, step: step, attempt: attempt, feedback: attempt > 0)
                let verdict = try JSON.parse(call(.critic, step: step, attempt: attempt, feedback: false))
                attempt += 1
                if verdict["verdict"] == "pass" { break }
                XCTAssertLessThan(attempt, plan.policy.maxAttempts)
            }
            attempts.append(attempt)
        }
        _ = try call(.verifier, step: nil, attempt: nil, feedback: false)
        return (calls, steps, attempts, replies)
    }

    // MARK: Errors, one per kind

    func testMissingRequiredField() {
        assertError(
            minimal(replacing: 10, with: "  critic: {model: m}"), field: "roles.critic.prompt", line: 10,
            contains: "missing required key 'prompt'")
        // In block style the error points at the key that owns the incomplete mapping.
        assertError(
            minimal(replacing: 10, with: "  critic:\n    prompt: judge"), field: "roles.critic.model", line: 10,
            contains: "missing required key 'model'")
        assertError(minimal(replacing: 1, with: "# no name"), field: "name", line: 2, contains: "missing required key 'name'")
    }

    func testPlannerRequiredWithoutSteps() {
        assertError(
            Self.minimal.replacingOccurrences(of: "steps: [one]\n", with: ""), field: "roles.planner", line: 8,
            contains: "missing required key 'planner'")
    }

    func testToolNamesAreCheckedAndOnlyTheActorHasTools() {
        assertError(
            minimal(replacing: 9, with: "  actor: {model: m, prompt: act, tools: [run_command, shell]}"), field: "roles.actor.tools[1]",
            line: 9, contains: "unknown tool 'shell' (known tools: run_command, read_file, write_file)")
        assertError(
            minimal(replacing: 9, with: "  actor: {model: m, prompt: act, tools: [read_file, read_file]}"), field: "roles.actor.tools[1]",
            line: 9, contains: "tool 'read_file' is listed twice")
        assertError(
            minimal(replacing: 8, with: "roles:\n  planner: {model: m, prompt: plan, tools: [read_file]}"), field: "roles.planner.tools",
            line: 9, contains: "only the actor and a model critic can use tools")
        assertError(
            minimal(replacing: 12, with: "steps: [one]\npolicy: {max_tool_turns: 0}"), field: "policy.max_tool_turns", line: 13,
            contains: "1")
    }

    func testCriticHasOnlyReadOnlyToolsAndItsOwnTurnBudget() throws {
        let critic = "  critic: {model: m, prompt: judge, tools: [read_file, run_command], max_tool_turns: 3}"
        let plan = try PlanLoader.parse(yaml: minimal(replacing: 10, with: critic), file: "t.yaml", baseDirectory: nil)
        XCTAssertEqual(plan.roleSpec(.critic)?.tools, ["read_file", "run_command"])
        XCTAssertEqual(plan.roleSpec(.critic)?.maxToolTurns, 3)
        // The snapshot keeps the budget, and a critic without one snapshots as before.
        XCTAssertEqual(try Plan(json: plan.json), plan)
        XCTAssertFalse(
            try PlanLoader.parse(yaml: Self.minimal, file: "t.yaml", baseDirectory: nil).critic.json.encoded.contains("max_tool"))
        assertError(
            minimal(replacing: 10, with: "  critic: {model: m, prompt: judge, tools: [read_file, write_file]}"),
            field: "roles.critic.tools[1]", line: 10, contains: "the critic's tools are read-only")
        assertError(
            minimal(replacing: 12, with: "steps: [one]\nsandbox: false").replacingOccurrences(
                of: "  critic: {model: m, prompt: judge}", with: "  critic: {model: m, prompt: judge, tools: [run_command]}"),
            field: "roles.critic.tools[0]", line: 10, contains: "the critic's run_command needs the sandbox")
        // read_file alone never writes: fine without the sandbox.
        XCTAssertNoThrow(
            try PlanLoader.parse(
                yaml: minimal(replacing: 12, with: "steps: [one]\nsandbox: false").replacingOccurrences(
                    of: "  critic: {model: m, prompt: judge}", with: "  critic: {model: m, prompt: judge, tools: [read_file]}"),
                file: "t.yaml", baseDirectory: nil))
        assertError(
            minimal(replacing: 10, with: "  critic: {model: m, prompt: judge, max_tool_turns: 3}"), field: "roles.critic.max_tool_turns",
            line: 10, contains: "'max_tool_turns' without 'tools'")
        assertError(
            minimal(replacing: 10, with: "  critic: {model: m, prompt: judge, tools: [read_file], max_tool_turns: 0}"),
            field: "roles.critic.max_tool_turns", line: 10, contains: "1")
        assertError(
            minimal(replacing: 9, with: "  actor: {model: m, prompt: act, tools: [read_file], max_tool_turns: 3}"),
            field: "roles.actor.max_tool_turns", line: 9, contains: "unknown key 'max_tool_turns' in a role")
    }

    func testSandbox() throws {
        func sandbox(_ text: String) throws -> Sandbox {
            try PlanLoader.parse(yaml: Self.minimal + "sandbox: \(text)\n", file: "t.yaml", baseDirectory: nil).sandbox
        }
        XCTAssertEqual(try PlanLoader.parse(yaml: Self.minimal, file: "t.yaml", baseDirectory: nil).sandbox, Sandbox(), "on by default")
        XCTAssertEqual(try sandbox("{}"), Sandbox())
        XCTAssertEqual(try sandbox("true"), Sandbox())
        XCTAssertEqual(try sandbox("false"), .off)
        XCTAssertEqual(try sandbox("{enabled: false}"), .off)
        XCTAssertEqual(
            Sandbox().json.encoded,
            #"{"enabled":true,"network":false,"cpu_seconds":300,"memory_mb":4096,"processes":1024,"job_memory_mb":8192,"job_processes":4096,"writable":[],"env":[]}"#
        )
        XCTAssertEqual(Sandbox.off.json.encoded, #"{"enabled":false}"#)
        for value in [Sandbox.off, Sandbox(), Self.everythingPlan.sandbox] {
            var plan = try PlanLoader.parse(yaml: Self.minimal, file: "t.yaml", baseDirectory: nil)
            plan.sandbox = value
            XCTAssertEqual(try Plan(json: plan.json), plan, "the snapshot round-trips \(value)")
        }
    }

    func testWorkspaceSharedIsABoolean() throws {
        XCTAssertFalse(
            try PlanLoader.parse(yaml: Self.minimal, file: "t.yaml", baseDirectory: nil).workspaceShared, "not shared by default")
        let shared = try PlanLoader.parse(yaml: Self.minimal + "workspace_shared: true\n", file: "t.yaml", baseDirectory: nil)
        XCTAssertTrue(shared.workspaceShared)
        XCTAssertEqual(try Plan(json: shared.json), shared, "the snapshot keeps it")
        assertError(Self.minimal + "workspace_shared: yes\n", field: "workspace_shared", line: 13, contains: "expected true or false")
        assertError(Self.minimal + "workspace_shared: [a]\n", field: "workspace_shared", line: 13, contains: "found a list")
    }

    func testSandboxErrors() {
        let cases: [(String, String, String)] = [
            ("yes", "sandbox", "expected true, false or a sandbox mapping, found string 'yes'"),
            ("[a]", "sandbox", "expected true, false or a sandbox mapping, found a list"),
            ("{network: on}", "sandbox.network", "expected true or false"),
            (
                "{netwrok: true}", "sandbox.netwrok",
                "allowed: enabled, network, cpu_seconds, memory_mb, processes, job_memory_mb, job_processes, writable, env"
            ),
            (
                "{enabled: false, network: true}", "sandbox.network",
                "the sandbox is disabled ('enabled: false'); leave out its other settings"
            ),
            ("{cpu_seconds: 0}", "sandbox.cpu_seconds", "must be between 1 and 1000000"),
            ("{memory_mb: 8}", "sandbox.memory_mb", "must be between 16 and 16777216"),
            ("{processes: 1.5}", "sandbox.processes", "expected an integer"),
            ("{writable: [tmp/x]}", "sandbox.writable[0]", "expected an absolute path, found 'tmp/x'"),
            ("{writable: [/]}", "sandbox.writable[0]", "'/' would make the whole filesystem writable"),
            ("{writable: [/a, /a]}", "sandbox.writable[1]", "'/a' is listed twice"),
            ("{env: [A-B]}", "sandbox.env[0]", "expected the NAME of an environment variable"),
            ("{env: [OPENAI_API_KEY]}", "sandbox.env[0]", "'OPENAI_API_KEY' holds an API key of this plan; commands never get it"),
            ("{env: [AGENTD_WORKSPACE]}", "sandbox.env[0]", "'AGENTD_WORKSPACE' is set by agentd for every command"),
            ("{env: [A, A]}", "sandbox.env[1]", "'A' is listed twice"),
        ]
        for (value, field, message) in cases {
            assertError(Self.minimal + "sandbox: \(value)\n", field: field, line: 13, contains: message)
        }
        let keyed = """
            name: t
            models:
              m: {backend: openai, model: x, api_key_env: MY_KEY}
            roles:
              actor: {model: m, prompt: a}
              critic: {model: m, prompt: c}
              verifier: {command: ["true"]}
            steps: [one]
            sandbox:
              env: [HOME, MY_KEY]
            """
        assertError(keyed, field: "sandbox.env[1]", line: 10, contains: "'MY_KEY' holds an API key of this plan")
    }

    func testUnknownKey() {
        assertError(
            minimal(replacing: 10, with: "  critic: {model: m, prompt: judge, temprature: 0.5}"), field: "roles.critic.temprature",
            line: 10, contains: "unknown key 'temprature' in a model critic (allowed: model, prompt, tools, temperature, max_tool_turns)")
        assertError(
            minimal(replacing: 12, with: "stpes: [one]"), field: "stpes", line: 12,
            contains: "allowed: name, description, models, roles, steps, workspace, workspace_shared, sandbox, policy")
        assertError(
            minimal(replacing: 11, with: "  verifier: {command: [x], model: m}"), field: "roles.verifier.model", line: 11,
            contains: "unknown key 'model' in a command verifier")
        assertError(
            minimal(replacing: 4, with: "    backend: scripted\n    command: [x]"), field: "models.m.command", line: 5,
            contains: "allowed: backend, script, script_file")
    }

    /// A plan's command opts out of the sandbox and names its variables (secrets allowed) on its own;
    /// both survive the snapshot, and agentd's own variables or a repeated name are refused.
    func testCommandSandboxAndEnvironment() throws {
        let plan = try PlanLoader.parse(
            yaml: minimal(replacing: 11, with: "  verifier: {command: [x], sandbox: false, env: [OPENAI_API_KEY, TOKEN]}"), file: "p.yaml",
            baseDirectory: nil)
        guard case let .command(command) = plan.verifier else { return XCTFail("a command verifier") }
        XCTAssertFalse(command.sandboxed)
        XCTAssertEqual(command.environment, ["OPENAI_API_KEY", "TOKEN"])
        XCTAssertEqual(try Plan(json: plan.json), plan, "the snapshot round-trips")
        let sandboxed = try PlanLoader.parse(
            yaml: minimal(replacing: 11, with: "  verifier: {command: [x]}"), file: "p.yaml", baseDirectory: nil)
        guard case let .command(plain) = sandboxed.verifier else { return XCTFail("a command verifier") }
        XCTAssertTrue(plain.sandboxed, "sandboxed unless it says otherwise")
        XCTAssertFalse(sandboxed.json.encoded.contains("\"sandbox\":false"))
        assertError(
            minimal(replacing: 11, with: "  verifier: {command: [x], env: [AGENTD_CALL_ID]}"), field: "roles.verifier.env[0]", line: 11,
            contains: "'AGENTD_CALL_ID' is set by agentd for every command")
        assertError(
            minimal(replacing: 11, with: "  verifier: {command: [x], env: [A, A]}"), field: "roles.verifier.env[1]", line: 11,
            contains: "'A' is listed twice")
        assertError(
            minimal(replacing: 11, with: "  verifier: {command: [x], sandbox: maybe}"), field: "roles.verifier.sandbox", line: 11,
            contains: "expected true or false")
    }

    /// A critic is a model role or a command, like the verifier: a command critic takes the command
    /// keys and survives the snapshot; a mix of both, or a command that is not one, is refused naming
    /// the field.
    func testCommandCritic() throws {
        let plan = try PlanLoader.parse(
            yaml: minimal(
                replacing: 10, with: "  critic: {command: [python3, check.py, \"{goal}\"], cwd: tools, timeout: 20s, env: [TOKEN]}"),
            file: "p.yaml", baseDirectory: nil)
        var expected = CommandSpec(argv: ["python3", "check.py", "{goal}"], cwd: "tools", timeoutSeconds: 20)
        expected.environment = ["TOKEN"]
        XCTAssertEqual(plan.critic, .command(expected))
        XCTAssertNil(plan.roleSpec(.critic), "a command critic has no model role")
        XCTAssertEqual(try Plan(json: plan.json), plan, "the snapshot round-trips")
        let plain = try PlanLoader.parse(yaml: minimal(replacing: 10, with: "  critic: {command: [x]}"), file: "p.yaml", baseDirectory: nil)
        XCTAssertEqual(plain.critic, .command(CommandSpec(argv: ["x"], timeoutSeconds: 300)), "sandboxed, five minutes")
        let unconfined = try PlanLoader.parse(
            yaml: minimal(replacing: 10, with: "  critic: {command: [x], sandbox: false}"), file: "p.yaml", baseDirectory: nil)
        guard case let .command(command) = unconfined.critic else { return XCTFail("a command critic") }
        XCTAssertFalse(command.sandboxed)
        let model = try PlanLoader.parse(yaml: Self.minimal, file: "p.yaml", baseDirectory: nil)
        XCTAssertEqual(model.critic, .model(RoleSpec(model: "m", prompt: "judge")))

        assertError(
            minimal(replacing: 10, with: "  critic: {command: [x], model: m, prompt: judge}"), field: "roles.critic.model", line: 10,
            contains:
                "unknown key 'model' in a command critic (allowed: command, cwd, timeout, sandbox, env); a critic is either a command or a model role, not both"
        )
        assertError(
            minimal(replacing: 10, with: "  critic: {model: m, prompt: judge, timeout: 5s}"), field: "roles.critic.timeout", line: 10,
            contains:
                "unknown key 'timeout' in a model critic (allowed: model, prompt, tools, temperature, max_tool_turns); a command critic has"
        )
        assertError(
            minimal(replacing: 10, with: "  critic: {command: []}"), field: "roles.critic.command", line: 10,
            contains: "expected a non-empty list: the program and its arguments")
        assertError(
            minimal(replacing: 10, with: "  critic: {command: [\"\", x]}"), field: "roles.critic.command[0]", line: 10,
            contains: "the program name is empty")
        assertError(
            minimal(replacing: 10, with: "  critic: {command: \"make check\"}"), field: "roles.critic.command", line: 10,
            contains: "expected a command as a list of strings (argv, no shell)")
        assertError(
            minimal(replacing: 10, with: "  critic: {command: [x], timeout: 0}"), field: "roles.critic.timeout", line: 10,
            contains: "must be greater than zero")
        assertError(
            minimal(replacing: 10, with: "  critic: {command: [x], env: [AGENTD_STEP_OUTPUT]}"), field: "roles.critic.env[0]", line: 10,
            contains: "'AGENTD_STEP_OUTPUT' is set by agentd")
        assertError(
            minimal(replacing: 10, with: "  critic: [x]"), field: "roles.critic", line: 10, contains: "expected a critic (a mapping)")
    }

    /// The ground-truth check is a command with a command critic's keys; it survives the snapshot, a
    /// plan without one has none, and anything but a command is refused naming the field.
    func testCheck() throws {
        let plan = try PlanLoader.parse(
            yaml: Self.minimal + "check: {command: [python3, hidden.py, \"{goal}\"], cwd: checks, timeout: 20s, sandbox: false}\n",
            file: "p.yaml", baseDirectory: nil)
        var expected = CommandSpec(argv: ["python3", "hidden.py", "{goal}"], cwd: "checks", timeoutSeconds: 20)
        expected.sandboxed = false
        XCTAssertEqual(plan.check, expected)
        XCTAssertEqual(try Plan(json: plan.json), plan, "the snapshot round-trips")
        let without = try PlanLoader.parse(yaml: Self.minimal, file: "p.yaml", baseDirectory: nil)
        XCTAssertNil(without.check)
        XCTAssertNil(without.json["check"], "a plan without a check has the snapshot it had before")
        XCTAssertEqual(
            try PlanLoader.parse(yaml: Self.minimal + "check: {command: [x]}\n", file: "p.yaml", baseDirectory: nil).check,
            CommandSpec(argv: ["x"], timeoutSeconds: 300))
        assertError(
            Self.minimal + "check: {model: m, prompt: judge}\n", field: "check.model", line: 13,
            contains: "unknown key 'model' in a check (a command: the ground truth of every judged output)")
        assertError(Self.minimal + "check: {cwd: x}\n", field: "check.command", line: 13, contains: "missing required key 'command'")
        assertError(Self.minimal + "check: [x]\n", field: "check", line: 13, contains: "expected a check")
    }

    func testWrongType() {
        assertError(minimal(replacing: 1, with: "name: [a]"), field: "name", line: 1, contains: "expected a string, found a list")
        assertError(
            minimal(replacing: 10, with: "  critic: {model: m, prompt: judge, temperature: hot}"), field: "roles.critic.temperature",
            line: 10, contains: "expected a number, found string 'hot'")
        assertError(
            minimal(replacing: 11, with: "  verifier: {command: [sleep, 5]}"), field: "roles.verifier.command[1]", line: 11,
            contains: "expected a string, found integer 5")
        assertError(
            minimal(replacing: 7, with: "          - {step: first, reply: 1}"), field: "models.m.script.actor[0].step", line: 7,
            contains: "found string 'first'")
        assertError(
            minimal(replacing: 7, with: "          - {feedback: 1, reply: 1}"), field: "models.m.script.actor[0].feedback", line: 7,
            contains: "expected true or false, found integer 1")
        assertError(minimal(replacing: 2...7, with: "models: []"), field: "models", line: 2, contains: "(a mapping), found a list")
    }

    func testUnknownModelReference() {
        let yaml = minimal(replacing: 10, with: "  critic: {model: gpt, prompt: judge}")
        assertError(yaml, field: "roles.critic.model", line: 10, contains: "unknown model 'gpt' (known: m)")
        XCTAssertEqual(
            parseError(yaml)?.description, "t.yaml:10:19: roles.critic.model: unknown model 'gpt' (known: m)")
    }

    func testUnknownBackend() {
        assertError(
            minimal(replacing: 4, with: "    backend: grpc"), field: "models.m.backend", line: 4,
            contains: "unknown backend 'grpc' (allowed: scripted, command, openai)")
    }

    func testOpenAIModel() throws {
        let yaml = """
            name: t
            models:
              m:
                backend: openai
                base_url: http://127.0.0.1:8088/v1
                model: smollm2
                api_key_env: LOCAL_KEY
                headers: {X-Team: agents}
                structured_output: json_object
                max_tokens: 200
                seed: 7
                timeout: 30s
                retries: 5
                max_concurrent: 4
            roles:
              actor: {model: m, prompt: act}
              critic: {model: m, prompt: judge}
              verifier: {command: ["true"]}
            steps: [one]
            """
        let plan = try PlanLoader.parse(yaml: yaml, file: "t.yaml", baseDirectory: nil)
        guard case .openai(let spec) = plan.models["m"]?.backend else { return XCTFail("not an openai model") }
        XCTAssertEqual(spec.baseURL, "http://127.0.0.1:8088/v1")
        XCTAssertEqual(spec.model, "smollm2")
        XCTAssertEqual(spec.apiKeyEnv, "LOCAL_KEY")
        XCTAssertEqual(spec.headers, ["X-Team": "agents"])
        XCTAssertEqual(spec.structuredOutput, .jsonObject)
        XCTAssertEqual(spec.maxTokens, 200)
        XCTAssertEqual(spec.seed, 7)
        XCTAssertEqual(spec.timeoutSeconds, 30)
        XCTAssertEqual(spec.retries, 5)
        XCTAssertEqual(spec.maxConcurrent, 4)
        XCTAssertEqual(try Plan(json: plan.json), plan, "the snapshot round-trips")
    }

    func testOpenAIModelErrors() {
        let cases: [(String, String, String)] = [
            ("{backend: openai, model: x, base_url: ftp://h}", "models.m.base_url", "expected an http:// or https:// URL"),
            ("{backend: openai, model: x, api_key_env: sk-123}", "models.m.api_key_env", "the NAME of an environment variable"),
            (
                "{backend: openai, model: x, headers: {Authorization: Bearer sk}}", "models.m.headers.Authorization",
                "do not put it in a plan"
            ),
            ("{backend: openai, model: x, structured_output: xml}", "models.m.structured_output", "unknown structured_output 'xml'"),
            ("{backend: openai, model: x, retries: -1}", "models.m.retries", "must be between 0 and 20"),
        ]
        for (model, field, message) in cases {
            let yaml =
                "name: t\nmodels:\n  m: \(model)\nroles:\n  actor: {model: m, prompt: a}\n  critic: {model: m, prompt: c}\n  verifier: {command: [\"true\"]}\nsteps: [one]\n"
            guard let error = parseError(yaml) else {
                XCTFail("\(model): accepted")
                continue
            }
            XCTAssertEqual(error.field, field, "\(model): \(error)")
            XCTAssertTrue(error.message.contains(message), "\(model): \(error)")
        }
    }

    func testBadDuration() {
        for text in ["30 sec", "10x", "ms", "s5", "[1]"] {
            assertError(
                Self.minimal + "policy:\n  call_timeout: \(text)\n", field: "policy.call_timeout", line: 14,
                contains: "expected a duration")
        }
        assertError(Self.minimal + "policy:\n  call_timeout: 0\n", field: "policy.call_timeout", line: 14, contains: "greater than zero")
        assertError(Self.minimal + "policy:\n  job_timeout: -1s\n", field: "policy.job_timeout", line: 14, contains: "must not be negative")
        assertError(
            Self.minimal + "policy:\n  step_timeout: -2\n", field: "policy.step_timeout", line: 14, contains: "must not be negative")
        assertError(
            Self.minimal + "policy:\n  step_timeout: soon\n", field: "policy.step_timeout", line: 14, contains: "expected a duration")
        assertError(
            minimal(replacing: 11, with: "  verifier: {command: [x], timeout: soon}"), field: "roles.verifier.timeout", line: 11,
            contains: "expected a duration")
    }

    func testEmptyStepsList() {
        assertError(minimal(replacing: 12, with: "steps: []"), field: "steps", line: 12, contains: "at least one step")
        assertError(minimal(replacing: 12, with: "steps:\n  - a\n  - ''"), field: "steps[1]", line: 14, contains: "must not be empty")
    }

    func testBothReplyAndRawInARule() {
        assertError(
            minimal(replacing: 7, with: "          - reply: {output: x}\n            raw: \"y\""), field: "models.m.script.actor[0].raw",
            line: 8, contains: "either 'reply' or 'raw', not both")
        assertError(
            minimal(replacing: 7, with: "          - step: 0"), field: "models.m.script.actor[0]", line: 7,
            contains: "needs 'reply' (a value) or 'raw' (a string)")
    }

    func testMaxAttemptsOutOfRange() {
        for value in ["0", "101", "-1"] {
            assertError(
                Self.minimal + "policy:\n  max_replans: 1\n  max_attempts: \(value)\n", field: "policy.max_attempts", line: 15,
                contains: "must be between 1 and 100, found \(value)")
        }
        assertError(
            Self.minimal + "policy: {max_attempts: 2.5}\n", field: "policy.max_attempts", line: 13,
            contains: "expected an integer, found number 2.5")
        assertError(
            Self.minimal + "policy: {retry_temperature_step: 3}\n", field: "policy.retry_temperature_step", line: 13,
            contains: "must be between 0 and 2, found 3")
    }

    /// `policy.samples`: 1 to 16 candidates per attempt, kept in the snapshot; a scripted rule tells
    /// them apart by `sample`; gates cannot be combined with more than one.
    func testSamples() throws {
        XCTAssertEqual(try PlanLoader.parse(yaml: Self.minimal, file: "p.yaml", baseDirectory: nil).policy.samples, 1)
        for value in [1, 16] {
            let plan = try PlanLoader.parse(yaml: Self.minimal + "policy: {samples: \(value)}\n", file: "p.yaml", baseDirectory: nil)
            XCTAssertEqual(plan.policy.samples, value)
            XCTAssertEqual(try Plan(json: plan.json), plan, "the snapshot keeps it")
        }
        for value in ["0", "17"] {
            assertError(
                Self.minimal + "policy: {samples: \(value)}\n", field: "policy.samples", line: 13,
                contains: "must be between 1 and 16, found \(value)")
        }
        let gated =
            Self.minimal.replacingOccurrences(of: "prompt: act}", with: "prompt: act, tools: [run_command]}")
            + "gates:\n  - {tool: run_command, review: human}\npolicy: {samples: 2}\n"
        assertError(gated, field: "gates", line: 14, contains: "gates cannot be combined with policy.samples above 1")
        XCTAssertNoThrow(
            try PlanLoader.parse(yaml: gated.replacingOccurrences(of: "samples: 2", with: "samples: 1"), file: "p.yaml", baseDirectory: nil)
        )

        let rule = try PlanLoader.parse(
            yaml: Self.minimal.replacingOccurrences(of: "- reply: {output: x}", with: "- {sample: [1, 2], reply: {output: \"k{sample}\"}}"),
            file: "p.yaml", baseDirectory: nil)
        guard case let .scripted(script)? = rule.models["m"]?.backend else { return XCTFail("not scripted") }
        var context = CallContext(jobID: "j", role: .actor, step: 0, attempt: 0, replan: 0, reask: 0, hasFeedback: false, goal: "g")
        XCTAssertThrowsError(try ScriptedBackend(script: script).reply(to: context), "sample 0 (no sample) matches no rule")
        context.sample = 2
        XCTAssertEqual(try ScriptedBackend(script: script).reply(to: context).content, #"{"output":"k2"}"#)
        XCTAssertEqual(try Plan(json: rule.json), rule, "the snapshot keeps the rule's samples")
    }

    /// The tool output budgets: each at least the one below it; left out, each rises to the one
    /// below it when that is larger than its default (so raising only `tool_output_cap` works, and a
    /// snapshot stored before the keys existed still loads).
    func testToolOutputBudgets() throws {
        let defaults = try PlanLoader.parse(yaml: Self.minimal, file: "p.yaml", baseDirectory: nil).policy
        XCTAssertEqual(
            [defaults.toolOutputCap, defaults.turnToolOutputCap, defaults.jobToolOutputCap, defaults.maxToolCallsPerTurn],
            [65536, 1 << 20, 16 << 20, 16])
        let raised = try PlanLoader.parse(yaml: Self.minimal + "policy: {tool_output_cap: 8388608}\n", file: "p.yaml", baseDirectory: nil)
        XCTAssertEqual([raised.policy.turnToolOutputCap, raised.policy.jobToolOutputCap], [8 << 20, 16 << 20])
        let set = try PlanLoader.parse(
            yaml: Self.minimal
                + "policy: {tool_output_cap: 1000, turn_tool_output_cap: 5000, job_tool_output_cap: 9000, max_tool_calls_per_turn: 3}\n",
            file: "p.yaml", baseDirectory: nil)
        XCTAssertEqual(
            [set.policy.toolOutputCap, set.policy.turnToolOutputCap, set.policy.jobToolOutputCap, set.policy.maxToolCallsPerTurn],
            [1000, 5000, 9000, 3])
        XCTAssertEqual(try Plan(json: set.json), set, "the snapshot keeps them")
        assertError(
            Self.minimal + "policy: {tool_output_cap: 4096, turn_tool_output_cap: 2048}\n", field: "policy.turn_tool_output_cap",
            line: 13, contains: "2048 is less than tool_output_cap (4096)")
        assertError(
            Self.minimal + "policy: {tool_output_cap: 8388608, job_tool_output_cap: 4194304}\n", field: "policy.job_tool_output_cap",
            line: 13, contains: "4194304 is less than turn_tool_output_cap (8388608)")
        assertError(
            Self.minimal + "policy: {max_tool_calls_per_turn: 0}\n", field: "policy.max_tool_calls_per_turn", line: 13,
            contains: "must be between 1 and 1000, found 0")
    }

    func testYAMLSyntaxError() {
        assertErrorAtLine(minimal(replacing: 9, with: "  actor: model: m"), line: 9, contains: "YAML syntax error")
        assertErrorAtLine(minimal(replacing: 12, with: "steps: [one"), line: 13, contains: "YAML syntax error")
        assertErrorAtLine(minimal(replacing: 5, with: "      script:"), line: 5, contains: "YAML syntax error")
        assertErrorAtLine(
            minimal(replacing: 12, with: "name: again"), line: 12, contains: "duplicate key 'name' in a mapping (first at line 1)")
        assertErrorAtLine(
            minimal(replacing: 9, with: "  actor: {model: m, prompt: a, model: n}"), line: 9, contains: "duplicate key 'model'")
        assertErrorAtLine(Self.minimal + "---\nname: u\n", line: 13, contains: "expected a single document")
    }

    func assertErrorAtLine(
        _ yaml: String, line expectedLine: Int, contains text: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        guard let error = parseError(yaml, file: file, line: line) else { return }
        XCTAssertEqual(error.field, "", "\(error)", file: file, line: line)
        XCTAssertEqual(error.line, expectedLine, "\(error)", file: file, line: line)
        XCTAssertTrue(error.message.contains(text), "\(error)", file: file, line: line)
    }

    func testMissingScriptFile() {
        let yaml = minimal(replacing: 5...7, with: "    script_file: fixtures/missing.yaml")
        assertError(
            yaml, field: "models.m.script_file", line: 5, contains: "fixtures/missing.yaml': No such file or directory",
            base: tempDirectory.path)
    }

    /// A device or a FIFO is never read: `/dev/zero` would fill memory, a FIFO with no writer would block.
    func testAScriptFileMustBeARegularFile() throws {
        let fifo = tempDirectory.appendingPathComponent("fixtures/fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0, String(cString: strerror(errno)))
        for path in ["/dev/zero", fifo] {
            assertError(
                minimal(replacing: 5...7, with: "    script_file: \(path)"), field: "models.m.script_file", line: 5,
                contains: "cannot read the script file '\(path)': not a regular file")
        }
    }

    func testAScriptFileMayHoldAtMost16MiB() throws {
        let path = tempDirectory.appendingPathComponent("fixtures/big.yaml").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        XCTAssertEqual(truncate(path, off_t(YAMLDocument.maxFileBytes + 1)), 0)
        assertError(
            minimal(replacing: 5...7, with: "    script_file: \(path)"), field: "models.m.script_file", line: 5,
            contains: "cannot read the script file '\(path)': larger than 16 MiB")
    }

    func testErrorInsideAScriptFileNamesThatFile() throws {
        let path = tempDirectory.appendingPathComponent("fixtures/bad.yaml").path
        try "critic:\n  - reply: 1\n  - step: -1\n    reply: 2\n".write(toFile: path, atomically: true, encoding: .utf8)
        let yaml = minimal(replacing: 5...7, with: "    script_file: fixtures/bad.yaml")
        let error = try XCTUnwrap(parseError(yaml, base: tempDirectory.path))
        XCTAssertEqual(error.file, path)
        XCTAssertEqual(error.field, "critic[1].step")
        XCTAssertEqual(error.line, 3)
        XCTAssertTrue(error.message.contains("must be at least 0"), "\(error)")
    }

    func testBothScriptAndScriptFile() {
        assertError(
            minimal(replacing: 4, with: "    backend: scripted\n    script_file: x.yaml"), field: "models.m.script", line: 6,
            contains: "either 'script' or 'script_file', not both")
    }

    func testReplyScalarsFollowTheCoreSchema() {
        assertError(
            minimal(replacing: 7, with: "          - reply: {n: .inf}"), field: "models.m.script.actor[0].reply.n", line: 7,
            contains: "no infinity or NaN")
        assertError(
            minimal(replacing: 7, with: "          - step: !!int x\n            reply: 1"), field: "models.m.script.actor[0].step", line: 7,
            contains: "'x' is not a valid int")
    }

    func testAliasesExpandWithinABudget() {
        var yaml = "name: t\nmodels:\n  m:\n    backend: scripted\n    script:\n      actor:\n        - reply:\n"
        yaml += "            a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...4 {
            let previous = "*a\(level - 1)"
            yaml += "            a\(level): &a\(level) [\(Array(repeating: previous, count: 10).joined(separator: ", "))]\n"
        }
        yaml += "roles: {}\n"
        // About 123,000 values once expanded (within YAMLBounds.maxNodes); the loader stops at its budget instead.
        let error = parseError(yaml)
        XCTAssertEqual(error?.field.hasPrefix("models.m.script.actor[0].reply.a"), true, "\(String(describing: error))")
        XCTAssertEqual(error?.message.contains("more than 100000 values"), true, "\(String(describing: error))")
    }

    func testUnreadablePlanFile() {
        let path = tempDirectory.appendingPathComponent("nope.yaml").path
        XCTAssertThrowsError(try PlanLoader.load(path: path)) { error in
            guard let error = error as? PlanError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.file, path)
            XCTAssertNil(error.line)
            XCTAssertEqual(error.description, "\(path): cannot read the plan file: No such file or directory")
        }
        XCTAssertThrowsError(try PlanLoader.load(path: tempDirectory.path)) { error in
            XCTAssertTrue("\(error)".hasSuffix("Is a directory"), "\(error)")
        }
        XCTAssertThrowsError(try PlanLoader.load(path: "/dev/zero")) { error in
            XCTAssertEqual("\(error)", "/dev/zero: cannot read the plan file: not a regular file")
        }
    }

    func testEmptyDocument() {
        let error = parseError("# nothing here\n")
        XCTAssertEqual(error?.description, "t.yaml: the file is empty; expected a plan")
    }

    func testErrorDescription() {
        XCTAssertEqual(
            PlanError(
                file: "plans/x.yaml", line: 12, column: 5, field: "roles.critic.model", message: "unknown model 'gpt' (known: script)"
            )
            .description,
            "plans/x.yaml:12:5: roles.critic.model: unknown model 'gpt' (known: script)")
        XCTAssertEqual(PlanError(file: "x.yaml", line: 3, field: "", message: "bad").description, "x.yaml:3: bad")
        XCTAssertEqual(PlanError(file: "", field: "steps[2]", message: "bad").description, "steps[2]: bad")
    }
}
