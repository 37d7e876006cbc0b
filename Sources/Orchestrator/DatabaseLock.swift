#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive lock on a database, held for as long as one process uses it as a writer, so two
/// daemons (or a daemon and `agentd run`) can never interleave writes.
///
/// `flock` on `<db>.lock`, which holds the owner's pid for the error message. The kernel drops the
/// lock when the process dies, so a crash leaves nothing to clean up.
public final class DatabaseLock {
    private var fd: Int32

    public init(databasePath: String) throws(DaemonError) {
        let lockPath = databasePath + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            var buf = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buf, 31)
            let holder = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).prefix { $0.isNumber } : "?"
            close(fd)
            throw DaemonError("another agentd (pid \(holder)) is already using the database \(databasePath)")
        }
        ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        self.fd = fd
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
