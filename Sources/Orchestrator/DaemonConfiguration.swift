import Agents
import Foundation
import Runtime
import Store

#if canImport(Glibc)
    import Glibc
#endif

extension Daemon {
    /// What `agentd serve` runs with, resolved (`resolve`) from, in rising precedence: the defaults,
    /// the configuration file (`serve --config`), the environment (`AGENTD_SOCKET`, `AGENTD_DB`; the
    /// socket and database only) and the command line. SIGHUP resolves it again from the file and the
    /// same command line and applies what changed (see `Daemon`).
    public struct Configuration: Sendable {
        public var socketPath: String
        public var databasePath: String
        public var maxRunning = 256
        public var drainSeconds = 10.0
        /// The socket's limits: frame size, connections, pending output, requests in flight, group.
        public var limits = UnixListener.Limits()
        public var maxQueuedJobs = 100_000
        public var maxQueuedJobsPerClient = 10_000
        /// Limits per `openai` endpoint (by base URL) that take precedence over the plans'.
        public var endpoints: [String: EndpointLimits] = [:]
        /// The group named by `allow_group` / `--allow-group`; its gid is `limits.allowedGroup`.
        public var allowGroup: String?
        /// What members of `allow_group` other than the owner may do (`submitters` in the file).
        public var trust = TrustPolicy()
        /// Variables whose values are redacted, besides `OPENAI_API_KEY`, `AGENTD_SECRET_ENV`'s and
        /// the models' `api_key_env`: the file's `secret_env` and every `--secret-env`.
        public var secretEnv: [String] = []
        public var version = "0.1.0"
        /// Secrets kept out of events, replies and logs. A reload keeps the daemon's and adds to it.
        public var redactor = Redactor()
        /// The process's environment, read once when the configuration is first resolved; the
        /// daemon wipes its secrets from the process after that and uses this copy. A reload keeps
        /// the first one.
        public var environment = ProcessInfo.processInfo.environment
        /// The configuration file, re-read on SIGHUP; nil when there is none.
        public var file: String?
        /// The command line's settings, which win over the file's (kept for reloads).
        public var commandLine = ServeConfig()

        public init(socketPath: String, databasePath: String) {
            self.socketPath = socketPath
            self.databasePath = databasePath
        }

        /// Reads `file` (when given) and combines it with the defaults, the environment and
        /// `commandLine`. Reads a file: call it off the event loop.
        ///
        /// - Throws: `DaemonError` with the file's diagnostic (`FILE:LINE:COL: FIELD: MESSAGE`), or
        ///   naming a group that does not exist.
        public static func resolve(file: String?, commandLine: ServeConfig) throws(DaemonError) -> Configuration {
            var fromFile = ServeConfig()
            if let file {
                do {
                    fromFile = try ServeConfig.load(path: file)
                } catch {
                    throw DaemonError(error.description)
                }
            }
            let socket =
                commandLine.socket ?? Paths.environment("AGENTD_SOCKET") ?? fromFile.socket ?? Paths.defaultSocket()
            let database =
                commandLine.database ?? Paths.environment("AGENTD_DB") ?? fromFile.database ?? Paths.defaultDatabase()
            var c = Configuration(socketPath: Paths.absolute(socket), databasePath: Paths.absolute(database))
            c.file = file
            c.commandLine = commandLine
            c.maxRunning = commandLine.maxRunning ?? fromFile.maxRunning ?? c.maxRunning
            c.drainSeconds = commandLine.drainSeconds ?? fromFile.drainSeconds ?? c.drainSeconds
            c.limits.frameLimit = commandLine.maxFrameBytes ?? fromFile.maxFrameBytes ?? c.limits.frameLimit
            c.limits.maxConnections = commandLine.maxConnections ?? fromFile.maxConnections ?? c.limits.maxConnections
            c.limits.maxRequestsInFlight =
                commandLine.maxRequestsInFlightPerConnection ?? fromFile.maxRequestsInFlightPerConnection ?? c.limits.maxRequestsInFlight
            c.maxQueuedJobs = commandLine.maxQueuedJobs ?? fromFile.maxQueuedJobs ?? c.maxQueuedJobs
            c.maxQueuedJobsPerClient = commandLine.maxQueuedJobsPerClient ?? fromFile.maxQueuedJobsPerClient ?? c.maxQueuedJobsPerClient
            c.endpoints = fromFile.endpoints.merging(commandLine.endpoints) { _, flag in flag }
            // Secrets add up: whatever any source names is redacted.
            for name in (fromFile.secretEnv ?? []) + (commandLine.secretEnv ?? []) where !c.secretEnv.contains(name) {
                c.secretEnv.append(name)
            }
            c.trust.planDirectories = commandLine.submitterPlanDirectories ?? fromFile.submitterPlanDirectories ?? []
            c.trust.submittersMayRunUnsandboxed = commandLine.submittersUnsandboxed ?? fromFile.submittersUnsandboxed ?? false
            if let name = commandLine.allowGroup ?? fromFile.allowGroup {
                guard let group = getgrnam(name) else {
                    let source = commandLine.allowGroup != nil ? "--allow-group" : "allow_group in \(file ?? "the configuration")"
                    throw DaemonError("no such group '\(name)' (\(source))")
                }
                c.allowGroup = name
                c.limits.allowedGroup = group.pointee.gr_gid
            }
            if let name = commandLine.approversGroup ?? fromFile.approversGroup {
                guard let group = getgrnam(name) else {
                    let source =
                        commandLine.approversGroup != nil ? "--approvers-group" : "approvers_group in \(file ?? "the configuration")"
                    throw DaemonError("no such group '\(name)' (\(source))")
                }
                c.trust.approvers = TrustPolicy.Approvers(name: name, gid: group.pointee.gr_gid)
            }
            return c
        }

