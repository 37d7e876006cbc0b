import Agents
import ArgumentParser
import Logging
import Orchestrator
import Store

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run the daemon: serve the socket, run jobs, resume unfinished ones. SIGTERM/SIGINT stop it gracefully; SIGHUP reloads --config."
    )

    @OptionGroup var socket: SocketOption
    @OptionGroup var database: DatabaseOption

    @Option(
        help:
            "A configuration file (YAML; see docs/config.md): limits, queue limits, endpoint limits and more. SIGHUP reads it again and applies the changes without stopping any job. The options below win over it."
    )
    var config: String?

    @Option(help: "Jobs that run at once; more wait in the queue (default 256).")
    var maxRunning: Int?

    @Option(
        help: "Seconds that running calls get to finish after SIGTERM before they are abandoned (and rerun at the next start) (default 10)."
    )
    var drainSeconds: Double?

    @Option(help: "Largest request line accepted, in bytes (default 1048576).")
    var maxFrameBytes: Int?

    @Option(help: "Connections served at once; one more is refused (default 1024).")
    var maxConnections: Int?

    @Option(help: "Jobs waiting to run at once, from all clients; a submission beyond is refused (default 100000).")
    var maxQueuedJobs: Int?

    @Option(help: "Jobs waiting to run at once from one client (peer user id); a submission beyond is refused (default 10000).")
    var maxQueuedJobsPerClient: Int?

    @Option(help: "Requests one connection may have in flight; beyond, the daemon stops reading it until replies go out (default 1024).")
    var maxRequestsInFlight: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(
        help:
            "A group whose members may also use the daemon (the socket becomes mode 0660, owned by the group; its directory must let them in). Without it, only this user (and root) may connect."
    )
    var allowGroup: String?

    @Option(
        help:
            "A group whose members may decide gates: approve or reject the tool calls a plan's gates hold for a person (agentd approve, agentd reject). The daemon's user and root always may."
    )
    var approversGroup: String?

    @Option(
        help:
            "An environment variable whose value is a secret: it is replaced by [REDACTED:NAME] in every event, reply and log line, kept from every command the daemon starts and wiped from the daemon's own environment (repeatable; also $AGENTD_SECRET_ENV, comma-separated, and the configuration file's secret_env; OPENAI_API_KEY and every openai model's api_key_env always are)."
    )
    var secretEnv: [String] = []

    mutating func run() throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw failingMessage("unknown --log-level '\(logLevel)'")
        }
        var configuration: Daemon.Configuration
        do {
            configuration = try Daemon.Configuration.resolve(file: config.map(Paths.absolute), commandLine: commandLine)
        } catch {
            throw failingMessage(error.description)
        }
        // The environment as `resolve` read it: the daemon wipes the secrets' values from its own
        // environment once it serves, and takes every variable from this copy (`SecretVariables`).
        let redactor = Redactor(environment: configuration.environment, names: configuration.secretEnv)
        LoggingSystem.bootstrap { RedactingLogHandler(wrapped: StreamLogHandler.standardError(label: $0), redactor: redactor) }
        configuration.version = Agentd.version
        configuration.redactor = redactor
        let daemon = Daemon(configuration: configuration, logger: makeLogger("agentd", level: level))
        try failing { try daemon.run() }
    }

    /// The options given on the command line; those left out are nil, so the file's values apply.
    private var commandLine: ServeConfig {
        var c = ServeConfig()
        c.socket = socket.socket
        c.database = database.db
        c.maxRunning = maxRunning.map { max(1, $0) }
        c.drainSeconds = drainSeconds.map { max(0, $0) }
        c.maxFrameBytes = maxFrameBytes.map { max(1024, $0) }
        c.maxConnections = maxConnections.map { max(1, $0) }
        c.maxQueuedJobs = maxQueuedJobs.map { max(1, $0) }
        c.maxQueuedJobsPerClient = maxQueuedJobsPerClient.map { max(1, $0) }
        c.maxRequestsInFlightPerConnection = maxRequestsInFlight.map { max(1, $0) }
        c.allowGroup = allowGroup
        c.approversGroup = approversGroup
        c.secretEnv = secretEnv.isEmpty ? nil : secretEnv
        return c
    }
}

func failingMessage(_ message: String) -> Error {
    printError(message)
    return ExitCode(2)
}
