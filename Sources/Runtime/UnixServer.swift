import CLibUV
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// The listening Unix socket. Loop thread only.
///
/// The socket file is created with mode 0600 (the process umask is tightened around `bind`), so only
/// the daemon's user can connect.
public final class UnixListener: @unchecked Sendable {
    public struct Limits: Sendable, Equatable {
        /// The largest request line (for connections accepted from now on).
        public var frameLimit = 1 << 20
        public var maxConnections = 1024
        public var maxPendingWrite = 64 << 20
        /// Requests in flight per connection before its reading pauses (see `Connection`).
        public var maxRequestsInFlight = 1024
        /// Besides the daemon's own user, members of this group (by gid) may connect.
        public var allowedGroup: gid_t?
        public init() {}
    }

    private let loop: EventLoop
    private let handle = allocateHandle(uv_pipe_t.self)
    /// The group and file mode are set once, at `init`; the other limits may change (`update`).
    private var limits: Limits
    private let onConnection: (Connection) -> Void
    private let refusal: (Refusal) -> [UInt8]
    private var nextID = 0
    private(set) public var connections: [Int: Connection] = [:]
    private var closed = false
    public let path: String
    /// Gives back the memory large output leaves behind once freed (see `MemoryTrim`).
    public let memory: MemoryTrim

    /// Why a connection is refused as it is accepted — or, for `.backlog`, cut off later: the listener
    /// sends the frame `refusal` makes for it (the protocol's error reply), then closes the connection.
    public enum Refusal: Sendable {
        /// The peer's credentials do not allow it (the reason says why).
        case peer(String)
        /// `maxConnections` are open.
        case full
        /// Not a refusal at accept: the client let more than this many bytes of output pile up unread,
        /// and is told so in its last line before the connection closes.
        case backlog(Int)
    }

    public init(
        loop: EventLoop, path: String, limits: Limits, refusal: @escaping (Refusal) -> [UInt8],
        onConnection: @escaping (Connection) -> Void
    ) throws(LoopError) {
        loop.assertInLoop()
        self.loop = loop
        self.path = path
        self.limits = limits
        self.onConnection = onConnection
        self.refusal = refusal
        self.memory = MemoryTrim(loop: loop)
        uv_pipe_init(loop.uv, handle, 0)
        let old = umask(0o177)
        let rc = uv_pipe_bind(handle, path)
        umask(old)
        if rc != 0 {
            memory.close()
            closeAndFree(handle)
            throw LoopError("bind \(path)", rc)
        }
        if let group = limits.allowedGroup {
            // The group may connect too: its members still pass the credential check one by one.
            chown(path, uid_t.max, group)
            chmod(path, 0o660)
        } else {
            chmod(path, 0o600)
        }
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let lrc = uv_listen(asStream(handle), 511) { server, status in
            guard status == 0, let data = server?.pointee.data else { return }
            Unmanaged<UnixListener>.fromOpaque(data).takeUnretainedValue().accept()
        }
        if lrc != 0 {
            handle.pointee.data = nil
            memory.close()
            closeAndFree(handle)
            unlink(path)
            throw LoopError("listen \(path)", lrc)
        }
    }

    private func accept() {
        let client = allocateHandle(uv_pipe_t.self)
        uv_pipe_init(loop.uv, client, 0)
        guard uv_accept(asStream(handle), asStream(client)) == 0 else {
            closeAndFree(client)
            return
        }
        nextID += 1
        let conn = Connection(
            id: nextID, loop: loop, pipe: client, frameLimit: limits.frameLimit, maxPendingWrite: limits.maxPendingWrite,
            maxInFlight: limits.maxRequestsInFlight, backlogFrame: { [refusal = self.refusal] in refusal(.backlog($0)) }, memory: memory)
        let peer = PeerCheck.credentials(client)
        if case let .success(credentials) = peer { conn.peerUID = credentials.uid }
        if let refusal = PeerCheck.refusal(peer, allowedGroup: limits.allowedGroup) {
            conn.sendNow(self.refusal(.peer(refusal)) + [0x0A])
            conn.close()
            return
        }
        if connections.count >= limits.maxConnections {
            conn.sendNow(refusal(.full) + [0x0A])
            conn.close()
            return
        }
        connections[conn.id] = conn
        conn.whenClosed { [weak self, id = conn.id] in self?.connections[id] = nil }
        onConnection(conn)
        conn.startReading()
    }

    /// Applies changed limits (a configuration reload): the connection limit and frame limit from the
    /// next accepted connection on, the requests-in-flight limit on every open connection at once.
    /// The allowed group is not changed (it needs a restart: the socket file's group and mode).
    public func update(_ new: Limits) {
        loop.assertInLoop()
        let group = limits.allowedGroup
        limits = new
        limits.allowedGroup = group
        for conn in connections.values { conn.maxInFlight = max(1, new.maxRequestsInFlight) }
    }

    /// Stops accepting and removes the socket file. Open connections stay until `closeConnections`.
    public func close() {
        guard !closed else { return }
        closed = true
        handle.pointee.data = nil
        memory.close()
        closeAndFree(handle)
        unlink(path)
    }

    public func closeConnections() {
        for conn in Array(connections.values) { conn.close() }
    }
}

/// Who may talk to the daemon: the peer's credentials from the kernel (`SO_PEERCRED`), checked on
/// every connection — the socket file's mode is the first fence, this is the second, and it holds even
/// if the file's mode or directory is loosened.
enum PeerCheck {
    /// A peer's user and primary group, as the kernel reports them.
    struct Credentials {
        let uid: uid_t
        let gid: gid_t
    }

    /// The credentials of the peer on `pipe`, or why they cannot be read.
    static func credentials(_ pipe: UnsafeMutablePointer<uv_pipe_t>) -> Result<Credentials, Unreadable> {
        var fd: uv_os_fd_t = -1
        guard uv_fileno(asHandle(pipe), &fd) == 0 else { return .failure(Unreadable(reason: "cannot read the connection's credentials")) }
        var uid: uid_t = 0
        var gid: gid_t = 0
        guard agentd_peer_credentials(fd, &uid, &gid) == 0 else {
            return .failure(Unreadable(reason: "cannot read the connection's credentials: \(String(cString: strerror(errno)))"))
        }
        return .success(Credentials(uid: uid, gid: gid))
    }

    /// Why a peer's credentials could not be read.
    struct Unreadable: Error {
        let reason: String
    }

    /// Why the peer is refused, or nil when it is the daemon's own user (or root, or a member of
    /// `allowedGroup`).
    static func refusal(_ peer: Result<Credentials, Unreadable>, allowedGroup: gid_t?) -> String? {
        let uid: uid_t
        let gid: gid_t
        switch peer {
        case let .success(credentials): (uid, gid) = (credentials.uid, credentials.gid)
        case let .failure(unreadable): return unreadable.reason
        }
        let me = geteuid()
        if uid == me || uid == 0 { return nil }
        if let group = allowedGroup, isMember(uid: uid, primaryGID: gid, of: group) { return nil }
        return "permission denied: uid \(uid) may not use this daemon (it serves uid \(me)"
            + (allowedGroup.map { " and group \($0)" } ?? "") + ")"
    }

    private static func isMember(uid: uid_t, primaryGID: gid_t, of group: gid_t) -> Bool {
        if primaryGID == group { return true }
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return false }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, entry.pointee.pw_gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, entry.pointee.pw_gid, &groups, &count) >= 0 else { return false }
        }
        return groups.prefix(Int(count)).contains(group)
    }
}
