import ArgumentParser
import Foundation
import Orchestrator
import Store

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute jobs' hash chains from the database and name the first event that does not match.",
        discussion: """
            Reads the database directly and read-only, whether the daemon runs or not. Jobs removed by \
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

    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if job == nil && !all { throw ValidationError("name a job or pass --all") }
        if job != nil && all { throw ValidationError("name a job or pass --all, not both") }
    }

    mutating func run() throws {
        let path = database.path
        let db = try failing { () throws -> Database in
            guard FileManager.default.fileExists(atPath: path) else { throw CLIFailure("no database at \(path)", code: 2) }
            let db = try Database(path: path, readOnly: true)
            try db.execute("PRAGMA query_only=ON")
            guard try db.hasHashChain() else {
                throw CLIFailure(
                    "the database at \(path) has no hash chain yet (schema before version 2); start agentd once on it", code: 2)
            }
            return db
        }
        var reports: [ChainReport] = []
        if let job {
            let report = try failing { () throws -> ChainReport in
                guard let report = try db.verifyChain(jobID: job) else {
                    if let pruned = try db.prunedJob(job) { throw CLIFailure(Self.prunedLine(pruned), code: 2) }
                    throw CLIFailure("no job \(job) in \(path) (and no prune removed one by that id)", code: 2)
                }
                return report
            }
            reports.append(report)
            if json {
                emit(Self.json(report).encoded)
            } else {
                emit(Self.line(report))
            }
        } else {
            let ids = try failing { try db.allJobIDs() }
            for id in ids {
                guard let report = try failing({ try db.verifyChain(jobID: id) }) else { continue }
                reports.append(report)
                if !report.ok && !json { emit(Self.line(report)) }
            }
            let failed = reports.filter { !$0.ok }
            let events = reports.reduce(0) { $0 + $1.events }
            let pruned = try failing { try db.pruneSummary() }
            if json {
                emit(
                    JSON.object([
                        ("ok", .bool(failed.isEmpty)), ("jobs", .int(reports.count)), ("events", .int(events)),
                        ("failed", .array(failed.map(Self.json))), ("pruned_jobs", .int(pruned?.jobs ?? 0)),
                        ("prunes", .int(pruned?.prunes ?? 0)),
                    ]).encoded)
            } else if failed.isEmpty {
                emit("OK: \(reports.count) jobs, \(events) events, every chain verifies\(Self.prunedNote(pruned))")
            } else {
                emit("FAILED: \(failed.count) of \(reports.count) jobs do not verify (\(events) events)\(Self.prunedNote(pruned))")
            }
        }
        if reports.contains(where: { !$0.ok }) { throw ExitCode(1) }
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

    static func line(_ report: ChainReport) -> String {
        if let problem = report.problem {
            return "\(report.jobID) FAILED at \(problem)"
        }
        return "\(report.jobID) OK: \(report.events) events, chain head \(report.head?.hex ?? "(none)")"
    }

    static func json(_ report: ChainReport) -> JSON {
        var members: [(String, JSON)] = [
            ("job", .string(report.jobID)), ("ok", .bool(report.ok)), ("events", .int(report.events)),
            ("head", report.head.map { .string($0.hex) } ?? .null),
        ]
        if let problem = report.problem {
            members.append(("seq", .int(problem.seq)))
            members.append(("kind", problem.eventKind.map(JSON.string) ?? .null))
            members.append(("problem", .string(problem.kind.rawValue)))
            members.append(("message", .string(problem.message)))
        }
        return .object(members)
    }
}
