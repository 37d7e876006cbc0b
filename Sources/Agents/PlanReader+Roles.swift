/// The plan's roles: which model each uses with what prompt and tools, and the critic and the verifier,
/// each a model role or a command (the critic also a jury, `+Jury`); and the commands (`command` models, critics and verifiers).
extension PlanReader {
    /// Which tools a role may have: none (planner, verifier), any (the actor), or only the tools that
    /// cannot change the workspace (a model critic; `run_command` only inside the sandbox, where the
    /// workspace is bound read-only).
    enum ToolUse {
        case none
        case any
        case readOnly(sandboxed: Bool)
    }

    func role(_ field: YAMLField, _ models: [String: ModelSpec], _ modelNames: [String], toolUse: ToolUse = .none) throws(PlanError)
        -> RoleSpec
    {
        let entries = try mapping(field, allowed: Self.roleKeys, what: "a role")
        return try role(entries, models, modelNames, toolUse: toolUse)
    }

    func role(_ entries: YAMLEntries, _ models: [String: ModelSpec], _ modelNames: [String], toolUse: ToolUse = .none) throws(PlanError)
        -> RoleSpec
    {
        let modelField = try require(entries, "model")
        let model = try nonEmptyString(modelField)
        guard models[model] != nil else {
            throw fail(
                modelField.mark, modelField.path,
                "unknown model '\(model)' (known: \(modelNames.joined(separator: ", ")))")
        }
        var spec = RoleSpec(model: model, prompt: try string(require(entries, "prompt")))
        if let f = entries["tools"] { spec.tools = try tools(f, toolUse: toolUse) }
        if let f = entries["temperature"] { spec.temperature = try number(f, in: 0...2) }
        if let f = entries["max_tool_turns"] {  // only a model critic's keys allow it
            guard !spec.tools.isEmpty else {
                throw fail(f.ownerMark, f.path, "'max_tool_turns' without 'tools': give the critic tools or leave it out")
            }
            spec.maxToolTurns = try int(f, in: 1...100)
        }
        return spec
    }

    /// A role's tool names: each one `ToolName` knows, no repeats; any for the actor, only read-only
    /// ones for a model critic, none for the other roles.
    func tools(_ field: YAMLField, toolUse: ToolUse) throws(PlanError) -> [String] {
        var names: [String] = []
        for (index, node) in try list(field, what: "a list of tool names").enumerated() {
            let item = field.item(index, node)
            let name = try nonEmptyString(item)
            guard ToolName(rawValue: name) != nil else {
                throw fail(item.mark, item.path, "unknown tool '\(name)' (known tools: \(ToolName.known))")
            }
            guard !names.contains(name) else { throw fail(item.mark, item.path, "tool '\(name)' is listed twice") }
            if case let .readOnly(sandboxed) = toolUse {
                if name == ToolName.writeFile.rawValue {
                    throw fail(
                        item.mark, item.path,
                        "the critic's tools are read-only (read_file, and run_command with the workspace mounted read-only); '\(name)' writes the workspace"
                    )
                }
                if name == ToolName.runCommand.rawValue, !sandboxed {
                    throw fail(
                        item.mark, item.path,
                        "the critic's run_command needs the sandbox, which mounts the workspace read-only; this plan sets 'sandbox: false', so its commands could change the workspace (give the critic read_file only, or turn the sandbox on)"
                    )
                }
            }
            names.append(name)
        }
        if case .none = toolUse, !names.isEmpty {
            throw fail(field.mark, field.path, "only the actor and a model critic can use tools; leave 'tools' out of this role")
        }
        return names
    }

    func verifier(_ field: YAMLField, _ models: [String: ModelSpec], _ modelNames: [String]) throws(PlanError) -> VerifierSpec {
        switch try commandOrRole(field, "verifier", models, modelNames) {
        case let .command(command): return .command(command)
        case let .model(role): return .model(role)
        }
    }

