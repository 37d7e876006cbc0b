import ArgumentParser
import Orchestrator
import Store

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract:
            "Run a recorded job again from its recorded replies (no model, command or tool is called) and check that it makes the same calls; exit 1 at the first difference."
    )

    @Argument(help: "The job id.")
    var job: String

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var database: DatabaseOption

    mutating func run() throws {
        let path = database.path
        let id = job
        let report = try failing { try Replay.run(jobID: id, databasePath: path, logger: makeLogger("agentd.replay", level: .warning)) }
        if json {
            emit(report.json.encoded)
        } else if let divergence = report.divergence {
            emit("replay of \(report.jobID) diverged: \(divergence)")
        } else {
            emit(
                "replay of \(report.jobID): the same \(report.recordedCalls) calls in the same order, same requests; ended \(report.replayedStatus.rawValue) as recorded"
            )
        }
        if !report.matches { throw ExitCode(1) }
    }
}
