import ArgumentParser
import Foundation
import Orchestrator
import Store

/// `agentd stats`: critic analytics read straight from the database (read-only), per plan and role.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Critic analytics from the database: calls, tokens and latency per plan and role; reruns, corrections, re-plans and failures per plan.",
        discussion: """
            Asks the daemon (stats.get) when one answers on --socket, else reads --db itself, read-only \
            (safe while the daemon runs); the figures are the same. Rerun rate = attempts beyond \
            the first / steps. Correction success = steps whose critic failed an attempt and later passed one / \
            steps with a failed attempt. Overcorrections = jobs the verifier rejected after the critic passed a \
            step whose output had been changed by a rerun with feedback or a re-plan. Where a plan has a \
            ground-truth check: per judge (the critic, a jury and each juror) the checked outputs, false passes \
            and false fails against the check, agreement with it, and flips (a right output the judge rejected \
            whose rerun the check rejected; the rate is per right output rejected); pairwise juror agreement; \
            and per judge the jobs it passed whose verifier rejected the result (passes overturned).
            """)

    @Option(help: "Only jobs of this plan (its name).")
    var plan: String?

    @Option(help: "Only jobs created since: a duration back from now (90s, 30m, 12h, 7d, 2w) or a time (2026-01-31, 2026-01-31T08:00:00Z).")
    var since: String?

    @OptionGroup var socket: SocketOption
    @OptionGroup var database: DatabaseOption

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if let since, Self.sinceMillis(since, now: 0) == nil {
            throw ValidationError(
                "--since takes a duration (90s, 30m, 12h, 7d, 2w) or a time (2026-01-31 or 2026-01-31T08:00:00Z), got '\(since)'")
        }
    }

    /// `since` as Unix ms: a duration back from `now`, or an ISO 8601 date or date-time (UTC unless it says).
    static func sinceMillis(_ text: String, now: Int64) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let n = Int64(text.dropLast(suffix.count)), n >= 0 { return now - n * scale }
        }
        let full = ISO8601DateFormatter()
        if let date = full.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = fractional.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        if let date = day.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        return nil
    }

    mutating func run() throws {
        let now = SystemClock().nowMillis()
        let params = StatsParams(plan: plan, since: since.flatMap { Self.sinceMillis($0, now: now) })
        let reply = try DaemonOrDatabase(socket: socket, database: database).answer(.stats(params)) { path in
            try RecordQueries.stats(try DaemonOrDatabase.openReadOnly(path), params)
        }
        if json {
            emit(reply.encoded)
            return
        }
        // Printed from the wire form either way, so the daemon's answer and the file's read the same.
        guard let stats = CriticStats(json: reply) else { return try failing { throw CLIFailure("the stats result has another shape") } }
        if stats.plans.isEmpty {
            emit("no jobs" + (plan.map { " of plan \($0)" } ?? "") + (since.map { " since \($0)" } ?? ""))
            return
        }
        func rate(_ d: Double?) -> String { d.map { String(format: "%.0f%%", $0 * 100) } ?? "—" }
        emit("Per plan")
        emitTable(
            [
                "PLAN", "JOBS", "OK", "FAILED", "STEPS", "ATTEMPTS", "RERUNS", "RERUN RATE", "FAILED STEPS", "CORRECTED", "CORRECTION",
                "RE-PLANS",
                "REJECTED", "OVERCORRECTED",
            ],
            stats.plans.map { p in
                [
                    p.plan, "\(p.jobs)", "\(p.succeeded)", "\(p.failed)", "\(p.steps)", "\(p.attempts)", "\(p.reruns)", rate(p.rerunRate),
                    "\(p.stepsWithFailedAttempt)", "\(p.correctedSteps)", rate(p.correctionSuccessRate), "\(p.replans)",
                    "\(p.verifierRejections)", "\(p.overcorrections)",
                ]
            }, rightAligned: 1...13)
        let gated = stats.plans.filter { $0.gates > 0 }
        if !gated.isEmpty {
            emit("")
            emit("Gates")
            emitTable(
                ["PLAN", "REQUESTED", "APPROVED", "BLOCKED", "REJECTED", "TIMED OUT", "EDITED", "MEAN WAIT (PERSON)"],
                gated.map { p in
                    [
                        p.plan, "\(p.gates)", "\(p.gatesApproved)", "\(p.gatesBlocked)", "\(p.gatesRejected)", "\(p.gatesTimedOut)",
                        "\(p.gatesEdited)", p.meanDecisionMS.map { String(format: "%.1f s", $0 / 1000) } ?? "—",
                    ]
                }, rightAligned: 1...7)
        }
        if !stats.judges.isEmpty {
            emit("")
            emit("Judges against the ground truth (check) and the verifier")
            emitTable(
                [
                    "PLAN", "JUDGE", "CHECKED", "FALSE PASSES", "FALSE FAILS", "AGREEMENT", "FLIPS", "FLIP RATE", "PASSED JOBS",
                    "OVERTURNED", "OVERTURNED RATE",
                ],
                stats.judges.map { j in
                    [
                        j.plan, j.label, "\(j.judged)", "\(j.falsePasses)", "\(j.falseFails)", rate(j.checkAgreement), "\(j.flips)",
                        rate(j.flipRate), "\(j.passedJobs)", "\(j.passesOverturned)", rate(j.overturnedRate),
                    ]
                }, rightAligned: 2...10)
        }
        if !stats.agreements.isEmpty {
            emit("")
            emit("Juror agreement")
            emitTable(
                ["PLAN", "JURORS", "OUTPUTS", "AGREED", "RATE"],
                stats.agreements.map { a in
                    [a.plan, a.jurors.joined(separator: " + "), "\(a.outputs)", "\(a.agreed)", rate(a.rate)]
                }, rightAligned: 2...4)
        }
        emit("")
        emit("Per plan and role")
        emitTable(
            ["PLAN", "ROLE", "CALLS", "FAILED", "TOKENS IN", "TOKENS OUT", "MEAN LATENCY", "COST"],
            stats.roles.map { r in
                [
                    r.plan, r.role, "\(r.calls)", "\(r.failedCalls)", "\(r.inputTokens)", "\(r.outputTokens)",
                    r.meanLatencyMS.map { String(format: $0 < 10 ? "%.2f ms" : "%.0f ms", $0) } ?? "—",
                    r.costUSD.map { String(format: "$%.4f", $0) } ?? "—",
                ]
            }, rightAligned: 2...7)
        emit("")
        emit("Failures by kind")
        if stats.failures.isEmpty {
            emit("  none")
        } else {
            emitTable(
                ["PLAN", "KIND", "DETAIL", "COUNT"], stats.failures.map { [$0.plan, $0.kind, oneLine($0.detail, 80), "\($0.count)"] },
                rightAligned: 3...3)
        }
    }
}

/// Prints rows as columns padded to the widest cell; columns in `rightAligned` are right-aligned.
func emitTable(_ header: [String], _ rows: [[String]], rightAligned: ClosedRange<Int>) {
    var widths = header.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    func format(_ row: [String]) -> String {
        row.enumerated().map { i, cell in
            let fill = String(repeating: " ", count: widths[i] - cell.count)
            return rightAligned.contains(i) ? fill + cell : cell + fill
        }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }
    emit(format(header))
    for row in rows { emit(format(row)) }
}
