import Agents
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A job's own control groups, which bound the memory and the number of processes of all its
/// sandboxed commands together (`sandbox.job_memory_mb`, `sandbox.job_processes`), where the machine
/// allows it: cgroup v1 `memory` and `pids` hierarchies at `/sys/fs/cgroup/CONTROLLER`, writable by
/// the daemon (root). Each job gets `agentd-PID/JOB` below the daemon's own group in each hierarchy;
/// the launcher moves each of the job's sandboxed commands into them (`agentd-sandbox --cgroup`)
/// before it drops its privileges, so everything the command starts is counted. A job past its memory
/// limit has a process killed by the kernel (exit status 137); past its process limit, forks fail.
///
/// Where neither hierarchy can be used — a daemon that is not root, a cgroup v2 machine, a container
/// without them — there is no job-wide bound: the per-process limits of the sandbox still hold. That is
/// said once in the log. Pure functions on the filesystem; call them on the tools queue.
struct JobCgroup: Sendable, Equatable {
    /// The job's group directories, one per controller.
    let directories: [String]

    /// The parent directories (`…/agentd-PID`) of the jobs' groups, or none where cgroups cannot be
    /// used (and why).
    static func parents(privileged: Bool) -> (directories: [String], problem: String?) {
        guard privileged else { return ([], "the daemon is not root") }
        var parents: [String] = []
        guard let lines = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else {
            return ([], "/proc/self/cgroup cannot be read")
        }
        for controller in ["memory", "pids"] {
            // v1 lines: HIERARCHY:CONTROLLERS:PATH, the controllers comma-separated.
            guard
                let line = lines.split(separator: "\n").first(where: {
                    $0.split(separator: ":").dropFirst().first?.split(separator: ",").contains(Substring(controller)) == true
                }),
                let path = line.split(separator: ":", maxSplits: 2).last
            else { continue }
            let mount = "/sys/fs/cgroup/" + controller
            let own = mount + (path == "/" ? "" : String(path))
            var info = stat()
            guard stat(own, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, access(own, W_OK) == 0 else { continue }
            parents.append(own + "/agentd-\(getpid())")
        }
        return parents.isEmpty ? ([], "no writable cgroup v1 memory or pids hierarchy") : (parents, nil)
    }

    /// Creates `job`'s groups under `parents` with the sandbox's job-wide limits; nil (and nothing
    /// left behind) when they cannot be made.
    static func create(job: String, under parents: [String], sandbox: Sandbox) -> JobCgroup? {
        var made: [String] = []
        for parent in parents {
            let directory = parent + "/" + job
            guard mkdir(parent, 0o755) == 0 || errno == EEXIST, mkdir(directory, 0o755) == 0 || errno == EEXIST else { continue }
            let limits: [(String, String)] =
                parent.contains("/sys/fs/cgroup/memory/")
                ? [("memory.limit_in_bytes", String(sandbox.jobMemoryMB << 20))] : [("pids.max", String(sandbox.jobProcesses))]
            guard limits.allSatisfy({ write($0.1, to: directory + "/" + $0.0) }) else {
                rmdir(directory)
                continue
            }
            made.append(directory)
        }
        return made.isEmpty ? nil : JobCgroup(directories: made)
    }

    /// Removes the job's groups once the job ended. A process still in one (a sandbox's init not yet
    /// reaped, or a command's child that left its process group) belongs to a job that is over: it is
    /// killed, and the removal tried again, every 100 ms for 10 s; a group that still cannot go is left
    /// for the next start's `sweep`. Runs on its own queue, so the retries hold nothing else up.
    func remove() {
        Self.cleanup.async { Self.remove(directories, triesLeft: 100) }
    }

    private static let cleanup = DispatchQueue(label: "agentd.cgroup-cleanup")

    private static func remove(_ directories: [String], triesLeft: Int) {
        let busy = directories.filter { rmdir($0) != 0 && errno == EBUSY }
        guard !busy.isEmpty, triesLeft > 1 else { return }
        for directory in busy { killMembers(of: directory) }
        cleanup.asyncAfter(deadline: .now() + .milliseconds(100)) { remove(busy, triesLeft: triesLeft - 1) }
    }

    /// SIGKILLs every process listed in the group's `cgroup.procs`.
    private static func killMembers(of directory: String) {
        guard let text = try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8) else { return }
        for line in text.split(separator: "\n") {
            if let pid = pid_t(line), pid > 1 { kill(pid, SIGKILL) }
        }
    }

    /// Removes what daemons that are gone left beside `parents` (the `agentd-PID` groups of dead
    /// pids in the same groups): the jobs' groups in them, then the groups themselves.
    static func sweep(beside parents: [String]) {
        for parent in parents {
            let own = (parent as NSString).deletingLastPathComponent
            for name in (try? FileManager.default.contentsOfDirectory(atPath: own)) ?? []
            where name.hasPrefix("agentd-") && own + "/" + name != parent {
                // Only a dead daemon's: a live one's empty group may be about to take a command.
                guard let pid = pid_t(name.dropFirst("agentd-".count)), !ProcessState.isRunning(pid) else { continue }
                let stale = own + "/" + name
                for job in (try? FileManager.default.contentsOfDirectory(atPath: stale)) ?? [] { rmdir(stale + "/" + job) }
                rmdir(stale)
            }
        }
    }

    private static func write(_ value: String, to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        return Glibc.write(fd, bytes, bytes.count) == bytes.count
    }
}
