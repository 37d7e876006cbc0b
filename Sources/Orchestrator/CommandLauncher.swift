import Agents
import Foundation
import Runtime
import Store

/// How one job's commands start: the actor's `run_command`, a command verifier and a `command`
/// model alike.
///
/// A confined command runs inside the plan's sandbox (`Bubblewrap`): the job's workspace (created on
/// first use) is its writable directory, and its environment holds only `PATH`, `HOME` (the
/// workspace), `LANG`, the plan's `sandbox.env` variables, the variables the command itself names
/// (`env` on a plan's command: secrets only there), `AGENTD_WORKSPACE`, the call's key and, for a
/// command critic or verifier, the variables naming its input files (`CallInputs`, bound read-only). An
/// unconfined command — the plan's sandbox off, or `sandbox: false` on a plan's command — runs as the
/// daemon's user with the daemon's environment minus every secret except those it names. When the
/// sandbox cannot start, a confined command is refused with the reason, never run unconfined.
///
/// One per job. Loop thread only; file work (creating the workspace, checking the mounts) runs on the
/// tools queue.
final class CommandLauncher: @unchecked Sendable {
    /// A command ready for `ChildProcess`.
    struct Launch: Sendable {
        var argv: [String]
        /// `NAME=value` entries; empty for bwrap, which sets the command's own.
        var environment: [String]
        var cwd: String?
    }

    let loop: EventLoop
    /// The plan's sandbox.
    let sandbox: Sandbox
    let bubblewrap: Bubblewrap
    /// The workspace as configured (absolute), or why the job has none.
    let workspace: Result<String, ToolProblem>
    /// The daemon's environment, secrets included (a command gets those it names).
    let environment: [String: String]
    /// The variables that hold secrets: no command gets them unless it names them.
    let secrets: Set<String>
    /// The submitting user when it is not the daemon's owner: every directory a command or tool
    /// uses (workspace, `cwd`, `writable`) must be that user's, checked just before each use.
    let submitter: UInt32?
    /// Where the job's control groups go (`JobCgroup.parents`), and the job's id that names them.
    let cgroupParents: [String]
    let jobID: String
    /// The job's control groups, made before its first sandboxed command (nil where none can be).
    private(set) var cgroup: JobCgroup?
    private var makingCgroup: Task<JobCgroup?, Never>?
    /// The workspace once created and resolved (symlinks included).
    private var resolved: String?
    /// The job's own launcher, for one that works in a candidate's copy of the workspace: the job's
    /// control groups are that launcher's.
    private var owner: CommandLauncher?
    /// For a candidate's launcher: the job's workspace its copy is made of.
    private var original: String?

    init(
        loop: EventLoop, sandbox: Sandbox, bubblewrap: Bubblewrap, workspace: Result<String, ToolProblem>,
        environment: [String: String], secrets: Set<String>, submitter: UInt32? = nil, jobID: String = "",
        cgroupParents: [String] = []
    ) {
        self.submitter = submitter
        self.jobID = jobID
        self.cgroupParents = cgroupParents
        self.loop = loop
        self.sandbox = sandbox
        self.bubblewrap = bubblewrap
        self.workspace = workspace
        self.environment = environment
        self.secrets = secrets
    }

    /// The workspace, created if needed, as a real path; a submitter's must exist and be theirs,
    /// checked on every use (a directory swapped after submission is refused).
    func prepareWorkspace() async -> Result<String, ToolProblem> {
        let configured: String
        switch workspace {
        case let .success(path): configured = path
        case let .failure(problem): return .failure(problem)
        }
        if let original, resolved == nil {
            let made = await ToolBox.onFiles { () -> Result<String, ToolProblem> in
                do {
                    try CandidateWorkspace.prepare(configured, from: original)
                    return ToolBox.realPath(configured).map { .success($0) } ?? .failure(ToolProblem("the workspace copy vanished"))
                } catch {
                    return .failure(ToolProblem("cannot copy the workspace for this candidate: \(error)"))
                }
            }
            guard case let .success(path) = made else { return made }
            resolved = path
            if submitter == nil { return made }
        }
        if let submitter {
            let configured = resolved ?? configured
            return await ToolBox.onFiles {
                if let problem = TrustPolicy.ownershipProblem(configured, what: "the workspace", client: submitter) {
                    return .failure(ToolProblem(problem))
                }
                return ToolBox.realPath(configured).map { .success($0) } ?? .failure(ToolProblem("the workspace vanished"))
            }
        }
        if let resolved { return .success(resolved) }
        let daemonFiles = DaemonFiles(paths: bubblewrap.protectedPaths)
        let result = await ToolBox.onFiles { ToolBox.create(configured, daemonFiles: daemonFiles) }
        if case let .success(path) = result { resolved = path }
        return result
    }

    /// A launcher for the same job whose commands work in `workspace` (a candidate's copy of the
    /// job's, `CandidateWorkspace`), or are refused with `problem` when there is none: the same
    /// sandbox, environment, submitter and control groups.
    /// The copy is made (from `original`, a real path) when a command or tool first needs it, so a
    /// candidate answered from the record makes none.
    func working(in workspace: Result<String, ToolProblem>, copyOf original: String?) -> CommandLauncher {
        let launcher = CommandLauncher(
            loop: loop, sandbox: sandbox, bubblewrap: bubblewrap, workspace: workspace, environment: environment, secrets: secrets,
            submitter: submitter, jobID: jobID)
        launcher.owner = owner ?? self
        launcher.original = original
        return launcher
    }

