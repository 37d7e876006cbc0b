import Store

/// The transcript as one self-contained HTML page: inline CSS, a few lines of inline JS (expand or
/// collapse every `<details>`), no network, no external scripts, fonts or images. Every piece of
/// recorded text is escaped: it is untrusted model output.
///
/// Stable hooks for tests and tools: `#summary` (with `data-status`, `data-calls`, `data-tokens`,
/// `data-reruns`, `data-replans`, …), `.step` (`id="step-rR-sS"`, `data-replan`, `data-step`,
/// `data-outcome`), `.attempt` (`id="attempt-rR-sS-aA"`, `data-attempt`, `data-outcome`), `.verdict`
/// (`data-verdict` = `pass` | `fail` | `invalid`, `data-call`; its `.evidence` has `data-evidence`, `data-tool-call`),
/// `.tool` (`data-tool`, `data-role` = `actor` | `critic`), `.replan`
/// (`data-replan`), `.verifier` (`data-verified`), `.jury` (`data-rule`, `data-outcome`) with its
/// `.vote`s (`data-juror`, `data-vote`). Steps and attempts are one-based in the text and
/// zero-based in ids and data attributes, as on the wire.
public enum HTMLRenderer {
    public static func render(_ model: TranscriptModel) -> String {
        var w = HTMLWriter()
        w.reserve(model.eventCount * 600 + 8192)
        page(model, &w)
        return w.string
    }

    static func page(_ m: TranscriptModel, _ w: inout HTMLWriter) {
        w.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
        w.raw(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
        )
        w.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>agentd transcript ")
        w.text(m.jobID)
        w.raw("</title>\n<style>")
        w.raw(css)
        w.raw("</style>\n</head>\n<body>\n<header>\n<h1>Job <code>")
        w.text(m.jobID)
        w.raw("</code> <span class=\"status status-")
        w.attr(m.summary.status)
        w.raw("\">")
        w.text(m.summary.status)
        w.raw("</span></h1>\n<p class=\"goal\"><b>Plan</b> ")
        w.text(m.planName)
        w.raw(" · <b>Goal</b> ")
        w.text(m.goal)
        w.raw("</p>\n")
        if case .object(let inputs) = m.inputs, !inputs.isEmpty {
            w.raw("<p class=\"inputs\"><b>Inputs</b> ")
            for (i, (k, v)) in inputs.enumerated() {
                if i > 0 { w.raw(", ") }
                w.text(k)
                w.raw(" = ")
                w.text(v.stringValue ?? v.encoded)
            }
            w.raw("</p>\n")
        }
        summary(m, &w)
        w.raw("<p class=\"controls\"><button type=\"button\" id=\"expand-all\">expand all</button> ")
        w.raw("<button type=\"button\" id=\"collapse-all\">collapse all</button></p>\n</header>\n<main id=\"timeline\">\n")
        for entry in m.entries {
            switch entry {
            case .planning(let calls, let replan): planning(m, calls, replan, &w)
            case .step(let i): step(m, m.steps[i], &w)
            case .verification(let calls): verification(m, calls, &w)
            case .note(let seq, let text):
                w.raw("<div class=\"note\" data-seq=\"\(seq)\">")
                w.text(text)
                w.raw("</div>\n")
            }
        }
        w.raw("</main>\n<footer>")
        w.text("\(m.eventCount) events · rendered by agentd")
        w.raw("</footer>\n<script>")
        w.raw(script)
        w.raw("</script>\n</body></html>\n")
    }

