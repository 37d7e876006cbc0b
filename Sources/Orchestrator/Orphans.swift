import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The processes a daemon leaves behind when it dies without stopping them (SIGKILL, a crash): model
/// and verifier commands, tools outside the sandbox, and their children.
///
/// Every process the daemon starts inherits `AGENTD_DAEMON_DB`, the absolute path of the daemon's
/// database, which the daemon sets in its own environment once it holds the database's lock. The next
/// daemon on that database, holding the lock in turn, kills every process that still carries the
/// variable with its path, before it re-runs anything: an interrupted call is then made again, under
/// the same idempotency key, while the previous execution is certainly dead — never beside it.
/// (Sandboxed tools need none of this: bubblewrap's `--die-with-parent` ends them with the daemon.)
enum Orphans {
    static let variable = "AGENTD_DAEMON_DB"

    /// Kills every process whose environment says it was started for `database` (the process groups
    /// they lead included), except this process. Returns their pids.
    @discardableResult
    static func reap(database: String, logger: Logger) -> [Int32] {
        let marker = Array("\(variable)=\(database)".utf8)
        let me = getpid()
        var found: [Int32] = []
        for pid in processIDs() where pid != me && environment(of: pid).contains(marker) {
            found.append(pid)
        }
        for pid in found {
            // A direct child of the old daemon leads its own process group: the whole group goes.
            if getpgid(pid) == pid { kill(-pid, SIGKILL) }
            kill(pid, SIGKILL)
        }
        if !found.isEmpty {
            logger.warning(
                "killed processes left by the previous daemon on this database; their calls run again",
                metadata: ["pids": "\(found.map(String.init).joined(separator: ","))"])
        }
        return found
    }

    /// Marks this process's environment, which every child inherits.
    static func mark(database: String) {
        setenv(variable, database, 1)
    }

    private static func processIDs() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var pids: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let pid = Int32(name) { pids.append(pid) }
        }
        return pids
    }

    /// The `NAME=VALUE` entries of a process's environment (empty when it cannot be read: another
    /// user's process, or one that has exited).
    private static func environment(of pid: Int32) -> [[UInt8]] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [] }
        return data.split(separator: 0).map(Array.init)
    }
}
