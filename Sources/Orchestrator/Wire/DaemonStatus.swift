import Store

/// `daemon.status`'s result: the engine's figures and the daemon's own, encoded in the member order
/// docs/protocol.md shows (clients and tests depend on it). The server builds one from
/// `Engine.Figures`; clients decode one. Pure value; any thread.
public struct DaemonStatus: Sendable, Equatable {
    /// The store's file and the writer's counters since start.
    public struct Store: Sendable, Equatable {
        public var path: String
        public var commits: Int
        public var events: Int
        public var failures: Int
        public var lastError: String?
    }

    /// `ok`, or degraded by a storage fault since a time (Unix milliseconds).
    public struct Storage: Sendable, Equatable {
        /// The fault (`StorageFault`'s description) while degraded; nil when ok.
        public var error: String?
        public var since: Int64?
        /// Jobs the fault stopped, which resume when it ends.
        public var stoppedJobs: Int

        public var degraded: Bool { error != nil }
    }

    /// False once draining for shutdown, and while a storage fault lasts.
    public var accepting: Bool
    public var uptimeMillis: Int64
    public var running: Int
    public var queued: Int
    public var watchers: Int
    /// Jobs in the database per status (every status, zero included).
    public var jobs: [JobStatus: Int]
    public var store: Store
    public var storage: Storage
    public var version: String
    public var protocolVersion: Int
    public var pid: Int
    public var socket: String
    /// The configuration in force, as the daemon encodes it (docs/config.md).
    public var config: JSON
    public var openConnections: Int
    /// Connections not being read because they have as many requests in flight as allowed.
    public var pausedConnections: Int
    /// Connections closed since start because their client left more output unread than allowed.
    public var cutOffConnections: Int

    public init(
        engine e: Engine.Figures, version: String, protocolVersion: Int = WireProtocol.version, pid: Int, socket: String,
        config: JSON, openConnections: Int, pausedConnections: Int, cutOffConnections: Int = 0
    ) {
        accepting = e.accepting
        uptimeMillis = e.uptimeMillis
        running = e.running
        queued = e.queued
        watchers = e.watchers
        jobs = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0, e.jobs[$0] ?? 0) })
        store = Store(
            path: e.storePath, commits: e.store.commits, events: e.store.events, failures: e.store.failures,
            lastError: e.store.lastError)
        storage = Storage(error: e.storageFault?.description, since: e.storageFault?.since, stoppedJobs: e.stoppedJobs)
        self.version = version
        self.protocolVersion = protocolVersion
        self.pid = pid
        self.socket = socket
        self.config = config
        self.openConnections = openConnections
        self.pausedConnections = pausedConnections
        self.cutOffConnections = cutOffConnections
    }

    /// Decodes a result. Throws `WireShapeError` naming the member when the shape is wrong.
    public init(json: JSON) throws(WireShapeError) {
        func value<T>(_ object: JSON?, _ path: String, _ read: (JSON) -> T?) throws(WireShapeError) -> T {
            let key = String(path.split(separator: ".").last ?? "")
            guard let member = object?[key], let typed = read(member) else {
                throw WireShapeError("status: '\(path)' is missing or has the wrong type")
            }
            return typed
        }
        func optional<T>(_ object: JSON?, _ path: String, _ read: (JSON) -> T?) throws(WireShapeError) -> T? {
            let key = String(path.split(separator: ".").last ?? "")
            guard let member = object?[key], !member.isNull else { return nil }
            return try value(object, path, read)
        }
        let millis = { (v: JSON) in v.doubleValue.map { Int64($0) } }
        accepting = try value(json, "accepting", \.boolValue)
        uptimeMillis = try value(json, "uptime_ms", millis)
        running = try value(json, "running", \.intValue)
        queued = try value(json, "queued", \.intValue)
        watchers = try value(json, "watchers", \.intValue)
        let counts = json["jobs"]
        var jobs: [JobStatus: Int] = [:]
        for status in JobStatus.allCases { jobs[status] = try value(counts, "jobs.\(status.rawValue)", \.intValue) }
        self.jobs = jobs
        let s = json["store"]
        store = Store(
            path: try value(s, "store.path", \.stringValue), commits: try value(s, "store.commits", \.intValue),
            events: try value(s, "store.events", \.intValue), failures: try value(s, "store.failures", \.intValue),
            lastError: try optional(s, "store.last_error", \.stringValue))
        let g = json["storage"]
        storage = Storage(
            error: try optional(g, "storage.error", \.stringValue), since: try optional(g, "storage.since", millis),
            stoppedJobs: try value(g, "storage.stopped_jobs", \.intValue))
        version = try value(json, "version", \.stringValue)
        protocolVersion = try value(json, "protocol_version", \.intValue)
        pid = try value(json, "pid", \.intValue)
        socket = try value(json, "socket", \.stringValue)
        config = json["config"] ?? .null
        let c = json["connections"]
        openConnections = try value(c, "connections.open", \.intValue)
        pausedConnections = try value(c, "connections.paused", \.intValue)
        cutOffConnections = c?["cut_off"]?.intValue ?? 0
    }

    public var json: JSON {
        .object([
            ("accepting", .bool(accepting)),
            ("uptime_ms", .number(Double(uptimeMillis))),
            ("running", .int(running)),
            ("queued", .int(queued)),
            ("watchers", .int(watchers)),
            ("jobs", .object(JobStatus.allCases.map { ($0.rawValue, .int(jobs[$0] ?? 0)) })),
            (
                "store",
                .object([
                    ("path", .string(store.path)), ("commits", .int(store.commits)), ("events", .int(store.events)),
                    ("failures", .int(store.failures)), ("last_error", store.lastError.map(JSON.string) ?? .null),
                ])
            ),
            (
                "storage",
                .object([
                    ("state", .string(storage.degraded ? "degraded" : "ok")), ("error", storage.error.map(JSON.string) ?? .null),
                    ("since", storage.since.map { .number(Double($0)) } ?? .null), ("stopped_jobs", .int(storage.stoppedJobs)),
                ])
            ),
            ("version", .string(version)),
            ("protocol_version", .int(protocolVersion)),
            ("pid", .int(pid)),
            ("socket", .string(socket)),
            ("config", config),
            (
                "connections",
                .object([("open", .int(openConnections)), ("paused", .int(pausedConnections)), ("cut_off", .int(cutOffConnections))])
            ),
        ])
    }
}
