import Store
import Yams

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds a validated `Plan` from a plan file (YAML; JSON is accepted too, being YAML).
///
/// Validation is complete and strict: required keys must be present, unknown keys are errors (the
/// message lists the allowed ones), values must have the documented type and range, and every role
/// must name a model the plan defines. The first problem found is thrown as a `PlanError` carrying the
/// file, the line and column of the offending YAML node and the dotted path of the field. The format
/// is documented in `plans/README.md`.
///
/// Scalars are typed by the YAML 1.2 core schema (so `yes`, `on` and `2024-01-01` are strings), and
/// quoted scalars are always strings. A field that wants a string does not accept an unquoted number.
///
/// Both entry points read files synchronously (`load` the plan, both of them any `script_file`): call
/// them at start-up or off the event loop, never on it.
public enum PlanLoader {
    /// Reads and validates the plan at `path`; `script_file`s are resolved against the plan file's
    /// directory.
    ///
    /// - Throws: `PlanError` naming `path` and the operating system's reason when the file cannot be
    ///   read, or the first problem in its content.
    public static func load(path: String) throws(PlanError) -> Plan {
        let text: String
        switch readText(path) {
        case let .success(contents): text = contents
        case let .failure(reason): throw PlanError(file: path, message: "cannot read the plan file: \(reason)")
        }
        return try parse(yaml: text, file: path, baseDirectory: directory(of: path))
    }

    /// Validates the plan in `yaml`.
    ///
    /// - Parameters:
    ///   - file: The name errors report (a path, or a label such as `<snapshot>`).
    ///   - baseDirectory: What relative `script_file` paths are resolved against; nil means the
    ///     process's working directory.
    ///   - readsFiles: Whether the plan may name files the daemon reads (`script_file`, `ca_file`);
    ///     false for a plan sent by someone other than the daemon's owner.
    /// - Throws: `PlanError` for a YAML syntax error or the first invalid field.
    public static func parse(yaml: String, file: String, baseDirectory: String?, readsFiles: Bool = true) throws(PlanError) -> Plan {
        let reader = PlanReader(file: file, baseDirectory: baseDirectory, readsFiles: readsFiles)
        let root = try reader.document(yaml, what: "a plan")
        return try reader.plan(root)
    }

    /// The directory part of `path` (`.` when it has none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// `path` resolved against `base` unless it is absolute or there is no base.
    static func resolve(_ path: String, against base: String?) -> String {
        guard let base, !base.isEmpty, !path.hasPrefix("/") else { return path }
        return base.hasSuffix("/") ? base + path : base + "/" + path
    }

    /// The most a plan file or a script file may hold.
    static let maxFileBytes = 16 << 20

    /// The whole file as UTF-8 text, or the operating system's reason it cannot be read.
    ///
    /// Only a regular file of at most `maxFileBytes` is read: a path that names a device, a FIFO or a
    /// socket (`/dev/zero`, `/dev/stdin`) would never end, or never start.
    static func readText(_ path: String) -> Result<String, ReadFailure> {
        // Non-blocking, so that opening a FIFO with no writer returns at once; it is refused below.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure(reason: String(cString: strerror(errno)))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(ReadFailure(reason: String(cString: strerror(errno)))) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return .failure(ReadFailure(reason: String(cString: strerror(EISDIR))))
        default: return .failure(ReadFailure(reason: "not a regular file"))
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(reason: String(cString: strerror(errno))))
            }
            if count == 0 { break }
            // The size fstat gave may be out of date (the file can grow while it is read).
            guard bytes.count + count <= maxFileBytes else {
                return .failure(ReadFailure(reason: "larger than \(maxFileBytes >> 20) MiB"))
            }
            bytes.append(contentsOf: chunk[0..<count])
        }
        let invalid = transcode(bytes.makeIterator(), from: UTF8.self, to: UTF32.self, stoppingOnError: true) { _ in }
        guard !invalid else { return .failure(ReadFailure(reason: "not valid UTF-8")) }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    /// Why a file could not be read, in the operating system's words.
    struct ReadFailure: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }
}

// MARK: - Reading the document

/// A YAML node and where it sits: its dotted path and the mark of the key that holds it.
struct Field {
    let node: Node
    let path: String
    /// Where the key holding this value is; nil for the root and list items.
    let keyMark: Mark?

    var mark: Mark? { node.mark }
    /// Where to point for what the value lacks: its key's line rather than its first child's.
    var ownerMark: Mark? { keyMark ?? node.mark }

    func child(_ name: String, _ node: Node, keyMark: Mark?) -> Field {
        Field(node: node, path: path.isEmpty ? name : "\(path).\(name)", keyMark: keyMark)
    }

