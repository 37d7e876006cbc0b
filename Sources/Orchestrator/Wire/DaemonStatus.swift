import Store

/// `daemon.status`'s result: the engine's figures and the daemon's own, encoded in the member order
/// docs/protocol.md shows (clients and tests depend on it). Pure value; any thread.
public struct DaemonStatus: Sendable {
    public var engine: Engine.Figures
    public var version: String
    public var protocolVersion: Int
    public var pid: Int
    public var socket: String
    /// The configuration in force, as the daemon encodes it (docs/config.md).
    public var config: JSON
    public var openConnections: Int
    /// Connections not being read because they have as many requests in flight as allowed.
    public var pausedConnections: Int

    public init(
        engine: Engine.Figures, version: String, protocolVersion: Int = WireProtocol.version, pid: Int, socket: String,
        config: JSON, openConnections: Int, pausedConnections: Int
    ) {
        self.engine = engine
        self.version = version
        self.protocolVersion = protocolVersion
        self.pid = pid
        self.socket = socket
        self.config = config
        self.openConnections = openConnections
        self.pausedConnections = pausedConnections
    }

    public var json: JSON {
        let e = engine
        return .object([
            ("accepting", .bool(e.accepting)),
            ("uptime_ms", .number(Double(e.uptimeMillis))),
            ("running", .int(e.running)),
            ("queued", .int(e.queued)),
            ("watchers", .int(e.watchers)),
            ("jobs", .object(JobStatus.allCases.map { ($0.rawValue, .int(e.jobs[$0] ?? 0)) })),
            (
                "store",
                .object([
                    ("path", .string(e.storePath)), ("commits", .int(e.store.commits)), ("events", .int(e.store.events)),
                    ("failures", .int(e.store.failures)), ("last_error", e.store.lastError.map(JSON.string) ?? .null),
                ])
            ),
            ("storage", Self.storage(e.storageFault, stoppedJobs: e.stoppedJobs)),
            ("version", .string(version)),
            ("protocol_version", .int(protocolVersion)),
            ("pid", .int(pid)),
            ("socket", .string(socket)),
            ("config", config),
            ("connections", .object([("open", .int(openConnections)), ("paused", .int(pausedConnections))])),
        ])
    }

    /// `storage`: `ok`, or `degraded` by `fault` since when it began.
    private static func storage(_ fault: StorageFault?, stoppedJobs: Int) -> JSON {
        guard let fault else {
            return .object([("state", "ok"), ("error", .null), ("since", .null), ("stopped_jobs", .int(stoppedJobs))])
        }
        return .object([
            ("state", "degraded"), ("error", .string(fault.description)), ("since", .number(Double(fault.since))),
            ("stopped_jobs", .int(stoppedJobs)),
        ])
    }
}
