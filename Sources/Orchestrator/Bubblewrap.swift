import Agents
import Foundation
import Runtime

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a job's commands — the actor's `run_command`, command verifiers and `command` models, as
/// `CommandLauncher` starts them — inside a bubblewrap (`bwrap`) sandbox, as the plan's `Sandbox`
/// says, started by the launcher `agentd-sandbox` (Sources/agentd-sandbox) so that the command is
/// never privileged, whatever the daemon runs as.
///
/// ```
///  agentd-sandbox [--user 65534:65534 --idmap WORKSPACE [--idmap W]… [--idmap INPUTS] [--hide DAEMON-FILE]…] --
///  bwrap --seccomp FD --die-with-parent --new-session --unshare-{user,pid,ipc,uts,cgroup-try}[,net]
///        --uid 65534 --gid 65534 --disable-userns --cap-drop ALL
///        --ro-bind / /  --dev /dev  --proc /proc --remount-ro /proc  --tmpfs /tmp  --tmpfs /dev/shm  --tmpfs /run
///        --bind WORKSPACE WORKSPACE  [--bind W W]…  [--ro-bind INPUTS INPUTS]  [--ro-bind /dev/null DAEMON-FILE]…
///        --chdir WORKSPACE  --clearenv  --setenv NAME VALUE…
///        -- prlimit --cpu=S --as=BYTES --nproc=N -- ARGV…
/// ```
///
/// The command is uid and gid 65534 (`nobody`) in its own user namespace, and the kernel sees an
/// unprivileged user too: a daemon running as an ordinary user runs bwrap as itself; a daemon running
/// as root has the launcher drop to 65534:65534 first (`--user`), after mounting the workspace over
/// itself idmapped (its owner appears as the sandbox user, files keep their owners on disk) and
/// covering the daemon's files with `/dev/null` in a private mount namespace (`--idmap`, `--hide`:
/// bwrap as `nobody` may not be able to reach them). So `/proc/sys` and root's files are out of reach,
/// and `processes:` (RLIMIT_NPROC, which Linux never enforces for root) binds. The launcher also hands
/// bwrap a seccomp filter that refuses mounts, namespaces, ptrace, keyrings, kernel modules, bpf and
/// other calls a tool never needs; `/proc` is read-only; no capabilities are kept.
///
/// The whole filesystem is mounted read-only and only the workspace (and the plan's `writable`
/// paths) is bound writable; a command critic's or verifier's call gets its private input directory
/// (`CallInputs`: the step output it judges, or every step's output) bound read-only; `/tmp`, `/dev/shm` and `/run` are empty in-memory file systems (each at
/// most `memory_mb`), so nothing in them — other users' sockets, the daemon's socket when it lives
/// there — is reachable. The daemon's database files and socket are covered with `/dev/null` wherever
/// they are (`protectedPaths`), on a mount without devices, so they cannot be opened, read, written
/// or connected to. The command is pid 2 of a new PID namespace; when it ends, or when bwrap dies —
/// killed on a timeout, or because the daemon itself died (`--die-with-parent`) — the kernel kills
/// everything left in the namespace. The limits are set by util-linux's `prlimit`, which then execs
/// the command: the argv is passed on as separate entries, never through a shell. The environment is
/// cleared and holds only `PATH` (the daemon's), `HOME` (the workspace), `LANG=C.UTF-8`,
/// `AGENTD_TOOL_CALL_ID`, `AGENTD_WORKSPACE` and the variables the plan names in `env`.
///
/// `bwrap` is `$AGENTD_BWRAP` when that is set, else the first in the daemon's `PATH`; `prlimit` is
/// found in `PATH`; the launcher is `$AGENTD_SANDBOX_LAUNCHER`, else `agentd-sandbox` beside the
/// running executable. Before the first sandboxed command, a probe sandbox runs `prlimit --version`
/// through the launcher with the same namespaces, user and filter; until a probe succeeds every
/// sandboxed command is refused with the reason (a missing `bwrap`, a kernel that refuses user
/// namespaces to the sandbox user), so a plan that did not turn the sandbox off never runs a command
/// unconfined. A success is remembered for the life of the engine.
///
/// One per engine. Loop thread only; the file checks run on the tools queue.
final class Bubblewrap: @unchecked Sendable {
    /// The two programs a sandboxed command needs, as absolute paths.
    struct Executables: Sendable, Equatable {
        let launcher: String
        let bwrap: String
        let prlimit: String
    }

