import Store

/// The plan as a JSON document in the plan-file format, and back.
///
/// This is the snapshot stored with each job, so a job never depends on its plan file still existing
/// or being unchanged. JSON is YAML, so the snapshot is itself a valid plan file:
/// `PlanLoader.parse(yaml: plan.json.encoded, file: "<snapshot>", baseDirectory: nil)` returns a plan
/// equal to `plan`. The document is self-contained and canonical: a `script_file` appears inlined as
/// `script`, durations are numbers of seconds, defaults are written out, models are sorted by name,
/// script roles follow `Role.allCases`, and rule conditions are sorted.
extension Plan {
    /// The snapshot document (see the extension's description). Pure; safe from any thread.
    public var json: JSON {
        var members: [(String, JSON)] = [("name", .string(name))]
        if let description { members.append(("description", .string(description))) }
        members.append(("models", .object(models.keys.sorted().map { ($0, models[$0]!.json) })))
        var roles: [(String, JSON)] = []
        if let planner { roles.append(("planner", planner.json)) }
        roles.append(("actor", actor.json))
        roles.append(("critic", critic.json))
        roles.append(("verifier", verifier.json))
        members.append(("roles", .object(roles)))
        if let steps {
            let items = steps.enumerated().map { index, text -> JSON in
                guard let review = stepReviews[index] else { return .string(text) }
                return .object([("text", .string(text)), ("review", .string(review.rawValue))])
            }
            members.append(("steps", .array(items)))
        }
        if let workspace { members.append(("workspace", .string(workspace))) }
        members.append(("workspace_shared", .bool(workspaceShared)))
        members.append(("sandbox", sandbox.json))
        members.append(("policy", policy.json))
        if !gates.isEmpty { members.append(("gates", .array(gates.map(\.json)))) }
        if let check { members.append(("check", .object(check.jsonMembers))) }
        return .object(members)
    }

    /// The plan a snapshot document describes, validated like a plan file.
    ///
    /// - Throws: `PlanError` with file `<snapshot>` when the document is not a valid plan.
    public init(json: JSON) throws(PlanError) {
        self = try PlanLoader.parse(yaml: json.encoded, file: "<snapshot>", baseDirectory: nil)
    }
}

extension RoleSpec {
    /// `{model, prompt, tools, temperature, max_tool_turns?}`, as in a plan file's `roles` section
    /// (`max_tool_turns` only when set, so older snapshots keep their bytes).
    public var json: JSON {
        var members: [(String, JSON)] = [
            ("model", .string(model)),
            ("prompt", .string(prompt)),
            ("tools", .array(tools.map(JSON.string))),
            ("temperature", .number(temperature)),
        ]
        if let maxToolTurns { members.append(("max_tool_turns", .int(maxToolTurns))) }
        return .object(members)
    }
}

extension VerifierSpec {
    /// A model role, or `{command, cwd?, timeout}` for a command.
    public var json: JSON {
        switch self {
        case let .command(command): return .object(command.jsonMembers)
        case let .model(role): return role.json
        }
    }
}

extension CriticSpec {
    /// A model role, `{command, cwd?, timeout}` for a command, or `{jury, rule, on_error}` for a jury
    /// (each juror with its name written out).
    public var json: JSON {
        switch self {
        case let .command(command): return .object(command.jsonMembers)
        case let .model(role): return role.json
        case let .jury(jury):
            let jurors = jury.jurors.map { juror -> JSON in
                switch juror.kind {
                case let .model(role): return .object([("name", .string(juror.name))] + (role.json.objectValue ?? []))
                case let .command(command): return .object([("name", .string(juror.name))] + command.jsonMembers)
                }
            }
            return .object([("jury", .array(jurors)), ("rule", .string(jury.rule.text)), ("on_error", .string(jury.onError.rawValue))])
        }
    }
}

extension CommandSpec {
    /// `command`, `cwd` when set, `timeout` in seconds, `sandbox: false` when the command opts out
    /// of the sandbox and `env` when it names variables.
    var jsonMembers: [(String, JSON)] {
        var members: [(String, JSON)] = [("command", .array(argv.map(JSON.string)))]
        if let cwd { members.append(("cwd", .string(cwd))) }
        members.append(("timeout", .number(timeoutSeconds)))
        if !sandboxed { members.append(("sandbox", false)) }
        if !environment.isEmpty { members.append(("env", .array(environment.map(JSON.string)))) }
        return members
    }
}

extension ModelSpec {
    /// `{backend: scripted, script}` or `{backend: command, command, cwd?, timeout}`.
    public var json: JSON {
        switch backend {
        case let .scripted(script):
            return .object([("backend", "scripted"), ("script", script.json)])
        case let .command(command):
            return .object([("backend", "command")] + command.jsonMembers)
        case let .openai(spec):
            return .object([("backend", "openai")] + spec.jsonMembers)
        }
    }
}