    /// A command critic, a model critic that may have read-only tools (`sandboxed`: whether the
    /// plan's sandbox is on, which `run_command` needs), or a jury (`+Jury`).
    func critic(_ field: YAMLField, _ models: [String: ModelSpec], _ modelNames: [String], sandboxed: Bool) throws(PlanError)
        -> CriticSpec
    {
        if case .mapping = field.node, try mapping(field, allowed: nil, what: "a critic").has("jury") {
            return .jury(try jury(field, models, modelNames))
        }
        switch try commandOrRole(field, "critic", models, modelNames, toolUse: .readOnly(sandboxed: sandboxed)) {
        case let .command(command): return .command(command)
        case let .model(role): return .model(role)
        }
    }

    enum CommandOrRole {
        case command(CommandSpec)
        case model(RoleSpec)
    }

    /// A role that is either a command (`command`, `cwd`, `timeout`, `sandbox`, `env`) or a model role.
    func commandOrRole(
        _ field: YAMLField, _ name: String, _ models: [String: ModelSpec], _ modelNames: [String], toolUse: ToolUse = .none
    )
        throws(PlanError) -> CommandOrRole
    {
        let entries = try mapping(field, allowed: nil, what: "a \(name)")
        if entries.has("command") {
            try check(
                entries, allowed: Self.commandKeys, what: "a command \(name)",
                note: "; a \(name) is either a command or a model role, not both")
            return .command(try command(entries, defaultTimeout: 300))
        }
        try check(
            entries, allowed: { if case .readOnly = toolUse { Self.criticKeys } else { Self.roleKeys } }(), what: "a model \(name)",
            note: "; a command \(name) has 'command', 'cwd', 'timeout', 'sandbox' and 'env'")
        return .model(try role(entries, models, modelNames, toolUse: toolUse))
    }

    /// The ground-truth check: a command like a command critic's (`command`, `cwd`, `timeout`,
    /// `sandbox`, `env`), never a model.
    func check(_ field: YAMLField) throws(PlanError) -> CommandSpec {
        let entries = try mapping(field, allowed: Self.commandKeys, what: "a check (a command: the ground truth of every judged output)")
        return try command(entries, defaultTimeout: 300)
    }

    func command(_ entries: YAMLEntries, defaultTimeout: Double) throws(PlanError) -> CommandSpec {
        let argvField = try require(entries, "command")
        let argv = try strings(argvField, what: "a command as a list of strings (argv, no shell)")
        guard let program = argv.first else {
            throw fail(argvField.mark, argvField.path, "expected a non-empty list: the program and its arguments")
        }
        guard !program.isEmpty else {
            throw fail(argvField.mark, argvField.path + "[0]", "the program name is empty")
        }
        var spec = CommandSpec(argv: argv, timeoutSeconds: defaultTimeout)
        if let f = entries["cwd"] { spec.cwd = try nonEmptyString(f) }
        if let f = entries["timeout"] { spec.timeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["sandbox"] { spec.sandboxed = try bool(f) }
        if let f = entries["env"] { spec.environment = try commandVariables(f) }
        return spec
    }

    /// A plan command's `env`: variable names, each once, never one agentd sets itself. Unlike the
    /// sandbox's `env` (which reaches the model-driven `run_command`) these may name secrets: the
    /// plan's author chose this command.
    func commandVariables(_ field: YAMLField) throws(PlanError) -> [String] {
        var names: [String] = []
        for (index, node) in try list(field, what: "a list of environment variable names").enumerated() {
            let item = field.item(index, node)
            let name = try variableName(item)
            guard !Self.agentdVariables.contains(name) else {
                throw fail(item.mark, item.path, "'\(name)' is set by agentd for every command")
            }
            guard !names.contains(name) else { throw fail(item.mark, item.path, "'\(name)' is listed twice") }
            names.append(name)
        }
        return names
    }

    /// The variables agentd sets for the commands it runs.
    static let agentdVariables: Set<String> = [
        "AGENTD_TOOL_CALL_ID", "AGENTD_CALL_ID", "AGENTD_WORKSPACE", "AGENTD_STEP", "AGENTD_STEP_INDEX", "AGENTD_ATTEMPT", "AGENTD_GATE",
        "AGENTD_STEP_OUTPUT", "AGENTD_STEP_OUTPUTS",
    ]
}