    /// Where a sandboxed command's mounts come from, as real paths checked just before it runs.
    struct Layout: Sendable, Equatable {
        /// The workspace, writable; nil for a plan's command in a job that has none.
        var workspace: String?
        /// The command's working directory: the workspace unless the command names another.
        var directory: String
        /// The plan's `writable` paths, resolved.
        var writable: [String] = []
        /// Files of the daemon, covered with `/dev/null`.
        var hiddenFiles: [String] = []
        /// Whether `/run` exists and is hidden under an empty tmpfs.
        var hidesRun = false
        /// Files under `/run` bound back read-only (the resolver configuration, with the network on).
        var readOnly: [String] = []
        /// The command's directory, bound read-only when it lies outside the writable paths.
        var readable: [String] = []
        /// The job's control groups the launcher moves the command into (root only; `JobCgroup`).
        var cgroups: [String] = []
        /// A call's private input directories (`CallInputs`), bound read-only at their own paths; as
        /// root the launcher idmaps them first, so the sandbox user reads them as their owner.
        var inputs: [String] = []
        /// Whether the workspace is bound read-only (a critic's `run_command`). It is bound after the
        /// `writable` paths, so one of them that contains the workspace or lies inside it leaves it
        /// read-only all the same; the others stay writable (the plan chose them, e.g. a build cache).
        var readOnlyWorkspace = false

        init(workspace: String?, directory: String? = nil) {
            self.workspace = workspace
            self.directory = directory ?? workspace ?? "/"
        }

        /// The workspace (when there is one) and the plan's `writable` paths: the trees bound from the
        /// host at their own paths (the workspace read-only when `readOnlyWorkspace`).
        var writableTrees: [String] { (workspace.map { [$0] } ?? []) + writable }
    }

    /// The environment variable that names the `bwrap` to use.
    static let overrideVariable = "AGENTD_BWRAP"
    /// The environment variable that names the launcher to use.
    static let launcherVariable = "AGENTD_SANDBOX_LAUNCHER"
    /// The user and group every sandboxed command runs as (`nobody` and `nogroup` on Debian), inside
    /// its user namespace and, when the daemon is root, outside it too.
    static let sandboxUser = (uid: 65534, gid: 65534)
    /// `PATH` when the daemon has none.
    static let defaultPath = "/usr/local/bin:/usr/bin:/bin"
    /// How long the probe sandbox may take.
    static let probeTimeoutMilliseconds: UInt64 = 10_000

    let loop: EventLoop
    /// The daemon's files commands must not see: its database (and WAL, shared memory, journal, lock)
    /// and its socket.
    let protectedPaths: [String]
    /// Whether the daemon is root: the launcher then drops to `sandboxUser` and makes the mounts.
    let privileged: Bool
    private let override: String?
    private let launcher: String?
    private let searchPath: String
    private var ready: Executables?
    /// Callers waiting for a probe in flight; nil when none is.
    private var waiters: [UnsafeContinuation<Result<Executables, ToolProblem>, Never>]?