    /// The job's control groups, made before its first sandboxed command (nil where none can be).
    private func jobCgroup() async -> JobCgroup? {
        if let owner { return await owner.jobCgroup() }
        guard !cgroupParents.isEmpty else { return nil }
        // One making for all: concurrent candidates' first commands wait for the same groups.
        let making =
            makingCgroup
            ?? {
                let (job, parents, sandbox) = (jobID, cgroupParents, sandbox)
                let task = Task { await ToolBox.onFiles { JobCgroup.create(job: job, under: parents, sandbox: sandbox) } }
                makingCgroup = task
                return task
            }()
        cgroup = await making.value
        return cgroup
    }

    /// The job finished: the copies of the workspace its candidates left behind (a step that ran out
    /// of time, a cancelled job) go, in the background.
    func discardCandidateCopies() {
        guard owner == nil, let resolved, !jobID.isEmpty else { return }
        let directory = CandidateWorkspace.directory(beside: resolved, jobID: jobID)
        ToolBox.files.async { try? CandidateWorkspace.remove(directory) }
    }

    /// The job ended: its control groups go (see `JobCgroup.remove`).
    func finish() {
        cgroup?.remove()
    }

    /// Whether a plan's command runs confined: the plan's sandbox is on and the command did not opt out.
    func confines(_ spec: CommandSpec) -> Bool { sandbox.enabled && spec.sandboxed }

    /// How to start `argv`. `confined` puts it in the sandbox; `named` are the variables it asked for
    /// (secrets allowed); `key` is exported as `keyVariable` (`AGENTD_TOOL_CALL_ID` for a tool,
    /// `AGENTD_CALL_ID` for a model or verifier call). A command needs the workspace when
    /// `needsWorkspace`; otherwise, where the job has none, it runs without one (confined: nothing
    /// writable, in `cwd` or `/`). `inputs` is the call's input directory, if it has one (bound
    /// read-only when confined), and `variables` the call's own variables (`AGENTD_STEP_OUTPUT` …),
    /// set after all others. `readOnlyWorkspace` (a critic's `run_command`) binds the workspace
    /// read-only (`Bubblewrap.Layout.readOnlyWorkspace`); such a command is refused unless `confined`.
    func launch(
        _ argv: [String], cwd: String?, confined: Bool, named: [String] = [], keyVariable: String, key: String?,
        needsWorkspace: Bool, inputs: CallInputs? = nil, variables: [(String, String)] = [], readOnlyWorkspace: Bool = false
    ) async -> Result<Launch, ToolProblem> {
        if readOnlyWorkspace, !confined {
            // Only the sandbox can keep the promise; the plan loader refuses such a plan already.
            return .failure(ToolProblem("a read-only command needs the sandbox, and this plan turns it off; the command was not run"))
        }
        let root: String?
        switch await prepareWorkspace() {
        case let .success(path): root = path
        case let .failure(problem):
            if needsWorkspace { return .failure(problem) }
            root = nil
        }
        var identity: [(String, String)] = []
        if let key { identity.append((keyVariable, key)) }
        if let root { identity.append(("AGENTD_WORKSPACE", root)) }
        identity += variables
        let directory = cwd ?? root
        guard confined else {
            var inherited = environment.filter { !secrets.contains($0.key) }
            for name in named { inherited[name] = environment[name] }
            for (name, value) in identity { inherited[name] = value }
            return .success(Launch(argv: argv, environment: inherited.keys.sorted().map { "\($0)=\(inherited[$0]!)" }, cwd: directory))
        }
        let executables: Bubblewrap.Executables
        switch await bubblewrap.executables() {
        case let .success(found): executables = found
        case let .failure(problem): return .failure(problem)
        }
        let (sandbox, protected, submitter, privileged) = (self.sandbox, bubblewrap.protectedPaths, self.submitter, bubblewrap.privileged)
        var layout: Bubblewrap.Layout
        switch await ToolBox.onFiles({ () -> Result<Bubblewrap.Layout, ToolProblem> in
            let layout = Bubblewrap.layout(
                workspace: root, directory: directory, sandbox: sandbox, protectedPaths: protected, privileged: privileged,
                readOnlyWorkspace: readOnlyWorkspace)
            // Every tree the launcher would idmap for a submitter's command must be the submitter's.
            if let submitter, case let .success(found) = layout {
                for path in found.readable + found.writableTrees {
                    if let problem = TrustPolicy.ownershipProblem(path, what: "a directory the command uses", client: submitter) {
                        return .failure(ToolProblem(problem))
                    }
                }
            }
            return layout
        }) {
        case let .success(found): layout = found
        case let .failure(problem): return .failure(problem)
        }
        layout.cgroups = await jobCgroup()?.directories ?? []
        layout.inputs = inputs.map { [$0.directory] } ?? []
        let command = Bubblewrap.command(
            argv, executables: executables, sandbox: sandbox, layout: layout,
            environment: confinedEnvironment(home: root ?? directory ?? "/", named: named) + identity,
            privileged: bubblewrap.privileged)
        return .success(Launch(argv: command, environment: [], cwd: directory))
    }

    /// A confined command's environment before agentd's own variables: `PATH` (the daemon's), `HOME`
    /// and `LANG`, replaced by the daemon's values of those the plan names, then the other variables
    /// named that the daemon has: the sandbox's `env` (never a secret: the plan loader refuses API
    /// keys there, and `secrets` are skipped) and the command's own `named`.
    func confinedEnvironment(home: String, named: [String] = []) -> [(String, String)] {
        var env: [(String, String)] = [
            ("PATH", environment["PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? Bubblewrap.defaultPath), ("HOME", home),
            ("LANG", "C.UTF-8"),
        ]
        let passed = sandbox.environment.filter { !secrets.contains($0) } + named
        for name in passed {
            guard let value = environment[name] else { continue }
            if let index = env.firstIndex(where: { $0.0 == name }) {
                env[index].1 = value
            } else {
                env.append((name, value))
            }
        }
        return env
    }
}
