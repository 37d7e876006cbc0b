#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive lock on a database, held for as long as one process uses it as a writer, so two
/// daemons (or a daemon and `agentd run`) can never interleave writes.
///
/// `flock` on `<db>.lock`, which holds the owner's pid for the error message. The kernel drops the
/// lock when the process dies, so a crash leaves nothing to clean up — except that a child the dead
/// daemon had just forked shares the lock until it execs or dies, and a killed process's threads
/// take a moment to go: while the recorded owner is dead (or a zombie), the next daemon waits for
/// that (at most `deadOwnerGraceMilliseconds`).
public final class DatabaseLock {
    private var fd: Int32

    /// How long a lock whose recorded owner has died may stay held: a child the dead owner was
    /// starting holds the lock's descriptor until it execs (the descriptor is close-on-exec) or dies.
    static let deadOwnerGraceMilliseconds = 5000

    public init(databasePath: String) throws(DaemonError) {
        let lockPath = databasePath + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        var waited = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = Self.recordedOwner(fd)
            // Owner alive (or unknown): another daemon really uses the database.
            guard let pid = holder, !ProcessState.isRunning(pid), waited < Self.deadOwnerGraceMilliseconds else {
                close(fd)
                throw DaemonError("another agentd (pid \(holder.map(String.init) ?? "?")) is already using the database \(databasePath)")
            }
            usleep(10_000)
            waited += 10
        }
        ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        self.fd = fd
    }

    /// The pid the lock file names.
    private static func recordedOwner(_ fd: Int32) -> Int32? {
        var buf = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &buf, 31, 0)
        guard n > 0 else { return nil }
        return Int32(String(decoding: buf[0..<n], as: UTF8.self).prefix { $0.isNumber })
    }

    public func release() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    deinit {
        release()
    }
}