    /// `environment` is the daemon's: `AGENTD_BWRAP`, `AGENTD_SANDBOX_LAUNCHER` and `PATH` are read
    /// from it. `privileged` is whether the daemon runs as root.
    init(loop: EventLoop, environment: [String: String], protectedPaths: [String], privileged: Bool = geteuid() == 0) {
        self.loop = loop
        self.protectedPaths = protectedPaths
        self.privileged = privileged
        let named = environment[Self.overrideVariable] ?? ""
        override = named.isEmpty ? nil : named
        let launcher = environment[Self.launcherVariable] ?? ""
        self.launcher = launcher.isEmpty ? nil : launcher
        let path = environment["PATH"] ?? ""
        searchPath = path.isEmpty ? Self.defaultPath : path
    }

    /// The paths of a database and its socket that `protectedPaths` should hold.
    static func protectedPaths(database: String, socket: String?) -> [String] {
        var paths = [database, database + "-wal", database + "-shm", database + "-journal", database + ".lock"]
        if let socket { paths.append(socket) }
        return paths
    }

    /// `bwrap` and `prlimit`, once a probe sandbox has started on this machine. Probes run one at a
    /// time; callers that arrive meanwhile share its outcome.
    func executables() async -> Result<Executables, ToolProblem> {
        if let ready { return .success(ready) }
        return await withUnsafeContinuation { continuation in
            // Checked again here: the probe may have finished before this body ran.
            if let ready {
                continuation.resume(returning: .success(ready))
                return
            }
            if waiters != nil {
                waiters!.append(continuation)
                return
            }
            waiters = [continuation]
            Task(executorPreference: loop) { [self] in
                let outcome = await probe()
                if case let .success(found) = outcome { ready = found }
                let waiting = waiters ?? []
                waiters = nil
                for waiter in waiting { waiter.resume(returning: outcome) }
            }
        }
    }

    /// Finds the programs (on the tools queue) and starts a sandbox like a command's that runs
    /// `prlimit --version`.
    private func probe() async -> Result<Executables, ToolProblem> {
        let (override, launcher, searchPath) = (self.override, self.launcher, self.searchPath)
        let found = await ToolBox.onFiles { Self.locate(override: override, launcher: launcher, searchPath: searchPath) }
        guard case let .success(executables) = found else { return found }
        let argv =
            Self.launch(executables, privileged: privileged, layout: nil) + Self.namespaceArguments(network: false)
            + [
                "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--remount-ro", "/proc", "--tmpfs", "/tmp", "--clearenv", "--",
                executables.prlimit, "--version",
            ]
        let result: ProcessResult
        do {
            result = try await ChildProcess.run(
                loop: loop, .init(argv: argv, environment: [], timeoutMilliseconds: Self.probeTimeoutMilliseconds, outputCap: 4096))
        } catch {
            return .failure(Self.unavailable("\(executables.bwrap) cannot be started: \(error.message)"))
        }
        guard result.succeeded else {
            let said = result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
            let how = result.summary(timeoutSeconds: Double(Self.probeTimeoutMilliseconds) / 1000)
            return .failure(
                Self.unavailable("\(executables.bwrap) could not create a sandbox (\(how))" + (said.isEmpty ? "" : ": \(said)")))
        }
        return .success(executables)
    }

    /// The refusal of a sandboxed command on a machine where the sandbox cannot start.
    static func unavailable(_ detail: String) -> ToolProblem {
        ToolProblem(
            "run_command runs in a bubblewrap sandbox, which cannot start here: \(detail). Install bubblewrap "
                + "(Debian: apt install bubblewrap) on a kernel that allows user namespaces, or set 'sandbox: false' in the plan "
                + "to run commands unconfined")
    }

    // MARK: File work (on the tools queue)

