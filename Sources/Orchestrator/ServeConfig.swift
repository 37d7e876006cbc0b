import Agents

/// The daemon's configuration file (`agentd serve --config FILE`): what it sets, each key optional.
///
/// A key that is absent leaves the default (or the command line's value) in force; the command line
/// wins over the file (see `Daemon.Configuration.resolve`, which this is one layer of). The file is
/// read and validated like a plan: strictly, by `YAMLReader`, so an unknown key, a wrong type or an
/// out-of-range value is a `PlanError` naming the file, line, column and field. The format is documented in
/// `docs/config.md`. Pure value type; `load` reads a file, so call it off the event loop.
public struct ServeConfig: Sendable, Equatable {
    /// The socket path; relative paths are resolved against the file's directory.
    public var socket: String?
    /// The database path; relative paths are resolved against the file's directory.
    public var database: String?
    public var maxRunning: Int?
    public var drainSeconds: Double?
    public var maxFrameBytes: Int?
    public var maxConnections: Int?
    /// The name of a group whose members may also connect.
    public var allowGroup: String?
    /// The name of a group whose members may decide gates (approve or reject proposed tool calls).
    public var approversGroup: String?
    /// `submitters.plan_dirs`: directories whose plans the group's members may submit by path
    /// (resolved against the file's directory).
    public var submitterPlanDirectories: [String]?
    /// `submitters.unsandboxed`: whether their plans may run commands outside the sandbox.
    public var submittersUnsandboxed: Bool?
    /// Variables whose values are redacted everywhere.
    public var secretEnv: [String]?
    public var maxQueuedJobs: Int?
    public var maxQueuedJobsPerClient: Int?
    public var maxRequestsInFlightPerConnection: Int?
    /// Limits per `openai` endpoint, by base URL (normalized by `OpenAISpec.endpointKey`); they take
    /// precedence over the plans' values.
    public var endpoints: [String: EndpointLimits] = [:]

    public init() {}

    /// Reads and validates the file at `path`.
    ///
    /// - Throws: `PlanError` naming `path` and the operating system's reason when the file cannot be
    ///   read, or the first problem in its content.
    public static func load(path: String) throws(PlanError) -> ServeConfig {
        let text: String
        switch YAMLDocument.readFile(path) {
        case let .success(contents): text = contents
        case let .failure(reason): throw PlanError(file: path, message: "cannot read the configuration file: \(reason)")
        }
        return try parse(yaml: text, file: path, baseDirectory: YAMLDocument.directory(of: path))
    }

    /// Validates the configuration in `yaml`; `file` is the name errors report, and relative paths
    /// are resolved against `baseDirectory`.
    public static func parse(yaml: String, file: String, baseDirectory: String?) throws(PlanError) -> ServeConfig {
        let reader = ServeConfigReader(file: file, baseDirectory: baseDirectory)
        // An empty file (or one of comments only) configures nothing.
        guard let root = try reader.optionalDocument(yaml) else { return ServeConfig() }
        return try reader.serveConfig(root)
    }
}

/// Limits on one `openai` endpoint (base URL), across every job that uses it. A key left out keeps
/// the plans' value.
public struct EndpointLimits: Sendable, Equatable {
    /// Requests in flight at once.
    public var maxConcurrent: Int?
    /// Requests per `rateWindowSeconds`.
    public var requestsPerMinute: Int?
    /// Tokens (estimated, then corrected by the reply's usage) per `rateWindowSeconds`.
    public var tokensPerMinute: Int?
    /// The window the two budgets count over.
    public var rateWindowSeconds: Double?

    public init(maxConcurrent: Int? = nil, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, rateWindowSeconds: Double? = nil) {
        self.maxConcurrent = maxConcurrent
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.rateWindowSeconds = rateWindowSeconds
    }
}

extension OpenAISpec {
    /// How an endpoint is named wherever limits are kept per endpoint: its base URL without a trailing
    /// slash (the form requests are built from).
    public static func endpointKey(_ baseURL: String) -> String {
        baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }
}

/// One pass over a configuration file: its schema, on `YAMLReader`'s typed reads.
struct ServeConfigReader: YAMLReader {
    let file: String
    /// What relative paths in the file resolve against.
    let baseDirectory: String?

