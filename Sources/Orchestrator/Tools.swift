import Agents
import Dispatch
import Foundation
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// Why a tool call could not be carried out: told to the model as the tool's result.
struct ToolProblem: Error, Sendable, Equatable {
    let message: String

    init(_ message: String) {
        self.message = message
    }
}

/// A tool call with its arguments parsed and checked.
enum ToolInvocation: Sendable, Equatable {
    case runCommand(argv: [String])
    case readFile(path: String)
    case writeFile(path: String, content: String)

    /// Reads a model's tool call. Anything unusable (an unknown or unoffered tool, arguments that are
    /// not a JSON object, a missing or mistyped field) is a `ToolProblem` whose message tells the
    /// model what to fix — never a crash and never a failed job.
    static func parse(_ call: ToolCall, offered: [String]) -> Result<ToolInvocation, ToolProblem> {
        guard let tool = ToolName(rawValue: call.name), offered.contains(call.name) else {
            return .failure(ToolProblem("unknown tool '\(call.name)'; the tools are: \(offered.joined(separator: ", "))"))
        }
        let arguments: JSON
        do {
            arguments = try JSON.parse(call.arguments)
        } catch {
            return .failure(ToolProblem("the arguments of \(call.name) are not valid JSON (\(error)); send a JSON object"))
        }
        guard case .object = arguments else {
            return .failure(ToolProblem("the arguments of \(call.name) must be a JSON object, not \(arguments.typeName)"))
        }
        func string(_ key: String) -> Result<String, ToolProblem> {
            guard let value = arguments[key] else { return .failure(ToolProblem("\(call.name) needs '\(key)' (a string)")) }
            guard let text = value.stringValue else {
                return .failure(ToolProblem("'\(key)' of \(call.name) must be a string, not \(value.typeName)"))
            }
            return .success(text)
        }
        // The kernel reads a path or an argument up to its first NUL: what ran would not be what the
        // record says ran.
        func withoutNUL(_ text: String, _ what: String) -> Result<String, ToolProblem> {
            guard text.utf8.contains(0) else { return .success(text) }
            return .failure(ToolProblem("\(what) of \(call.name) contains U+0000 (a NUL character), which no path or argument can hold"))
        }
        switch tool {
        case .runCommand:
            guard let value = arguments["argv"] else {
                return .failure(ToolProblem("run_command needs 'argv': a list of strings, the program first (no shell)"))
            }
            let argv = value.arrayValue?.compactMap(\.stringValue) ?? []
            guard let items = value.arrayValue, argv.count == items.count else {
                return .failure(ToolProblem("'argv' of run_command must be a list of strings, not \(value.typeName)"))
            }
            guard let program = argv.first, !program.isEmpty else {
                return .failure(ToolProblem("'argv' of run_command is empty: give the program and its arguments"))
            }
            if let index = argv.firstIndex(where: { $0.utf8.contains(0) }) {
                return withoutNUL(argv[index], "'argv[\(index)]'").map { _ in .runCommand(argv: argv) }
            }
            return .success(.runCommand(argv: argv))
        case .readFile:
            return string("path").flatMap { withoutNUL($0, "'path'") }.map { .readFile(path: $0) }
        case .writeFile:
            return string("path").flatMap { withoutNUL($0, "'path'") }.flatMap { path in
                string("content").map { .writeFile(path: path, content: $0) }
            }
        }
    }

    /// What `tool.started` records of the call: the argv or the path (and the size of what is written;
    /// the content itself is in the model's recorded reply).
    var json: [(String, JSON)] {
        switch self {
        case let .runCommand(argv): return [("argv", .array(argv.map(JSON.string)))]
        case let .readFile(path): return [("path", .string(path))]
        case let .writeFile(path, content): return [("path", .string(path)), ("bytes", .int(content.utf8.count))]
        }
    }
}

/// A tool's result: the JSON object the model gets as the `tool` message's content (encoded), and
/// whether the tool did what was asked (exit status 0, the file read or written).
struct ToolResult: Sendable, Equatable {
    var ok: Bool
    var json: JSON

    static func problem(_ problem: ToolProblem) -> ToolResult {
        ToolResult(ok: false, json: .object([("error", .string(problem.message))]))
    }
}

