import CCurl
import CLibUV
import Store

/// An HTTP request for `HTTPClient`.
public struct HTTPRequest: Sendable {
    public var url: String
    /// Sent as given; header names are not case-normalised.
    public var headers: [(name: String, value: String)]
    /// A POST body; nil sends a GET.
    public var body: [UInt8]?
    public var connectTimeoutMilliseconds: Int = 10_000
    /// For the whole exchange, connecting included.
    public var totalTimeoutMilliseconds: Int = 120_000
    /// No byte received for this long fails the request (second granularity).
    public var idleTimeoutMilliseconds: Int = 60_000
    /// A reply body larger than this fails the request instead of being buffered.
    public var maxResponseBytes: Int = 8 << 20
    /// CA certificates (PEM) to verify the server with instead of the system's.
    public var caFile: String?

    public init(url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// A complete HTTP response: any status, with its headers (names lower-cased) and body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    /// The last value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last(where: { $0.name == lower })?.value
    }
}

/// Why an HTTP exchange produced no response.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The host could not be resolved or reached.
        case connect
        /// A connect, total or idle timeout.
        case timeout
        /// The connection failed mid-exchange (reset, closed early, a truncated body).
        case network
        /// The reply was larger than `maxResponseBytes`.
        case tooLarge = "too_large"
        case cancelled
        /// The request could not be set up (e.g. a malformed URL).
        case invalid
    }

    public var kind: Kind
    public var message: String

    public var description: String { message }
}

/// HTTP(S) on the daemon's own loop: libcurl's multi-socket interface driven by libuv (the pattern of
/// curl's `multi-uv.c`). libcurl tells us which sockets to watch and when to time out; `uv_poll_t`
/// handles and one `uv_timer_t` tell libcurl when a socket is ready or the timeout came. No second
/// event loop, no thread per request; connections are kept and reused across requests (the multi
/// handle's connection cache).
///
/// Loop thread only, except `send`, which may be awaited from any task.
public final class HTTPClient: @unchecked Sendable {
    private let loop: EventLoop
    private let multi: UnsafeMutableRawPointer
    private var timer: LoopTimer?
    private var closed = false
    private var live: [ObjectIdentifier: Transfer] = [:]
    /// The sockets libcurl asked us to watch, each with its `uv_poll_t`.
    private var watches: [curl_socket_t: SocketWatch] = [:]

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    public init(loop: EventLoop) {
        loop.assertInLoop()
        _ = Self.globalInit
        self.loop = loop
        multi = curl_multi_init()
        let me = Unmanaged.passUnretained(self).toOpaque()
        agentd_curl_multi_setopt_socket_callback(multi, curlSocketCallback)
        agentd_curl_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, me)
        agentd_curl_multi_setopt_timer_callback(multi, curlTimerCallback)
        agentd_curl_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, me)
        // Keep enough idle connections for many calls in flight to one endpoint.
        agentd_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, 512)
        timer = LoopTimer(loop: loop)
    }

    /// Number of requests in flight.
    public var inFlight: Int { live.count }

    /// Sends `request` and returns the response, whatever its status. Throws when there is none.
    public func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        let transfer = Transfer(request: request)
        let result = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<HTTPResponse, HTTPError>, Never>) in
                loop.execute { [self] in start(transfer, continuation) }
            }
        } onCancel: {
            loop.execute { [self] in cancel(transfer) }
        }
        return try result.get()
    }

    /// Aborts every request in flight and releases libcurl and the loop handles. Loop thread.
    public func close() {
        guard !closed else { return }
        closed = true
        for transfer in Array(live.values) {
            finish(transfer, .failure(HTTPError(kind: .cancelled, message: "the daemon is stopping")))
        }
        curl_multi_cleanup(multi)
        // Whatever libcurl did not ask us to stop watching, stop now: no handle may outlive the loop.
        for watch in watches.values { watch.close() }
        watches = [:]
        timer?.close()
        timer = nil
    }

    // MARK: Transfers

    private func start(_ transfer: Transfer, _ continuation: UnsafeContinuation<Result<HTTPResponse, HTTPError>, Never>) {
        if transfer.cancelled || closed {
            continuation.resume(returning: .failure(HTTPError(kind: .cancelled, message: "cancelled")))
            return
        }
        transfer.continuation = continuation
        guard let easy = transfer.prepare() else {
            finish(transfer, .failure(HTTPError(kind: .invalid, message: "cannot set up the request to \(transfer.request.url)")))
            return
        }
        live[ObjectIdentifier(transfer)] = transfer
        agentd_curl_easy_setopt_pointer(easy, CURLOPT_PRIVATE, Unmanaged.passUnretained(transfer).toOpaque())
        let rc = curl_multi_add_handle(multi, easy)
        if rc != CURLM_OK {
            live[ObjectIdentifier(transfer)] = nil
            finish(
                transfer, .failure(HTTPError(kind: .invalid, message: "curl_multi_add_handle: \(String(cString: curl_multi_strerror(rc)))"))
            )
        }
    }

    private func cancel(_ transfer: Transfer) {
        transfer.cancelled = true
        guard live[ObjectIdentifier(transfer)] != nil else { return }
        finish(transfer, .failure(HTTPError(kind: .cancelled, message: "cancelled")))
    }

    /// Removes the transfer from libcurl and resumes its caller once.
    private func finish(_ transfer: Transfer, _ result: Result<HTTPResponse, HTTPError>) {
        if live.removeValue(forKey: ObjectIdentifier(transfer)) != nil, let easy = transfer.easy {
            curl_multi_remove_handle(multi, easy)
        }
        transfer.release()
        transfer.continuation?.resume(returning: result)
        transfer.continuation = nil
    }

    /// Hands finished transfers back to their callers.
    private func collectFinished() {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let code = agentd_curl_msg_result(message)
            var raw: UnsafeMutableRawPointer?
            agentd_curl_easy_getinfo_pointer(easy, CURLINFO_PRIVATE, &raw)
            guard let raw else { continue }
            let transfer = Unmanaged<Transfer>.fromOpaque(raw).takeUnretainedValue()
            finish(transfer, transfer.outcome(code))
        }
    }

    // MARK: libcurl's callbacks

    fileprivate func socketAction(_ socket: curl_socket_t, _ flags: Int32) {
        guard !closed else { return }
        var running: Int32 = 0
        curl_multi_socket_action(multi, socket, flags, &running)
        collectFinished()
    }

    fileprivate func watch(socket: curl_socket_t, what: Int32) {
        if what == CURL_POLL_REMOVE {
            watches.removeValue(forKey: socket)?.close()
            return
        }
        let watch = watches[socket] ?? SocketWatch(loop: loop, client: self, socket: socket)
        watches[socket] = watch
        var events: Int32 = 0
        if what == CURL_POLL_IN || what == CURL_POLL_INOUT { events |= Int32(UV_READABLE.rawValue) }
        if what == CURL_POLL_OUT || what == CURL_POLL_INOUT { events |= Int32(UV_WRITABLE.rawValue) }
        watch.start(events: events)
    }

    fileprivate func schedule(timeoutMilliseconds: Int) {
        guard let timer else { return }
        if timeoutMilliseconds < 0 {
            timer.stop()
            return
        }
        // Never call back into libcurl from inside its own callback: fire from the loop.
        timer.start(after: UInt64(timeoutMilliseconds)) { [unowned self] in
            socketAction(CURL_SOCKET_TIMEOUT, 0)
        }
    }
}

