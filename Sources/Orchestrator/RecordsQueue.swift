import Dispatch
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// Where the daemon answers `RecordQueries` (`audit.verify`, `audit.search`, `stats.get`,
/// `daemon.backup`): one serial queue, `agentd.records`, with its own read-write connection to the
/// database (a search first brings the index up to date), opened at the first question. One question
/// at a time: a whole-database verify or a backup never runs twice at once, and never on the loop.
final class RecordsQueue: @unchecked Sendable {
    private let queue = DispatchQueue(label: "agentd.records", qos: .utility)
    let path: String
    /// Only touched on `queue`.
    private var db: Database?

    init(path: String) {
        self.path = path
    }

    /// Runs `work` on the queue with the connection; resumes the caller with its answer.
    func run<T: Sendable>(_ work: @escaping @Sendable (Database) throws(EngineError) -> T) async throws(EngineError) -> T {
        let result: Result<T, EngineError> = await withUnsafeContinuation { continuation in
            queue.async { [self] in
                continuation.resume(
                    returning: Result { () throws(EngineError) -> T in
                        if db == nil {
                            do {
                                db = try Database(path: path)
                            } catch {
                                throw EngineError.storage("cannot open \(path): \(error)")
                            }
                        }
                        return try work(db!)
                    })
            }
        }
        return try result.get()
    }
}

extension Engine {
    /// Runs `work` on the records queue (see `RecordsQueue`). Runs on the loop; `work` does not.
    func onRecords<T: Sendable>(_ work: @escaping @Sendable (Database) throws(EngineError) -> T) async throws(EngineError) -> T {
        try await records.run(work)
    }

    /// `daemon.backup` for `client`: to `path` when the owner names one, else to a new file in the
    /// daemon's backup directory (`backups` beside the database, made 0700). A non-owner never
    /// chooses where the daemon writes.
    public func backup(to path: String?, client: UInt32?) async throws(EngineError) -> BackupOutcome {
        let target: String
        if let path {
            guard configuration.trust.isOwner(client) else {
                throw .permissionDenied(
                    TrustPolicy.denied(
                        "only the daemon's owner may choose where a backup is written; leave out 'path' to write it into the daemon's backup directory",
                        rule: "daemon.backup.path"))
            }
            target = path
        } else {
            let directory = RecordQueries.backupDirectory(database: records.path)
            target = RecordQueries.backupFile(in: directory, now: clock.nowMillis())
        }
        return try await onRecords { db throws(EngineError) in
            if path == nil {
                let directory = RecordQueries.backupDirectory(database: db.path)
                if mkdir(directory, 0o700) != 0, errno != EEXIST {
                    throw .storage("cannot make the backup directory \(directory): \(String(cString: strerror(errno)))")
                }
            }
            return try RecordQueries.backup(db, to: target)
        }
    }
}