/// The actor's tools for one job: `run_command`, `read_file` and `write_file`, in the job's workspace.
///
/// Commands run through `ChildProcess` (on the loop: no shell, the workspace as cwd, `tool_timeout`,
/// output capped at `tool_output_cap`, the process group killed on timeout or cancellation). Unless
/// the plan turns the sandbox off, each runs inside a bubblewrap sandbox (`Bubblewrap`) with a
/// scrubbed environment; when the sandbox cannot start, the command is refused, never run unconfined.
/// With `sandbox: false` a command runs as the daemon's user with the daemon's environment minus the
/// variables that hold API keys (the model could print them into the log). Either way it gets
/// `AGENTD_TOOL_CALL_ID` (the run's idempotency key) and `AGENTD_WORKSPACE`. File work — creating the
/// workspace, resolving paths, reading and writing — runs on the concurrent dispatch queue
/// `agentd.tools`, never on the loop. A path is relative to the workspace and is opened beneath it by
/// the kernel (`ToolBox+Files.swift`): it must stay inside once `..` and symlinks are resolved, and
/// the daemon's own files are refused whatever their name.
///
/// Loop thread only.
final class ToolBox: @unchecked Sendable {
    /// Where file work runs.
    static let files = DispatchQueue(label: "agentd.tools", attributes: .concurrent)

    let loop: EventLoop
    /// The tools the actor was offered.
    let offered: [String]
    /// The workspace as configured (absolute), or why the job has none.
    let workspace: Result<String, ToolProblem>
    let timeoutSeconds: Double
    let outputCap: Int
    /// The daemon's environment without the API-key variables.
    let environment: [String: String]
    /// How commands are confined, and what confines them.
    let sandbox: Sandbox
    let bubblewrap: Bubblewrap
    /// The workspace once created and resolved (symlinks included).
    private var resolved: String?
    /// The daemon's database, its companions and its socket, which the file tools refuse.
    var daemonFiles: DaemonFiles { DaemonFiles(paths: bubblewrap.protectedPaths) }

    /// `environment` is the daemon's; `hidden` names variables commands must not see (API keys).
    init(
        loop: EventLoop, offered: [String], workspace: Result<String, ToolProblem>, policy: Policy, sandbox: Sandbox,
        bubblewrap: Bubblewrap, environment: [String: String], hidden: Set<String> = []
    ) {
        self.loop = loop
        self.offered = offered
        self.workspace = workspace
        self.timeoutSeconds = policy.toolTimeoutSeconds
        self.outputCap = policy.toolOutputCap
        self.sandbox = sandbox
        self.bubblewrap = bubblewrap
        self.environment = environment.filter { !hidden.contains($0.key) }
    }

    /// The variables that hold a plan's API keys: every `openai` model's `api_key_env`, and
    /// `OPENAI_API_KEY` whatever the plan says.
    static func secretVariables(of plan: Plan) -> Set<String> {
        var names: Set<String> = ["OPENAI_API_KEY"]
        for model in plan.models.values {
            if case let .openai(spec) = model.backend { names.insert(spec.apiKeyEnv) }
        }
        return names
    }

    /// A job's workspace: the plan's `workspace` with `{goal}` and `{input.NAME}` substituted and a
    /// relative path resolved against the job's `cwd`; without one, the job's `cwd`.
    static func workspace(plan: Plan, job: JobRecord) -> Result<String, ToolProblem> {
        workspace(plan: plan, goal: job.goal, inputs: job.inputs, cwd: job.cwd)
    }

    /// The workspace of a job to be made of `plan`, `goal`, `inputs` and `cwd` (see `workspace(plan:job:)`).
    static func workspace(plan: Plan, goal: String, inputs: JSON, cwd: String?) -> Result<String, ToolProblem> {
        guard let configured = plan.workspace else {
            guard let cwd else {
                return .failure(ToolProblem("the job has no workspace: its plan sets none and it was submitted without a directory"))
            }
            return .success(cwd)
        }
        let path = VerifierCommand.substitute([configured], goal: goal, inputs: inputs)[0]
        if path.hasPrefix("/") { return .success(path) }
        guard let cwd else {
            return .failure(ToolProblem("the workspace '\(path)' is relative and the job was submitted without a directory"))
        }
        return .success(cwd + "/" + path)
    }

    /// Runs one checked tool call. `key` is its idempotency key, exported to commands.
    func run(_ invocation: ToolInvocation, key: String) async -> ToolResult {
        let root: String
        switch await prepareWorkspace() {
        case let .success(path): root = path
        case let .failure(problem): return .problem(problem)
        }
        switch invocation {
        case let .runCommand(argv):
            return await runCommand(argv, root: root, key: key)
        case let .readFile(path):
            let cap = outputCap
            let daemonFiles = self.daemonFiles
            return await onFiles { Self.read(path, root: root, cap: cap, daemonFiles: daemonFiles) }
        case let .writeFile(path, content):
            let daemonFiles = self.daemonFiles
            return await onFiles { Self.write(path, content: content, root: root, daemonFiles: daemonFiles) }
        }
    }

