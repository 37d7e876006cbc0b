import Agents
import Runtime
import Store

/// JSON-RPC 2.0 over the daemon's connections: decodes each frame, dispatches it to the engine and
/// writes the reply (after what it reports is committed).
///
/// Every malformed input gets an error reply naming the problem and the connection keeps serving:
/// bad JSON (-32700), a frame that is not a request object (-32600), an unknown method (-32601), bad
/// params (-32602), an oversized frame (-32001). Requests on one connection may be answered out of
/// order; match replies by `id`. Each request counts as in flight on its connection from when it is
/// read until its reply is queued (see `Connection`'s backpressure). Loop thread only.
public final class RPCServer: @unchecked Sendable {
    public struct Info: Sendable {
        public var version: String
        public var socketPath: String
        public var pid: Int32
        public init(version: String, socketPath: String, pid: Int32) {
            self.version = version
            self.socketPath = socketPath
            self.pid = pid
        }
    }

    private let engine: Engine
    private let loop: EventLoop
    private let info: Info
    /// What `daemon.status` reports as `config` (set by the daemon at start and on every reload).
    public var configuration: JSON = .null
    /// The open connections this server serves, by id.
    private var connections: [Int: Connection] = [:]
    /// Connections cut off since start for leaving too much output unread (`daemon.status`).
    private var cutOff = 0

    public init(engine: Engine, loop: EventLoop, info: Info) {
        self.engine = engine
        self.loop = loop
        self.info = info
    }

    /// Serves `connection` until it closes.
    /// The error reply a connection refused at accept gets (its id is null: no request was read).
    static func refusalFrame(_ refusal: UnixListener.Refusal) -> [UInt8] {
        let error: RPCError
        switch refusal {
        case let .peer(reason): error = .permissionDenied(reason)
        case .full: error = .tooManyClients
        case let .backlog(limit): error = .replyBacklog(limit: limit)
        }
        return error.replyFrame(id: .null)
    }

    public func attach(_ connection: Connection) {
        connections[connection.id] = connection
        connection.onFellBehind = { [unowned self] in cutOff += 1 }
        connection.whenClosed { [unowned self, id = connection.id] in connections[id] = nil }
        connection.onFrame = { [unowned self, unowned connection] frame in
            switch frame {
            case .oversized:
                reply(connection, id: .null, error: .frameTooLarge(limit: connection.frameLimit))
            case let .frame(bytes):
                handle(bytes, on: connection)
            }
        }
    }

    private func handle(_ bytes: [UInt8], on connection: Connection) {
        let request: Request
        switch Self.decode(bytes) {
        case .success(let decoded): request = decoded
        case .failure(let rejection):
            if let id = rejection.id { reply(connection, id: id, error: rejection.error) }
            return
        }
        guard let method = RPCMethod(rawValue: request.method) else {
            // A notification (no id) gets no reply, not even an error (JSON-RPC 2.0, section 4.1).
            if let id = request.id { reply(connection, id: id, error: .methodNotFound(request.method)) }
            return
        }
        let (id, params) = (request.id, request.params)
        // A finished job's `job.get` is answered at once from its kept answer: no task, no store read,
        // no encoding.
        if method == .jobGet, let id, let jobID = params["id"]?.stringValue, let answer = finished[jobID], !jobID.utf8.contains(0) {
            replyEncoded(connection, id: id, result: answer)
            return
        }
        connection.requestStarted()
        // A request without an id is a notification: run it, send nothing back.
        Task(executorPreference: loop) { [self] in
            defer { connection.requestFinished() }
            // A client gone (or cut off) before its request started: no work for a reply no one reads.
            guard connection.isWritable else { return }
            do throws(RPCError) {
                let call = try MethodCall(method, Params(params))
                let result: JSON?
                do throws(EngineError) {
                    result = try await perform(call, id: id, on: connection)
                } catch {
                    // The one place engine errors become protocol errors.
                    throw RPCError(error)
                }
                if let id, let result { reply(connection, id: id, result: result) }
            } catch {
                if let id { reply(connection, id: id, error: error) }
            }
        }
    }

    /// A well-formed JSON-RPC 2.0 request: its id (nil for a notification), method and params object.
    public struct Request: Sendable {
        public var id: RequestID?
        public var method: String
        public var params: JSON
    }

    /// Why a frame is not a request, and the id to answer with (nil: answer nothing).
    public struct Rejection: Error, Sendable {
        public var id: RequestID?
        public var error: RPCError
    }

