import Agents
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

    public init(engine: Engine, loop: EventLoop, info: Info) {
        self.engine = engine
        self.loop = loop
        self.info = info
    }

    /// Serves `connection` until it closes.
    public func attach(_ connection: Connection) {
        connections[connection.id] = connection
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
        guard let handler = Self.methods[request.method] else {
            // A notification (no id) gets no reply, not even an error (JSON-RPC 2.0, section 4.1).
            if let id = request.id { reply(connection, id: id, error: .methodNotFound(request.method)) }
            return
        }
        let (id, params) = (request.id, request.params)
        // A finished job's `job.get` is answered at once from its kept answer: no task, no store read,
        // no encoding.
        if request.method == "job.get", let id, let jobID = params["id"]?.stringValue, let answer = finished[jobID] {
            replyEncoded(connection, id: id, result: answer)
            return
        }
        connection.requestStarted()
        // A request without an id is a notification: run it, send nothing back.
        Task(executorPreference: loop) { [self] in
            defer { connection.requestFinished() }
            do throws(RPCError) {
                let result = try await handler(self, Params(params), connection)
                if let id { reply(connection, id: id, result: result) }
            } catch {
                if let id { reply(connection, id: id, error: error) }
            }
        }
    }

    /// A well-formed JSON-RPC 2.0 request: its id (nil for a notification), method and params object.
    public struct Request: Sendable {
        public var id: JSON?
        public var method: String
        public var params: JSON
    }

    /// Why a frame is not a request, and the id to answer with (nil: answer nothing).
    public struct Rejection: Error, Sendable {
        public var id: JSON?
        public var error: RPCError
    }

    /// Decodes one frame into a request, or the error reply it deserves. Pure: the fuzz target runs it.
    public static func decode(_ bytes: [UInt8]) -> Result<Request, Rejection> {
        let message: JSON
        do {
            message = try JSON.parse(bytes)
        } catch {
            return .failure(Rejection(id: .null, error: .parse(error.description)))
        }
        guard case .object = message else {
            return .failure(Rejection(id: .null, error: .invalidRequest("a request must be a JSON object, got \(message.typeName)")))
        }
        let id = message["id"]
        if let id, !isValidID(id) {
            return .failure(Rejection(id: .null, error: .invalidRequest("'id' must be a string, a number or null")))
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

    static func usageJSON(_ u: RoleUsage) -> JSON {
        var members: [(String, JSON)] = [
            ("calls", .int(u.calls)), ("input_tokens", .int(u.inputTokens)), ("output_tokens", .int(u.outputTokens)),
        ]
        if let cost = u.costUSD { members.append(("cost_usd", .number((cost * 1e6).rounded() / 1e6))) }
        return .object(members)
    }

    private static func isValidID(_ id: JSON) -> Bool {
        switch id {
        case .string, .number, .null: return true
        default: return false
        }
    }

    private func reply(_ connection: Connection, id: JSON, result: JSON) {
        send(connection, .object([("jsonrpc", "2.0"), ("id", id), ("result", result)]))
    }

    private func reply(_ connection: Connection, id: JSON, error: RPCError) {
        send(connection, .object([("jsonrpc", "2.0"), ("id", id), ("error", error.json)]))
    }

    /// A result reply around `result`, already encoded.
    private func replyEncoded(_ connection: Connection, id: JSON, result: [UInt8]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(result.count + 48)
        bytes.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        id.write(to: &bytes)
        bytes.append(contentsOf: #","result":"#.utf8)
        bytes.append(contentsOf: result)
        bytes.append(0x7D)
        sendEncoded(connection, &bytes)
    }

    private func send(_ connection: Connection, _ message: JSON) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        message.write(to: &bytes)
        sendEncoded(connection, &bytes)
    }

    /// Every message leaves through here: secrets redacted, then one line.
    private func sendEncoded(_ connection: Connection, _ bytes: inout [UInt8]) {
        engine.writer.redactor.redact(&bytes)
        bytes.append(0x0A)
        connection.send(bytes)
    }

    // MARK: Methods

    typealias Handler = @Sendable (RPCServer, Params, Connection) async throws(RPCError) -> JSON

    static let methods: [String: Handler] = [
        "job.submit": { s, p, c throws(RPCError) in try await s.submit(p, from: c) },
        "job.get": { s, p, _ throws(RPCError) in try await s.get(p) },
        "job.list": { s, p, _ throws(RPCError) in try await s.list(p) },
        "job.cancel": { s, p, _ throws(RPCError) in WireJob.json(try await s.engine.cancel(try p.jobID())) },
        "job.wait": { s, p, _ throws(RPCError) in WireJob.json(try await s.engine.wait(try p.jobID())) },
        "job.watch": { s, p, c throws(RPCError) in try await s.watch(p, c) },
        "job.transcript": { s, p, _ throws(RPCError) in try await s.transcript(p) },
        "daemon.status": { s, _, _ throws(RPCError) in try await s.status() },
        "job.prune": { s, p, _ throws(RPCError) in try await s.prune(p) },
    ]

    private func submit(_ p: Params, from connection: Connection) async throws(RPCError) -> JSON {
        let planPath = try p.string("plan_path")
        let planText = try p.string("plan")
        guard (planPath == nil) != (planText == nil) else {
            throw .invalidParams("give exactly one of 'plan_path' (an absolute path) or 'plan' (the plan's text)")
        }
        if let planPath, !planPath.hasPrefix("/") { throw .invalidParams("'plan_path' must be absolute, got \(planPath)") }
        let inputs = p.raw["inputs"] ?? .object([])
        guard case .object = inputs else { throw .invalidParams("'inputs' must be an object") }
        let submission = Engine.Submission(
            planPath: planPath, planText: planText, planName: try p.string("plan_name"),
            baseDirectory: try p.string("base_dir"), goal: try p.string("goal") ?? "", inputs: inputs,
            cwd: try p.string("cwd"), idempotencyKey: try p.string("idempotency_key"), client: connection.peerUID)
        let (job, created) = try await engine.submit(submission)
        return WireJob.json(job).setting("created", .bool(created))
    }

    private func get(_ p: Params) async throws(RPCError) -> JSON {
        let id = try p.jobID()
        let (job, usage) = try await engine.jobWithUsage(id)
        let answer = Self.getAnswer(job, usage)
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

    private static func getAnswer(_ job: JobRecord, _ usage: [String: RoleUsage]) -> JSON {
        let roles = usage.keys.sorted()
        var total = RoleUsage(calls: 0, inputTokens: 0, outputTokens: 0, costUSD: nil)
        var perRole: [(String, JSON)] = []
        for role in roles {
            let u = usage[role]!
            total.calls += u.calls
            total.inputTokens += u.inputTokens
            total.outputTokens += u.outputTokens
            if let cost = u.costUSD { total.costUSD = (total.costUSD ?? 0) + cost }
            perRole.append((role, Self.usageJSON(u)))
        }
        return WireJob.json(job)
            .setting("completed_calls", .object(roles.map { ($0, .int(usage[$0]!.calls)) }))
            .setting("usage", .object(perRole + [("total", Self.usageJSON(total))]))
    }

    private func list(_ p: Params) async throws(RPCError) -> JSON {
        var status: JobStatus?
        if let word = try p.string("status") {
            guard let s = JobStatus(rawValue: word) else {
                throw .invalidParams("unknown status '\(word)' (one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            status = s
        }
        let limit = try p.int("limit", default: 100, range: 1...100_000)
        let jobs = try await engine.list(status: status, limit: limit)
        return ["jobs": .array(jobs.map(WireJob.json))]
    }

    private func watch(_ p: Params, _ connection: Connection) async throws(RPCError) -> JSON {
        let id = try p.jobID()
        let since = try p.int("since", default: 0, range: 0...Int(Int32.max))
        let job = try await engine.watch(
            id, since: since,
            deliver: { [unowned self, weak connection] event in
                guard let connection else { return }
                send(connection, .object([("jsonrpc", "2.0"), ("method", "job.event"), ("params", event.json)]))
            },
            whenClosed: { [weak connection] handler in
                if let connection { connection.whenClosed(handler) } else { handler() }
            })
        return WireJob.json(job)
    }

    private func transcript(_ p: Params) async throws(RPCError) -> JSON {
        let id = try p.jobID()
        let after = try p.int("after_seq", default: 0, range: 0...Int(Int32.max))
        let limit = try p.int("limit", default: 10_000, range: 1...100_000)
        let job = try await engine.job(id)
        let events = try await engine.events(id, afterSeq: after, limit: limit)
        var result: [(String, JSON)] = [("job", WireJob.json(job)), ("events", .array(events.map(\.json)))]
        if events.count == limit, let last = events.last { result.append(("next_after_seq", .int(last.seq))) }
        return .object(result)
    }

    private func prune(_ p: Params) async throws(RPCError) -> JSON {
        guard p.raw["before"].map({ !$0.isNull }) == true else {
            throw .invalidParams("'before' (Unix ms: jobs that finished before it are removed) is required")
        }
        let before = try p.int("before", default: 0, range: 0...Int(Int64.max / 2))
        var statuses = JobStatus.terminal
        if let given = p.raw["statuses"], !given.isNull {
            guard case let .array(items) = given, !items.isEmpty else {
                throw .invalidParams("'statuses' must be a non-empty array of succeeded, failed, cancelled")
            }
            statuses = []
            for item in items {
                guard let word = item.stringValue, let status = JobStatus(rawValue: word), status.isTerminal else {
                    throw .invalidParams(
                        "'statuses' may hold only succeeded, failed, cancelled (queued and running jobs are never pruned), got \(item.encoded)"
                    )
                }
                if !statuses.contains(status) { statuses.append(status) }
            }
        }
        let dryRun = try p.bool("dry_run", default: false)
        let result = try await engine.prune(PruneRequest(before: Int64(before), statuses: statuses), dryRun: dryRun)
        if result.jobs > 0, !dryRun {
            // Kept answers of `job.get` may name pruned jobs.
            finished = [:]
            finishedOrder = []
        }
        return .object([
            ("dry_run", .bool(dryRun)), ("before", .int(before)), ("statuses", .array(statuses.map { .string($0.rawValue) })),
            ("jobs", .int(result.jobs)), ("events", .int(result.events)), ("prune", result.pruneID.map { .int(Int($0)) } ?? .null),
        ])
    }

    private func status() async throws(RPCError) -> JSON {
        var status = try await engine.status()
        status = status.setting("version", .string(info.version))
        status = status.setting("pid", .int(Int(info.pid)))
        status = status.setting("socket", .string(info.socketPath))
        status = status.setting("config", configuration)
        let paused = connections.values.reduce(0) { $0 + ($1.paused ? 1 : 0) }
        status = status.setting("connections", ["open": .int(connections.count), "paused": .int(paused)])
        return status
    }
}

/// Request params with typed accessors whose errors name the field.
struct Params: Sendable {
    let raw: JSON

    init(_ raw: JSON) {
        self.raw = raw
    }

    func string(_ key: String) throws(RPCError) -> String? {
        guard let value = raw[key], !value.isNull else { return nil }
        guard let s = value.stringValue else { throw .invalidParams("'\(key)' must be a string, got \(value.typeName)") }
        return s
    }

    func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws(RPCError) -> Int {
        guard let value = raw[key], !value.isNull else { return fallback }
        guard let n = value.intValue, range.contains(n) else {
            throw .invalidParams("'\(key)' must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    func bool(_ key: String, default fallback: Bool) throws(RPCError) -> Bool {
        guard let value = raw[key], !value.isNull else { return fallback }
        guard let b = value.boolValue else { throw .invalidParams("'\(key)' must be true or false, got \(value.typeName)") }
        return b
    }

    func jobID() throws(RPCError) -> String {
        guard let id = try string("id"), !id.isEmpty else { throw .invalidParams("'id' (the job id) is required") }
        return id
    }
}

/// A job as the protocol shows it.
public enum WireJob {
    public static func json(_ job: JobRecord) -> JSON {
        .object([
            ("id", .string(job.id)), ("plan", .string(job.planName)), ("goal", .string(job.goal)),
            ("status", .string(job.status.rawValue)), ("reason", job.reason.map(JSON.string) ?? .null),
            ("inputs", job.inputs), ("idempotency_key", job.idempotencyKey.map(JSON.string) ?? .null),
            ("created_at", .number(Double(job.createdAt))),
            ("started_at", job.startedAt.map { .number(Double($0)) } ?? .null),
            ("finished_at", job.finishedAt.map { .number(Double($0)) } ?? .null),
        ])
    }
}
