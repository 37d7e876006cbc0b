#if canImport(Glibc)
    import Glibc
#endif

/// Where agentd keeps its socket and database by default, and the file-system chores around them.
public enum Paths {
    /// The environment variable `name`, or nil when it is unset or empty.
    public static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    /// `$AGENTD_SOCKET`, else `$XDG_RUNTIME_DIR/agentd/agentd.sock`, else `/tmp/agentd-$UID/agentd.sock`.
    public static func defaultSocket() -> String {
        if let s = environment("AGENTD_SOCKET") { return s }
        if let runtime = environment("XDG_RUNTIME_DIR") { return runtime + "/agentd/agentd.sock" }
        return "/tmp/agentd-\(getuid())/agentd.sock"
    }

    /// `$AGENTD_DB`, else `$XDG_STATE_HOME/agentd/agentd.db`, else `~/.local/state/agentd/agentd.db`.
    public static func defaultDatabase() -> String {
        if let s = environment("AGENTD_DB") { return s }
        if let state = environment("XDG_STATE_HOME") { return state + "/agentd/agentd.db" }
        let home = environment("HOME") ?? "/tmp/agentd-\(getuid())"
        return home + "/.local/state/agentd/agentd.db"
    }

    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// An absolute form of `path` against the current directory.
    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return currentDirectory() + "/" + path
    }

    public static func currentDirectory() -> String {
        guard let cwd = getcwd(nil, 0) else { return "." }
        defer { free(cwd) }
        return String(cString: cwd)
    }

    /// Creates `path` and its parents; a private directory gets mode 0700.
    public static func ensureDirectory(_ path: String, private isPrivate: Bool) throws(DaemonError) {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw DaemonError("\(path) exists and is not a directory") }
            return
        }
        let parent = directory(of: path)
        if parent != path { try ensureDirectory(parent, private: false) }
        if mkdir(path, isPrivate ? 0o700 : 0o755) != 0 && errno != EEXIST {
            throw DaemonError("cannot create directory \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes a socket file left by a daemon that died; refuses when a daemon answers on it.
    public static func clearStaleSocket(_ path: String) throws(DaemonError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw DaemonError("\(path) exists and is not a socket") }
        // Something accepts connections. A daemon answers; a dead daemon's socket does not, yet stays
        // open in a child it was starting until that child execs (the descriptor is close-on-exec) or
        // dies: wait for that, up to 5 s.
        var waited = 0
        while let fd = try? RPCClient.connectSocket(path) {
            let answered = answers(fd, withinMilliseconds: 500)
            close(fd)
            if answered || waited >= 5000 { throw DaemonError("an agentd is already serving on \(path)") }
            usleep(50_000)
            waited += 550
        }
        unlink(path)
    }

    /// Whether whatever listens on the connected `fd` answers a `daemon.status` request in time.
    private static func answers(_ fd: Int32, withinMilliseconds ms: Int32) -> Bool {
        let request = Array(#"{"jsonrpc":"2.0","id":0,"method":"daemon.status"}"#.utf8) + [0x0A]
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return false }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, ms) == 1 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 1
    }
}