    /// Decodes one frame into a request, or the error reply it deserves. Pure: the fuzz target runs it.
    ///
    /// The rule for the id of an error reply (docs/protocol.md, "Messages"): a frame that is a JSON
    /// object with a valid `id` member is answered with that id, byte for byte, whatever is wrong
    /// with the rest; a frame whose id cannot be read (not JSON, not an object, an id of another type)
    /// is answered with a null id; an object without `id` is answered with a null id only when it is
    /// not a valid request at all (bad `jsonrpc`, no string `method`) — otherwise it is a notification
    /// and gets no reply, not even an error.
    public static func decode(_ bytes: [UInt8]) -> Result<Request, Rejection> {
        let message: JSON
        let located: Range<Int>?
        do {
            (message, located) = try JSON.parse(bytes, locating: "id")
        } catch {
            return .failure(Rejection(id: .null, error: .parse(error.description)))
        }
        guard case .object = message else {
            return .failure(Rejection(id: .null, error: .invalidRequest("a request must be a JSON object, got \(message.typeName)")))
        }
        var id: RequestID?
        if let value = message["id"], let located {
            guard isValidID(value) else {
                return .failure(Rejection(id: .null, error: .invalidRequest("'id' must be a string, a number or null")))
            }
            id = RequestID(value: value, text: Array(bytes[located]))
        }
        guard message["jsonrpc"]?.stringValue == "2.0" else {
            return .failure(Rejection(id: id ?? .null, error: .invalidRequest("'jsonrpc' must be \"2.0\"")))
        }
        guard let method = message["method"]?.stringValue else {
            return .failure(Rejection(id: id ?? .null, error: .invalidRequest("'method' must be a string")))
        }
        let params = message["params"] ?? .object([])
        guard case .object = params else {
            // A notification with bad params gets no reply.
            return .failure(Rejection(id: id, error: .invalidParams("'params' must be an object")))
        }
        return .success(Request(id: id, method: method, params: params))
    }

    private static func isValidID(_ id: JSON) -> Bool {
        switch id {
        case .string, .number, .null: return true
        default: return false
        }
    }

    private func reply(_ connection: Connection, id: RequestID, result: JSON) {
        guard connection.isWritable else { return }
        var encoded: [UInt8] = []
        encoded.reserveCapacity(256)
        result.write(to: &encoded)
        replyEncoded(connection, id: id, result: encoded)
    }

    private func reply(_ connection: Connection, id: RequestID, error: RPCError) {
        var bytes = error.replyFrame(id: id)
        sendEncoded(connection, &bytes)
    }

