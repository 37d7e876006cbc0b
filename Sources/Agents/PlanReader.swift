import Store

/// One pass over one plan document, or a script file: the plan's schema. Each field is checked by
/// the function named after it, in this file and its extensions by concern (`+Roles`, `+Models`,
/// `+Script`, `+ToolOutput`); the typed reads (`string`, `int`, `duration`, ...) and the errors come
/// from `YAMLReader`.
struct PlanReader: YAMLReader {
    let file: String
    let baseDirectory: String?
    /// Whether `script_file` and `ca_file` are allowed (see `PlanLoader.parse`).
    var readsFiles = true
    /// Bounds the JSON built from replies: aliases can make a small file expand exponentially.
    let budget = Budget(values: 100_000)

    final class Budget {
        var values: Int
        init(values: Int) { self.values = values }
    }

    static let planKeys = [
        "name", "description", "models", "roles", "steps", "workspace", "workspace_shared", "sandbox", "policy", "gates", "check",
    ]
    static let sandboxKeys = [
        "enabled", "network", "cpu_seconds", "memory_mb", "processes", "job_memory_mb", "job_processes", "writable", "env",
    ]
    static let roleKeys = ["model", "prompt", "tools", "temperature"]
    /// A model critic's keys: a role's, and its own tool-turn budget.
    static let criticKeys = roleKeys + ["max_tool_turns"]
    static let commandKeys = ["command", "cwd", "timeout", "sandbox", "env"]
    static let ruleKeys = ["step", "attempt", "replan", "reask", "feedback", "turn", "sample", "gate", "reply", "raw"]

    // MARK: Plan

    func plan(_ root: YAMLField) throws(PlanError) -> Plan {
        let doc = try mapping(root, allowed: Self.planKeys, what: "a plan")
        let name = try nonEmptyString(require(doc, "name"))
        let description = try doc["description"].map { (f) throws(PlanError) in try string(f) }
        let (models, modelNames) = try models(require(doc, "models"))
        let stepList = try doc["steps"].map { (f) throws(PlanError) in try self.steps(f) }
        let steps = stepList?.map(\.text)

        let rolesField = try require(doc, "roles")
        let roles = try mapping(rolesField, allowed: Role.allCases.map(\.rawValue), what: "the roles")
        var planner: RoleSpec?
        if let field = roles["planner"] {
            planner = try role(field, models, modelNames)
        } else if steps == nil {
            throw fail(
                rolesField.ownerMark, rolesField.child("planner", rolesField.node, keyMark: nil).path,
                "missing required key 'planner' (a plan without 'steps' needs a planner to make them)")
        }
        // Read before the critic, whose run_command needs the sandbox.
        let sandbox = try doc["sandbox"].map { (f) throws(PlanError) in try self.sandbox(f, models) } ?? Sandbox()
        let actor = try role(require(roles, "actor"), models, modelNames, toolUse: .any)
        let critic = try critic(require(roles, "critic"), models, modelNames, sandboxed: sandbox.enabled)
        let verifier = try verifier(require(roles, "verifier"), models, modelNames)
        let workspace = try doc["workspace"].map { (f) throws(PlanError) in try nonEmptyString(f) }
        let workspaceShared = try doc["workspace_shared"].map { (f) throws(PlanError) in try bool(f) } ?? false
        let policy = try doc["policy"].map { (f) throws(PlanError) in try self.policy(f) } ?? Policy()
        let gates = try doc["gates"].map { (f) throws(PlanError) in try self.gates(f, actorTools: actor.tools, critic: critic) } ?? []
        let check = try doc["check"].map { (f) throws(PlanError) in try self.check(f) }
        if policy.samples > 1, !gates.isEmpty, let field = doc["gates"] {
            throw fail(
                field.mark, field.path,
                "gates cannot be combined with policy.samples above 1 (an attempt's candidates call tools concurrently, and a gate waits for one decision at a time)"
            )
        }
        return Plan(
            name: name, description: description, models: models, planner: planner, actor: actor, critic: critic,
            verifier: verifier, steps: steps, workspace: workspace, workspaceShared: workspaceShared, sandbox: sandbox, policy: policy,
            gates: gates, stepReviews: stepList?.enumerated().reduce(into: [:]) { $0[$1.offset] = $1.element.review } ?? [:],
            check: check)
    }

