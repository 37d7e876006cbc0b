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
            return .success(.runCommand(argv: argv))
        case .readFile:
            return string("path").map { .readFile(path: $0) }
        case .writeFile:
            return string("path").flatMap { path in string("content").map { .writeFile(path: path, content: $0) } }
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
/// the process group killed on timeout or cancellation). What a result carries of a command's output
/// or a file's content is cut to the call's `ToolAllowance` (`tool_output_cap`, or less when the
/// turn's or the job's budget is nearly used up), counted JSON-encoded. Unless
/// the plan turns the sandbox off, each runs inside a bubblewrap sandbox (`Bubblewrap`) with a
/// scrubbed environment; when the sandbox cannot start, the command is refused, never run unconfined.
/// With `sandbox: false` a command runs as the daemon's user with the daemon's environment minus
/// every secret variable (API keys and the daemon's `secret_env`: the model could print them). Either way it gets
/// `AGENTD_TOOL_CALL_ID` (the run's idempotency key) and `AGENTD_WORKSPACE`. File work — creating the
/// workspace, resolving paths, reading and writing — runs on the concurrent dispatch queue
/// `agentd.tools`, never on the loop. A path is relative to the workspace and must stay inside it
/// once `..` and symlinks are resolved.
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
    /// `policy.tool_output_cap`: what one result may carry when the turn's and the job's budgets allow.
    let resultAllowance: ToolAllowance
    /// The daemon's environment without the secret variables.
    let environment: [String: String]
    /// How commands are confined, and what confines them.
    let sandbox: Sandbox
    let bubblewrap: Bubblewrap
    /// The workspace once created and resolved (symlinks included).
    private var resolved: String?

    /// `environment` is the daemon's; `hidden` names variables commands must not see (secrets).
    init(
        loop: EventLoop, offered: [String], workspace: Result<String, ToolProblem>, policy: Policy, sandbox: Sandbox,
        bubblewrap: Bubblewrap, environment: [String: String], hidden: Set<String> = []
    ) {
        self.loop = loop
        self.offered = offered
        self.workspace = workspace
        self.timeoutSeconds = policy.toolTimeoutSeconds
        self.resultAllowance = ToolAllowance(bytes: policy.toolOutputCap, limit: "policy.tool_output_cap")
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
        guard let configured = plan.workspace else {
            guard let cwd = job.cwd else {
                return .failure(ToolProblem("the job has no workspace: its plan sets none and it was submitted without a directory"))
            }
            return .success(cwd)
        }
        let path = VerifierCommand.substitute([configured], goal: job.goal, inputs: job.inputs)[0]
        if path.hasPrefix("/") { return .success(path) }
        guard let cwd = job.cwd else {
            return .failure(ToolProblem("the workspace '\(path)' is relative and the job was submitted without a directory"))
        }
        return .success(cwd + "/" + path)
    }

    /// Runs one checked tool call. `key` is its idempotency key, exported to commands; `allowance`
    /// bounds the output its result carries (by default `tool_output_cap`).
    func run(_ invocation: ToolInvocation, key: String, allowance: ToolAllowance? = nil) async -> ToolResult {
        let allowance = allowance ?? resultAllowance
        let root: String
        switch await prepareWorkspace() {
        case let .success(path): root = path
        case let .failure(problem): return .problem(problem)
        }
        switch invocation {
        case let .runCommand(argv):
            return await runCommand(argv, root: root, key: key, allowance: allowance)
        case let .readFile(path):
            return await onFiles { Self.read(path, root: root, cap: allowance.bytes, limit: allowance.limit) }
        case let .writeFile(path, content):
            return await onFiles { Self.write(path, content: content, root: root) }
        }
    }

    private func prepareWorkspace() async -> Result<String, ToolProblem> {
        if let resolved { return .success(resolved) }
        let configured: String
        switch workspace {
        case let .success(path): configured = path
        case let .failure(problem): return .failure(problem)
        }
        let result = await onFiles { Self.create(configured) }
        if case let .success(path) = result { resolved = path }
        return result
    }

    func runCommand(_ argv: [String], root: String, key: String, allowance: ToolAllowance) async -> ToolResult {
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
            // No more than the allowance of either stream can be kept (a byte costs at least one
            // encoded byte), so no more is held in memory.
            result = try await ChildProcess.run(
                loop: loop,
                .init(
                    argv: spawned, cwd: root, environment: env, timeoutMilliseconds: UInt64(timeoutSeconds * 1000),
                    outputCap: allowance.bytes))
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
    /// it names that the daemon has (never a secret: `environment` holds none), and agentd's two.
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

    // MARK: File work (on the file queue)

    /// Creates the workspace if needed; returns its real path.
    static func create(_ path: String) -> Result<String, ToolProblem> {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            return .failure(ToolProblem("cannot create the workspace '\(path)': \(error.localizedDescription)"))
        }
        guard let real = realPath(path) else {
            return .failure(ToolProblem("cannot resolve the workspace '\(path)': \(String(cString: strerror(errno)))"))
        }
        return .success(real)
    }

    /// `relative` inside `root` (a real path), with `..` and symlinks resolved as far as the path
    /// exists; what does not exist yet is checked lexically. A path that leaves `root` is refused.
    static func inside(_ root: String, _ relative: String) -> Result<String, ToolProblem> {
        guard !relative.isEmpty else { return .failure(ToolProblem("the path is empty")) }
        guard !relative.hasPrefix("/") else {
            return .failure(ToolProblem("'\(relative)' is absolute; give a path relative to the workspace"))
        }
        let escapes = ToolProblem("'\(relative)' is outside the workspace")
        var parts: [String] = []
        for part in relative.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == ".." {
                guard !parts.isEmpty else { return .failure(escapes) }
                parts.removeLast()
            } else {
                parts.append(String(part))
            }
        }
        func contained(_ path: String) -> Bool { path == root || path.hasPrefix(root == "/" ? "/" : root + "/") }
        // The longest prefix that exists, resolved; the rest must not exist yet.
        var existing = parts.count
        while existing > 0 {
            let prefix = root + "/" + parts[..<existing].joined(separator: "/")
            if let real = realPath(prefix) {
                guard contained(real) else { return .failure(escapes) }
                let rest = parts[existing...]
                return .success(rest.isEmpty ? real : real + "/" + rest.joined(separator: "/"))
            }
            var info = stat()
            if lstat(prefix, &info) == 0 {
                // There, but not resolvable: a dangling symlink could point anywhere.
                return .failure(ToolProblem("'\(relative)' goes through a symlink that points nowhere"))
            }
            existing -= 1
        }
        return .success(parts.isEmpty ? root : root + "/" + parts.joined(separator: "/"))
    }

    /// Reads a file of the workspace; its content is cut to `cap` bytes JSON-encoded, `limit` being
    /// the policy that set the cap.
    static func read(_ relative: String, root: String, cap: Int, limit: String = "policy.tool_output_cap") -> ToolResult {
        let path: String
        switch inside(root, relative) {
        case let .success(p): path = p
        case let .failure(problem): return .problem(problem)
        }
        // O_NONBLOCK: a FIFO without a writer must not hold the tools queue; it is refused below.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .problem(ToolProblem("cannot read '\(relative)': \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        if let problem = notARegularFile(fd, relative) { return .problem(problem) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var truncated = false
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .problem(ToolProblem("cannot read '\(relative)': \(String(cString: strerror(errno)))"))
            }
            if n == 0 { break }
            let room = cap - bytes.count
            bytes.append(contentsOf: chunk[0..<min(n, room)])
            if n > room {
                truncated = true
                break
            }
        }
        let allowance = ToolAllowance(bytes: cap, limit: limit)
        let content = allowance.fit(bytes)
        var members: [(String, JSON)] = [
            ("path", .string(relative)), ("content", .string(content.text)), ("truncated", .bool(truncated || !content.complete)),
        ]
        if truncated || !content.complete {
            let size = Int(max(lseek(fd, 0, SEEK_END), off_t(bytes.count)))
            members.append(("truncation", .string(allowance.truncation([("content", size, content.text.utf8.count)]))))
        }
        return ToolResult(ok: true, json: .object(members))
    }

    /// Why the open file `fd` is no file to read or write: a directory, a FIFO, a device, a socket.
    private static func notARegularFile(_ fd: Int32, _ relative: String) -> ToolProblem? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return ToolProblem("cannot inspect '\(relative)': \(String(cString: strerror(errno)))") }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return ToolProblem("'\(relative)' is a directory")
        default: return ToolProblem("'\(relative)' is not a regular file (a FIFO, a device or a socket)")
        }
    }

    static func write(_ relative: String, content: String, root: String) -> ToolResult {
        let path: String
        switch inside(root, relative) {
        case let .success(p): path = p
        case let .failure(problem): return .problem(problem)
        }
        guard path != root else { return .problem(ToolProblem("'\(relative)' is the workspace itself, not a file")) }
        let parent = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            return .problem(ToolProblem("cannot create the directory of '\(relative)': \(error.localizedDescription)"))
        }
        // O_NOFOLLOW: a symlink created since the check is not followed out of the workspace.
        // O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of holding the tools queue.
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o644)
        guard fd >= 0 else { return .problem(ToolProblem("cannot write '\(relative)': \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        if let problem = notARegularFile(fd, relative) { return .problem(problem) }
        let bytes = Array(content.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return .problem(ToolProblem("cannot write '\(relative)': \(String(cString: strerror(errno)))"))
            }
            offset += n
        }
        return ToolResult(ok: true, json: .object([("path", .string(relative)), ("bytes_written", .int(bytes.count))]))
    }

    /// `path` with every symlink, `.` and `..` resolved; nil when it does not exist (see `errno`).
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