    /// The launcher (`launcher`, else `agentd-sandbox` beside the running executable), `bwrap`
    /// (`override`, else the first executable `bwrap` in `searchPath`) and `prlimit`.
    static func locate(override: String?, launcher: String? = nil, searchPath: String) -> Result<Executables, ToolProblem> {
        let launcherPath: String
        if let launcher {
            guard isExecutable(launcher) else {
                return .failure(unavailable("\(launcher) (named by \(launcherVariable)) is not an executable file"))
            }
            launcherPath = launcher
        } else {
            let beside = ((ToolBox.realPath("/proc/self/exe") ?? "/") as NSString).deletingLastPathComponent + "/agentd-sandbox"
            guard isExecutable(beside) else {
                return .failure(
                    unavailable("the sandbox launcher \(beside) is missing: install agentd-sandbox beside agentd (swift build builds both)")
                )
            }
            launcherPath = beside
        }
        let bwrap: String
        if let override {
            guard isExecutable(override) else {
                return .failure(unavailable("\(override) (named by \(overrideVariable)) is not an executable file"))
            }
            bwrap = override
        } else {
            guard let path = find("bwrap", in: searchPath) else {
                return .failure(unavailable("bwrap was not found in PATH (\(searchPath))"))
            }
            bwrap = path
        }
        guard let prlimit = find("prlimit", in: searchPath) else {
            return .failure(unavailable("prlimit (util-linux), which sets the sandbox's limits, was not found in PATH (\(searchPath))"))
        }
        return .success(Executables(launcher: launcherPath, bwrap: bwrap, prlimit: prlimit))
    }

