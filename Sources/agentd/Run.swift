import ArgumentParser
import Orchestrator
import Store

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one job in this process (no daemon) and show its progress; exit 0 only if it succeeded.")

    @OptionGroup var job: JobArguments

    @Flag(help: "Print each event as JSON, then the job.")
    var json = false

    @OptionGroup var database: DatabaseOption

    mutating func run() throws {
        let submission = Engine.Submission(
            SubmitParams(planPath: Paths.absolute(job.plan), goal: job.goal, inputs: job.inputObject, cwd: Paths.currentDirectory()))
        let json = self.json
        let printer = LockedPrinter()
        let finished = try failing {
            try LocalRun.run(submission: submission, databasePath: database.path, logger: makeLogger("agentd.run", level: .warning)) {
                event in
                if json { emit(event.encoded) } else { printer.print(event) }
            }
        }
        try report(WireJob.json(finished), json: json)
    }
}

/// The progress printer, used from the loop thread's callbacks.
final class LockedPrinter: @unchecked Sendable {
    private var printer = ProgressPrinter()

    func print(_ event: JSON) {
        for line in printer.lines(for: event) { emit(line) }
    }
}