        /// The settings a reload compares, in a fixed order, each printed as the log shows it.
        var settings: [(name: String, value: String)] {
            [
                ("socket", socketPath), ("database", databasePath), ("allow_group", allowGroup ?? "none"),
                ("approvers_group", trust.approvers?.name ?? "none"),
                ("max_running", "\(maxRunning)"), ("drain_seconds", "\(drainSeconds)"), ("max_frame_bytes", "\(limits.frameLimit)"),
                ("max_connections", "\(limits.maxConnections)"), ("max_queued_jobs", "\(maxQueuedJobs)"),
                ("max_queued_jobs_per_client", "\(maxQueuedJobsPerClient)"),
                ("max_requests_in_flight_per_connection", "\(limits.maxRequestsInFlight)"),
                ("secret_env", secretEnv.joined(separator: ",")),
                ("endpoints", Self.endpointsJSON(endpoints).encoded),
                (
                    "submitters",
                    "plan_dirs=\(trust.planDirectories.joined(separator: ",")) unsandboxed=\(trust.submittersMayRunUnsandboxed)"
                ),
            ]
        }

        /// Settings that only a restart changes: the socket (and its group and mode) and the database.
        static let restartOnly: Set<String> = ["socket", "database", "allow_group", "submitters"]

        /// The effective values, for `daemon.status`: `generation` counts the loads (1 at start, one
        /// more per successful reload), `loaded_at` is the last one's time (Unix ms).
        func json(generation: Int, loadedAt: Int64) -> JSON {
            .object([
                ("file", file.map(JSON.string) ?? .null),
                ("generation", .int(generation)),
                ("loaded_at", .number(Double(loadedAt))),
                ("max_running", .int(maxRunning)),
                ("drain_seconds", .number(drainSeconds)),
                ("max_frame_bytes", .int(limits.frameLimit)),
                ("max_connections", .int(limits.maxConnections)),
                ("allow_group", allowGroup.map(JSON.string) ?? .null),
                ("secret_env", .array(secretEnv.map(JSON.string))),
                (
                    "limits",
                    .object([
                        ("max_queued_jobs", .int(maxQueuedJobs)), ("max_queued_jobs_per_client", .int(maxQueuedJobsPerClient)),
                        ("max_requests_in_flight_per_connection", .int(limits.maxRequestsInFlight)),
                    ])
                ),
                ("endpoints", Self.endpointsJSON(endpoints)),
            ])
        }

        static func endpointsJSON(_ endpoints: [String: EndpointLimits]) -> JSON {
            .object(
                endpoints.keys.sorted().map { key in
                    let limits = endpoints[key]!
                    var members: [(String, JSON)] = []
                    if let n = limits.maxConcurrent { members.append(("max_concurrent", .int(n))) }
                    if let n = limits.requestsPerMinute { members.append(("requests_per_minute", .int(n))) }
                    if let n = limits.tokensPerMinute { members.append(("tokens_per_minute", .int(n))) }
                    if let s = limits.rateWindowSeconds { members.append(("rate_window", .number(s))) }
                    return (key, .object(members))
                })
        }
    }
}
