import Store

#if canImport(Glibc)
    import Glibc
#endif

/// Why a client call failed, as one line for a person.
public struct ClientError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case notRunning, io, rpc, protocolViolation }

    public let kind: Kind
    public let message: String
    /// The daemon's error, for `.rpc`.
    public let rpc: RPCError?

    init(_ kind: Kind, _ message: String, rpc: RPCError? = nil) {
        self.kind = kind
        self.message = message
        self.rpc = rpc
    }

    public var description: String { message }
}

/// A blocking JSON-RPC client for the daemon's socket: the CLI, the benchmark and the tests use it.
///
/// Not for the loop thread. One call at a time per client, except through the frame-level API
/// (`writeFrame` / `readFrame`), which one writer thread and one reader thread may use together.
public final class RPCClient: @unchecked Sendable {
    public let socketPath: String
    private let fd: Int32
    private var readBuffer: [UInt8] = []
    private var readOffset = 0
    /// Where the search for the next newline resumes: the bytes before it hold none, so a large
    /// reply arriving in many reads is scanned once, not once per read.
    private var scannedTo = 0
    private var nextID = 0

    public init(socketPath: String) throws(ClientError) {
        self.socketPath = socketPath
        self.fd = try Self.connectSocket(socketPath)
    }

    deinit {
        close(fd)
    }

    static func connectSocket(_ path: String) throws(ClientError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError(.io, "socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw ClientError(.io, "socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let err = errno
            close(fd)
            if err == ENOENT || err == ECONNREFUSED {
                throw ClientError(.notRunning, "agentd is not running (nothing is listening on \(path)); start it with `agentd serve`")
            }
            throw ClientError(.io, "cannot connect to \(path): \(String(cString: strerror(err)))")
        }
        return fd
    }

    /// Sends `call` and returns its result (see `call(_:_:onNotification:)`).
    public func call(_ call: MethodCall, onNotification: (JSON) -> Void = { _ in }) throws(ClientError) -> JSON {
        try self.call(call.method.rawValue, call.params, onNotification: onNotification)
    }

    /// Calls `method` by its wire name with raw `params` (tests use this to send what no typed params
    /// can hold) and returns its result. Notifications that arrive meanwhile (e.g. `job.event`
    /// during `job.watch`) go to `onNotification`.
    public func call(_ method: String, _ params: JSON = .object([]), onNotification: (JSON) -> Void = { _ in }) throws(ClientError) -> JSON
    {
        nextID += 1
        let id = nextID
        do {
            try writeFrame(.object([("jsonrpc", "2.0"), ("id", .int(id)), ("method", .string(method)), ("params", params)]))
        } catch {
            // The daemon may have said why before it closed the connection (e.g. a refused peer).
            if let said = try? readFrame(), let reason = said["error"] { throw Self.rpcError(reason) }
            throw error
        }
        while true {
            let message = try readFrame()
            if message["id"] == nil || message["id"]?.isNull == true, message["method"] != nil {
                onNotification(message)
                continue
            }
            guard message["id"]?.intValue == id else {
                if let error = message["error"] { throw Self.rpcError(error) }
                continue
            }
            if let error = message["error"] { throw Self.rpcError(error) }
            return message["result"] ?? .null
        }
    }

    static func rpcError(_ error: JSON) -> ClientError {
        let rpc = RPCError(
            code: error["code"]?.intValue ?? 0, message: error["message"]?.stringValue ?? "unknown error", data: error["data"])
        return ClientError(.rpc, rpc.message, rpc: rpc)
    }

    /// Writes one JSON message and a newline.
    public func writeFrame(_ message: JSON) throws(ClientError) {
        var bytes: [UInt8] = []
        message.write(to: &bytes)
        bytes.append(0x0A)
        try writeRaw(bytes)
    }

    /// Writes bytes as they are (tests use this to send malformed frames).
    public func writeRaw(_ bytes: [UInt8]) throws(ClientError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError(.io, "write to \(socketPath): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Reads the next message. Throws `.io` when the daemon closed the connection.
    public func readFrame() throws(ClientError) -> JSON {
        while true {
            if let nl = readBuffer[max(readOffset, scannedTo)...].firstIndex(of: 0x0A) {
                let line = Array(readBuffer[readOffset..<nl])
                readOffset = nl + 1
                scannedTo = readOffset
                if readOffset > 65536 {
                    readBuffer.removeFirst(readOffset)
                    readOffset = 0
                    scannedTo = 0
                }
                do {
                    return try JSON.parse(line)
                } catch {
                    throw ClientError(.protocolViolation, "the daemon sent invalid JSON: \(error)")
                }
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError(.io, "read from \(socketPath): \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw ClientError(.io, "the daemon closed the connection") }
            scannedTo = readBuffer.count
            readBuffer.append(contentsOf: chunk[0..<n])
        }
    }
}
