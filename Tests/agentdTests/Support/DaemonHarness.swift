import Foundation
import Store
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A failure of the test machinery itself (a daemon that never answers, a missing binary...).
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Locations

/// Where the built `agentd` binary, the repository and the test fixtures are.
enum Locations {
    /// `Tests/agentdTests/Support/DaemonHarness.swift` -> the repository root.
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var fixtures: String { repoRoot + "/Tests/Fixtures" }
    static var fixturePlans: String { fixtures + "/plans" }
    static var fixtureScripts: String { fixtures + "/scripts" }

    /// The fixture scripts copied where the sandbox's `nobody` can read them, outside `/tmp` (the clone may sit
    /// below a directory only its owner can enter): what plans' `@SCRIPTS@` names. Made once per test
    /// process, afresh, in a directory of this clone's own (named by a hash of its path), so test runs of
    /// two clones on one machine never run each other's scripts.
    static let sandboxReadableScripts: String = {
        let clone = repoRoot.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        let copy = "/var/tmp/agentd-e2e-scripts-\(getuid())-\(String(clone, radix: 16).prefix(8))"
        let fm = FileManager.default
        try? fm.removeItem(atPath: copy)
        try? fm.createDirectory(atPath: copy, withIntermediateDirectories: true)
        chmod(copy, 0o755)
        for name in (try? fm.contentsOfDirectory(atPath: fixtureScripts)) ?? [] {
            try? fm.copyItem(atPath: fixtureScripts + "/" + name, toPath: copy + "/" + name)
            chmod(copy + "/" + name, 0o755)
        }
        return copy
    }()
    static var shippedPlans: String { repoRoot + "/plans" }

    /// The `agentd` executable built next to the test bundle (same products directory).
    /// `AGENTD_E2E_BINARY` overrides the search.
    static func agentdExecutable() throws -> String {
        let fm = FileManager.default
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["AGENTD_E2E_BINARY"], !override.isEmpty {
            candidates.append(override)
        }
        var directories: [URL] = []
        let bundle = Bundle.main.bundleURL
        directories.append(bundle.hasDirectoryPath && bundle.pathExtension != "xctest" ? bundle : bundle.deletingLastPathComponent())
        directories.append(bundle.deletingLastPathComponent())
        if let exe = Bundle.main.executableURL { directories.append(exe.deletingLastPathComponent()) }
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        if let arg0 = CommandLine.arguments.first, arg0.contains("/") {
            directories.append(URL(fileURLWithPath: arg0).deletingLastPathComponent())
        }
        for directory in directories {
            // On macOS the bundle is `X.xctest/Contents/MacOS/X`; walk up to the products directory.
            var dir = directory
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("agentd").path)
                dir.deleteLastPathComponent()
            }
        }
        for path in candidates {
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue, fm.isExecutableFile(atPath: path) {
                return path
            }
        }
        throw HarnessError(
            "cannot find the agentd executable next to the test bundle (looked at: "
                + Array(Set(candidates)).sorted().joined(separator: ", ")
                + "); build it first with `swift build --scratch-path .build-e2e` or set AGENTD_E2E_BINARY")
    }

    /// A Python 3 interpreter for the fixture scripts (the system one if there is one: it starts fastest).
    static func python() throws -> String {
        for path in ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(dir)/python3"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw HarnessError("the end-to-end tests need python3 for their fixture scripts; none found")
    }
}

// MARK: - Running commands

/// What a finished command left behind.
struct CommandResult: CustomStringConvertible {
    let arguments: [String]
    let status: Int32
    /// The signal that ended it, or 0.
    let signal: Int32
    let stdout: String
    let stderr: String

    var stdoutLines: [String] { Self.lines(stdout) }
    var stderrLines: [String] { Self.lines(stderr) }

