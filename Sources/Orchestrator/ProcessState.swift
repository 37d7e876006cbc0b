#if canImport(Glibc)
    import Glibc
#endif

/// Whether a process named by pid (a previous daemon's, in a lock file or a directory's name) is
/// still running. Used wherever the daemon cleans up after daemons that are gone: the database lock,
/// the jobs' control groups, the calls' input directories. Pure reads of `/proc`; any thread.
enum ProcessState {
    /// Whether `pid` still runs. A zombie does not: it has exited, and only waits for its parent to
    /// collect it (a supervisor restarting the daemon may not have yet; while a killed process's other
    /// threads are still being torn down, its first thread is a zombie already). A pid this process
    /// may not signal counts as running unless `/proc` says otherwise.
    static func isRunning(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0, errno == ESRCH { return false }
        // `PID (COMM) STATE ...`; COMM may hold spaces and parentheses, so STATE follows the last ')'.
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno != ENOENT }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 512)
        let n = read(fd, &buf, buf.count)
        guard n > 0, let paren = buf[0..<n].lastIndex(of: UInt8(ascii: ")")), paren + 2 < n else { return true }
        let state = buf[paren + 2]
        return state != UInt8(ascii: "Z") && state != UInt8(ascii: "X")
    }
}
