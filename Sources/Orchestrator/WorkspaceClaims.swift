import Agents
import Store

/// Which directory each queued or running job with tools works in, so that a job is not let loose
/// in a workspace another job holds: two jobs in one directory overwrite each other's files, and one
/// can swap a folder under the other's file tools. Jobs share a workspace only when every one of
/// their plans declares `workspace_shared: true`; a job whose plan does not has its workspace to
/// itself. A workspace that contains the daemon's own files (`DaemonFiles`) is no workspace at all.
///
/// The directory is the workspace as resolved at submission (`admit`), recorded in the job's
/// `job.submitted` event, and the job's tools work in it (`directory(of:)`): the directory held is the
/// one used. A restarted daemon claims its recovered jobs' workspaces again from the record, and never
/// refuses them — claims refuse submissions only.
///
/// Loop thread only (the engine's); `admit` resolves paths on the tools queue.
final class WorkspaceClaims {
    private struct Claim {
        let job: String
        let shared: Bool
    }

    private let daemonFiles: DaemonFiles
    private var claims: [String: [Claim]] = [:]
    private var directories: [String: String] = [:]

    init(daemonFiles: DaemonFiles) {
        self.daemonFiles = daemonFiles
    }

    /// The resolved workspace a job of `plan` would work in, or nil when it has no tools (or no
    /// workspace, which its tools will say). Resolving reads the file system, on the tools queue.
    ///
    /// - Throws: `EngineError.invalidInput` when the workspace contains U+0000; `.workspaceRefused`
    ///   when it contains the daemon's own files.
    func admit(plan: Plan, goal: String, inputs: JSON, cwd: String?) async throws(EngineError) -> String? {
        guard case let .success(path) = ToolBox.workspace(plan: plan, goal: goal, inputs: inputs, cwd: cwd) else { return nil }
        // The kernel would read the path up to the NUL: the directory used would not be the one recorded.
        if path.utf8.contains(0) { throw .invalidInput("'workspace' contains U+0000 (a NUL character), which no path can hold") }
        guard !plan.actor.tools.isEmpty else { return nil }
        let daemonFiles = self.daemonFiles
        let (directory, refusal) = await ToolBox.onFiles {
            let directory = Self.resolve(path)
            return (directory, daemonFiles.refusal(workspace: directory))
        }
        if let refusal { throw .workspaceRefused(refusal) }
        return directory
    }

    /// The job that keeps a new job out of `directory`: one working there, unless both it and the
    /// new job (`shared`) share their workspace.
    func holder(of directory: String, shared: Bool) -> String? {
        claims[directory]?.first { !(shared && $0.shared) }?.job
    }

    /// The directory `job` holds, if it holds one.
    func directory(of job: String) -> String? {
        directories[job]
    }

    /// Records that `job` works in `directory`.
    func claim(_ directory: String, job: String, shared: Bool) {
        release(job: job)
        claims[directory, default: []].append(Claim(job: job, shared: shared))
        directories[job] = directory
    }

    /// Forgets `job`'s claim (it finished, or was never admitted).
    func release(job: String) {
        guard let directory = directories.removeValue(forKey: job) else { return }
        claims[directory]?.removeAll { $0.job == job }
        if claims[directory]?.isEmpty == true { claims[directory] = nil }
    }

    /// The directory `path` (absolute) names: symlinks resolved as far as it exists, the rest —
    /// which the tools create on first use — with `.` and `..` applied. Blocks: the tools queue.
    static func resolve(_ path: String) -> String {
        var existing = path.split(separator: "/").map(String.init)
        var missing: [String] = []
        while true {
            if let real = ToolBox.realPath("/" + existing.joined(separator: "/")) {
                var parts = real.split(separator: "/").map(String.init)
                for part in missing.reversed() where part != "." {
                    if part == ".." {
                        _ = parts.popLast()
                    } else {
                        parts.append(part)
                    }
                }
                return "/" + parts.joined(separator: "/")
            }
            guard let last = existing.popLast() else { return path }
            missing.append(last)
        }
    }
}