    static func summary(_ m: TranscriptModel, _ w: inout HTMLWriter) {
        let s = m.summary
        w.raw("<section id=\"summary\" class=\"summary\" data-status=\"")
        w.attr(s.status)
        w.raw(
            "\" data-calls=\"\(s.completedCalls)\" data-failed-calls=\"\(s.failedCalls)\" data-tokens=\"\(s.inputTokens + s.outputTokens)\" data-input-tokens=\"\(s.inputTokens)\" data-output-tokens=\"\(s.outputTokens)\" data-steps=\"\(s.steps)\" data-attempts=\"\(s.attempts)\" data-reruns=\"\(s.reruns)\" data-replans=\"\(s.replans)\" data-tools=\"\(s.toolCalls)\""
        )
        if let d = s.durationMS { w.raw(" data-duration-ms=\"\(d)\"") }
        if let c = s.costUSD { w.raw(" data-cost-usd=\"\(c)\"") }
        w.raw(">\n<dl>")
        func item(_ key: String, _ cls: String, _ value: String) {
            w.raw("<div class=\"\(cls)\"><dt>\(key)</dt><dd>")
            w.text(value)
            w.raw("</dd></div>")
        }
        item("status", "s-status", s.status)
        item("duration", "s-duration", Format.duration(s.durationMS))
        item(
            "calls", "s-calls",
            "\(s.completedCalls)" + (s.callsByRole.isEmpty ? "" : " (\(s.callsByRoleText))")
                + (s.failedCalls > 0 ? ", \(s.failedCalls) failed" : ""))
        item("tokens", "s-tokens", "\(s.inputTokens + s.outputTokens) (\(s.inputTokens) in, \(s.outputTokens) out)")
        item("cost", "s-cost", Format.cost(s.costUSD))
        item("steps", "s-steps", "\(s.steps) (\(s.attempts) attempts)")
        item("reruns", "s-reruns", "\(s.reruns)")
        item("re-plans", "s-replans", "\(s.replans)")
        if s.toolCalls > 0 { item("tool calls", "s-tools", "\(s.toolCalls)") }
        w.raw("</dl>\n")
        if let reason = s.reason {
            w.raw("<p class=\"reason\"><b>Reason</b> ")
            w.text(reason)
            w.raw("</p>\n")
        }
        w.raw("</section>\n")
    }

    static func planning(_ m: TranscriptModel, _ calls: [Int], _ replan: TranscriptModel.Replan?, _ w: inout HTMLWriter) {
        if let replan {
            w.raw(
                "<section class=\"replan\" id=\"replan-\(replan.number)\" data-replan=\"\(replan.number)\" data-from-step=\"\(replan.fromStep)\">\n"
            )
            w.raw("<h2>Re-plan #\(replan.number) from step \(replan.fromStep + 1)</h2>\n")
        } else {
            w.raw("<section class=\"planning\" id=\"plan\">\n<h2>Plan</h2>\n")
        }
        for i in calls { call(m.calls[i], &w) }
        if let replan {
            w.raw("<ol class=\"new-steps\" start=\"\(replan.fromStep + 1)\">")
            for s in replan.steps {
                w.raw("<li>")
                w.text(s)
                w.raw("</li>")
            }
            w.raw("</ol>\n")
        }
        w.raw("</section>\n")
    }

