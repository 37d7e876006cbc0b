import ArgumentParser
import Foundation
import Orchestrator
import Store

#if canImport(Glibc)
    import Glibc
#endif

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Copy the database to FILE with SQLite's online backup API, safely while the daemon runs; the copy is checked (quick_check) before it takes FILE's name.",
        discussion: """
            Asks the daemon (daemon.backup) when one answers on --socket, else copies --db itself. Without \
            FILE the copy goes into the `backups` directory beside the database, named by the time; only \
            the daemon's owner may name FILE when the daemon makes the copy.
            """)

    @Argument(help: "Where to write the copy (it must not exist; default: a new file in the backups directory beside the database).")
    var file: String?

    @OptionGroup var socket: SocketOption
    @OptionGroup var database: DatabaseOption

    mutating func run() throws {
        let target = file.map(Paths.absolute)
        let reply = try DaemonOrDatabase(socket: socket, database: database).answer(.backup(BackupParams(path: target))) { source in
            let db = try DaemonOrDatabase.openReadOnly(source)
            let path: String
            if let target {
                path = target
            } else {
                let directory = RecordQueries.backupDirectory(database: source)
                if mkdir(directory, 0o700) != 0, errno != EEXIST {
                    throw CLIFailure("cannot make the backup directory \(directory): \(String(cString: strerror(errno)))")
                }
                path = RecordQueries.backupFile(in: directory, now: SystemClock().nowMillis())
            }
            return try RecordQueries.backup(db, to: path).json
        }
        let outcome = try failing { () throws -> BackupOutcome in try BackupOutcome(json: reply) }
        emit("backed up \(outcome.database) to \(outcome.path) (\(outcome.jobs) jobs; integrity check ok)")
    }
}
