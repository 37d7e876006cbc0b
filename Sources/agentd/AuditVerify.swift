import ArgumentParser
import Foundation
import Orchestrator
import Store

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute jobs' hash chains from the database and name the first event that does not match.",
        discussion: """
            Asks the daemon (audit.verify) when one answers on --socket, else reads --db itself, read-only; \
            the answer is the same. Jobs removed by \
            `agentd prune` are not verified (they are gone) but accounted for: --all counts them, and a \
            pruned JOB is reported with the prune that removed it and its chain's last head. Exit status: 0 \
            when every chain verifies, 1 when one does not, 2 when it cannot verify (no database, no such \
            job, a pruned job, a schema without the chain).
            """)

    @Argument(help: "The job to verify.")
    var job: String?

    @Flag(help: "Verify every job.")
    var all = false

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var socket: SocketOption
    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if job == nil && !all { throw ValidationError("name a job or pass --all") }
        if job != nil && all { throw ValidationError("name a job or pass --all, not both") }
    }

    mutating func run() throws {
        let params = VerifyParams(job: job)
        let reply = try DaemonOrDatabase(socket: socket, database: database).answer(.verify(params), notFoundExit: 2) { path in
            let db = try DaemonOrDatabase.openReadOnly(path, missingExit: 2)
            guard try db.hasHashChain() else {
                throw CLIFailure(
                    "the database at \(path) has no hash chain yet (schema before version 2); start agentd once on it", code: 2)
            }
            return try RecordQueries.verify(db, params).json
        }
        let result = try failing { () throws -> ChainVerification in try ChainVerification(json: reply) }
        if job != nil {
            let report = try failing { () throws -> ChainVerification.Report in
                if let pruned = result.pruned { throw CLIFailure(Self.prunedLine(pruned), code: 2) }
                guard let report = result.reports.first else { throw CLIFailure("the daemon sent no report", code: 2) }
                return report
            }
            emit(json ? report.json.encoded : Self.line(report))
        } else {
            let failed = result.reports.filter { !$0.ok }
            let summary = PruneSummary(prunes: result.prunes, jobs: result.prunedJobs, lastAt: result.lastPruneAt)
            if json {
                emit(
                    JSON.object([
                        ("ok", .bool(failed.isEmpty)), ("jobs", .int(result.reports.count)), ("events", .int(result.events)),
                        ("failed", .array(failed.map(\.json))), ("pruned_jobs", .int(result.prunedJobs)), ("prunes", .int(result.prunes)),
                    ]).encoded)
            } else {
                for report in failed { emit(Self.line(report)) }
                if failed.isEmpty {
                    emit("OK: \(result.reports.count) jobs, \(result.events) events, every chain verifies\(Self.prunedNote(summary))")
                } else {
                    emit(
                        "FAILED: \(failed.count) of \(result.reports.count) jobs do not verify (\(result.events) events)\(Self.prunedNote(summary))"
                    )
                }
            }
        }
        if !result.ok { throw ExitCode(1) }
    }

    /// How many jobs prunes removed, after the summary line; nothing when none were.
    static func prunedNote(_ summary: PruneSummary?) -> String {
        guard let summary, summary.jobs > 0 else { return "" }
        return
            "; \(summary.jobs) jobs removed by \(summary.prunes) prune\(summary.prunes == 1 ? "" : "s") (the last at \(formatTime(Double(summary.lastAt ?? 0))))"
    }

    static func prunedLine(_ job: PrunedJob) -> String {
        "\(job.jobID) was pruned (prune \(job.pruneID) at \(formatTime(Double(job.prunedAt))), jobs finished before \(formatTime(Double(job.before)))): it was \(job.status), finished at \(formatTime(Double(job.finishedAt))), its chain had \(job.length) events, head \(job.head ?? "(none)")"
    }

    static func line(_ report: ChainVerification.Report) -> String {
        if let problem = report.problem {
            return "\(report.job) FAILED at \(problem)"
        }
        return "\(report.job) OK: \(report.events) events, chain head \(report.head ?? "(none)")"
    }
}