    func item(_ index: Int, _ node: Node) -> Field {
        Field(node: node, path: "\(path)[\(index)]", keyMark: nil)
    }
}

/// A mapping's entries in document order, keys as text.
struct Entries {
    let field: Field
    let entries: [(name: String, key: Node, value: Node)]

    func has(_ name: String) -> Bool { entries.contains { $0.name == name } }

    func index(of name: String) -> Int? { entries.firstIndex { $0.name == name } }

    subscript(name: String) -> Field? {
        guard let entry = entries.first(where: { $0.name == name }) else { return nil }
        return field.child(name, entry.value, keyMark: entry.key.mark)
    }
}

/// One pass over one document (a plan, a script file or the daemon's configuration file); knows the
/// file name errors report.
struct PlanReader {
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

    static let planKeys = ["name", "description", "models", "roles", "steps", "workspace", "workspace_shared", "sandbox", "policy"]
    static let sandboxKeys = [
        "enabled", "network", "cpu_seconds", "memory_mb", "processes", "job_memory_mb", "job_processes", "writable", "env",
    ]
    static let roleKeys = ["model", "prompt", "tools", "temperature"]
    static let commandKeys = ["command", "cwd", "timeout", "sandbox", "env"]
    static let ruleKeys = ["step", "attempt", "replan", "reask", "feedback", "turn", "reply", "raw"]

    func fail(_ mark: Mark?, _ path: String, _ message: String) -> PlanError {
        PlanError(file: file, line: mark?.line, column: mark?.column, field: path, message: message)
    }

    /// The single document in `yaml`; a syntax error becomes a `PlanError` at the line Yams reports.
    func document(_ yaml: String, what: String) throws(PlanError) -> Field {
        guard let root = try optionalDocument(yaml) else { throw PlanError(file: file, message: "the file is empty; expected \(what)") }
        return root
    }

    /// The single document in `yaml`, or nil when it has none (an empty file, or only comments).
    func optionalDocument(_ yaml: String) throws(PlanError) -> Field? {
        if let violation = YAMLBounds.check(yaml) {
            throw PlanError(file: file, line: violation.line, column: violation.column, message: violation.message)
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw syntaxError(error, yaml)
        } catch {
            throw PlanError(file: file, message: "cannot parse the YAML: \(error)")
        }
        return root.map { Field(node: $0, path: "", keyMark: nil) }
    }

    func syntaxError(_ error: YamlError, _ yaml: String) -> PlanError {
        func located(_ mark: Mark, _ problem: String, _ context: YamlError.Context?) -> PlanError {
            var message = "YAML syntax error: \(problem)"
            if let context { message += " (\(context.text), line \(context.mark.line))" }
            return PlanError(file: file, line: mark.line, column: mark.column, message: message)
        }
        switch error {
        case let .composer(_, problem, mark, _) where problem == "but found another document":
            return PlanError(
                file: file, line: mark.line, column: mark.column,
                message: "YAML error: expected a single document, found a second one")
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
            let .composer(context, problem, mark, _):
            return located(mark, problem, context)
        case let .duplicatedKeysInMapping(duplicates, context):
            // Yams reports where the key first appears; the repeat is the line to fix.
            let first = context.mark
            let key = duplicates.first ?? ""
            let line = Self.repeatedKey(key, after: first, in: yaml) ?? first.line
            return PlanError(
                file: file, line: line, column: first.column,
                message: "YAML error: duplicate key '\(key)' in a mapping (first at line \(first.line))")
        case let .reader(problem, offset, _, _):
            var line = 1
            var column = 1
            if let offset {
                for character in yaml.prefix(offset) {
                    if character == "\n" || character == "\r\n" {
                        line += 1
                        column = 1
                    } else {
                        column += 1
                    }
                }
            }
            return PlanError(
                file: file, line: offset == nil ? nil : line, column: offset == nil ? nil : column,
                message: "YAML error: \(problem)")
        default:
            return PlanError(file: file, message: "YAML error: \(error)")
        }
    }

    /// The line where a block mapping repeats `key` after its first use at `first`: the next line
    /// holding `key:` at the same column. Nil when there is none (a flow mapping, say).
    static func repeatedKey(_ key: String, after first: Mark, in yaml: String) -> Int? {
        let indent = String(repeating: " ", count: first.column - 1)
        let forms = [key, "\"\(key)\"", "'\(key)'"]
        for (index, line) in yaml.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where index + 1 > first.line && line.hasPrefix(indent) {
            let rest = line.dropFirst(indent.count)
            for form in forms where rest.hasPrefix(form) {
                if rest.dropFirst(form.count).drop(while: { $0 == " " }).first == ":" {
                    return index + 1
                }
            }
        }
        return nil
    }

