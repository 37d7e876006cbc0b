import ArgumentParser
import Logging
import Orchestrator

#if canImport(Glibc)
    import Glibc
#endif

/// The `agentd` command: the daemon and its client in one binary.
@main
struct Agentd: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "agentd",
        abstract: "Run long-lived LLM agent workflows reliably, and audit what the agents did.",
        version: version,
        subcommands: [
            Serve.self, Submit.self, List.self, Show.self, Watch.self, Cancel.self, Retry.self, Transcript.self, Run.self,
            Status.self, Stats.self, Audit.self, ReplayCommand.self, Backup.self, Prune.self, Bench.self, Eval.self, Pending.self,
            Approve.self, Reject.self,
        ])

    /// The entry point: a mistyped command is named (with the nearest one) before the parser, which
    /// would report whatever option followed it instead.
    static func main() {
        if let message = MistypedCommand.message(for: Array(CommandLine.arguments.dropFirst()), root: Agentd.self) {
            printError(message)
            Agentd.exit(withError: ExitCode.validationFailure)
        }
        main(nil)
    }
}

/// `--socket` / `AGENTD_SOCKET`, shared by every client command.
struct SocketOption: ParsableArguments {
    @Option(name: .long, help: "The daemon's socket (default: $AGENTD_SOCKET, else a per-user runtime path).")
    var socket: String?

    var path: String { socket ?? Paths.defaultSocket() }

    func connect() throws -> RPCClient {
        try failing { try RPCClient(socketPath: path) }
    }
}

/// `--db` / `AGENTD_DB`.
struct DatabaseOption: ParsableArguments {
    @Option(name: .long, help: "The database file (default: $AGENTD_DB, else a per-user state path).")
    var db: String?

    var path: String { Paths.absolute(db ?? Paths.defaultDatabase()) }
}

/// A one-line failure for the user, with the exit code to leave with.
struct CLIFailure: Error, CustomStringConvertible {
    let message: String
    let code: Int32

    init(_ message: String, code: Int32 = 1) {
        self.message = message
        self.code = code
    }

    var description: String { message }
}

/// Runs `body`, turning any error into one line on stderr and a non-zero exit — never a trace.
func failing<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CLIFailure {
        printError(error.message)
        throw ExitCode(error.code)
    } catch let error as ClientError {
        printError(error.message)
        throw ExitCode(error.kind == .notRunning ? 3 : 1)
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

func printError(_ message: String) {
    writeAll(2, "agentd: \(message)\n")
}

/// Writes text to stdout as it is (no newline added).
func emitRaw(_ text: String) {
    writeAll(1, text)
}

/// Writes a line to stdout unbuffered, so live output reaches a pipe at once.
func emit(_ line: String) {
    writeAll(1, line + "\n")
}

private func writeAll(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        offset += n
    }
}

func makeLogger(_ label: String, level: Logger.Level = .info) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = level
    return logger
}
