import ArgumentParser
import Logging
import Orchestrator
import Store

#if canImport(Glibc)
    import Glibc
#endif

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: serve the socket, run jobs, resume unfinished ones. SIGTERM/SIGINT stop it gracefully.")

    @OptionGroup var socket: SocketOption
    @OptionGroup var database: DatabaseOption

    @Option(help: "Jobs that run at once; more wait in the queue.")
    var maxRunning = 256

    @Option(help: "Seconds that running calls get to finish after SIGTERM before they are abandoned (and rerun at the next start).")
    var drainSeconds = 10.0

    @Option(help: "Largest request line accepted, in bytes.")
    var maxFrameBytes = 1 << 20

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(
        help:
            "A group whose members may also use the daemon (the socket becomes mode 0660, owned by the group; its directory must let them in). Without it, only this user (and root) may connect."
    )
    var allowGroup: String?

    @Option(
        help:
            "An environment variable whose value is a secret: it is replaced by [REDACTED:NAME] in every event, reply and log line (repeatable; also $AGENTD_SECRET_ENV, comma-separated; OPENAI_API_KEY and every openai model's api_key_env always are)."
    )
    var secretEnv: [String] = []

    mutating func run() throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw failingMessage("unknown --log-level '\(logLevel)'")
        }
        let redactor = Redactor(names: secretEnv)
        LoggingSystem.bootstrap { RedactingLogHandler(wrapped: StreamLogHandler.standardError(label: $0), redactor: redactor) }
        var configuration = Daemon.Configuration(socketPath: Paths.absolute(socket.path), databasePath: database.path)
        configuration.maxRunning = max(1, maxRunning)
        configuration.drainSeconds = max(0, drainSeconds)
        configuration.limits.frameLimit = max(1024, maxFrameBytes)
        if let allowGroup {
            guard let group = getgrnam(allowGroup) else { throw failingMessage("no such group '\(allowGroup)' (--allow-group)") }
            configuration.limits.allowedGroup = group.pointee.gr_gid
        }
        configuration.version = Agentd.version
        configuration.redactor = redactor
        let daemon = Daemon(configuration: configuration, logger: makeLogger("agentd", level: level))
        try failing { try daemon.run() }
    }
}

func failingMessage(_ message: String) -> Error {
    printError(message)
    return ExitCode(2)
}
