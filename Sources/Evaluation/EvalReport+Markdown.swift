extension EvalReport {
    /// The report as Markdown: one table of arms, the critic per attempt, the paired comparisons.
    public var markdown: String {
        var out = "## agentd eval: \(suite)\n\n"
        out += "\(tasks) tasks × \(reps) repetition\(reps == 1 ? "" : "s"), \(results.count) runs judged by the suite's checks.\n\n"
        out += "| arm | verified | 95% CI (Wilson) | first attempt | actor calls/task | calls/task | tokens/task | cost/task "
        out += "| critic false pass | critic false fail | flips | jobs failed |\n"
        out += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for arm in arms {
            let cost = arm.costPerRun.map { "$" + Figure.fixed($0, 4) } ?? "–"
            out += "| \(arm.name) | \(arm.verified)/\(arm.runs) (\(Figure.percent(arm.successRate))) "
            out += "| \(Figure.percent(arm.interval.lower))–\(Figure.percent(arm.interval.upper)) "
            out += "| \(Figure.percent(arm.firstAttemptRate)) | \(Figure.number(arm.actorCallsPerRun, 2)) "
            out += "| \(Figure.number(arm.callsPerRun, 2)) | \(Figure.number(arm.tokensPerRun, 0)) | \(cost) "
            out += "| \(rate(arm.critic.falsePasses, arm.critic.wrongJudged)) | \(rate(arm.critic.falseFails, arm.critic.rightJudged)) "
            out += "| \(arm.flips)\(arm.flipRate.map { " (\(Figure.percent($0)))" } ?? "") | \(arm.failedJobs) |\n"
        }
        let attempts = arms.map(\.criticByAttempt.count).max() ?? 0
        if attempts > 1 {
            out += "\nThe critic per attempt (false passes / wrong outputs judged; false fails / right outputs judged):\n\n"
            out += "| arm |" + (1...attempts).map { " attempt \($0) |" }.joined() + "\n"
            out += "|---|" + String(repeating: "---|", count: attempts) + "\n"
            for arm in arms where arm.critic.wrongJudged + arm.critic.rightJudged > 0 {
                out += "| \(arm.name) |"
                for i in 0..<attempts {
                    guard i < arm.criticByAttempt.count, arm.criticByAttempt[i].wrongJudged + arm.criticByAttempt[i].rightJudged > 0 else {
                        out += " – |"
                        continue
                    }
                    let c = arm.criticByAttempt[i]
                    out += " pass \(c.falsePasses)/\(c.wrongJudged), fail \(c.falseFails)/\(c.rightJudged) |"
                }
                out += "\n"
            }
        }
        if !pairs.isEmpty {
            out += "\nPaired (same task and repetition): wins = only the first arm verified, losses = only the second.\n\n"
            out += "| first | second | pairs | both | wins | losses | exact McNemar p |\n|---|---|---|---|---|---|---|\n"
            for p in pairs {
                out += "| \(p.first) | \(p.second) | \(p.pairs) | \(p.both) | \(p.wins) | \(p.losses) | \(Figure.p(p.p)) |\n"
            }
        }
        return out
    }

    private func rate(_ part: Int, _ whole: Int) -> String {
        whole == 0 ? "–" : "\(part)/\(whole) (\(Figure.percent(Statistics.rate(part, whole))))"
    }
}