    static func lines(_ text: String) -> [String] {
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    var description: String {
        "`agentd \(arguments.joined(separator: " "))` exited \(status)\(signal != 0 ? " (signal \(signal))" : "")\n"
            + "--- stdout ---\n\(stdout)--- stderr ---\n\(stderr)--------------"
    }
}

/// Polls `condition` until it holds or `timeout` passes. Polling is the waiting mechanism; it is never
/// an assertion by itself.
@discardableResult
func waitUntil(timeout: Double, interval: Double = 0.01, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return true }
        if Date() >= deadline { return false }
        usleep(useconds_t(interval * 1_000_000))
    }
}

// MARK: - The daemon under test

/// One daemon in its own short-named temporary directory: starts `agentd serve` as a child process,
/// runs CLI commands against it, signals and restarts it, and removes everything afterwards.
final class DaemonHarness: @unchecked Sendable {
    /// `/tmp/agentd-e2e-XXXXXX`: short, because a Unix socket path is limited to ~100 bytes.
    let dir: String
    let socketPath: String
    /// In `dir` unless a test puts it elsewhere (on a small file system, say) before starting a daemon.
    var dbPath: String
    let agentd: String
    /// A word unique to this harness; fixture commands carry it in their argv so their processes can be
    /// found (and cleaned up) through /proc.
    let marker: String

    private(set) var daemon: Process?
    private var starts = 0
    private var commands = 0
    private(set) var logPaths: [String] = []
    /// Extra environment for the daemons this harness starts.
    var daemonEnvironment: [String: String] = [:]
    /// The user and group the daemons run as (through util-linux's `setpriv`, which execs the daemon
    /// so its pid stays the `Process`'s); nil runs them as the test's user. The harness directory
    /// must then be theirs (`chown`).
    var daemonUser: (uid: uid_t, gid: gid_t)?

    init() throws {
        agentd = try Locations.agentdExecutable()
        var template = Array("/tmp/agentd-e2e-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        dir = String(cString: made)
        socketPath = dir + "/d.sock"
        dbPath = dir + "/agentd.db"
        marker = "agentd-e2e-marker-" + (dir as NSString).lastPathComponent.replacingOccurrences(of: "agentd-e2e-", with: "")
        // A vanished peer must give EPIPE, not kill the test process.
        signal(SIGPIPE, SIG_IGN)
    }

    /// The environment for every child: the caller's, without agentd's own variables (tests pass
    /// `--socket` / `--db` or set them explicitly).
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["AGENTD_SOCKET"] = nil
        env["AGENTD_DB"] = nil
        for (k, v) in extra { env[k] = v }
        return env
    }

    // MARK: Daemon lifecycle

    /// Starts `agentd serve` on this harness's socket and database (or `db`) and waits until it answers.
    func start(extraArguments: [String] = [], db: String? = nil, timeout: Double = 15) throws {
        precondition(daemon?.isRunning != true, "a daemon is already running")
        daemon = try launchServe(db: db, extraArguments: extraArguments)
        try waitUntilReady(timeout: timeout)
    }

