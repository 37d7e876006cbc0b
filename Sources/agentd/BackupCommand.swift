import ArgumentParser
import Foundation
import Orchestrator
import Store

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Copy the database to FILE with SQLite's online backup API, safely while the daemon runs; the copy is checked (quick_check) before it takes FILE's name."
    )

    @Argument(help: "Where to write the copy (it must not exist).")
    var file: String

    @OptionGroup var database: DatabaseOption

    mutating func run() throws {
        let source = database.path
        let target = Paths.absolute(file)
        guard FileManager.default.fileExists(atPath: source) else { throw CLIFailure("no database at \(source) (use --db or AGENTD_DB)") }
        guard !FileManager.default.fileExists(atPath: target) else { throw CLIFailure("\(target) exists: choose a new file") }
        do {
            let db = try Database(path: source, readOnly: true)
            try db.backup(to: target)
        } catch {
            throw CLIFailure("backup failed: \(error.message)")
        }
        let rows = (try? Database(path: target, readOnly: true).query("SELECT count(*) FROM jobs")) ?? []
        let jobs = rows.first?.first?.int ?? 0
        emit("backed up \(source) to \(target) (\(jobs) jobs; integrity check ok)")
    }
}