    /// A result reply around `result`, already encoded.
    private func replyEncoded(_ connection: Connection, id: RequestID, result: [UInt8]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(result.count + 48)
        bytes.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        bytes.append(contentsOf: id.text)
        bytes.append(contentsOf: #","result":"#.utf8)
        bytes.append(contentsOf: result)
        bytes.append(0x7D)
        sendEncoded(connection, &bytes)
    }

    /// Every message leaves through here: secrets redacted, then one line.
    private func sendEncoded(_ connection: Connection, _ bytes: inout [UInt8]) {
        engine.writer.redactor.redact(&bytes)
        bytes.append(0x0A)
        connection.send(bytes)
    }

    // MARK: Methods

    /// Answers `call`: its result, or nil when the method wrote its reply itself (a long one, in parts).
    /// Runs on the loop. Engine errors are thrown as they are; `handle` maps them.
    private func perform(_ call: MethodCall, id: RequestID?, on connection: Connection) async throws(EngineError) -> JSON? {
        switch call {
        case .submit(let params): return try await submit(params, from: connection)
        case .get(let params): return try await get(params)
        case .list(let params): return try await list(params)
        case .cancel(let params): return WireJob.json(try await engine.cancel(params.id))
        case .wait(let params): return WireJob.json(try await engine.wait(params.id))
        case .watch(let params): return try await watch(params, id: id, connection)
        case .transcript(let params): return try await transcript(params, id: id, connection)
        case .status: return try await status()
        case .prune(let params): return try await prune(params)
        case .gates: return ["gates": .array(engine.waitingGates().map(\.json))]
        case .decide(let params):
            let seq = try await engine.decide(params, client: connection.peerUID)
            return ["job": .string(params.job), "gate": .string(params.gate), "seq": .int(seq)]
        case .retry(let params):
            let (job, step) = try await engine.retry(params, client: connection.peerUID)
            finished[params.id] = nil  // its answer now lists this retry
            return RetryResult(job: WireJob(job), retryOf: params.id, fromStep: step).json
        case .verify(let params): return try await engine.onRecords { db throws(EngineError) in try RecordQueries.verify(db, params).json }
        case .search(let params): return try await engine.onRecords { db throws(EngineError) in try RecordQueries.search(db, params) }
        case .stats(let params): return try await engine.onRecords { db throws(EngineError) in try RecordQueries.stats(db, params) }
        case .backup(let params): return try await engine.backup(to: params.path, client: connection.peerUID).json
        }
    }

    private func submit(_ params: SubmitParams, from connection: Connection) async throws(EngineError) -> JSON {
        let (job, created) = try await engine.submit(Engine.Submission(params, client: connection.peerUID))
        return SubmitResult(job: WireJob(job), created: created).json
    }

    private func get(_ params: JobIDParams) async throws(EngineError) -> JSON {
        let id = params.id
        let (job, usage, links) = try await engine.jobWithUsage(id)
        let answer = JobDetails(job: WireJob(job), usage: usage, links: links).json
        // A finished job never changes again: its answer is kept, encoded (bounded), and `handle`
        // answers from it, so clients polling finished jobs cost no store reads. Not a cancelled job:
        // a reply its runner had staged may still be written after the cancellation.
        if job.status == .succeeded || job.status == .failed, finished[id] == nil {
            if finishedOrder.count >= 4096 { finished[finishedOrder.removeFirst()] = nil }
            var encoded: [UInt8] = []
            answer.write(to: &encoded)
            finished[id] = encoded
            finishedOrder.append(id)
        }
        return answer
    }

    /// `job.get`'s answers for finished jobs, encoded, oldest first in `finishedOrder`. Loop thread only.
    private var finished: [String: [UInt8]] = [:]
    private var finishedOrder: [String] = []

    private func list(_ params: ListParams) async throws(EngineError) -> JSON {
        let jobs = try await engine.list(status: params.status, limit: params.limit)
        return ["jobs": .array(jobs.map(WireJob.json))]
    }

    /// Output waiting for a client above which a long answer (a watch's history, a transcript) waits
    /// for the client to read before it writes more.
    static let lowWater = 4 << 20

    private func watch(_ params: WatchParams, id: RequestID?, _ connection: Connection) async throws(EngineError) -> JSON {
        let job = try await engine.watch(
            params.id, since: params.since,
            deliver: { [unowned self, weak connection] event in
                guard let connection else { return }
                var bytes = Self.eventNotification(event, watch: id)
                sendEncoded(connection, &bytes)
            },
            pace: { [weak connection] in
                guard let connection else { return false }
                return await connection.drained(below: Self.lowWater)
            },
            whenClosed: { [weak connection] handler in
                if let connection { connection.whenClosed(handler) } else { handler() }
            })
        return WireJob.json(job)
    }

    /// A `job.event` notification of `event`, encoded; `watch` is the id of the `job.watch` request it
    /// belongs to (written as the client wrote it), left out for a watch sent as a notification.
    static func eventNotification(_ event: EventRecord, watch: RequestID?) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        bytes.append(contentsOf: #"{"jsonrpc":"2.0","method":"job.event","params":"#.utf8)
        event.json.write(to: &bytes)
        if let watch {
            // Appended inside the event object: `…,"payload":{…},"watch":ID}`.
            bytes.removeLast()
            bytes.append(contentsOf: #","watch":"#.utf8)
            bytes.append(contentsOf: watch.text)
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    /// `job.transcript`, written as the client reads it: the reply is one line, but it is encoded in
    /// parts (`TranscriptStream`) and each part waits for the client to take most of the last, so
    /// neither the daemon's memory nor the unread output grows with the page. Other replies to the
    /// connection wait behind it.
    private func transcript(_ params: TranscriptParams, id: RequestID?, _ connection: Connection) async throws(EngineError) -> JSON? {
        let job = try await engine.job(params.id)
        guard let id else { return nil }
        let stream = TranscriptStream(engine: engine, params: params, job: WireJob(job))
        // The first part is read before anything is written, so a storage error is still a clean reply.
        var bytes: [UInt8] = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
        bytes.append(contentsOf: id.text)
        bytes.append(contentsOf: #","result":"#.utf8)
        bytes.append(contentsOf: try await stream.first())
        guard await connection.beginLongMessage() else { return nil }
        defer { connection.endLongMessage() }
        while true {
            engine.writer.redactor.redact(&bytes)
            connection.sendPart(bytes)
            guard await connection.drained(below: Self.lowWater), let next = await stream.next() else { break }
            bytes = next
        }
        if stream.failed {
            // Half a reply is on its way: the connection cannot carry a clean error after it.
            connection.close()
        } else if stream.complete {
            connection.sendPart([UInt8(ascii: "}"), 0x0A])
        }
        return nil
    }

    private func prune(_ params: PruneParams) async throws(EngineError) -> JSON {
        let (before, statuses, dryRun) = (params.before, params.statuses, params.dryRun)
        let result = try await engine.prune(PruneRequest(before: Int64(before), statuses: statuses), dryRun: dryRun)
        if result.jobs > 0, !dryRun {
            // Kept answers of `job.get` may name pruned jobs.
            finished = [:]
            finishedOrder = []
        }
        return PruneOutcome(dryRun: dryRun, before: before, statuses: statuses, result: result).json
    }

    private func status() async throws(EngineError) -> JSON {
        let figures = try await engine.status()
        let paused = connections.values.reduce(0) { $0 + ($1.paused ? 1 : 0) }
        return DaemonStatus(
            engine: figures, version: info.version, pid: Int(info.pid), socket: info.socketPath, config: configuration,
            openConnections: connections.count, pausedConnections: paused, cutOffConnections: cutOff
        ).json
    }
}
