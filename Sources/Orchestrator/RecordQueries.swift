import Dispatch
import Foundation
import Store

/// The record's questions that both the daemon (`audit.verify`, `audit.search`, `stats.get`,
/// `daemon.backup`) and the CLI without a daemon answer, in one implementation over an open
/// `Database`, so both give the same answer in the same wire form.
///
/// Blocking (SQLite): the daemon runs them on the `agentd.records` queue (`Engine.onRecords`), the
/// CLI on its own thread. Each throws `EngineError`, which the socket maps once (`RPCError+Engine`).
public enum RecordQueries {
    /// Verifies one job's hash chain, or every job's.
    public static func verify(_ db: Database, _ params: VerifyParams) throws(EngineError) -> ChainVerification {
        do {
            guard try db.hasHashChain() else {
                throw EngineError.storage("the database has no hash chain yet (schema before version 2); start agentd once on it")
            }
            let summary = try db.pruneSummary()
            if let job = params.job {
                guard let report = try db.verifyChain(jobID: job) else {
                    guard let pruned = try db.prunedJob(job) else { throw EngineError.jobNotFound(job) }
                    return ChainVerification(reports: [], summary: summary, pruned: pruned)
                }
                return ChainVerification(reports: [ChainVerification.Report(report)], summary: summary)
            }
            var reports: [ChainVerification.Report] = []
            for id in try db.allJobIDs() {
                if let report = try db.verifyChain(jobID: id) { reports.append(ChainVerification.Report(report)) }
            }
            return ChainVerification(reports: reports, summary: summary)
        } catch let error as EngineError {
            throw error
        } catch {
            throw .storage("\(error)")
        }
    }

    /// Full-text search; a query FTS5 cannot parse is invalid input.
    public static func search(_ db: Database, _ params: SearchParams) throws(EngineError) -> JSON {
        do {
            let hits = try SearchIndex.search(db, params.searchQuery)
            return ["hits": .array(hits.map(\.json))]
        } catch {
            switch error {
            case let .badQuery(message): throw .invalidInput("'query': \(message)")
            case let .store(failure): throw .storage(failure.description)
            }
        }
    }

    /// `agentd stats`'s figures.
    public static func stats(_ db: Database, _ params: StatsParams) throws(EngineError) -> JSON {
        do {
            return try db.criticStats(params.filter).json
        } catch {
            throw .storage(error.description)
        }
    }

    /// Copies the database to `path` (which must not exist) with SQLite's online backup API, checked
    /// before it takes the name.
    public static func backup(_ db: Database, to path: String) throws(EngineError) -> BackupOutcome {
        guard !FileManager.default.fileExists(atPath: path) else { throw .invalidInput("'path': \(path) exists: choose a new file") }
        do {
            try db.backup(to: path)
            let copy = try Database(path: path, readOnly: true)
            let jobs = try copy.query("SELECT count(*) FROM jobs").first?.first?.int ?? 0
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            return BackupOutcome(database: db.path, path: path, jobs: Int(jobs), bytes: size)
        } catch {
            throw .storage("backup to \(path) failed: \(error)")
        }
    }

    /// The directory a backup requested without a path goes to: `backups` beside the database.
    public static func backupDirectory(database: String) -> String {
        (database as NSString).deletingLastPathComponent + "/backups"
    }

    /// A new file name in `directory` for a backup made at `now` (Unix ms).
    public static func backupFile(in directory: String, now: Int64) -> String {
        var t = time_t(now / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let stamp =
            "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))"
        return "\(directory)/agentd-\(stamp)-\(now % 1000).db"
    }
}
