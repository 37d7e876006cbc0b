import CLibUV
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// One client connection on the daemon's Unix socket: newline-delimited frames in, bytes out.
///
/// Reads are split into frames by a `FrameDecoder` (oversized frames reported, never buffered).
/// Writes are gathered for one turn of the loop, then go out at once when the socket takes them
/// (`uv_try_write`), the rest queued with `uv_write`.
///
/// Output is bounded two ways. A producer of much output (a long history, a large reply) writes it
/// in parts and waits between them with `drained(below:)` until the client has read most of what
/// waits, so a client that keeps reading is never cut off however much it asks for. A client that
/// stops reading while more than `maxPendingWrite` bytes wait cannot hold the daemon's memory: what
/// would pass the bound is dropped, the client is sent one last line (the listener's `.backlog`
/// refusal: an error reply with a null id) after what was already queued, and the connection closes
/// once that line is written, or after `lingerMilliseconds` if the client never reads it.
///
/// One long message at a time (`beginLongMessage` … `endLongMessage`): its parts go out in order
/// while other messages sent meanwhile wait behind it, so lines never interleave.
///
/// Backpressure on requests: the server marks each request it starts (`requestStarted`) and ends
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
    /// The line sent to a client that fell more than `maxPendingWrite` bytes behind (no newline).
    private let backlogFrame: (Int) -> [UInt8]
    private(set) public var isOpen = true
    package var onFrame: ((FrameDecoder.Frame) -> Void)?
    /// Called once if the client falls too far behind (for the daemon's count of cut-off clients).
    package var onFellBehind: (() -> Void)?
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
    /// Whether a long message is being written; messages sent meanwhile wait in `deferred`.
    private var longMessage = false
    private var deferred: [UInt8] = []
    /// The size of each write queued with libuv, by request, to report it freed when it completes.
    private var queuedCopies: [UnsafeMutableRawPointer: Int] = [:]
    private var longMessageWaiters: [UnsafeContinuation<Bool, Never>] = []
    private var drainWaiters: [(limit: Int, continuation: UnsafeContinuation<Bool, Never>)] = []
    /// Set once the client fell too far behind: only the last line goes out, then the connection closes.
    private var closing = false
    private var linger: LoopTimer?
    /// Told of the output this connection frees, so large frees go back to the system.
    private let memory: MemoryTrim?
    /// How long a connection that fell too far behind waits for its client to read the last line.
    static let lingerMilliseconds: UInt64 = 30_000

    /// Runs `handler` when the connection closes (at once if it already has).
    package func whenClosed(_ handler: @escaping () -> Void) {
        if isOpen { closeHandlers.append(handler) } else { handler() }
    }

    init(
        id: Int, loop: EventLoop, pipe: UnsafeMutablePointer<uv_pipe_t>, frameLimit: Int, maxPendingWrite: Int, maxInFlight: Int = .max,
        backlogFrame: @escaping (Int) -> [UInt8] = { _ in [] }, memory: MemoryTrim? = nil
    ) {
        self.memory = memory
        self.id = id
        self.loop = loop
        self.pipe = pipe
        self.decoder = FrameDecoder(limit: frameLimit)
        self.maxPendingWrite = maxPendingWrite
        self.maxInFlight = max(1, maxInFlight)
        self.backlogFrame = backlogFrame
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
        guard nread > 0, !closing else { return }
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(readBuffer).assumingMemoryBound(to: UInt8.self), count: nread)
        for frame in decoder.feed(bytes) {
            guard isOpen, !closing else { return }
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
        while !paused, isOpen, !closing, heldHead < held.count {
            let frame = held[heldHead]
            heldHead += 1
            onFrame?(frame)
        }
        if heldHead == held.count {
            held.removeAll()
            heldHead = 0
        }
        if !paused, isOpen, !closing { startReading() }
    }

    // MARK: Writing

    /// Whether output sent now can still reach the client (open, and not cut off).
    public var isWritable: Bool { isOpen && !closing }

    /// Bytes sent to this connection that its client has not taken yet: gathered, waiting behind a
    /// long message, and queued in libuv.
    public var pendingWrite: Int {
        guard isOpen else { return 0 }
        return outgoing.count + deferred.count + Int(uv_stream_get_write_queue_size(asStream(pipe)))
    }

    /// Sends bytes (one or more whole frames) soon: everything sent during one turn of the loop goes
    /// out in one write. Waits behind a long message being written. Dropped when the connection is
    /// closed or closing; past `maxPendingWrite` waiting bytes, the client is cut off (see the type).
    public func send(_ bytes: [UInt8]) {
        guard isOpen, !closing, !bytes.isEmpty else { return }
        guard pendingWrite + bytes.count <= maxPendingWrite else { return fellBehind() }
        if longMessage {
            deferred.append(contentsOf: bytes)
        } else {
            outgoing.append(contentsOf: bytes)
            scheduleFlush()
        }
    }

    /// Waits for the turn to write one long message in parts (`sendPart`), which other messages then
    /// wait behind until `endLongMessage`. Returns false, without the turn, once the connection closes.
    package func beginLongMessage() async -> Bool {
        guard isOpen, !closing else { return false }
        guard longMessage else {
            longMessage = true
            return true
        }
        return await withUnsafeContinuation { longMessageWaiters.append($0) }
    }

    /// Sends one part of the long message this caller began; the caller waits with `drained(below:)`
    /// between parts.
    package func sendPart(_ bytes: [UInt8]) {
        guard isOpen, !closing, !bytes.isEmpty else { return }
        guard pendingWrite + bytes.count <= maxPendingWrite else { return fellBehind() }
        outgoing.append(contentsOf: bytes)
        scheduleFlush()
    }

    /// Ends the long message: what waited behind it follows, then the next long message's turn.
    package func endLongMessage() {
        guard longMessage else { return }
        if !deferred.isEmpty {
            outgoing.append(contentsOf: deferred)
            deferred = []
            scheduleFlush()
        }
        if longMessageWaiters.isEmpty {
            longMessage = false
        } else {
            longMessageWaiters.removeFirst().resume(returning: true)
        }
    }

    /// Waits until at most `limit` bytes wait for the client. Returns whether the connection is still
    /// open (false as soon as it closes or starts closing).
    package func drained(below limit: Int) async -> Bool {
        guard isOpen, !closing else { return false }
        if pendingWrite <= limit { return true }
        return await withUnsafeContinuation { drainWaiters.append((limit, $0)) }
    }

    private func scheduleFlush() {
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
        // A large gathered buffer is freed here (what libuv queued is a copy, reported when written).
        if bytes.count > 1 << 16 { memory?.freed(bytes.count) }
        wroteSome()
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
        let count = bytes.count - offset
        let copy = UnsafeMutablePointer<CChar>.allocate(capacity: count)
        bytes.withUnsafeBufferPointer { buf in
            UnsafeMutableRawPointer(copy).copyMemory(from: buf.baseAddress! + offset, byteCount: count)
        }
        let request = allocateHandle(uv_write_t.self)
        request.pointee.data = UnsafeMutableRawPointer(copy)
        queuedCopies[UnsafeMutableRawPointer(request)] = count
        var b = uv_buf_init(copy, UInt32(count))
        let rc = uv_write(request, stream, &b, 1) { req, _ in
            guard let req else { return }
            req.pointee.data?.deallocate()
            let stream = req.pointee.handle
            UnsafeMutableRawPointer(req).deallocate()
            // The handle's context outlives its queued writes: they complete (or are cancelled) before
            // its close callback releases the connection.
            guard let data = stream?.pointee.data else { return }
            let connection = Unmanaged<Connection>.fromOpaque(data).takeUnretainedValue()
            connection.memory?.freed(connection.queuedCopies.removeValue(forKey: UnsafeMutableRawPointer(req)) ?? 0)
            connection.wroteSome()
        }
        if rc != 0 {
            queuedCopies[UnsafeMutableRawPointer(request)] = nil
            copy.deallocate()
            UnsafeMutableRawPointer(request).deallocate()
            close()
        }
    }

    /// Some output reached the client: wake who waits for less to be waiting; a closing connection
    /// closes once its last line is out.
    private func wroteSome() {
        guard isOpen else { return }
        if closing {
            if outgoing.isEmpty, uv_stream_get_write_queue_size(asStream(pipe)) == 0 { close() }
            return
        }
        guard !drainWaiters.isEmpty else { return }
        let pending = pendingWrite
        var waiting: [(limit: Int, continuation: UnsafeContinuation<Bool, Never>)] = []
        for waiter in drainWaiters {
            if pending <= waiter.limit { waiter.continuation.resume(returning: true) } else { waiting.append(waiter) }
        }
        drainWaiters = waiting
    }

    /// The client let more than `maxPendingWrite` bytes pile up: drop what waits behind, tell it why
    /// in one last line after what is already queued, and close once that is written (or lingered).
    private func fellBehind() {
        closing = true
        onFellBehind?()
        // Reading goes on, only to notice the client closing: its requests are no longer served.
        held.removeAll()
        if paused {
            paused = false
            startReading()
        }
        deferred = []
        // A long message cut off mid-line is ended, so the last line stands on its own.
        if longMessage { outgoing.append(0x0A) }
        outgoing.append(contentsOf: backlogFrame(maxPendingWrite))
        outgoing.append(0x0A)
        wakeWaiters()
        let timer = LoopTimer(loop: loop)
        timer.start(after: Self.lingerMilliseconds) { [weak self] in self?.close() }
        linger = timer
        scheduleFlush()
    }

    /// Tells everyone waiting on this connection that it will write no more.
    private func wakeWaiters() {
        let (drains, turns) = (drainWaiters, longMessageWaiters)
        drainWaiters = []
        longMessageWaiters = []
        drains.forEach { $0.continuation.resume(returning: false) }
        turns.forEach { $0.resume(returning: false) }
    }

    /// Closes the connection; the close handlers run once.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        uv_read_stop(asStream(pipe))
        held.removeAll()
        // Its buffers, and the read buffer freed with it.
        memory?.freed(outgoing.capacity + deferred.capacity + readBufferSize)
        outgoing = []
        deferred = []
        linger?.close()
        linger = nil
        wakeWaiters()
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