    /// Starts another `agentd serve` (not tracked as the harness's daemon) and returns it at once.
    func launchServe(socket: String? = nil, db: String? = nil, extraArguments: [String] = []) throws -> Process {
        starts += 1
        let log = dir + "/serve-\(starts).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        logPaths.append(log)
        let process = Process()
        let serve = ["serve", "--socket", socket ?? socketPath, "--db", db ?? dbPath, "--drain-seconds", "2"] + extraArguments
        if let user = daemonUser {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "--", agentd] + serve
        } else {
            process.executableURL = URL(fileURLWithPath: agentd)
            process.arguments = serve
        }
        process.environment = environment(daemonEnvironment)
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? handle.close()
        return process
    }

    /// Waits until the socket answers `daemon.status`; fails early if the daemon exits.
    func waitUntilReady(timeout: Double = 15) throws {
        var lastError = "no attempt"
        let ok = waitUntil(timeout: timeout, interval: 0.02) {
            if let daemon, !daemon.isRunning { return true }
            do {
                let connection = try WireConnection(path: socketPath)
                let status = try connection.call("daemon.status", timeout: 5)
                return status["pid"]?.intValue != nil
            } catch {
                lastError = "\(error)"
                return false
            }
        }
        if let daemon, !daemon.isRunning {
            throw HarnessError("agentd serve exited with status \(daemon.terminationStatus) before answering; its log:\n\(lastDaemonLog())")
        }
        if !ok {
            throw HarnessError("agentd serve did not answer daemon.status within \(timeout)s (\(lastError)); its log:\n\(lastDaemonLog())")
        }
    }

    var daemonPID: Int32? { daemon.map { $0.processIdentifier } }

    func sendSignal(_ signal: Int32) {
        guard let daemon, daemon.isRunning else { return }
        kill(daemon.processIdentifier, signal)
    }

    /// Runs `sqlite3 DB SQL` (the real CLI, as an auditor would) and returns what it printed; on this
    /// harness's database unless `db` names another.
    func sqlite(_ sql: String, db: String? = nil) throws -> String {
        let (status, text) = try runCapturingOutput("/usr/bin/env", ["sqlite3", db ?? dbPath, sql])
        guard status == 0 else { throw HarnessError("sqlite3 failed: \(text)") }
        return text
    }

    /// Stops the daemon (SIGTERM, SIGKILL if it lingers) so another can start on the same files.
    func cleanUpDaemon() {
        guard let daemon, daemon.isRunning else { return }
        kill(daemon.processIdentifier, SIGTERM)
        if (try? waitForExit(timeout: 10)) == nil { kill(daemon.processIdentifier, SIGKILL) }
        daemon.waitUntilExit()
    }

    /// Waits for the daemon to exit; returns (exit status, terminating signal or 0).
    func waitForExit(timeout: Double = 15) throws -> (status: Int32, signal: Int32) {
        guard let daemon else { throw HarnessError("no daemon was started") }
        return try Self.waitForExit(daemon, timeout: timeout)
    }

    static func waitForExit(_ process: Process, timeout: Double) throws -> (status: Int32, signal: Int32) {
        guard waitUntil(timeout: timeout, interval: 0.01, { !process.isRunning }) else {
            throw HarnessError("process \(process.processIdentifier) did not exit within \(timeout)s")
        }
        if process.terminationReason == .uncaughtSignal { return (-1, process.terminationStatus) }
        return (process.terminationStatus, 0)
    }

    /// SIGKILL, as a crash would: nothing is drained or cleaned up. Model processes the daemon had
    /// started survive it (they run in their own process groups); `killOrphans` kills them too.
    /// Returns the orphans that were found.
    @discardableResult
    func crash(killOrphans: Bool = true) throws -> [ProcessTable.Entry] {
        guard let daemon, daemon.isRunning else { throw HarnessError("crash: no daemon is running") }
        let pid = daemon.processIdentifier
        kill(pid, SIGKILL)
        guard waitUntil(timeout: 10, { ProcessTable.entry(pid)?.isAlive != true }) else {
            throw HarnessError("the daemon (pid \(pid)) survived SIGKILL")
        }
        // Foundation notices a child's exit only once every copy of its status pipe is closed, and the
        // daemon's children inherit one: the orphans must go before `Process` reports the exit.
        // The daemon's children carry AGENTD_DAEMON_DB (and so do theirs), and most name this directory.
        let owner = Array("AGENTD_DAEMON_DB=\(dbPath)".utf8)
        let orphans = ProcessTable.all().filter {
            $0.isAlive && $0.pid != pid
                && ($0.commandLine.contains(marker) || $0.commandLine.contains(dir) || ProcessTable.environment(of: $0.pid).contains(owner))
        }
        if killOrphans {
            for orphan in orphans { kill(orphan.pid, SIGKILL) }
            do {
                _ = try waitForExit(timeout: 30)
            } catch {
                throw HarnessError(
                    "\(error); the daemon is \(ProcessTable.entry(pid).map { "in state \($0.state)" } ?? "gone"); processes:\n\(ProcessTable.listing())"
                )
            }
        }
        return orphans
    }

    /// Starts a new daemon on the same socket and database. The previous daemon must be dead; its
    /// children may still run (Foundation reports its exit only once they end too).
    func restart(timeout: Double = 15) throws {
        if let daemon, ProcessTable.entry(daemon.processIdentifier)?.isAlive == true {
            throw HarnessError("restart: the daemon is still running")
        }
        daemon = nil
        try start(timeout: timeout)
    }

    /// The log of the daemon started last.
    func lastDaemonLog() -> String {
        guard let path = logPaths.last else { return "(no daemon was started)" }
        return "== \(path) ==\n" + ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "(unreadable)")
    }

    /// The logs of every daemon this harness started, for failure messages.
    func daemonLog() -> String {
        logPaths.map { path in
            "== \(path) ==\n" + ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "(unreadable)")
        }.joined(separator: "\n")
    }

    // MARK: CLI

    /// Runs `agentd ARGS --socket SOCKET` (unless `socket` is false) and captures everything.
    func cli(_ arguments: [String], socket: Bool = true, cwd: String? = nil, env: [String: String] = [:], timeout: Double = 30)
        throws -> CommandResult
    {
        try run(arguments + (socket ? ["--socket", socketPath] : []), cwd: cwd, env: env, timeout: timeout)
    }

    func cli(_ arguments: String..., timeout: Double = 30) throws -> CommandResult {
        try cli(arguments, timeout: timeout)
    }

    /// Runs the agentd binary with exactly these arguments.
    func run(_ arguments: [String], cwd: String? = nil, env: [String: String] = [:], timeout: Double = 30) throws -> CommandResult {
        commands += 1
        let out = dir + "/cmd-\(commands).out"
        let err = dir + "/cmd-\(commands).err"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: agentd)
        process.arguments = arguments
        process.environment = environment(env)
        process.currentDirectoryURL = URL(fileURLWithPath: cwd ?? Locations.repoRoot)
        let outHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? outHandle.close()
        try? errHandle.close()
        if !waitUntil(timeout: timeout, interval: 0.005, { !process.isRunning }) {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw HarnessError(
                "`agentd \(arguments.joined(separator: " "))` did not finish within \(timeout)s; stdout:\n"
                    + ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "") + "\nstderr:\n"
                    + ((try? String(contentsOfFile: err, encoding: .utf8)) ?? ""))
        }
        let signaled = process.terminationReason == .uncaughtSignal
        return CommandResult(
            arguments: arguments, status: signaled ? -1 : process.terminationStatus, signal: signaled ? process.terminationStatus : 0,
            stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    // MARK: Socket

    func connect() throws -> WireConnection {
        try WireConnection(path: socketPath)
    }

    /// One call on a fresh connection; throws `RPCFailure` for an error reply.
    func rpc(_ method: String, _ params: JSON = .object([]), timeout: Double = 15) throws -> JSON {
        try connect().call(method, params, timeout: timeout)
    }

    /// Every event of a job, in order, paging through `job.transcript`.
    func events(_ jobID: String) throws -> [JSON] {
        var all: [JSON] = []
        var after = 0
        while true {
            let page = try rpc("job.transcript", ["id": .string(jobID), "after_seq": .int(after)])
            all += page["events"]?.arrayValue ?? []
            guard let next = page["next_after_seq"]?.intValue else { return all }
            after = next
        }
    }

    /// Polls the transcript until an event satisfies `predicate`; returns it.
    @discardableResult
    func waitForEvent(_ jobID: String, timeout: Double = 15, _ what: String, where predicate: (JSON) -> Bool) throws -> JSON {
        var found: JSON?
        _ = try waitUntil(timeout: timeout, interval: 0.01) {
            found = try events(jobID).first(where: predicate)
            return found != nil
        }
        guard let found else {
            throw HarnessError(
                "no \(what) event for job \(jobID) within \(timeout)s; events so far:\n"
                    + ((try? events(jobID).map(\.encoded).joined(separator: "\n")) ?? "(unreadable)"))
        }
        return found
    }

    /// `job.wait`: the job once it is terminal.
    func waitForJob(_ jobID: String, timeout: Double = 30) throws -> JSON {
        try rpc("job.wait", ["id": .string(jobID)], timeout: timeout)
    }

    // MARK: Plans

    /// Copies a fixture plan into this harness's directory with its `@NAME@` placeholders filled in
    /// (`@PYTHON@`, `@SCRIPTS@`, `@WORK@`, `@MARKER@`, plus `values`). Returns the new file's path.
    func preparePlan(_ fixture: String, values: [String: String] = [:]) throws -> String {
        var text = try String(contentsOfFile: Locations.fixturePlans + "/" + fixture, encoding: .utf8)
        var all = values
        if text.contains("@PYTHON@") { all["PYTHON"] = try Locations.python() }
        all["SCRIPTS"] = Locations.sandboxReadableScripts
        all["WORK"] = dir
        all["MARKER"] = marker
        for (key, value) in all { text = text.replacingOccurrences(of: "@\(key)@", with: value) }
        if let range = text.range(of: #"@[A-Z_]+@"#, options: .regularExpression) {
            throw HarnessError("plan fixture \(fixture) has an unfilled placeholder \(text[range])")
        }
        let path = dir + "/" + fixture
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: Cleanup

    /// Kills the daemon and every process carrying this harness's directory or marker in its argv,
    /// then removes the directory.
    func cleanUp() {
        if let daemon, daemon.isRunning {
            kill(daemon.processIdentifier, SIGKILL)
            _ = waitUntil(timeout: 10) { ProcessTable.entry(daemon.processIdentifier)?.isAlive != true }
        }
        killLeftovers()
        if let daemon { _ = try? Self.waitForExit(daemon, timeout: 10) }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Every process started for this harness that is still alive: found by marker or directory in its
    /// argv, killed by pid.
    func killLeftovers() {
        for process in ProcessTable.all()
        where process.isAlive && (process.commandLine.contains(marker) || process.commandLine.contains(dir)) {
            kill(process.pid, SIGKILL)
        }
    }
}

// MARK: - /proc

/// A read of /proc: which processes exist, with their state, process group and argv.
enum ProcessTable {
    struct Entry {
        let pid: Int32
        let state: Character
        let processGroup: Int32
        let commandLine: String

        var isAlive: Bool { state != "Z" && state != "X" }
    }

    /// Every process with its parent, state, command line and open sockets and pipes, for a failure message.
    static func listing() -> String {
        all().map { entry in
            let stat = (try? String(contentsOfFile: "/proc/\(entry.pid)/stat", encoding: .utf8)) ?? ""
            let parent = stat.split(separator: ")").last?.split(separator: " ").dropFirst(1).first.map(String.init) ?? "?"
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(entry.pid)/fd")) ?? []
            let ends = fds.compactMap { fd -> String? in
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry.pid)/fd/\(fd)"),
                    target.hasPrefix("socket:") || target.hasPrefix("pipe:")
                else { return nil }
                return "\(fd)=\(target)"
            }
            return "\(entry.pid) ppid \(parent) \(entry.state) \(entry.commandLine.prefix(160)) [\(ends.joined(separator: " "))]"
        }.joined(separator: "\n")
    }

    /// The `NAME=VALUE` entries of a process's environment (empty if it cannot be read).
    static func environment(of pid: Int32) -> [[UInt8]] {
        (FileManager.default.contents(atPath: "/proc/\(pid)/environ") ?? Data()).split(separator: 0).map(Array.init)
    }

    static func all() -> [Entry] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { name in
            guard let pid = Int32(name) else { return nil }
            return entry(pid)
        }
    }

    static func entry(_ pid: Int32) -> Entry? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 3, let state = fields[0].first, let group = Int32(fields[2]) else { return nil }
        let argv = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        let commandLine = String(decoding: argv.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        return Entry(pid: pid, state: state, processGroup: group, commandLine: commandLine)
    }

    /// Live processes whose argv contains `text`.
    static func alive(containing text: String) -> [Entry] {
        all().filter { $0.isAlive && $0.commandLine.contains(text) }
    }

    /// Live processes in process group `group`.
    static func alive(inGroup group: Int32) -> [Entry] {
        all().filter { $0.isAlive && $0.processGroup == group }
    }
}

