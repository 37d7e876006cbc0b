import Agents
import Dispatch
import Foundation
import Runtime
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
    func describe(in started: inout ToolStarted) {
        switch self {
        case let .runCommand(argv): started.argv = argv
        case let .readFile(path): started.path = path
        case let .writeFile(path, content):
            started.path = path
            started.bytes = content.utf8.count
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
/// output capped at the call's `ToolAllowance`, the process group killed on timeout or cancellation),
/// started by the job's `CommandLauncher`: inside the plan's sandbox unless the plan turns it off, and
/// never with a secret. Either way a command gets `AGENTD_TOOL_CALL_ID` (the run's idempotency key)
/// and `AGENTD_WORKSPACE`. What a result carries of a command's output or a file's content is cut to
/// the call's allowance (`tool_output_cap`, or less when the turn's or the job's budget is nearly used
/// up), counted JSON-encoded. File work — creating the workspace, resolving paths, reading and
/// writing — runs on the concurrent dispatch queue `agentd.tools`, never on the loop. A path is
/// relative to the workspace and is opened beneath it by the kernel (`ToolBox+Files.swift`): it must
/// stay inside once `..` and symlinks are resolved, and the daemon's own files are refused whatever
/// their name.
///
/// Loop thread only.
final class ToolBox: @unchecked Sendable {
    /// Where file work runs.
    static let files = DispatchQueue(label: "agentd.tools", attributes: .concurrent)

    let loop: EventLoop
    /// The tools the actor was offered.
    let offered: [String]
    let timeoutSeconds: Double
    /// `policy.tool_output_cap`: what one result may carry when the turn's and the job's budgets allow.
    let resultAllowance: ToolAllowance
    /// Starts the job's commands, in its workspace.
    let launcher: CommandLauncher
    /// Whether the tools only read (a model critic's): `run_command` runs with the workspace bound
    /// read-only, and `write_file` is never offered (`PlanReader` refuses it).
    let readOnly: Bool

    init(offered: [String], policy: Policy, launcher: CommandLauncher, readOnly: Bool = false) {
        self.loop = launcher.loop
        self.readOnly = readOnly
        self.offered = offered
        self.timeoutSeconds = policy.toolTimeoutSeconds
        self.resultAllowance = ToolAllowance(bytes: policy.toolOutputCap, limit: "policy.tool_output_cap")
        self.launcher = launcher
    }

    /// The daemon's database, its companions and its socket, which the file tools refuse.
    var daemonFiles: DaemonFiles { DaemonFiles(paths: launcher.bubblewrap.protectedPaths) }

    /// `environment` is the daemon's; `hidden` names variables commands must not see (API keys).
    convenience init(
        loop: EventLoop, offered: [String], workspace: Result<String, ToolProblem>, policy: Policy, sandbox: Sandbox,
        bubblewrap: Bubblewrap, environment: [String: String], hidden: Set<String> = []
    ) {
        self.init(
            offered: offered, policy: policy,
            launcher: CommandLauncher(
                loop: loop, sandbox: sandbox, bubblewrap: bubblewrap, workspace: workspace, environment: environment, secrets: hidden))
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

    /// Runs one checked tool call. `key` is its idempotency key, exported to commands; `allowance`
    /// bounds the output its result carries (by default `tool_output_cap`).
    func run(_ invocation: ToolInvocation, key: String, allowance: ToolAllowance? = nil) async -> ToolResult {
        let allowance = allowance ?? resultAllowance
        let root: String
        switch await launcher.prepareWorkspace() {
        case let .success(path): root = path
        case let .failure(problem): return .problem(problem)
        }
        switch invocation {
        case let .runCommand(argv):
            return await runCommand(argv, root: root, key: key, allowance: allowance)
        case let .readFile(path):
            let daemonFiles = self.daemonFiles
            return await onFiles {
                Self.read(path, root: root, cap: allowance.bytes, limit: allowance.limit, daemonFiles: daemonFiles)
            }
        case let .writeFile(path, content):
            guard !readOnly else { return .problem(ToolProblem("write_file is not among the tools of a read-only role")) }
            let daemonFiles = self.daemonFiles
            return await onFiles { Self.write(path, content: content, root: root, daemonFiles: daemonFiles) }
        }
    }

    func runCommand(_ argv: [String], root: String, key: String, allowance: ToolAllowance) async -> ToolResult {
        let launch: CommandLauncher.Launch
        switch await launcher.launch(
            argv, cwd: root, confined: launcher.sandbox.enabled, keyVariable: "AGENTD_TOOL_CALL_ID", key: key, needsWorkspace: true,
            readOnlyWorkspace: readOnly)
        {
        case let .success(found): launch = found
        case let .failure(problem): return .problem(problem)
        }
        let result: ProcessResult
        do {
            // No more than the allowance of either stream can be kept (a byte costs at least one
            // encoded byte), so no more is held in memory.
            result = try await ChildProcess.run(
                loop: loop,
                .init(
                    argv: launch.argv, cwd: launch.cwd, environment: launch.environment,
                    timeoutMilliseconds: UInt64(timeoutSeconds * 1000), outputCap: allowance.bytes))
        } catch {
            return .problem(ToolProblem("cannot start \(launch.argv[0]): \(error.message)"))
        }
        var members: [(String, JSON)] = [
            ("exit_status", .int(Int(result.exitStatus))), ("signal", .int(Int(result.termSignal))),
            ("timed_out", .bool(result.timedOut)),
        ]
        if result.timedOut || result.cancelled {
            members.append(
                ("error", .string("the command \(result.summary(timeoutSeconds: timeoutSeconds)); its process group was killed")))
        }
        let (stdout, stderr) = allowance.fit(stdout: result.stdout, stderr: result.stderr)
        let (stdoutCut, stderrCut) = (result.stdoutTruncated || !stdout.complete, result.stderrTruncated || !stderr.complete)
        members += [
            ("stdout", .string(stdout.text)), ("stdout_truncated", .bool(stdoutCut)),
            ("stderr", .string(stderr.text)), ("stderr_truncated", .bool(stderrCut)),
        ]
        if stdoutCut || stderrCut {
            let parts = [
                ("stdout", result.stdoutReceived, stdout.text.utf8.count), ("stderr", result.stderrReceived, stderr.text.utf8.count),
            ]
            members.append(("truncation", .string(allowance.truncation(parts))))
        }
        return ToolResult(ok: result.succeeded, json: .object(members))
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