/// One socket libcurl asked to watch: a `uv_poll_t` on it.
private final class SocketWatch {
    private let handle: UnsafeMutablePointer<uv_poll_t>
    private unowned let client: HTTPClient
    let socket: curl_socket_t

    init(loop: EventLoop, client: HTTPClient, socket: curl_socket_t) {
        self.client = client
        self.socket = socket
        handle = allocateHandle(uv_poll_t.self)
        uv_poll_init_socket(loop.uv, handle, socket)
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    func start(events: Int32) {
        uv_poll_start(handle, events) { h, status, events in
            guard let data = h?.pointee.data else { return }
            let watch = Unmanaged<SocketWatch>.fromOpaque(data).takeUnretainedValue()
            var flags: Int32 = 0
            if status < 0 {
                flags = CURL_CSELECT_ERR
            } else {
                if events & Int32(UV_READABLE.rawValue) != 0 { flags |= CURL_CSELECT_IN }
                if events & Int32(UV_WRITABLE.rawValue) != 0 { flags |= CURL_CSELECT_OUT }
            }
            watch.client.socketAction(watch.socket, flags)
        }
    }

    private var closed = false

    func close() {
        guard !closed else { return }
        closed = true
        uv_poll_stop(handle)
        handle.pointee.data = nil
        closeAndFree(handle)
    }
}

/// One request's libcurl easy handle and what has arrived for it. Loop thread only.
private final class Transfer: @unchecked Sendable {
    let request: HTTPRequest
    var continuation: UnsafeContinuation<Result<HTTPResponse, HTTPError>, Never>?
    var cancelled = false
    private(set) var easy: UnsafeMutableRawPointer?
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    private var body: [UInt8] = []
    private var headers: [(name: String, value: String)] = []
    private var tooLarge = false

