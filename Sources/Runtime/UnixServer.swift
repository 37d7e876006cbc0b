import CLibUV
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// One client connection on the daemon's Unix socket: newline-delimited frames in, bytes out.
///
/// Reads are split into frames by a `FrameDecoder` (oversized frames reported, never buffered).
/// Writes are gathered for one turn of the loop, then go out at once when the socket takes them
/// (`uv_try_write`), the rest queued with `uv_write`; a client that stops reading while more than
/// `maxPendingWrite` bytes wait is disconnected so it cannot hold the daemon's memory.
///
/// Backpressure: the server marks each request it starts (`requestStarted`) and ends
/// (`requestFinished`). With `maxInFlight` requests unfinished, the connection stops reading its
/// socket — frames already read wait, in order, with the bytes of at most one read — and reads again
/// once one finishes; the client's writes then block in its kernel buffer. So a client that pipelines
/// without bound holds at most `maxInFlight` requests' work in the daemon. Loop thread only.
public final class Connection: @unchecked Sendable {
    public let id: Int
    private let pipe: UnsafeMutablePointer<uv_pipe_t>
    private var decoder: FrameDecoder
    private let readBuffer: UnsafeMutablePointer<CChar>
    private let readBufferSize = 64 * 1024
    private let maxPendingWrite: Int
    private(set) public var isOpen = true
    package var onFrame: ((FrameDecoder.Frame) -> Void)?
    /// The peer's user id (`SO_PEERCRED`), read when the connection was accepted.
    public internal(set) var peerUID: UInt32?
    /// Requests started and not yet finished.
    public private(set) var inFlight = 0
    /// Requests in flight at which reading pauses; may change while the connection is open.
    var maxInFlight: Int {
        didSet { if paused, inFlight < maxInFlight { resumeReading() } }
    }
    /// Whether reading is paused because `maxInFlight` requests are in flight.
    public private(set) var paused = false
    /// Frames read while paused, delivered in order when reading resumes.
    private var held: [FrameDecoder.Frame] = []
    private var heldHead = 0
    private let loop: EventLoop
    private var outgoing: [UInt8] = []
    private var flushScheduled = false
    private var closeHandlers: [() -> Void] = []

    /// Runs `handler` when the connection closes (at once if it already has).
    package func whenClosed(_ handler: @escaping () -> Void) {
        if isOpen { closeHandlers.append(handler) } else { handler() }
    }

    init(
        id: Int, loop: EventLoop, pipe: UnsafeMutablePointer<uv_pipe_t>, frameLimit: Int, maxPendingWrite: Int, maxInFlight: Int = .max
    ) {
        self.id = id
        self.loop = loop
        self.pipe = pipe
        self.decoder = FrameDecoder(limit: frameLimit)
        self.maxPendingWrite = maxPendingWrite
        self.maxInFlight = max(1, maxInFlight)
        self.readBuffer = .allocate(capacity: readBufferSize)
        // The handle holds the connection alive until its close callback.
        pipe.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    deinit {
        readBuffer.deallocate()
    }

    /// The largest request line this connection accepts.
    public var frameLimit: Int { decoder.limit }

    func startReading() {
        uv_read_start(
            asStream(pipe),
            { handle, _, buf in
                guard let data = handle?.pointee.data else { return }
                let conn = Unmanaged<Connection>.fromOpaque(data).takeUnretainedValue()
                buf?.pointee = uv_buf_init(conn.readBuffer, UInt32(conn.readBufferSize))
            },
            { stream, nread, _ in
                guard let data = stream?.pointee.data else { return }
                let conn = Unmanaged<Connection>.fromOpaque(data).takeUnretainedValue()
                conn.didRead(nread)
            })
    }

    private func didRead(_ nread: Int) {
        if nread < 0 {
            close()
            return
        }
        guard nread > 0 else { return }
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(readBuffer).assumingMemoryBound(to: UInt8.self), count: nread)
        for frame in decoder.feed(bytes) {
            guard isOpen else { return }
            if paused {
                held.append(frame)
            } else {
                onFrame?(frame)
            }
        }
    }

    // MARK: Backpressure

    /// A request read from this connection started; at `maxInFlight` reading pauses.
    package func requestStarted() {
        inFlight += 1
        if inFlight >= maxInFlight, !paused, isOpen {
            paused = true
            uv_read_stop(asStream(pipe))
        }
    }