    static func step(_ m: TranscriptModel, _ step: TranscriptModel.Step, _ w: inout HTMLWriter) {
        let outcome = step.passed ? "passed" : step.exhausted ? "exhausted" : "unfinished"
        w.raw(
            "<section class=\"step step-\(outcome)\" id=\"step-r\(step.replan)-s\(step.index)\" data-replan=\"\(step.replan)\" data-step=\"\(step.index)\" data-outcome=\"\(outcome)\" data-attempts=\"\(step.attempts.count)\">\n<h2>"
        )
        w.text(Format.stepName(step))
        if let title = step.title {
            w.raw(" <span class=\"title\">")
            w.text(title)
            w.raw("</span>")
        }
        w.raw(" <span class=\"badge b-\(outcome)\">\(outcome)</span></h2>\n")
        for attempt in step.attempts {
            w.raw(
                "<article class=\"attempt outcome-\(attempt.outcome.rawValue)\" id=\"attempt-r\(step.replan)-s\(step.index)-a\(attempt.index)\" data-replan=\"\(step.replan)\" data-step=\"\(step.index)\" data-attempt=\"\(attempt.index)\" data-outcome=\"\(attempt.outcome.rawValue)\">\n<h3>Attempt \(attempt.index + 1)"
            )
            if attempt.index > 0 { w.raw(" <span class=\"rerun\">rerun</span>") }
            w.raw("</h3>\n")
            if attempt.feedbackCarried != nil || attempt.suggestionCarried != nil {
                w.raw("<div class=\"carried\"><b>Feedback carried into this rerun</b> ")
                w.text(attempt.feedbackCarried ?? "")
                if let s = attempt.suggestionCarried {
                    w.raw(" <i>suggestion:</i> ")
                    w.text(s)
                }
                w.raw("</div>\n")
            }
            if attempt.candidates.count > 1 {
                for candidate in attempt.candidates {
                    w.raw(
                        "<div class=\"candidate outcome-\(candidate.outcome ?? "pending")\(candidate.chosen == nil ? "" : " chosen")\" id=\"candidate-r\(step.replan)-s\(step.index)-a\(attempt.index)-k\(candidate.sample)\" data-sample=\"\(candidate.sample)\" data-outcome=\"\(candidate.outcome ?? "pending")\"\(candidate.chosen.map { " data-chosen=\"\($0)\"" } ?? "")>\n<h4>"
                    )
                    w.text(Format.candidateHead(candidate))
                    w.raw("</h4>\n")
                    let actor = attempt.actorCalls.filter { m.calls[$0].sample == candidate.sample }
                    let critic = attempt.criticCalls.filter { m.calls[$0].sample == candidate.sample }
                    turns(m, actor, Format.tools(of: actor, in: attempt.tools, m), &w)
                    turns(m, critic, Format.tools(of: critic, in: attempt.criticTools, m), &w)
                    w.raw("<p class=\"candidate-result\">")
                    w.text(Format.candidateResult(candidate))
                    w.raw("</p>\n</div>\n")
                }
                let unsampled = attempt.criticCalls.filter { m.calls[$0].sample == nil }
                turns(m, unsampled, Format.tools(of: unsampled, in: attempt.criticTools, m), &w)
                if let jury = attempt.jury { self.jury(jury, &w) }
                w.raw("</article>\n")
                continue
            }
            turns(m, attempt.actorCalls, attempt.tools, &w)
            if let candidate = attempt.candidates.first, candidate.outcome == "duplicate" || candidate.chosen == "best" {
                w.raw("<p class=\"candidate-result\">")
                w.text(Format.candidateResult(candidate))
                w.raw("</p>\n")
            }
            if let dup = attempt.duplicateOf {
                w.raw("<div class=\"verdict verdict-fail duplicate\" data-verdict=\"fail\" data-duplicate-of=\"\(dup)\">")
                w.text("Same output as rejected attempt \(dup + 1); not judged again. Feedback reused: \(attempt.duplicateFeedback ?? "")")
                w.raw("</div>\n")
            }
            turns(m, attempt.criticCalls, attempt.criticTools, &w)
            if let jury = attempt.jury { self.jury(jury, &w) }
            w.raw("</article>\n")
        }
        if step.exhausted {
            w.raw("<p class=\"exhausted\">All \(step.attempts.count) attempts failed. Last feedback: ")
            w.text(step.lastFeedback ?? "")
            w.raw("</p>\n")
        }
        if step.sampled {
            w.raw("<div class=\"candidate-tree\"><b>Candidates as a tree</b> (each rerun revises its parent)\n<ul>\n")
            var depth = 0
            for (level, candidate) in step.candidateTree {
                while depth < level {
                    w.raw("<ul>\n")
                    depth += 1
                }
                while depth > level {
                    w.raw("</ul>\n")
                    depth -= 1
                }
                w.raw(
                    "<li data-attempt=\"\(candidate.attempt)\" data-sample=\"\(candidate.sample)\"\(candidate.parent.map { " data-parent=\"\($0.attempt).\($0.sample)\"" } ?? "")>"
                )
                w.text(Format.candidateLine(candidate))
                w.raw("</li>\n")
            }
            while depth > 0 {
                w.raw("</ul>\n")
                depth -= 1
            }
            w.raw("</ul></div>\n")
        }
        w.raw("</section>\n")
    }

    /// A jury's order, its votes (`.vote`, `data-juror`, `data-vote`) and decision (`.jury-decision`).
    static func jury(_ jury: TranscriptModel.Jury, _ w: inout HTMLWriter) {
        let outcome = jury.decision?.outcome ?? "pending"
        w.raw("<div class=\"jury\" data-rule=\"")
        w.attr(jury.rule)
        w.raw("\" data-outcome=\"")
        w.attr(outcome)
        w.raw("\"><div class=\"jury-head\"><b>Jury</b> ")
        w.text("\(jury.rule); asked in the order \(jury.askedOrder.joined(separator: ", ")) (seed \(jury.seed))")
        w.raw("</div>\n<ul class=\"votes\">")
        for vote in jury.votes {
            w.raw("<li class=\"vote vote-")
            w.attr(vote.outcome)
            w.raw("\" data-juror=\"")
            w.attr(vote.juror)
            w.raw("\" data-vote=\"")
            w.attr(vote.outcome)
            w.raw("\"><b>")
            w.text(vote.juror)
            w.raw("</b> ")
            w.text(vote.outcome.uppercased() + (vote.score.map { " (score \(Format.score($0)))" } ?? "") + ": ")
            w.text(vote.outcome == "error" ? vote.error ?? "" : vote.feedback)
            w.raw("</li>")
        }
        w.raw("</ul>\n")
        if let d = jury.decision {
            w.raw("<div class=\"verdict verdict-\(d.outcome == "pass" ? "pass" : "fail") jury-decision\" data-verdict=\"")
            w.attr(d.outcome)
            w.raw("\"><span class=\"v\">")
            w.text(d.outcome.uppercased())
            w.raw("</span> ")
            w.text("by \(jury.rule): \(d.passes) pass, \(d.fails) fail, \(d.errors) error, score \(Format.score(d.score))")
            w.raw("<pre class=\"feedback\">")
            w.text(d.feedback)
            w.raw("</pre></div>\n")
        }
        w.raw("</div>\n")
    }

    static func verification(_ m: TranscriptModel, _ calls: [Int], _ w: inout HTMLWriter) {
        let decision = calls.compactMap { m.calls[$0].verified }.last
        let label = decision.map { $0 ? "verified" : "rejected" } ?? "undecided"
        w.raw("<section class=\"verifier verifier-\(label)\" id=\"verifier\" data-verified=\"\(label)\">\n<h2>Verifier: \(label)</h2>\n")
        for i in calls { call(m.calls[i], &w) }
        w.raw("</section>\n")
    }

    /// A role's calls in an attempt, each followed by the tools it asked for.
    static func turns(_ m: TranscriptModel, _ calls: [Int], _ tools: [Int], _ w: inout HTMLWriter) {
        for i in calls {
            call(m.calls[i], &w, tools: m.tools)
            for t in Format.tools(of: [i], in: tools, m) { tool(m.tools[t], &w) }
        }
        let shown = Set(Format.tools(of: calls, in: tools, m))
        for t in tools where !shown.contains(t) { tool(m.tools[t], &w) }
    }

    /// `tools`: the job's, which a verdict's evidence names.
    static func call(_ c: TranscriptModel.Call, _ w: inout HTMLWriter, tools: [TranscriptModel.Tool] = []) {
        w.raw("<div class=\"call role-")
        w.attr(c.role)
        w.raw(" state-\(c.state.rawValue)\" id=\"call-")
        w.attr(c.id)
        w.raw("\" data-call=\"")
        w.attr(c.id)
        w.raw("\" data-role=\"")
        w.attr(c.role)
        w.raw("\">\n<div class=\"call-head\"><span class=\"role\">")
        w.text(c.role)
        w.raw("</span> <code>")
        w.text(c.id)
        w.raw("</code>")
        if let juror = c.juror {
            w.raw(" <span class=\"juror\">juror ")
            w.text(juror)
            w.raw("</span>")
        }
        if c.reask > 0 { w.raw(" <span class=\"reask\">asked again (\(c.reask))</span>") }
        if c.turn > 0 { w.raw(" <span class=\"turn\">turn \(c.turn + 1)</span>") }
        if c.restarted { w.raw(" <span class=\"restarted\">made again after a restart</span>") }
        if c.reused { w.raw(" <span class=\"restarted\">reused from the retried job's record</span>") }
        w.raw(" <span class=\"meta\">")
        w.text(Format.millis(c.durationMS) + Format.tokens(c) + (c.costUSD.map { ", " + Format.cost($0) } ?? ""))
        if let model = c.model {
            w.raw(" · ")
            w.text(model)
        }
        w.raw("</span></div>\n")
        if !c.messages.isEmpty {
            w.raw("<details class=\"prompt\"><summary>prompt (\(c.messages.count) messages)</summary>\n")
            for msg in c.messages {
                w.raw("<div class=\"msg\"><span class=\"msg-role\">")
                w.text(msg.role)
                w.raw("</span><pre>")
                w.text(msg.content)
                w.raw("</pre></div>\n")
            }
            w.raw("</details>\n")
        }
        switch c.state {
        case .pending:
            w.raw("<p class=\"pending\">no reply recorded</p>\n")
        case .failed:
            if c.role == "critic" { verdictBlock(c, nil, &w) }
            w.raw("<p class=\"failed\"><b>call failed</b> ")
            w.text((c.error ?? "?") + ": " + (c.errorMessage ?? ""))
            w.raw("</p>\n")
            if let stderr = c.stderr, !stderr.isEmpty {
                w.raw("<pre class=\"stderr\">")
                w.text(Format.capped(stderr, Format.outputCap))
                w.raw("</pre>\n")
            }
        case .completed:
            if let invalid = c.invalid {
                if c.role == "critic" { verdictBlock(c, nil, &w) }
                w.raw("<p class=\"invalid\"><b>invalid reply</b> ")
                w.text(invalid)
                w.raw("</p>\n")
            }
            if let v = c.verdict { verdictBlock(c, v, &w, tools: tools) }
            if let steps = c.steps {
                w.raw("<ol class=\"plan-steps\">")
                for s in steps {
                    w.raw("<li>")
                    w.text(s)
                    w.raw("</li>")
                }
                w.raw("</ol>\n")
            }
            if let output = c.output {
                w.raw("<div class=\"output\"><b>output</b><pre>")
                w.text(output)
                w.raw("</pre></div>\n")
            }
            if !c.toolCalls.isEmpty {
                w.raw("<p class=\"asks-tools\">calls tools: ")
                w.text(c.toolCalls.joined(separator: ", "))
                w.raw("</p>\n")
            }
            if let verified = c.verified {
                w.raw("<p class=\"decision decision-\(verified ? "verified" : "rejected")\"><b>\(verified ? "VERIFIED" : "REJECTED")</b> ")
                w.text(c.reason ?? "")
                w.raw("</p>\n")
            }
            if let argv = c.commandArgv {
                w.raw("<div class=\"command\"><code>")
                w.text(argv.map(Format.quoted).joined(separator: " "))
                w.raw("</code>")
                w.text(Format.confinement(c.commandSandboxed) + " exit " + (c.exitStatus.map(String.init) ?? "?"))
                for (label, text) in [("stdout", c.commandStdout), ("stderr", c.commandStderr)] {
                    if let text, !text.isEmpty {
                        w.raw("<pre class=\"\(label)\">")
                        w.text(Format.capped(text, Format.outputCap))
                        w.raw("</pre>")
                    }
                }
                w.raw("</div>\n")
            }
            if let reply = c.reply {
                w.raw("<details class=\"reply\"><summary>raw reply</summary><pre>")
                w.text(reply)
                w.raw("</pre></details>\n")
            }
        }
        w.raw("</div>\n")
    }

    static func verdictBlock(
        _ c: TranscriptModel.Call, _ v: TranscriptModel.Verdict?, _ w: inout HTMLWriter, tools: [TranscriptModel.Tool] = []
    ) {
        let kind = v.map { $0.verdict == "pass" ? "pass" : "fail" } ?? "invalid"
        w.raw("<div class=\"verdict verdict-\(kind)\" data-verdict=\"\(kind)\" data-call=\"")
        w.attr(c.id)
        w.raw("\"")
        if let step = c.step { w.raw(" data-step=\"\(step)\"") }
        if let attempt = c.attempt { w.raw(" data-attempt=\"\(attempt)\"") }
        if let score = v?.score { w.raw(" data-score=\"\(score)\"") }
        w.raw("><span class=\"v\">")
        w.text(v.map(Format.verdictLabel) ?? "INVALID")
        w.raw("</span>")
        if let v {
            w.raw(" <span class=\"score\">score ")
            w.text(Format.score(v.score))
            w.raw("</span> <span class=\"feedback\">")
            w.text(v.feedback)
            w.raw("</span>")
            if let s = v.suggestion {
                w.raw("<div class=\"suggestion\"><i>suggestion:</i> ")
                w.text(s)
                w.raw("</div>")
            }
            for detail in v.details {
                w.raw("<div class=\"detail\">")
                w.text(detail)
                w.raw("</div>")
            }
            for (k, cited) in Format.evidence(v, tools: tools).enumerated() {
                w.raw("<div class=\"evidence\" data-evidence=\"")
                w.attr(v.evidence[k])
                w.raw("\"")
                if k < v.evidenceTools.count, let t = v.evidenceTools[k] {
                    w.raw(" data-tool-call=\"")
                    w.attr(tools[t].id)
                    w.raw("\"")
                }
                w.raw("><i>evidence:</i> ")
                w.text(cited)
                w.raw("</div>")
            }
        }
        w.raw("</div>\n")
    }

    static func tool(_ t: TranscriptModel.Tool, _ w: inout HTMLWriter) {
        let ok = t.ok.map { $0 ? "ok" : "not-ok" } ?? "pending"
        w.raw("<div class=\"tool tool-\(ok)\" data-tool=\"")
        w.attr(t.name)
        w.raw("\" data-role=\"")
        w.attr(t.role)
        w.raw("\" data-call=\"")
        w.attr(t.id)
        w.raw("\" data-ok=\"\(ok)\"><span class=\"tool-label\">tool</span> <code>")
        w.text(Format.toolLine(t))
        w.raw("</code> <span class=\"meta\">")
        w.text(Format.toolResult(t))
        w.raw("</span>\n")
        for (label, text) in [("stdout", t.stdout), ("stderr", t.stderr), ("content", t.content)] {
            if let text, !text.isEmpty {
                w.raw("<details class=\"\(label)\"><summary>\(label) (\(text.utf8.count) bytes)</summary><pre>")
                w.text(Format.capped(text, Format.outputCap))
                w.raw("</pre></details>\n")
            }
        }
        w.raw("</div>\n")
    }

    static let css = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
        header{background:#fff;border-bottom:1px solid #dde1e7;padding:12px 24px}
        main{padding:12px 24px;max-width:1100px}
        h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:4px 0 8px}h3{font-size:14px;margin:2px 0 6px}
        code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
        pre{white-space:pre-wrap;word-break:break-word;background:#f1f3f6;padding:6px 8px;border-radius:4px;margin:4px 0;max-height:480px;overflow:auto}
        dl{display:flex;flex-wrap:wrap;gap:6px 18px;margin:8px 0}dl div{display:flex;gap:6px}dt{color:#5c6675}dd{margin:0;font-weight:600}
        .status{padding:1px 8px;border-radius:10px;font-size:13px;background:#e6e8ec}
        .status-succeeded{background:#d5f2dc;color:#17692c}.status-failed{background:#fadadb;color:#9b1c22}
        .status-cancelled{background:#f2ead0;color:#735b0a}.status-running,.status-queued{background:#dbe8fb;color:#1b4f9c}
        section.step,section.planning,section.replan,section.verifier{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px 14px;margin:12px 0}
        section.replan{border-left:4px solid #8a5cd1}
        .step-passed{border-left:4px solid #2f9e4f!important}.step-exhausted{border-left:4px solid #c9302c!important}
        .title{font-weight:400;color:#3c4657}
        .badge{font-size:11px;padding:1px 6px;border-radius:8px;background:#e6e8ec;vertical-align:middle}
        .b-passed{background:#d5f2dc}.b-exhausted{background:#fadadb}
        article.attempt{border-top:1px dashed #dde1e7;padding:6px 0 6px 10px}
        .rerun{font-size:11px;background:#fff1cc;padding:1px 6px;border-radius:8px}
        .carried{background:#fff8e1;border-left:3px solid #e0a800;padding:4px 8px;margin:4px 0}
        .call{margin:6px 0;padding:4px 8px;border-left:3px solid #c9ced6}
        .role-actor{border-color:#4a7bd0}.role-critic{border-color:#8a5cd1}.role-planner{border-color:#6b7686}.role-verifier{border-color:#1f8a70}
        .role{font-weight:600;text-transform:uppercase;font-size:11px;letter-spacing:.04em}
        .meta{color:#6b7686;font-size:12px}
        .verdict{margin:4px 0;padding:4px 8px;border-radius:4px}
        .verdict .v{font-weight:700;margin-right:6px}
        .jury{margin:6px 0;padding:6px 8px;border:1px dashed #c7ccd4;border-radius:4px}.jury ul.votes{margin:4px 0 4px 18px;padding:0}
        .vote-pass b{color:#17692c}.vote-fail b{color:#9b1c22}.vote-error b{color:#8a4b00}
        .verdict-pass{background:#d5f2dc;color:#17692c}.verdict-fail{background:#fadadb;color:#9b1c22}.verdict-invalid{background:#fdebd0;color:#8a4b00}
        .decision-verified{color:#17692c}.decision-rejected{color:#9b1c22}
        .failed,.invalid,.exhausted{color:#9b1c22}
        .tool{margin:4px 0 4px 12px;padding:4px 8px;background:#f4f6fa;border-radius:4px}
        .tool-not-ok{background:#fbf0f0}.tool-label{font-size:11px;font-weight:700;text-transform:uppercase}
        .note{color:#5c6675;font-style:italic;margin:8px 0}
        details summary{cursor:pointer;color:#3d5a8a;font-size:12px}
        footer{color:#8a93a2;font-size:12px;padding:12px 24px}
        button{font-size:12px}
        """

    static let script = """
        (function(){document.documentElement.setAttribute('data-loaded','1');function all(open){var d=document.querySelectorAll('details');for(var i=0;i<d.length;i++){d[i].open=open;}}
        var e=document.getElementById('expand-all'),c=document.getElementById('collapse-all');
        if(e){e.addEventListener('click',function(){all(true);});}if(c){c.addEventListener('click',function(){all(false);});}})();
        """
}

/// Builds HTML into a byte buffer; `text` and `attr` escape, `raw` does not.
struct HTMLWriter {
    private(set) var bytes: [UInt8] = []

    mutating func reserve(_ n: Int) { bytes.reserveCapacity(n) }

    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    /// Text content or an attribute value (quoted with `"`): `& < > " '` escaped, NUL replaced.
    mutating func text(_ s: String) {
        var s = s
        s.withUTF8 { buffer in
            var start = 0
            for i in 0..<buffer.count {
                let b = buffer[i]
                let replacement: StaticString
                switch b {
                case UInt8(ascii: "&"): replacement = "&amp;"
                case UInt8(ascii: "<"): replacement = "&lt;"
                case UInt8(ascii: ">"): replacement = "&gt;"
                case UInt8(ascii: "\""): replacement = "&quot;"
                case UInt8(ascii: "'"): replacement = "&#39;"
                case 0: replacement = "\u{FFFD}"
                default: continue
                }
                if start < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[start..<i])) }
                replacement.withUTF8Buffer { bytes.append(contentsOf: $0) }
                start = i + 1
            }
            if start < buffer.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[start..<buffer.count])) }
        }
    }

    mutating func attr(_ s: String) { text(s) }

    var string: String { String(decoding: bytes, as: UTF8.self) }
}