    init(request: HTTPRequest) {
        self.request = request
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        release()
        errorBuffer.deallocate()
    }

    /// Creates and configures the easy handle.
    func prepare() -> UnsafeMutableRawPointer? {
        guard let easy = curl_easy_init() else { return nil }
        self.easy = easy
        let me = Unmanaged.passUnretained(self).toOpaque()
        var ok = agentd_curl_easy_setopt_string(easy, CURLOPT_URL, request.url) == CURLE_OK
        agentd_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        agentd_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        agentd_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        agentd_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeoutMilliseconds)
        agentd_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, request.totalTimeoutMilliseconds)
        agentd_curl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
        agentd_curl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, max(1, (request.idleTimeoutMilliseconds + 999) / 1000))
        agentd_curl_easy_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, "")
        if let caFile = request.caFile { agentd_curl_easy_setopt_string(easy, CURLOPT_CAINFO, caFile) }
        if let body = request.body {
            agentd_curl_easy_setopt_long(easy, CURLOPT_POST, 1)
            agentd_curl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            ok =
                ok
                && body.withUnsafeBufferPointer { buf in
                    // COPYPOSTFIELDS copies the bytes now: the body need not outlive this call.
                    buf.baseAddress.map {
                        agentd_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0))
                    }
                        ?? agentd_curl_easy_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, "")
                } == CURLE_OK
        }
        // No "Expect: 100-continue" round trip for large bodies.
        for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            headerList = curl_slist_append(headerList, line)
        }
        agentd_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList)
        agentd_curl_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, transferWrite)
        agentd_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me)
        agentd_curl_easy_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, transferHeader)
        agentd_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me)
        return ok ? easy : nil
    }

    func release() {
        if let easy {
            curl_easy_cleanup(easy)
            self.easy = nil
        }
        if let headerList {
            curl_slist_free_all(headerList)
            self.headerList = nil
        }
    }

    fileprivate func received(_ data: UnsafeBufferPointer<UInt8>) -> Bool {
        if body.count + data.count > request.maxResponseBytes {
            tooLarge = true
            return false
        }
        body.append(contentsOf: data)
        return true
    }

    fileprivate func receivedHeader(_ line: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: [" ", "\r", "\n", "\t"])
        if text.hasPrefix("HTTP/") {
            headers = []  // a new response (after a redirect or an interim 1xx)
            return
        }
        guard let colon = text.firstIndex(of: ":") else { return }
        let name = text[..<colon].lowercased()
        let value = text[text.index(after: colon)...].trimmingCharacters(in: [" ", "\t"])
        headers.append((name, value))
    }

    func outcome(_ code: CURLcode) -> Result<HTTPResponse, HTTPError> {
        let detail = errorBuffer.pointee != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_OK:
            var status = 0
            if let easy {
                var value = 0
                agentd_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &value)
                status = value
            }
            return .success(HTTPResponse(status: status, headers: headers, body: body))
        case CURLE_WRITE_ERROR where tooLarge:
            return .failure(HTTPError(kind: .tooLarge, message: "reply larger than \(request.maxResponseBytes) bytes"))
        case CURLE_OPERATION_TIMEDOUT:
            return .failure(HTTPError(kind: .timeout, message: "timed out: \(detail)"))
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .failure(HTTPError(kind: .connect, message: "cannot connect: \(detail)"))
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE:
            return .failure(HTTPError(kind: .invalid, message: "TLS failed: \(detail)"))
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return .failure(HTTPError(kind: .invalid, message: "bad URL \(request.url): \(detail)"))
        default:
            return .failure(HTTPError(kind: .network, message: "connection failed: \(detail)"))
        }
    }
}

// MARK: - C callbacks

private func curlSocketCallback(
    _ easy: UnsafeMutableRawPointer?, _ socket: curl_socket_t, _ what: Int32, _ client: UnsafeMutableRawPointer?,
    _ socketContext: UnsafeMutableRawPointer?
) -> Int32 {
    guard let client else { return 0 }
    Unmanaged<HTTPClient>.fromOpaque(client).takeUnretainedValue().watch(socket: socket, what: what)
    return 0
}

private func curlTimerCallback(_ multi: UnsafeMutableRawPointer?, _ timeout: Int, _ client: UnsafeMutableRawPointer?) -> Int32 {
    guard let client else { return 0 }
    Unmanaged<HTTPClient>.fromOpaque(client).takeUnretainedValue().schedule(timeoutMilliseconds: timeout)
    return 0
}

private func transferWrite(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: size * count)
    return transfer.received(bytes) ? size * count : 0
}

private func transferHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    transfer.receivedHeader(UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: size * count))
    return size * count
}