    /// `true`, `false`, or a mapping of `sandboxKeys`. A disabled sandbox takes no other key: its
    /// settings would do nothing.
    func sandbox(_ field: YAMLField, _ models: [String: ModelSpec]) throws(PlanError) -> Sandbox {
        if case let .scalar(scalar) = field.node, case let .bool(on) = try resolve(scalar, field) { return on ? Sandbox() : .off }
        guard case .mapping = field.node else {
            throw fail(field.mark, field.path, "expected true, false or a sandbox mapping, found \(found(field.node))")
        }
        let entries = try mapping(field, allowed: Self.sandboxKeys, what: "a sandbox")
        var sandbox = Sandbox()
        if let f = entries["enabled"] { sandbox.enabled = try bool(f) }
        if !sandbox.enabled, let other = entries.entries.first(where: { $0.name != "enabled" }) {
            throw fail(
                other.key.mark, field.child(other.name, other.value, keyMark: nil).path,
                "the sandbox is disabled ('enabled: false'); leave out its other settings")
        }
        if let f = entries["network"] { sandbox.network = try bool(f) }
        if let f = entries["cpu_seconds"] { sandbox.cpuSeconds = try int(f, in: 1...1_000_000) }
        if let f = entries["memory_mb"] { sandbox.memoryMB = try int(f, in: 16...16_777_216) }
        if let f = entries["processes"] { sandbox.processes = try int(f, in: 1...1_000_000) }
        if let f = entries["job_memory_mb"] { sandbox.jobMemoryMB = try int(f, in: 16...16_777_216) }
        if let f = entries["job_processes"] { sandbox.jobProcesses = try int(f, in: 1...1_000_000) }
        if let f = entries["writable"] { sandbox.writable = try writablePaths(f) }
        if let f = entries["env"] { sandbox.environment = try passedVariables(f, models) }
        return sandbox
    }

    /// Absolute paths, each once; `/` is refused (that is no sandbox at all).
    func writablePaths(_ field: YAMLField) throws(PlanError) -> [String] {
        var paths: [String] = []
        for (index, node) in try list(field, what: "a list of absolute paths").enumerated() {
            let item = field.item(index, node)
            let path = try nonEmptyString(item)
            guard path.hasPrefix("/") else { throw fail(item.mark, item.path, "expected an absolute path, found '\(path)'") }
            guard path.contains(where: { $0 != "/" }) else {
                throw fail(item.mark, item.path, "'/' would make the whole filesystem writable; use 'sandbox: false' instead")
            }
            guard !paths.contains(path) else { throw fail(item.mark, item.path, "'\(path)' is listed twice") }
            paths.append(path)
        }
        return paths
    }

    /// Variable names, each once; never one agentd sets itself, nor one that holds the plan's API keys.
    func passedVariables(_ field: YAMLField, _ models: [String: ModelSpec]) throws(PlanError) -> [String] {
        var keys: Set<String> = ["OPENAI_API_KEY"]
        for model in models.values {
            if case let .openai(spec) = model.backend { keys.insert(spec.apiKeyEnv) }
        }
        var names: [String] = []
        for (index, node) in try list(field, what: "a list of environment variable names").enumerated() {
            let item = field.item(index, node)
            let name = try variableName(item)
            guard !keys.contains(name) else {
                throw fail(item.mark, item.path, "'\(name)' holds an API key of this plan; commands never get it")
            }
            guard !Self.agentdVariables.contains(name) else {
                throw fail(item.mark, item.path, "'\(name)' is set by agentd for every command")
            }
            guard !names.contains(name) else { throw fail(item.mark, item.path, "'\(name)' is listed twice") }
            names.append(name)
        }
        return names
    }