    private func prepareWorkspace() async -> Result<String, ToolProblem> {
        if let resolved { return .success(resolved) }
        let configured: String
        switch workspace {
        case let .success(path): configured = path
        case let .failure(problem): return .failure(problem)
        }
        let daemonFiles = self.daemonFiles
        let result = await onFiles { Self.create(configured, daemonFiles: daemonFiles) }
        if case let .success(path) = result { resolved = path }
        return result
    }

    func runCommand(_ argv: [String], root: String, key: String) async -> ToolResult {
        let spawned: [String]
        let env: [String]
        if sandbox.enabled {
            switch await sandboxed(argv, root: root, key: key) {
            case let .success(command): spawned = command
            case let .failure(problem): return .problem(problem)
            }
            env = []  // bwrap itself needs none; the command's is set with --clearenv / --setenv
        } else {
            spawned = argv
            var inherited = environment
            inherited["AGENTD_TOOL_CALL_ID"] = key
            inherited["AGENTD_WORKSPACE"] = root
            env = inherited.keys.sorted().map { "\($0)=\(inherited[$0]!)" }
        }
        let result: ProcessResult
        do {
            result = try await ChildProcess.run(
                loop: loop,
                .init(
                    argv: spawned, cwd: root, environment: env, timeoutMilliseconds: UInt64(timeoutSeconds * 1000),
                    outputCap: outputCap))
        } catch {
            return .problem(ToolProblem("cannot start \(spawned[0]): \(error.message)"))
        }
        var members: [(String, JSON)] = [
            ("exit_status", .int(Int(result.exitStatus))), ("signal", .int(Int(result.termSignal))),
            ("timed_out", .bool(result.timedOut)),
        ]
        if result.timedOut || result.cancelled {
            members.append(
                ("error", .string("the command \(result.summary(timeoutSeconds: timeoutSeconds)); its process group was killed")))
        }
        members += [
            ("stdout", .string(result.stdoutText)), ("stdout_truncated", .bool(result.stdoutTruncated)),
            ("stderr", .string(result.stderrText)), ("stderr_truncated", .bool(result.stderrTruncated)),
        ]
        return ToolResult(ok: result.succeeded, json: .object(members))
    }

    /// The bwrap command line that runs `argv` in this job's sandbox, or why there is none.
    private func sandboxed(_ argv: [String], root: String, key: String) async -> Result<[String], ToolProblem> {
        let executables: Bubblewrap.Executables
        switch await bubblewrap.executables() {
        case let .success(found): executables = found
        case let .failure(problem): return .failure(problem)
        }
        let (sandbox, protected) = (self.sandbox, bubblewrap.protectedPaths)
        let layout: Bubblewrap.Layout
        switch await Self.onFiles({ Bubblewrap.layout(workspace: root, sandbox: sandbox, protectedPaths: protected) }) {
        case let .success(found): layout = found
        case let .failure(problem): return .failure(problem)
        }
        return .success(
            Bubblewrap.command(
                argv, executables: executables, sandbox: sandbox, layout: layout, environment: sandboxEnvironment(root: root, key: key),
                privileged: bubblewrap.privileged))
    }

    /// A sandboxed command's whole environment: `PATH` (the daemon's), `HOME` (the workspace) and
    /// `LANG`, replaced by the daemon's values of those the plan names in `env`, the other variables
    /// it names that the daemon has (never an API key: `environment` holds none), and agentd's two.
    func sandboxEnvironment(root: String, key: String) -> [(String, String)] {
        var env: [(String, String)] = [
            ("PATH", environment["PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? Bubblewrap.defaultPath), ("HOME", root),
            ("LANG", "C.UTF-8"),
        ]
        for name in sandbox.environment {
            guard let value = environment[name] else { continue }
            if let index = env.firstIndex(where: { $0.0 == name }) {
                env[index].1 = value
            } else {
                env.append((name, value))
            }
        }
        return env + [("AGENTD_TOOL_CALL_ID", key), ("AGENTD_WORKSPACE", root)]
    }

    /// Runs `body` on the file queue and resumes on the caller's executor (the loop).
    private func onFiles<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await Self.onFiles(body)
    }

    /// Runs `body` on the file queue and resumes on the caller's executor.
    static func onFiles<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withUnsafeContinuation { continuation in
            files.async { continuation.resume(returning: body()) }
        }
    }
}