// MARK: - A JSON-RPC connection with timeouts

/// A JSON-RPC error reply.
struct RPCFailure: Error, CustomStringConvertible {
    let code: Int
    let message: String
    let response: JSON
    var description: String { "JSON-RPC error \(code): \(message)" }
}

/// One connection to the daemon's socket, speaking newline-delimited JSON-RPC, where every read has a
/// deadline (so a daemon that never answers fails the test instead of hanging it) and raw bytes can
/// be sent.
final class WireConnection {
    let path: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    /// The bytes of `buffer` before this hold no newline: a large message is scanned once.
    private var scanned = 0
    private var nextID = 0

    init(path: String) throws {
        self.path = path
        // The descriptor becomes this object's only once connected: a throwing init still runs
        // `deinit`, which must not close a number that another thread may have been given meanwhile.
        fd = -1
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            Glibc.close(fd)
            throw HarnessError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            throw HarnessError("connect \(path): \(message)")
        }
        var sendTimeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
    }

    deinit { close() }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Sends bytes exactly as given.
    func send(raw bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw HarnessError("send to \(path): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Sends `text` followed by a newline.
    func send(line text: String) throws {
        try send(raw: Array(text.utf8) + [0x0A])
    }

    /// Reads the next message (one line of JSON), waiting at most `timeout` seconds.
    func readMessage(timeout: Double = 15) throws -> JSON {
        let line = try readLine(timeout: timeout)
        do {
            return try JSON.parse(line)
        } catch {
            throw HarnessError("the daemon sent a line that is not JSON (\(error)): \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
    }

    /// Reads the next line's bytes as sent (without its newline), waiting at most `timeout` seconds.
    func readLine(timeout: Double = 15) throws -> [UInt8] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let nl = buffer[scanned...].firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeFirst(nl + 1)
                scanned = 0
                return line
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw HarnessError("no message from the daemon within \(timeout)s") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(remaining * 1000, 1000)) + 1)
            if ready < 0 {
                if errno == EINTR { continue }
                throw HarnessError("poll: \(String(cString: strerror(errno)))")
            }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw HarnessError("read from \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw HarnessError("the daemon closed the connection") }
            scanned = buffer.count
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// Sends a request and returns the whole response object (result or error). Notifications that
    /// arrive first go to `onNotification`.
    func request(_ method: String, _ params: JSON = .object([]), timeout: Double = 15, onNotification: (JSON) -> Void = { _ in })
        throws -> JSON
    {
        nextID += 1
        let id = nextID
        let message: JSON = .object([("jsonrpc", "2.0"), ("id", .int(id)), ("method", .string(method)), ("params", params)])
        try send(line: message.encoded)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw HarnessError("no reply to \(method) within \(timeout)s") }
            let reply = try readMessage(timeout: remaining)
            if reply["id"] == nil, reply["method"] != nil {
                onNotification(reply)
                continue
            }
            guard reply["id"]?.intValue == id else {
                throw HarnessError("reply to \(method) has an unexpected id: \(reply.encoded)")
            }
            return reply
        }
    }

    /// Sends a request and returns its result; an error reply throws `RPCFailure`.
    func call(_ method: String, _ params: JSON = .object([]), timeout: Double = 15, onNotification: (JSON) -> Void = { _ in })
        throws -> JSON
    {
        let reply = try request(method, params, timeout: timeout, onNotification: onNotification)
        if let error = reply["error"] {
            throw RPCFailure(code: error["code"]?.intValue ?? 0, message: error["message"]?.stringValue ?? "", response: reply)
        }
        guard let result = reply["result"] else { throw HarnessError("reply to \(method) has neither result nor error: \(reply.encoded)") }
        return result
    }
}
