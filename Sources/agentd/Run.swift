import ArgumentParser
import Orchestrator
import Store

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one job in this process (no daemon) and show its progress; exit 0 only if it succeeded.")

    @Argument(help: "The plan file (YAML).")
    var plan: String

    @Option(help: "The job's goal (default: the plan's description).")
    var goal: String?

    @Option(name: .customLong("input"), help: "An input as NAME=VALUE; repeatable.")
    var inputs: [String] = []

    @Flag(help: "Print each event as JSON, then the job.")
    var json = false

    @OptionGroup var database: DatabaseOption

    func validate() throws {
        for input in inputs where !input.contains("=") {
            throw ValidationError("--input takes NAME=VALUE, got '\(input)'")
        }
    }

    mutating func run() throws {
        var members: [(String, JSON)] = []
        for input in inputs {
            let parts = input.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            members.append((String(parts[0]), .string(String(parts[1]))))
        }
        let submission = Engine.Submission(
            planPath: Paths.absolute(plan), goal: goal ?? "", inputs: .object(members), cwd: Paths.currentDirectory())
        let json = self.json
        let printer = LockedPrinter()
        let job = try failing {
            try LocalRun.run(submission: submission, databasePath: database.path, logger: makeLogger("agentd.run", level: .warning)) {
                event in
                if json { emit(event.encoded) } else { printer.print(event) }
            }
        }
        try report(WireJob.json(job), json: json)
    }
}

/// The progress printer, used from the loop thread's callbacks.
final class LockedPrinter: @unchecked Sendable {
    private var printer = ProgressPrinter()

    func print(_ event: JSON) {
        for line in printer.lines(for: event) { emit(line) }
    }
}
