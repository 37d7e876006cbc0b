extension EvalReport {
    /// The report as one self-contained HTML page: inline CSS, inline SVG charts (verified success with
    /// its 95% interval, tokens per task), the tables of the Markdown report, and nothing fetched from
    /// anywhere. A one-line script marks the body `data-loaded="1"`, so a test can tell the page ran.
    public var html: String {
        var out = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
            <title>agentd eval \(escape(suite))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
            table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
            td:first-child,th:first-child{text-align:left}svg text{font:12px sans-serif}
            .bar{fill:#4a7bd0}.first{fill:#9bb7e8}.tokens{fill:#d08a4a}.ci{stroke:#222;stroke-width:1.5}
            </style></head>
            <body data-loaded="0">
            <h1>agentd eval: \(escape(suite))</h1>
            <p id="summary" data-tasks="\(tasks)" data-reps="\(reps)" data-runs="\(results.count)">\(tasks) tasks × \(reps) repetition\(reps == 1 ? "" : "s"), \(results.count) runs judged by the suite's checks.</p>

            """
        out +=
            "<h2>Verified success (95% Wilson interval) and first-attempt success</h2>\n"
            + "<p>Thick bar: verified; thin bar: the first attempt of every step right; whisker: the 95% interval.</p>\n" + successChart()
        out += "<h2>Tokens per task</h2>\n" + tokensChart()
        out += "<h2>Arms</h2>\n<table id=\"arms\"><tr><th>arm</th><th>verified</th><th>95% CI</th><th>first attempt</th>"
        out += "<th>actor calls/task</th><th>calls/task</th><th>tokens/task</th><th>critic false pass</th><th>critic false fail</th>"
        out += "<th>flips</th><th>jobs failed</th></tr>\n"
        for arm in arms {
            out += "<tr id=\"arm-\(escape(arm.name))\" data-runs=\"\(arm.runs)\" data-verified=\"\(arm.verified)\" "
            out += "data-first-attempt=\"\(arm.firstAttempt)\" data-flips=\"\(arm.flips)\">"
            out += "<td>\(escape(arm.name))</td><td>\(arm.verified)/\(arm.runs) (\(Figure.percent(arm.successRate)))</td>"
            out += "<td>\(Figure.percent(arm.interval.lower))–\(Figure.percent(arm.interval.upper))</td>"
            out += "<td>\(Figure.percent(arm.firstAttemptRate))</td><td>\(Figure.number(arm.actorCallsPerRun, 2))</td>"
            out += "<td>\(Figure.number(arm.callsPerRun, 2))</td><td>\(Figure.number(arm.tokensPerRun, 0))</td>"
            out += "<td>\(arm.critic.falsePasses)/\(arm.critic.wrongJudged)</td><td>\(arm.critic.falseFails)/\(arm.critic.rightJudged)</td>"
            out += "<td>\(arm.flips)</td><td>\(arm.failedJobs)</td></tr>\n"
        }
        out += "</table>\n"
        if !pairs.isEmpty {
            out += "<h2>Paired comparison</h2>\n<table id=\"pairs\"><tr><th>first</th><th>second</th><th>pairs</th><th>both</th>"
            out += "<th>wins</th><th>losses</th><th>exact McNemar p</th></tr>\n"
            for p in pairs {
                out += "<tr class=\"pair\" data-wins=\"\(p.wins)\" data-losses=\"\(p.losses)\"><td>\(escape(p.first))</td>"
                out += "<td>\(escape(p.second))</td><td>\(p.pairs)</td><td>\(p.both)</td><td>\(p.wins)</td><td>\(p.losses)</td>"
                out += "<td>\(Figure.p(p.p))</td></tr>\n"
            }
            out += "</table>\n"
        }
        out += "<script>document.body.dataset.loaded = \"1\";</script>\n</body></html>\n"
        return out
    }

    private static let chartWidth = 640.0
    private static let labelWidth = 160.0
    private static let rowHeight = 28.0

    /// One row per arm: a bar of verified success, a thin bar of first-attempt success, the interval
    /// as a whisker.
    private func successChart() -> String {
        let plot = Self.chartWidth - Self.labelWidth - 60
        let height = Self.rowHeight * Double(arms.count) + 24
        var svg = "<svg id=\"success-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.chartWidth)\" height=\"\(height)\">\n"
        for (i, arm) in arms.enumerated() {
            let y = Double(i) * Self.rowHeight + 4
            let rate = arm.successRate ?? 0
            let x0 = Self.labelWidth
            svg += "<text x=\"0\" y=\"\(y + 15)\">\(escape(arm.name))</text>\n"
            svg += "<rect class=\"bar\" data-arm=\"\(escape(arm.name))\" x=\"\(x0)\" y=\"\(y)\" width=\"\(rate * plot)\" height=\"14\"/>\n"
            svg += "<rect class=\"first\" x=\"\(x0)\" y=\"\(y + 16)\" width=\"\((arm.firstAttemptRate ?? 0) * plot)\" height=\"5\"/>\n"
            let lo = x0 + arm.interval.lower * plot
            let hi = x0 + arm.interval.upper * plot
            svg += "<line class=\"ci\" x1=\"\(lo)\" x2=\"\(hi)\" y1=\"\(y + 7)\" y2=\"\(y + 7)\"/>"
            svg += "<line class=\"ci\" x1=\"\(lo)\" x2=\"\(lo)\" y1=\"\(y + 2)\" y2=\"\(y + 12)\"/>"
            svg += "<line class=\"ci\" x1=\"\(hi)\" x2=\"\(hi)\" y1=\"\(y + 2)\" y2=\"\(y + 12)\"/>\n"
            svg += "<text x=\"\(x0 + plot + 6)\" y=\"\(y + 12)\">\(Figure.percent(arm.successRate))</text>\n"
        }
        let axis = Double(arms.count) * Self.rowHeight + 18
        for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
            svg += "<text x=\"\(Self.labelWidth + tick * plot - 8)\" y=\"\(axis)\">\(Int(tick * 100))%</text>\n"
        }
        return svg + "</svg>\n"
    }

    private func tokensChart() -> String {
        // Room on the right for the figures written after each bar.
        let plot = Self.chartWidth - Self.labelWidth - 190
        let most = max(1, arms.compactMap(\.tokensPerRun).max() ?? 1)
        let height = Self.rowHeight * Double(arms.count) + 4
        var svg = "<svg id=\"tokens-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.chartWidth)\" height=\"\(height)\">\n"
        for (i, arm) in arms.enumerated() {
            let y = Double(i) * Self.rowHeight + 4
            let tokens = arm.tokensPerRun ?? 0
            svg += "<text x=\"0\" y=\"\(y + 15)\">\(escape(arm.name))</text>\n"
            svg += "<rect class=\"tokens\" x=\"\(Self.labelWidth)\" y=\"\(y)\" width=\"\(tokens / most * plot)\" height=\"18\"/>\n"
            svg += "<text x=\"\(Self.labelWidth + tokens / most * plot + 6)\" y=\"\(y + 14)\">\(Figure.number(arm.tokensPerRun, 0)) "
            svg += "(\(Figure.number(arm.actorCallsPerRun, 2)) actor calls)</text>\n"
        }
        return svg + "</svg>\n"
    }

    private func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
