import ArgumentParser
import Foundation
import Orchestrator
import Store

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove whole jobs that finished before a cutoff; every job kept keeps its whole hash chain.",
        discussion: """
            Removes each selected job entirely, in one transaction per 100 jobs: its row, its events, its \
            chain head and its search entries. Queued and running jobs are never removed, nor part of a \
            job, so every chain that stays is whole and `agentd audit verify --all` still passes. Each prune \
            is recorded in the database (tables prunes and pruned_jobs: when, the cutoff, and each job's \
            status, finish time, chain head and length), so an auditor can tell a pruned job from a deleted \
            one. A pruned job's idempotency key makes a new job again.

            Goes through the daemon on --socket when one answers there; otherwise opens --db itself, \
            holding the database lock. The file does not shrink: SQLite reuses the freed pages (run \
            VACUUM with the sqlite3 CLI while agentd is stopped to give them back).
            """)

    @Option(
        help: ArgumentHelp(
            "Remove jobs that finished before this: a duration back from now (90s, 15m, 2h, 7d, 1w), a UTC time (2026-01-31, 2026-01-31T12:00), or Unix ms.",
            valueName: "duration-or-time"))
    var olderThan: String

    @Option(help: "Which finished jobs: a comma-separated list of succeeded, failed, cancelled (default: all three).")
    var status: String?

    @Flag(help: "Only count what would be removed; remove nothing.")
    var dryRun = false

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var socket: SocketOption
    @OptionGroup var database: DatabaseOption

    func validate() throws {
        _ = try statuses()
        _ = try cutoff(now: 0)
    }

    /// The statuses named by `--status`, in the order given.
    func statuses() throws -> [JobStatus] {
        guard let status else { return JobStatus.terminal }
        var chosen: [JobStatus] = []
        for word in status.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let s = JobStatus(rawValue: word), s.isTerminal else {
                throw ValidationError(
                    "--status takes succeeded, failed, cancelled (comma-separated), got '\(word)': queued and running jobs are never pruned"
                )
            }
            if !chosen.contains(s) { chosen.append(s) }
        }
        return chosen
    }

    func cutoff(now: Int64) throws -> Int64 {
        guard let before = SearchQuery.parseSince(olderThan, now: now) else {
            throw ValidationError(
                "--older-than takes a duration (90s, 15m, 2h, 7d, 1w), a UTC time (2026-01-31T12:00) or Unix ms, got '\(olderThan)'")
        }
        return before
    }

    mutating func run() throws {
        let statuses = try statuses()
        let before = try cutoff(now: SystemClock().nowMillis())
        let call = MethodCall.prune(PruneParams(before: Int(before), statuses: statuses, dryRun: dryRun))
        let reply = try DaemonOrDatabase(socket: socket, database: database).answer(call) { path in
            try pruneDirectly(path, PruneRequest(before: before, statuses: statuses)).json
        }
        if json {
            emit(reply.encoded)
            return
        }
        let result = try failing { () throws -> PruneResult in try PruneOutcome(json: reply).result }
        let jobs = result.jobs
        let removed = "\(Self.count(jobs, "job")) (\(Self.count(result.events, "event")))"
        let which = statuses.map(\.rawValue).joined(separator: ", ")
        let when = formatTime(Double(before))
        if dryRun {
            emit("would prune \(removed) that finished before \(when) (\(which)); nothing was removed")
        } else if jobs == 0 {
            emit("nothing to prune: no job (\(which)) finished before \(when)")
        } else {
            emit("pruned \(removed) that finished before \(when) (\(which)); recorded as prune \(result.pruneID ?? 0)")
        }
    }

    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    /// No daemon answers: prune the database in this process, under the lock a daemon would hold.
    private func pruneDirectly(_ path: String, _ request: PruneRequest) throws -> PruneOutcome {
        let lock = try DatabaseLock(databasePath: path)
        defer { lock.release() }
        let db = try openForAudit(path)
        let result: PruneResult
        do {
            result = dryRun ? try db.pruneCandidates(request) : try db.prune(request, now: SystemClock().nowMillis())
        } catch {
            throw CLIFailure("prune failed: \(error.description)")
        }
        return PruneOutcome(dryRun: dryRun, before: Int(request.before), statuses: request.statuses, result: result)
    }
}