    static func find(_ program: String, in searchPath: String) -> String? {
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: true) where directory.hasPrefix("/") {
            let path = directory + "/" + program
            if isExecutable(path) { return path }
        }
        return nil
    }

    private static func isExecutable(_ path: String) -> Bool {
        var info = stat()
        return path.hasPrefix("/") && stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    /// The mounts of one command: the plan's `writable` paths must exist; the command's `directory`
    /// (a plan command's `cwd`, else the plan's directory) must exist and is made visible read-only
    /// when it is outside every writable path; the daemon's files are hidden where they exist; with the
    /// network on, a resolver configuration that lives under `/run` is bound back.
    ///
    /// With `privileged` (the launcher drops to the sandbox user), a command's directory outside the
    /// writable paths that the sandbox user may not enter is replaced by the workspace (or `/`): the
    /// command cannot work there anyway, and reaching it would mean lending it its owner's rights.
    ///
    /// With `readOnlyWorkspace` the workspace is bound read-only (see `Layout.readOnlyWorkspace`).
    static func layout(
        workspace: String?, directory: String? = nil, sandbox: Sandbox, protectedPaths: [String], privileged: Bool = false,
        readOnlyWorkspace: Bool = false
    ) -> Result<Layout, ToolProblem> {
        var layout = Layout(workspace: workspace)
        layout.readOnlyWorkspace = readOnlyWorkspace
        for path in sandbox.writable {
            guard let real = ToolBox.realPath(path) else {
                return .failure(ToolProblem("the sandbox's writable path '\(path)' cannot be used: \(String(cString: strerror(errno)))"))
            }
            layout.writable.append(real)
        }
        if let directory {
            guard let real = ToolBox.realPath(directory) else {
                return .failure(ToolProblem("the command's directory '\(directory)' cannot be used: \(String(cString: strerror(errno)))"))
            }
            layout.directory = real
            if !layout.writableTrees.contains(where: { real == $0 || real.hasPrefix($0 + "/") }) {
                var info = stat()
                if privileged, stat(real, &info) == 0, !searchable(info) {
                    layout.directory = workspace ?? "/"
                } else {
                    layout.readable.append(real)
                }
            }
        }
        for path in protectedPaths {
            var info = stat()
            guard let real = ToolBox.realPath(path), stat(real, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR else { continue }
            // Hidden by path: a second name (a hard link, wherever it is) would reach the same file.
            guard info.st_nlink <= 1 else {
                return .failure(
                    ToolProblem(
                        "the daemon's file \(real) has \(info.st_nlink) names (a hard link to it exists); commands are refused "
                            + "until the other names are removed, since the sandbox hides it by this name only"))
            }
            layout.hiddenFiles.append(real)
        }
        var info = stat()
        layout.hidesRun = stat("/run", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        if sandbox.network, layout.hidesRun, let resolver = ToolBox.realPath("/etc/resolv.conf"), resolver.hasPrefix("/run/") {
            layout.readOnly.append(resolver)
        }
        return .success(layout)
    }

    /// Whether the sandbox user (no supplementary groups) may enter the directory `info` describes.
    static func searchable(_ info: stat) -> Bool {
        if info.st_uid == uid_t(sandboxUser.uid) { return info.st_mode & S_IXUSR != 0 }
        if info.st_gid == gid_t(sandboxUser.gid) { return info.st_mode & S_IXGRP != 0 }
        return info.st_mode & S_IXOTH != 0
    }

    // MARK: The command line

    /// The namespaces and privileges of every sandbox.
    static func namespaceArguments(network: Bool) -> [String] {
        let user = sandboxUser
        var arguments = [
            "--die-with-parent", "--new-session", "--unshare-user", "--uid", String(user.uid), "--gid", String(user.gid),
            "--disable-userns", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        ]
        if !network { arguments.append("--unshare-net") }
        return arguments + ["--cap-drop", "ALL"]
    }

    /// The launcher and its options, up to and including `bwrap`: as root, the drop to the sandbox
    /// user and (for a command, not the probe) the idmapped workspace and writable paths and the hidden
    /// daemon files. Pure.
    static func launch(_ executables: Executables, privileged: Bool, layout: Layout?) -> [String] {
        var a = [executables.launcher]
        if privileged {
            a += ["--user", "\(sandboxUser.uid):\(sandboxUser.gid)"]
            if let layout {
                // Outer trees first: a writable tree inside the command's directory is mounted on top.
                // The command's directory is reached as it is: an idmap would give the sandbox its
                // owner's rights over everything below it.
                for path in layout.readable { a += ["--reach", path] }
                for path in layout.writableTrees + layout.inputs { a += ["--idmap", path] }
                for path in layout.hiddenFiles { a += ["--hide", path] }
                for group in layout.cgroups { a += ["--cgroup", group] }
            }
        }
        return a + ["--", executables.bwrap]
    }

    /// The full argv that runs `argv` in the sandbox (see the type's description). Each entry of
    /// `argv` stays one entry, after the last `--`. Pure.
    static func command(
        _ argv: [String], executables: Executables, sandbox: Sandbox, layout: Layout, environment: [(String, String)],
        privileged: Bool
    ) -> [String] {
        let memory = String(sandbox.memoryMB << 20)
        var a = launch(executables, privileged: privileged, layout: layout) + namespaceArguments(network: sandbox.network)
        a += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--remount-ro", "/proc"]
        a += ["--size", memory, "--tmpfs", "/tmp", "--size", memory, "--tmpfs", "/dev/shm"]
        if layout.hidesRun { a += ["--tmpfs", "/run"] }
        for path in layout.readOnly { a += ["--ro-bind", path, path] }
        for path in layout.readable { a += ["--ro-bind", path, path] }
        if layout.readOnlyWorkspace {
            // The workspace last: no writable path bound after it can expose any of it.
            for path in layout.writable { a += ["--bind", path, path] }
            if let workspace = layout.workspace { a += ["--ro-bind", workspace, workspace] }
        } else {
            for path in layout.writableTrees { a += ["--bind", path, path] }
        }
        for path in layout.inputs { a += ["--ro-bind", path, path] }
        // After the binds, so a daemon file inside the workspace is covered too. As root the launcher
        // has covered them already, where bwrap as the sandbox user may not reach.
        if !privileged {
            for path in layout.hiddenFiles { a += ["--ro-bind", "/dev/null", path] }
        }
        a += ["--chdir", layout.directory, "--clearenv"]
        for (name, value) in environment { a += ["--setenv", name, value] }
        a += [
            "--", executables.prlimit, "--cpu=\(sandbox.cpuSeconds)", "--as=\(memory)", "--nproc=\(sandbox.processes)", "--",
        ]
        return a + argv
    }
}