    /// A request of this connection finished (its reply is queued); reading resumes below the limit.
    package func requestFinished() {
        inFlight -= 1
        if paused, inFlight < maxInFlight { resumeReading() }
    }

    /// Delivers the frames held while paused (which may pause again), then reads the socket again.
    private func resumeReading() {
        paused = false
        while !paused, isOpen, heldHead < held.count {
            let frame = held[heldHead]
            heldHead += 1
            onFrame?(frame)
        }
        if heldHead == held.count {
            held.removeAll()
            heldHead = 0
        }
        if !paused, isOpen { startReading() }
    }

    /// Sends bytes (one or more whole frames) soon: everything sent during one turn of the loop goes
    /// out in one write. Dropped when the connection is closed.
    public func send(_ bytes: [UInt8]) {
        guard isOpen, !bytes.isEmpty else { return }
        outgoing.append(contentsOf: bytes)
        if outgoing.count > maxPendingWrite {
            close()
            return
        }
        if !flushScheduled {
            flushScheduled = true
            loop.execute { [self] in flush() }
        }
    }

    private func flush() {
        flushScheduled = false
        guard isOpen, !outgoing.isEmpty else { return }
        let bytes = outgoing
        outgoing.removeAll(keepingCapacity: outgoing.capacity <= 1 << 16)
        sendNow(bytes)
    }

    /// Writes at once (what the socket takes now) and queues the rest with libuv.
    func sendNow(_ bytes: [UInt8]) {
        guard isOpen, !bytes.isEmpty else { return }
        let stream = asStream(pipe)
        var offset = 0
        if uv_stream_get_write_queue_size(stream) == 0 {
            let written = bytes.withUnsafeBufferPointer { buf -> Int32 in
                var b = uv_buf_init(
                    UnsafeMutableRawPointer(mutating: buf.baseAddress!).assumingMemoryBound(to: CChar.self), UInt32(buf.count))
                return uv_try_write(stream, &b, 1)
            }
            if written == Int32(bytes.count) { return }
            if written > 0 {
                offset = Int(written)
            } else if written != UV_EAGAIN.rawValue {
                close()
                return
            }
        }
        if uv_stream_get_write_queue_size(stream) + (bytes.count - offset) > maxPendingWrite {
            close()
            return
        }
        let count = bytes.count - offset
        let copy = UnsafeMutablePointer<CChar>.allocate(capacity: count)
        bytes.withUnsafeBufferPointer { buf in
            UnsafeMutableRawPointer(copy).copyMemory(from: buf.baseAddress! + offset, byteCount: count)
        }
        let request = allocateHandle(uv_write_t.self)
        request.pointee.data = UnsafeMutableRawPointer(copy)
        var b = uv_buf_init(copy, UInt32(count))
        let rc = uv_write(request, stream, &b, 1) { req, _ in
            guard let req else { return }
            req.pointee.data?.deallocate()
            UnsafeMutableRawPointer(req).deallocate()
        }
        if rc != 0 {
            copy.deallocate()
            UnsafeMutableRawPointer(request).deallocate()
            close()
        }
    }

    /// Closes the connection; the close handlers run once.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        uv_read_stop(asStream(pipe))
        held.removeAll()
        let handlers = closeHandlers
        onFrame = nil
        closeHandlers = []
        handlers.forEach { $0() }
        uv_close(asHandle(pipe)) { handle in
            guard let handle else { return }
            if let data = handle.pointee.data {
                Unmanaged<Connection>.fromOpaque(data).release()
            }
            UnsafeMutableRawPointer(handle).deallocate()
        }
    }
}

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

    /// Why a connection is refused as it is accepted: the listener sends the frame `refusal` makes for
    /// it (the protocol's error reply), then closes the connection.
    public enum Refusal: Sendable {
        /// The peer's credentials do not allow it (the reason says why).
        case peer(String)
        /// `maxConnections` are open.
        case full
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
        uv_pipe_init(loop.uv, handle, 0)
        let old = umask(0o177)
        let rc = uv_pipe_bind(handle, path)
        umask(old)
        if rc != 0 {
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
            maxInFlight: limits.maxRequestsInFlight)
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
