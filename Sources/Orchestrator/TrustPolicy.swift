import Agents
import Foundation
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// Who may do what through the socket (docs/security.md, "Who can reach the socket").
///
/// - The **owner** — the daemon's own user, and root — may do everything.
/// - **Submitters** — the other members of `allow_group` — may submit plans as text, or by path from
///   the configured `submitters.plan_dirs` only; their plans may not name files the daemon would read
///   (`script_file`, `ca_file`), may not run a command outside the sandbox unless
///   `submitters.unsandboxed` grants it, and their jobs work only in directories they own (the
///   workspace, the job's directory, a command's `cwd`, the sandbox's `writable` paths). The last is
///   checked again whenever a command or tool is about to use such a directory
///   (`CommandLauncher`), so a directory swapped after submission is refused too.
///
/// Every refusal is `-32008` (permission denied) and names its rule; none quotes a file. Pure value;
/// the checks that look at the filesystem (`ownership`) run on the tools queue or the plan queue.
public struct TrustPolicy: Sendable, Equatable {
    /// The daemon's user.
    public var owner: UInt32
    /// Directories whose plans (anywhere below) submitters may submit by path.
    public var planDirectories: [String] = []
    /// Whether submitters' plans may run commands outside the sandbox.
    public var submittersMayRunUnsandboxed = false
    /// The group (`approvers_group`) whose members may decide gates besides the owner.
    public var approvers: Approvers?

    public struct Approvers: Sendable, Equatable {
        public var name: String
        public var gid: UInt32
    }

    public init(owner: UInt32 = UInt32(geteuid())) {
        self.owner = owner
    }

    /// Whether `client` (a connection's peer uid; nil in process) is the owner.
    public func isOwner(_ client: UInt32?) -> Bool {
        guard let client else { return true }
        return client == owner || client == 0
    }

    /// Why `client` may not decide gates, or nil when it may: the owner, root and members of the
    /// approvers group may. Reads the user and group databases.
    public func decisionProblem(_ client: UInt32?) -> String? {
        if isOwner(client) { return nil }
        guard let client else { return nil }
        if let approvers, Self.user(client, isIn: approvers.gid) { return nil }
        return Self.denied(
            approvers.map { "only the daemon's user and members of the group '\($0.name)' may decide gates" }
                ?? "only the daemon's user may decide gates (no approvers_group is configured)", rule: "approvers_group")
    }

    /// Whether the user `uid` belongs to the group `gid`, as its primary group or a supplementary one.
    static func user(_ uid: UInt32, isIn gid: UInt32) -> Bool {
        guard let entry = getpwuid(uid) else { return false }
        if entry.pointee.pw_gid == gid { return true }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(entry.pointee.pw_name, entry.pointee.pw_gid, &groups, &count) == -1 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(entry.pointee.pw_name, entry.pointee.pw_gid, &groups, &count)
        }
        return groups.prefix(Int(max(0, count))).contains(gid)
    }

    /// The name of the user `uid`, when the user database has one.
    static func userName(_ uid: UInt32) -> String? {
        getpwuid(uid).map { String(cString: $0.pointee.pw_name) }
    }

    /// The refusal of `path` as a submitter's plan: allowed only below a configured plan directory
    /// (after resolving symlinks). Reads the filesystem (realpath).
    func planPathProblem(_ path: String) -> String? {
        let real = ToolBox.realPath(path) ?? path
        for directory in planDirectories {
            let base = ToolBox.realPath(directory) ?? directory
            if real.hasPrefix(base.hasSuffix("/") ? base : base + "/") { return nil }
        }
        return Self.denied(
            "a plan_path outside the configured plan directories is for the daemon's owner alone; send the plan's text instead",
            rule: "submitters.plan_dirs")
    }

    /// The refusal of a submitter's `plan` for running commands outside the sandbox.
    func unsandboxedProblem(_ plan: Plan) -> String? {
        guard !submittersMayRunUnsandboxed else { return nil }
        var unconfined: [String] = []
        if !plan.sandbox.enabled { unconfined.append("the plan's sandbox: false") }
        if plan.sandbox.enabled {
            if plan.critic.commands.contains(where: { !$0.sandboxed }) { unconfined.append("the critic's sandbox: false") }
            if case let .command(spec) = plan.verifier, !spec.sandboxed { unconfined.append("the verifier's sandbox: false") }
            if let check = plan.check, !check.sandboxed { unconfined.append("the check's sandbox: false") }
            for name in plan.models.keys.sorted() {
                if case let .command(spec) = plan.models[name]!.backend, !spec.sandboxed {
                    unconfined.append("model \(name)'s sandbox: false")
                }
            }
        }
        guard !unconfined.isEmpty else { return nil }
        return Self.denied(
            "the plan runs commands outside the sandbox (\(unconfined.joined(separator: ", "))), which only the daemon's owner may",
            rule: "submitters.unsandboxed")
    }

    /// The refusal of a submitter's directory `path` (`what` names it) that `client` does not own, or
    /// nil. Reads the filesystem (lstat of the real path).
    static func ownershipProblem(_ path: String, what: String, client: UInt32) -> String? {
        var info = stat()
        guard let real = ToolBox.realPath(path), lstat(real, &info) == 0 else {
            return denied("\(what) '\(path)' must exist and belong to uid \(client)", rule: "submitters.own_directories")
        }
        guard info.st_uid == client else {
            return denied("\(what) '\(path)' belongs to uid \(info.st_uid), not to uid \(client)", rule: "submitters.own_directories")
        }
        return nil
    }

    /// The directories a submitter's job uses that must be the submitter's: the workspace (or the
    /// job's directory, its default) when tools (the actor's, or a critic's that only read) or commands use it, every plan command's `cwd` and
    /// the sandbox's `writable` paths. A plan without tools or commands uses none.
    static func directories(of plan: Plan, goal: String, inputs: JSON, cwd: String?) -> [(path: String, what: String)] {
        var directories: [(String, String)] = []
        var commands: [CommandSpec] = plan.models.values.compactMap { if case let .command(spec) = $0.backend { spec } else { nil } }
        commands.append(contentsOf: plan.critic.commands)
        if case let .command(spec) = plan.verifier { commands.append(spec) }
        if let check = plan.check { commands.append(check) }
        let criticReads = !(plan.roleSpec(.critic)?.tools ?? []).isEmpty
        if !plan.actor.tools.isEmpty || criticReads || !commands.isEmpty,
            case let .success(workspace) = ToolBox.workspace(plan: plan, goal: goal, inputs: inputs, cwd: cwd)
        {
            directories.append((workspace, "the workspace"))
        }
        for spec in commands {
            if let directory = Engine.resolve(spec.cwd, against: cwd) { directories.append((directory, "a command's cwd")) }
        }
        for path in plan.sandbox.writable { directories.append((path, "the sandbox's writable path")) }
        return directories
    }

    static func denied(_ message: String, rule: String) -> String {
        "permission denied: \(message) (rule: \(rule))"
    }
}