    /// Letters, digits and `_`, not starting with a digit.
    /// Each step is its text, or `{text, review}` for a step whose accepted output a person reviews.
    func steps(_ field: YAMLField) throws(PlanError) -> [(text: String, review: GateRule.Review?)] {
        let items = try list(field, what: "a list of step descriptions")
        guard !items.isEmpty else {
            throw fail(field.mark, field.path, "expected at least one step (leave 'steps' out to let the planner make them)")
        }
        var steps: [(text: String, review: GateRule.Review?)] = []
        for (index, node) in items.enumerated() {
            let item = field.item(index, node)
            guard case .mapping = item.node else {
                steps.append((try nonEmptyString(item), nil))
                continue
            }
            let entries = try mapping(item, allowed: ["text", "review"], what: "a step")
            let text = try nonEmptyString(require(entries, "text"))
            let reviewField = try require(entries, "review")
            let word = try nonEmptyString(reviewField)
            guard let review = GateRule.Review(rawValue: word), review == .human || review == .criticThenHuman else {
                throw fail(
                    reviewField.mark, reviewField.path,
                    "a step's review is human or critic_then_human (a person decides, or only when the critic's pass is not confident), not '\(word)'"
                )
            }
            steps.append((text, review))
        }
        return steps
    }

    func policy(_ field: YAMLField) throws(PlanError) -> Policy {
        let keys = [
            "max_attempts", "max_replans", "max_invalid_replies", "call_timeout", "step_timeout", "job_timeout", "retry_temperature_step",
            "max_tokens", "tool_timeout", "max_tool_turns", "tool_output_cap", "max_tool_calls_per_turn", "turn_tool_output_cap",
            "job_tool_output_cap", "pass_score", "replan_below", "approval_timeout", "on_approval_timeout", "max_rejections",
            "max_rejections_per_step", "on_exhausted", "samples",
        ]
        let entries = try mapping(field, allowed: keys, what: "a policy")
        var policy = Policy()
        if let f = entries["max_attempts"] { policy.maxAttempts = try int(f, in: 1...100) }
        if let f = entries["max_replans"] { policy.maxReplans = try int(f, in: 0...100) }
        if let f = entries["max_invalid_replies"] { policy.maxInvalidReplies = try int(f, in: 0...100) }
        if let f = entries["call_timeout"] { policy.callTimeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["step_timeout"] { policy.stepTimeoutSeconds = try duration(f, allowZero: true) }
        if let f = entries["job_timeout"] { policy.jobTimeoutSeconds = try duration(f, allowZero: true) }
        if let f = entries["pass_score"] { policy.passScore = try number(f, in: 0...1) }
        if let f = entries["replan_below"] { policy.replanBelow = try number(f, in: 0...1) }
        if let f = entries["approval_timeout"] { policy.approvalTimeoutSeconds = try duration(f, allowZero: true) }
        if let f = entries["on_approval_timeout"] {
            let word = try nonEmptyString(f)
            guard let action = Policy.ApprovalTimeout(rawValue: word) else {
                throw fail(f.mark, f.path, "unknown action '\(word)' (known: reject, fail)")
            }
            policy.onApprovalTimeout = action
        }
        if let f = entries["max_rejections"] { policy.maxRejections = try int(f, in: 0...1000) }
        if let f = entries["max_rejections_per_step"] { policy.maxRejectionsPerStep = try int(f, in: 0...1000) }
        if let f = entries["on_exhausted"] {
            let word = try nonEmptyString(f)
            guard let action = Policy.Exhausted(rawValue: word) else {
                throw fail(
                    f.mark, f.path, "unknown action '\(word)' (known: \(Policy.Exhausted.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            policy.onExhausted = action
        }
        if let f = entries["samples"] { policy.samples = try int(f, in: 1...Policy.maxSamples) }
        if let f = entries["retry_temperature_step"] { policy.retryTemperatureStep = try number(f, in: 0...2) }
        if let f = entries["max_tokens"] { policy.maxTokens = try int(f, in: 0...Int.max) }
        if let f = entries["tool_timeout"] { policy.toolTimeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["max_tool_turns"] { policy.maxToolTurns = try int(f, in: 1...100) }
        if let f = entries["tool_output_cap"] { policy.toolOutputCap = try int(f, in: 1...(64 << 20)) }
        if let f = entries["max_tool_calls_per_turn"] { policy.maxToolCallsPerTurn = try int(f, in: 1...1000) }
        try toolOutputBudgets(entries, &policy)
        return policy
    }
}