    // MARK: Plan

    func plan(_ root: Field) throws(PlanError) -> Plan {
        let doc = try mapping(root, allowed: Self.planKeys, what: "a plan")
        let name = try nonEmptyString(require(doc, "name"))
        let description = try doc["description"].map { (f) throws(PlanError) in try string(f) }
        let (models, modelNames) = try models(require(doc, "models"))
        let steps = try doc["steps"].map { (f) throws(PlanError) in try self.steps(f) }

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
        let actor = try role(require(roles, "actor"), models, modelNames, mayUseTools: true)
        let critic = try role(require(roles, "critic"), models, modelNames)
        let verifier = try verifier(require(roles, "verifier"), models, modelNames)
        let workspace = try doc["workspace"].map { (f) throws(PlanError) in try nonEmptyString(f) }
        let workspaceShared = try doc["workspace_shared"].map { (f) throws(PlanError) in try bool(f) } ?? false
        let sandbox = try doc["sandbox"].map { (f) throws(PlanError) in try self.sandbox(f, models) } ?? Sandbox()
        let policy = try doc["policy"].map { (f) throws(PlanError) in try self.policy(f) } ?? Policy()
        return Plan(
            name: name, description: description, models: models, planner: planner, actor: actor, critic: critic,
            verifier: verifier, steps: steps, workspace: workspace, workspaceShared: workspaceShared, sandbox: sandbox, policy: policy)
    }