    static let serveConfigKeys = [
        "socket", "database", "max_running", "drain_seconds", "max_frame_bytes", "max_connections", "allow_group", "approvers_group",
        "secret_env",
        "limits", "endpoints", "submitters",
    ]
    static let submitterKeys = ["plan_dirs", "unsandboxed"]
    static let limitKeys = ["max_queued_jobs", "max_queued_jobs_per_client", "max_requests_in_flight_per_connection"]
    static let endpointKeys = ["max_concurrent", "requests_per_minute", "tokens_per_minute", "rate_window"]

    func serveConfig(_ root: YAMLField) throws(PlanError) -> ServeConfig {
        let doc = try mapping(root, allowed: Self.serveConfigKeys, what: "the daemon's configuration")
        var config = ServeConfig()
        if let f = doc["socket"] { config.socket = YAMLDocument.resolve(try nonEmptyString(f), against: baseDirectory) }
        if let f = doc["database"] { config.database = YAMLDocument.resolve(try nonEmptyString(f), against: baseDirectory) }
        if let f = doc["max_running"] { config.maxRunning = try int(f, in: 1...100_000) }
        if let f = doc["drain_seconds"] { config.drainSeconds = try duration(f, allowZero: true) }
        if let f = doc["max_frame_bytes"] { config.maxFrameBytes = try int(f, in: 1024...(1 << 30)) }
        if let f = doc["max_connections"] { config.maxConnections = try int(f, in: 1...1_000_000) }
        if let f = doc["allow_group"] { config.allowGroup = try nonEmptyString(f) }
        if let f = doc["approvers_group"] { config.approversGroup = try nonEmptyString(f) }
        if let f = doc["secret_env"] {
            var names: [String] = []
            for (index, node) in try list(f, what: "a list of environment variable names").enumerated() {
                names.append(try variableName(f.item(index, node)))
            }
            config.secretEnv = names
        }
        if let f = doc["limits"] {
            let limits = try mapping(f, allowed: Self.limitKeys, what: "the limits")
            if let f = limits["max_queued_jobs"] { config.maxQueuedJobs = try int(f, in: 1...100_000_000) }
            if let f = limits["max_queued_jobs_per_client"] { config.maxQueuedJobsPerClient = try int(f, in: 1...100_000_000) }
            if let f = limits["max_requests_in_flight_per_connection"] {
                config.maxRequestsInFlightPerConnection = try int(f, in: 1...1_000_000)
            }
        }
        if let f = doc["endpoints"] { config.endpoints = try endpointLimits(f) }
        if let f = doc["submitters"] {
            let submitters = try mapping(f, allowed: Self.submitterKeys, what: "what submitters may do")
            if let f = submitters["plan_dirs"] {
                var directories: [String] = []
                for (index, node) in try list(f, what: "a list of directories").enumerated() {
                    directories.append(YAMLDocument.resolve(try nonEmptyString(f.item(index, node)), against: baseDirectory))
                }
                config.submitterPlanDirectories = directories
            }
            if let f = submitters["unsandboxed"] { config.submittersUnsandboxed = try bool(f) }
        }
        return config
    }

    /// `endpoints`: base URL -> limits.
    func endpointLimits(_ field: YAMLField) throws(PlanError) -> [String: EndpointLimits] {
        let entries = try mapping(field, allowed: nil, what: "the endpoints (base URL -> limits)")
        var result: [String: EndpointLimits] = [:]
        for entry in entries.entries {
            let endpoint = field.child(entry.name, entry.value, keyMark: entry.key.mark)
            guard entry.name.hasPrefix("http://") || entry.name.hasPrefix("https://") else {
                throw fail(entry.key.mark, endpoint.path, "expected a base URL (http:// or https://), found '\(entry.name)'")
            }
            let key = OpenAISpec.endpointKey(entry.name)
            guard result[key] == nil else {
                throw fail(entry.key.mark, endpoint.path, "the endpoint \(key) is listed twice")
            }
            let values = try mapping(endpoint, allowed: Self.endpointKeys, what: "an endpoint's limits")
            var limits = EndpointLimits()
            if let f = values["max_concurrent"] { limits.maxConcurrent = try int(f, in: 1...4096) }
            if let f = values["requests_per_minute"] { limits.requestsPerMinute = try int(f, in: 1...10_000_000) }
            if let f = values["tokens_per_minute"] { limits.tokensPerMinute = try int(f, in: 1...1_000_000_000) }
            if let f = values["rate_window"] { limits.rateWindowSeconds = try duration(f, allowZero: false) }
            result[key] = limits
        }
        return result
    }
}