extension OpenAISpec {
    /// Every key of an `openai` model, defaults written out, durations in seconds.
    var jsonMembers: [(String, JSON)] {
        var members: [(String, JSON)] = []
        if let baseURL { members.append(("base_url", .string(baseURL))) }
        if let caFile { members.append(("ca_file", .string(caFile))) }
        if let model { members.append(("model", .string(model))) }
        members.append(("api_key_env", .string(apiKeyEnv)))
        if !headers.isEmpty { members.append(("headers", .object(headers.keys.sorted().map { ($0, .string(headers[$0]!)) }))) }
        members.append(("structured_output", .string(structuredOutput.rawValue)))
        if let maxTokens { members.append(("max_tokens", .int(maxTokens))) }
        if let seed { members.append(("seed", .int(seed))) }
        members.append(("timeout", .number(timeoutSeconds)))
        members.append(("connect_timeout", .number(connectTimeoutSeconds)))
        members.append(("idle_timeout", .number(idleTimeoutSeconds)))
        members.append(("retries", .int(retries)))
        members.append(("backoff", .number(backoffSeconds)))
        members.append(("max_concurrent", .int(maxConcurrent)))
        members.append(("max_reply_bytes", .int(maxReplyBytes)))
        if let price { members.append(("price", .object([("input", .number(price.input)), ("output", .number(price.output))]))) }
        if let requestsPerMinute { members.append(("requests_per_minute", .int(requestsPerMinute))) }
        if let tokensPerMinute { members.append(("tokens_per_minute", .int(tokensPerMinute))) }
        members.append(("rate_window", .number(rateWindowSeconds)))
        return members
    }
}

extension Script {
    /// Role -> list of rules, roles in `Role.allCases` order.
    public var json: JSON {
        .object(
            Role.allCases.compactMap { role in
                rules[role].map { (role.rawValue, .array($0.map(\.json))) }
            })
    }
}

extension ScriptRule {
    /// The rule's conditions (one index as a number, several as a sorted list), then `reply` or `raw`.
    public var json: JSON {
        func indexes(_ set: Set<Int>) -> JSON {
            set.count == 1 ? .int(set.first!) : .array(set.sorted().map(JSON.int))
        }
        var members: [(String, JSON)] = []
        if let steps { members.append(("step", indexes(steps))) }
        if let attempts { members.append(("attempt", indexes(attempts))) }
        if let replans { members.append(("replan", indexes(replans))) }
        if let reasks { members.append(("reask", indexes(reasks))) }
        if let feedback { members.append(("feedback", .bool(feedback))) }
        if let turns { members.append(("turn", indexes(turns))) }
        if let samples { members.append(("sample", indexes(samples))) }
        if let gate { members.append(("gate", .bool(gate))) }
        switch reply {
        case let .json(value): members.append(("reply", value))
        case let .raw(text): members.append(("raw", .string(text)))
        }
        return .object(members)
    }
}

extension Sandbox {
    /// Every sandbox key, defaults written out; a disabled sandbox is `{enabled: false}` alone.
    public var json: JSON {
        guard enabled else { return .object([("enabled", false)]) }
        return .object([
            ("enabled", true),
            ("network", .bool(network)),
            ("cpu_seconds", .int(cpuSeconds)),
            ("memory_mb", .int(memoryMB)),
            ("processes", .int(processes)),
            ("job_memory_mb", .int(jobMemoryMB)),
            ("job_processes", .int(jobProcesses)),
            ("writable", .array(writable.map(JSON.string))),
            ("env", .array(environment.map(JSON.string))),
        ])
    }
}

extension Policy {
    /// Every policy key, durations in seconds.
    public var json: JSON {
        .object([
            ("max_attempts", .int(maxAttempts)),
            ("max_replans", .int(maxReplans)),
            ("max_invalid_replies", .int(maxInvalidReplies)),
            ("pass_score", .number(passScore)),
            ("replan_below", .number(replanBelow)),
            ("approval_timeout", .number(approvalTimeoutSeconds)),
            ("on_approval_timeout", .string(onApprovalTimeout.rawValue)),
            ("max_rejections", .int(maxRejections)),
            ("max_rejections_per_step", .int(maxRejectionsPerStep)),
            ("on_exhausted", .string(onExhausted.rawValue)),
            ("samples", .int(samples)),
            ("call_timeout", .number(callTimeoutSeconds)),
            ("step_timeout", .number(stepTimeoutSeconds)),
            ("job_timeout", .number(jobTimeoutSeconds)),
            ("retry_temperature_step", .number(retryTemperatureStep)),
            ("max_tokens", .int(maxTokens)),
            ("tool_timeout", .number(toolTimeoutSeconds)),
            ("max_tool_turns", .int(maxToolTurns)),
            ("tool_output_cap", .int(toolOutputCap)),
            ("max_tool_calls_per_turn", .int(maxToolCallsPerTurn)),
            ("turn_tool_output_cap", .int(turnToolOutputCap)),
            ("job_tool_output_cap", .int(jobToolOutputCap)),
        ])
    }
}

extension GateRule {
    /// The rule as in a plan file's `gates` list.
    public var json: JSON {
        var members: [(String, JSON)] = [("tool", .string(tool))]
        if let commands { members.append(("command", .array(commands.map(JSON.string)))) }
        if let arguments { members.append(("args", .array(arguments.map(JSON.string)))) }
        if let paths { members.append(("path", .array(paths.map(JSON.string)))) }
        members.append(("review", .string(review.rawValue)))
        if review == .criticThenHuman { members.append(("min_confidence", .number(minConfidence))) }
        return .object(members)
    }
}