    /// `true`, `false`, or a mapping of `sandboxKeys`. A disabled sandbox takes no other key: its
    /// settings would do nothing.
    func sandbox(_ field: Field, _ models: [String: ModelSpec]) throws(PlanError) -> Sandbox {
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
    func writablePaths(_ field: Field) throws(PlanError) -> [String] {
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
    func passedVariables(_ field: Field, _ models: [String: ModelSpec]) throws(PlanError) -> [String] {
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
    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.first, !first.isNumber else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }

    func steps(_ field: Field) throws(PlanError) -> [String] {
        let items = try list(field, what: "a list of step descriptions")
        guard !items.isEmpty else {
            throw fail(field.mark, field.path, "expected at least one step (leave 'steps' out to let the planner make them)")
        }
        var steps: [String] = []
        for (index, node) in items.enumerated() {
            steps.append(try nonEmptyString(field.item(index, node)))
        }
        return steps
    }

    func policy(_ field: Field) throws(PlanError) -> Policy {
        let keys = [
            "max_attempts", "max_replans", "max_invalid_replies", "call_timeout", "step_timeout", "job_timeout", "retry_temperature_step",
            "max_tokens", "tool_timeout", "max_tool_turns", "tool_output_cap", "max_tool_calls_per_turn", "turn_tool_output_cap",
            "job_tool_output_cap",
        ]
        let entries = try mapping(field, allowed: keys, what: "a policy")
        var policy = Policy()
        if let f = entries["max_attempts"] { policy.maxAttempts = try int(f, in: 1...100) }
        if let f = entries["max_replans"] { policy.maxReplans = try int(f, in: 0...100) }
        if let f = entries["max_invalid_replies"] { policy.maxInvalidReplies = try int(f, in: 0...100) }
        if let f = entries["call_timeout"] { policy.callTimeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["step_timeout"] { policy.stepTimeoutSeconds = try duration(f, allowZero: true) }
        if let f = entries["job_timeout"] { policy.jobTimeoutSeconds = try duration(f, allowZero: true) }
        if let f = entries["retry_temperature_step"] { policy.retryTemperatureStep = try number(f, in: 0...2) }
        if let f = entries["max_tokens"] { policy.maxTokens = try int(f, in: 0...Int.max) }
        if let f = entries["tool_timeout"] { policy.toolTimeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["max_tool_turns"] { policy.maxToolTurns = try int(f, in: 1...100) }
        if let f = entries["tool_output_cap"] { policy.toolOutputCap = try int(f, in: 1...(64 << 20)) }
        if let f = entries["max_tool_calls_per_turn"] { policy.maxToolCallsPerTurn = try int(f, in: 1...1000) }
        try toolOutputBudgets(entries, &policy)
        return policy
    }

    // MARK: Roles

    func role(_ field: Field, _ models: [String: ModelSpec], _ modelNames: [String], mayUseTools: Bool = false) throws(PlanError)
        -> RoleSpec
    {
        let entries = try mapping(field, allowed: Self.roleKeys, what: "a role")
        return try role(entries, models, modelNames, mayUseTools: mayUseTools)
    }

    func role(_ entries: Entries, _ models: [String: ModelSpec], _ modelNames: [String], mayUseTools: Bool = false) throws(PlanError)
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
        if let f = entries["tools"] { spec.tools = try tools(f, mayUseTools: mayUseTools) }
        if let f = entries["temperature"] { spec.temperature = try number(f, in: 0...2) }
        return spec
    }

    /// A role's tool names: each one `ToolName` knows, no repeats, and only for the actor.
    func tools(_ field: Field, mayUseTools: Bool) throws(PlanError) -> [String] {
        var names: [String] = []
        for (index, node) in try list(field, what: "a list of tool names").enumerated() {
            let item = field.item(index, node)
            let name = try nonEmptyString(item)
            guard ToolName(rawValue: name) != nil else {
                throw fail(item.mark, item.path, "unknown tool '\(name)' (known tools: \(ToolName.known))")
            }
            guard !names.contains(name) else { throw fail(item.mark, item.path, "tool '\(name)' is listed twice") }
            names.append(name)
        }
        if !mayUseTools, !names.isEmpty {
            throw fail(field.mark, field.path, "only the actor can use tools; leave 'tools' out of this role")
        }
        return names
    }

    func verifier(_ field: Field, _ models: [String: ModelSpec], _ modelNames: [String]) throws(PlanError) -> VerifierSpec {
        let entries = try mapping(field, allowed: nil, what: "a verifier")
        if entries.has("command") {
            try check(
                entries, allowed: Self.commandKeys, what: "a command verifier",
                note: "; a verifier is either a command or a model role, not both")
            return .command(try command(entries, defaultTimeout: 300))
        }
        try check(
            entries, allowed: Self.roleKeys, what: "a model verifier",
            note: "; a command verifier has 'command', 'cwd', 'timeout', 'sandbox' and 'env'")
        return .model(try role(entries, models, modelNames))
    }

    func command(_ entries: Entries, defaultTimeout: Double) throws(PlanError) -> CommandSpec {
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
    func commandVariables(_ field: Field) throws(PlanError) -> [String] {
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
    static let agentdVariables: Set<String> = ["AGENTD_TOOL_CALL_ID", "AGENTD_CALL_ID", "AGENTD_WORKSPACE"]

    // MARK: Models

    func models(_ field: Field) throws(PlanError) -> ([String: ModelSpec], [String]) {
        let entries = try mapping(field, allowed: nil, what: "the models (model name -> model)")
        guard !entries.entries.isEmpty else { throw fail(field.mark, field.path, "expected at least one model") }
        var models: [String: ModelSpec] = [:]
        var names: [String] = []
        for entry in entries.entries {
            let model = field.child(entry.name, entry.value, keyMark: entry.key.mark)
            guard !entry.name.isEmpty else { throw fail(entry.key.mark, model.path, "a model name must not be empty") }
            models[entry.name] = try self.model(model)
            names.append(entry.name)
        }
        return (models, names)
    }

    func model(_ field: Field) throws(PlanError) -> ModelSpec {
        let entries = try mapping(field, allowed: nil, what: "a model")
        let backendField = try require(entries, "backend")
        switch try string(backendField) {
        case "scripted":
            try check(entries, allowed: ["backend", "script", "script_file"], what: "a scripted model")
            return ModelSpec(backend: .scripted(try script(of: entries)))
        case "command":
            try check(entries, allowed: ["backend"] + Self.commandKeys, what: "a command model")
            return ModelSpec(backend: .command(try command(entries, defaultTimeout: 120)))
        case "openai":
            try check(entries, allowed: ["backend"] + Self.openAIKeys, what: "an openai model")
            return ModelSpec(backend: .openai(try openAI(entries)))
        case let other:
            throw fail(backendField.mark, backendField.path, "unknown backend '\(other)' (allowed: scripted, command, openai)")
        }
    }

    static let openAIKeys = [
        "base_url", "ca_file", "model", "api_key_env", "headers", "structured_output", "max_tokens", "seed", "timeout",
        "connect_timeout", "idle_timeout", "retries", "backoff", "max_concurrent", "max_reply_bytes", "price",
        "requests_per_minute", "tokens_per_minute", "rate_window",
    ]

    func openAI(_ entries: Entries) throws(PlanError) -> OpenAISpec {
        var spec = OpenAISpec(model: try entries["model"].map { (f) throws(PlanError) in try nonEmptyString(f) })
        if let f = entries["base_url"] {
            let url = try nonEmptyString(f)
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw fail(f.mark, f.path, "expected an http:// or https:// URL, found '\(url)'")
            }
            spec.baseURL = url
        }
        if let f = entries["ca_file"] {
            try allowFiles(f)
            spec.caFile = PlanLoader.resolve(try nonEmptyString(f), against: baseDirectory)
        }
        if let f = entries["api_key_env"] { spec.apiKeyEnv = try variableName(f) }
        if let f = entries["headers"] {
            let headers = try mapping(f, allowed: nil, what: "headers (name -> value)")
            for entry in headers.entries {
                let field = f.child(entry.name, entry.value, keyMark: entry.key.mark)
                if entry.name.lowercased() == "authorization" {
                    throw fail(
                        entry.key.mark, field.path, "the API key is read from the variable 'api_key_env' names; do not put it in a plan")
                }
                spec.headers[entry.name] = try string(field)
            }
        }
        if let f = entries["structured_output"] {
            let text = try string(f)
            guard let mode = OpenAISpec.StructuredOutput(rawValue: text) else {
                let allowed = OpenAISpec.StructuredOutput.allCases.map(\.rawValue).joined(separator: ", ")
                throw fail(f.mark, f.path, "unknown structured_output '\(text)' (allowed: \(allowed))")
            }
            spec.structuredOutput = mode
        }
        if let f = entries["max_tokens"] { spec.maxTokens = try int(f, in: 1...10_000_000) }
        if let f = entries["seed"] { spec.seed = try int(f, in: Int(Int32.min)...Int(Int32.max)) }
        if let f = entries["timeout"] { spec.timeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["connect_timeout"] { spec.connectTimeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["idle_timeout"] { spec.idleTimeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["retries"] { spec.retries = try int(f, in: 0...20) }
        if let f = entries["backoff"] { spec.backoffSeconds = try duration(f, allowZero: true) }
        if let f = entries["max_concurrent"] { spec.maxConcurrent = try int(f, in: 1...4096) }
        if let f = entries["max_reply_bytes"] { spec.maxReplyBytes = try int(f, in: 1024...(1 << 30)) }
        if let f = entries["requests_per_minute"] { spec.requestsPerMinute = try int(f, in: 1...10_000_000) }
        if let f = entries["tokens_per_minute"] { spec.tokensPerMinute = try int(f, in: 1...1_000_000_000) }
        if let f = entries["rate_window"] { spec.rateWindowSeconds = try duration(f, allowZero: false) }
        if let f = entries["price"] {
            let price = try mapping(f, allowed: ["input", "output"], what: "a price (US dollars per million tokens)")
            spec.price = (
                input: try number(try require(price, "input"), in: 0...1_000_000),
                output: try number(try require(price, "output"), in: 0...1_000_000)
            )
        }
        return spec
    }

    /// Refuses a field that names a file when the plan may not (`readsFiles`).
    func allowFiles(_ field: Field) throws(PlanError) {
        guard readsFiles else {
            throw fail(
                field.ownerMark, field.path,
                "permission denied: a plan from a user other than the daemon's owner may not name files the daemon would read; inline it (rule: submitters.plan_files)"
            )
        }
    }

    /// The scripted model's rules, from `script` or from the file `script_file` names (exactly one).
    func script(of entries: Entries) throws(PlanError) -> Script {
        switch (entries["script"], entries["script_file"]) {
        case let (inline?, nil):
            return try script(inline)
        case let (nil, fileField?):
            try allowFiles(fileField)
            let path = PlanLoader.resolve(try nonEmptyString(fileField), against: baseDirectory)
            let text: String
            switch PlanLoader.readText(path) {
            case let .success(contents): text = contents
            case let .failure(failure):
                throw fail(fileField.mark, fileField.path, "cannot read the script file '\(path)': \(failure.reason)")
            }
            let reader = PlanReader(file: path, baseDirectory: PlanLoader.directory(of: path))
            return try reader.script(reader.document(text, what: "a mapping of roles to lists of rules"))
        case let (inline?, fileField?):
            let later = entries.index(of: "script")! > entries.index(of: "script_file")! ? inline : fileField
            throw fail(later.keyMark, later.path, "give either 'script' or 'script_file', not both")
        case (nil, nil):
            throw fail(entries.field.ownerMark, entries.field.path, "a scripted model needs 'script' or 'script_file'")
        }
    }

    func script(_ field: Field) throws(PlanError) -> Script {
        let entries = try mapping(field, allowed: Role.allCases.map(\.rawValue), what: "a script")
        var rules: [Role: [ScriptRule]] = [:]
        for entry in entries.entries {
            let roleField = field.child(entry.name, entry.value, keyMark: entry.key.mark)
            var list: [ScriptRule] = []
            for (index, node) in try self.list(roleField, what: "a list of rules").enumerated() {
                list.append(try rule(roleField.item(index, node)))
            }
            rules[Role(rawValue: entry.name)!] = list
        }
        return Script(rules: rules)
    }

    func rule(_ field: Field) throws(PlanError) -> ScriptRule {
        let entries = try mapping(field, allowed: Self.ruleKeys, what: "a rule")
        let reply: ScriptReply
        switch (entries["reply"], entries["raw"]) {
        case let (value?, nil): reply = .json(try json(value))
        case let (nil, raw?): reply = .raw(try string(raw))
        case let (value?, raw?):
            let later = entries.index(of: "reply")! > entries.index(of: "raw")! ? value : raw
            throw fail(later.keyMark, later.path, "give either 'reply' or 'raw', not both")
        case (nil, nil):
            throw fail(field.mark, field.path, "a rule needs 'reply' (a value) or 'raw' (a string)")
        }
        return ScriptRule(
            steps: try entries["step"].map { (f) throws(PlanError) in try indexSet(f) },
            attempts: try entries["attempt"].map { (f) throws(PlanError) in try indexSet(f) },
            replans: try entries["replan"].map { (f) throws(PlanError) in try indexSet(f) },
            reasks: try entries["reask"].map { (f) throws(PlanError) in try indexSet(f) },
            feedback: try entries["feedback"].map { (f) throws(PlanError) in try bool(f) },
            turns: try entries["turn"].map { (f) throws(PlanError) in try indexSet(f) },
            reply: reply)
    }

    /// A rule condition: one zero-based index or a non-empty list of them.
    func indexSet(_ field: Field) throws(PlanError) -> Set<Int> {
        if case .sequence = field.node {
            let items = try list(field, what: "an index or a list of indexes")
            guard !items.isEmpty else { throw fail(field.mark, field.path, "an empty list never matches; leave the key out to match any") }
            var set = Set<Int>()
            for (index, node) in items.enumerated() {
                set.insert(try int(field.item(index, node), in: 0...Int.max))
            }
            return set
        }
        return [try int(field, in: 0...Int.max, expected: "an index (integer >= 0) or a list of them")]
    }

    // MARK: Typed values

    /// The mapping's entries; with `allowed`, any other key is an error naming the allowed ones.
    func mapping(_ field: Field, allowed: [String]?, what: String) throws(PlanError) -> Entries {
        guard case let .mapping(mapping) = field.node else {
            throw fail(field.mark, field.path, "expected \(what) (a mapping), found \(found(field.node))")
        }
        var entries: [(name: String, key: Node, value: Node)] = []
        for (key, value) in mapping {
            guard case let .scalar(scalar) = key else {
                throw fail(key.mark, field.path, "a key must be a plain string, found \(found(key))")
            }
            entries.append((scalar.string, key, value))
        }
        let result = Entries(field: field, entries: entries)
        if let allowed { try check(result, allowed: allowed, what: what) }
        return result
    }

    func check(_ entries: Entries, allowed: [String], what: String, note: String = "") throws(PlanError) {
        for entry in entries.entries where !allowed.contains(entry.name) {
            let path = entries.field.child(entry.name, entry.value, keyMark: nil).path
            throw fail(
                entry.key.mark, path,
                "unknown key '\(entry.name)' in \(what) (allowed: \(allowed.joined(separator: ", ")))\(note)")
        }
    }

    func require(_ entries: Entries, _ name: String) throws(PlanError) -> Field {
        guard let field = entries[name] else {
            let path = entries.field.child(name, entries.field.node, keyMark: nil).path
            throw fail(entries.field.ownerMark, path, "missing required key '\(name)'")
        }
        return field
    }

    func list(_ field: Field, what: String) throws(PlanError) -> [Node] {
        guard case let .sequence(sequence) = field.node else {
            throw fail(field.mark, field.path, "expected \(what), found \(found(field.node))")
        }
        return Array(sequence)
    }

    func string(_ field: Field) throws(PlanError) -> String {
        if case let .scalar(scalar) = field.node, case let .string(text) = try resolve(scalar, field) { return text }
        var message = "expected a string, found \(found(field.node))"
        if case let .scalar(scalar) = field.node, !scalar.string.isEmpty, try resolve(scalar, field) != .null {
            message += " (quote it: \"\(scalar.string)\")"
        }
        throw fail(field.mark, field.path, message)
    }

    func nonEmptyString(_ field: Field) throws(PlanError) -> String {
        let text = try string(field)
        guard !text.isEmpty else { throw fail(field.mark, field.path, "must not be empty") }
        return text
    }

    func strings(_ field: Field, what: String) throws(PlanError) -> [String] {
        var result: [String] = []
        for (index, node) in try list(field, what: what).enumerated() {
            result.append(try string(field.item(index, node)))
        }
        return result
    }

    func nonEmptyStrings(_ field: Field, what: String) throws(PlanError) -> [String] {
        var result: [String] = []
        for (index, node) in try list(field, what: what).enumerated() {
            result.append(try nonEmptyString(field.item(index, node)))
        }
        return result
    }

    /// The NAME of an environment variable: letters, digits and `_`, not starting with a digit.
    func variableName(_ field: Field) throws(PlanError) -> String {
        let name = try nonEmptyString(field)
        guard Self.isVariableName(name) else {
            throw fail(field.mark, field.path, "expected the NAME of an environment variable (letters, digits, _), found '\(name)'")
        }
        return name
    }

    func bool(_ field: Field) throws(PlanError) -> Bool {
        if case let .scalar(scalar) = field.node, case let .bool(value) = try resolve(scalar, field) { return value }
        throw fail(field.mark, field.path, "expected true or false, found \(found(field.node))")
    }

    func int(_ field: Field, in range: ClosedRange<Int>, expected: String = "an integer") throws(PlanError) -> Int {
        guard case let .scalar(scalar) = field.node, case let .integer(value) = try resolve(scalar, field) else {
            throw fail(field.mark, field.path, "expected \(expected), found \(found(field.node))")
        }
        guard let int = Int(exactly: value), range.contains(int) else {
            let bounds =
                range.upperBound == Int.max ? "at least \(range.lowerBound)" : "between \(range.lowerBound) and \(range.upperBound)"
            throw fail(field.mark, field.path, "must be \(bounds), found \(scalar.string)")
        }
        return int
    }

    func number(_ field: Field, in range: ClosedRange<Double>) throws(PlanError) -> Double {
        let value: Double
        switch field.node {
        case let .scalar(scalar):
            switch try resolve(scalar, field) {
            case let .integer(number), let .float(number): value = number
            default: throw fail(field.mark, field.path, "expected a number, found \(found(field.node))")
            }
        default: throw fail(field.mark, field.path, "expected a number, found \(found(field.node))")
        }
        guard range.contains(value) else {
            throw fail(
                field.mark, field.path,
                "must be between \(format(range.lowerBound)) and \(format(range.upperBound)), found \(format(value))")
        }
        return value
    }

    /// Seconds, from a number or a string with a unit: `250ms`, `30s`, `2m`, `1h` (fractions allowed).
    func duration(_ field: Field, allowZero: Bool) throws(PlanError) -> Double {
        let expected = "expected a duration: a number of seconds or a string such as 250ms, 30s, 2m or 1h"
        guard case let .scalar(scalar) = field.node else { throw fail(field.mark, field.path, "\(expected); found \(found(field.node))") }
        var seconds: Double?
        switch try resolve(scalar, field) {
        case let .integer(value), let .float(value): seconds = value
        case let .string(text):
            for (suffix, factor) in [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)] where text.hasSuffix(suffix) {
                let number = String(text.dropLast(suffix.count))
                if CoreSchema.isFloat(number), let value = Double(number) { seconds = value * factor }
                break
            }
        default: break
        }
        guard let seconds, seconds.isFinite else { throw fail(field.mark, field.path, "\(expected); found \(found(field.node))") }
        guard seconds > 0 || (allowZero && seconds == 0) else {
            throw fail(field.mark, field.path, allowZero ? "must not be negative" : "must be greater than zero")
        }
        return seconds
    }

    /// The deepest a reply may nest lists and mappings: well inside `YAMLBounds.maxDepth`, so that a
    /// plan's snapshot, which holds a script file's replies a few levels deeper than the file did, is
    /// always within the bound too (a job's plan is loaded again from its snapshot).
    static let maxReplyDepth = 64

    /// Any YAML value as JSON: mappings keep their key order, integers become numbers. `depth` is the
    /// value's own level (1 for a reply).
    func json(_ field: Field, depth: Int = 1) throws(PlanError) -> JSON {
        budget.values -= 1
        guard budget.values >= 0 else {
            throw fail(field.mark, field.path, "the replies hold more than 100000 values (do aliases expand exponentially?)")
        }
        if depth > Self.maxReplyDepth {
            switch field.node {
            case .sequence, .mapping:
                throw fail(
                    field.mark, field.path, "a reply nests lists and mappings more than \(Self.maxReplyDepth) levels deep (the limit)")
            default: break
            }
        }
        switch field.node {
        case let .scalar(scalar):
            switch try resolve(scalar, field) {
            case .null: return .null
            case let .bool(value): return .bool(value)
            case let .integer(value): return .number(value)
            case let .float(value):
                guard value.isFinite else { throw fail(field.mark, field.path, "JSON has no infinity or NaN") }
                return .number(value)
            case let .string(text): return .string(text)
            }
        case let .sequence(sequence):
            var items: [JSON] = []
            for (index, node) in sequence.enumerated() { items.append(try json(field.item(index, node), depth: depth + 1)) }
            return .array(items)
        case .mapping:
            let entries = try mapping(field, allowed: nil, what: "an object")
            var members: [(String, JSON)] = []
            for entry in entries.entries {
                members.append((entry.name, try json(field.child(entry.name, entry.value, keyMark: entry.key.mark), depth: depth + 1)))
            }
            return .object(members)
        case .alias:
            throw fail(field.mark, field.path, "unresolved alias")
        }
    }

    // MARK: Scalars

    /// A scalar's value per the YAML 1.2 core schema; quoted and block scalars are strings.
    func resolve(_ scalar: Node.Scalar, _ field: Field) throws(PlanError) -> CoreSchema.Value {
        let text = scalar.string
        switch scalar.tag.rawValue {
        case "":
            guard scalar.style == .plain || scalar.style == .any else { return .string(text) }
            return CoreSchema.resolve(text)
        case "!", "tag:yaml.org,2002:str":
            return .string(text)
        case let tag:
            let resolved = CoreSchema.resolve(text)
            switch (tag, resolved) {
            case ("tag:yaml.org,2002:null", .null), ("tag:yaml.org,2002:bool", .bool),
                ("tag:yaml.org,2002:int", .integer), ("tag:yaml.org,2002:float", .float):
                return resolved
            case let ("tag:yaml.org,2002:float", .integer(value)):
                return .float(value)
            case ("tag:yaml.org,2002:null", _), ("tag:yaml.org,2002:bool", _), ("tag:yaml.org,2002:int", _),
                ("tag:yaml.org,2002:float", _):
                throw fail(scalar.mark, field.path, "'\(text)' is not a valid \(tag.split(separator: ":").last!)")
            default:
                throw fail(scalar.mark, field.path, "unsupported tag '\(tag)'")
            }
        }
    }

    /// What a node is, for "expected ..., found ..." messages.
    func found(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case let .scalar(scalar):
            let value: CoreSchema.Value
            switch scalar.tag.rawValue {
            case "": value = scalar.style == .plain || scalar.style == .any ? CoreSchema.resolve(scalar.string) : .string(scalar.string)
            case "!", "tag:yaml.org,2002:str": value = .string(scalar.string)
            default: value = CoreSchema.resolve(scalar.string)
            }
            switch value {
            case .null: return "null"
            case .bool: return "boolean \(scalar.string)"
            case .integer: return "integer \(scalar.string)"
            case .float: return "number \(scalar.string)"
            case let .string(text):
                let short = text.count > 40 ? String(text.prefix(40)) + "..." : text
                return "string '\(short)'"
            }
        }
    }

    func format(_ value: Double) -> String {
        Int(exactly: value).map(String.init) ?? String(value)
    }
}

// MARK: - Core schema

/// Scalar resolution of the YAML 1.2 core schema, which Yams' default resolver (YAML 1.1 rules:
/// `yes`, `on`, timestamps) does not implement.
enum CoreSchema {
    /// A resolved scalar. Integers are kept as `Double`, as JSON numbers are.
    enum Value: Equatable {
        case null
        case bool(Bool)
        case integer(Double)
        case float(Double)
        case string(String)
    }

    static func resolve(_ text: String) -> Value {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
        case ".nan", ".NaN", ".NAN": return .float(.nan)
        default: break
        }
        if let value = integer(text) { return .integer(value) }
        if isFloat(text), let value = Double(text) { return .float(value) }
        return .string(text)
    }

    /// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`.
    static func integer(_ text: String) -> Double? {
        if text.hasPrefix("0o"), text.count > 2, let value = Int(text.dropFirst(2), radix: 8) { return Double(value) }
        if text.hasPrefix("0x"), text.count > 2, let value = Int(text.dropFirst(2), radix: 16) { return Double(value) }
        var digits = Substring(text)
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Double(text.hasPrefix("+") ? String(text.dropFirst()) : text)
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
    static func isFloat(_ text: String) -> Bool {
        var bytes = Substring(text).utf8[...]
        func digits() -> Int {
            var count = 0
            while let byte = bytes.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                bytes = bytes.dropFirst()
                count += 1
            }
            return count
        }
        func take(_ characters: String) -> Bool {
            guard let byte = bytes.first, characters.utf8.contains(byte) else { return false }
            bytes = bytes.dropFirst()
            return true
        }
        _ = take("+-")
        if take(".") {
            guard digits() > 0 else { return false }
        } else {
            guard digits() > 0 else { return false }
            if take(".") { _ = digits() }
        }
        if take("eE") {
            _ = take("+-")
            guard digits() > 0 else { return false }
        }
        return bytes.isEmpty
    }
}
