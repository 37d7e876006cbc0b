import Store

/// The transcript as plain text or Markdown: the summary, then the plan, every step with each
/// attempt (the actor's output and tools, the critic's verdict, the feedback a rerun carried),
/// re-plans and the verifier's decision. Steps and attempts are shown one-based.
public enum TextRenderer {
    public enum Style: Sendable { case text, markdown }

    public static func render(_ model: TranscriptModel, style: Style) -> String {
        var r = Lines(style: style)
        r.document(model)
        return r.out
    }

    private struct Lines {
        let style: Style
        var out = ""
        var md: Bool { style == .markdown }

        mutating func line(_ s: String = "") {
            out += s
            out += "\n"
        }

        mutating func heading(_ level: Int, _ s: String) {
            if md {
                line(String(repeating: "#", count: level) + " " + inline(s))
                line()
            } else if level <= 2 {
                line(s)
                line(String(repeating: level == 1 ? "=" : "-", count: min(s.count, 100)))
            } else {
                line(s)
            }
        }

        /// Markdown: a bullet; text: an indented line.
        /// A line of the transcript; in text, the lines of a multi-line value (a command critic's
        /// feedback) are indented under its first.
        mutating func item(_ depth: Int, _ s: String) {
            if md {
                line(String(repeating: "  ", count: depth) + "- " + inline(s))
            } else {
                let indent = String(repeating: "  ", count: depth + 1)
                let lines = s.split(separator: "\n", omittingEmptySubsequences: false)
                line(indent + lines[0])
                for more in lines.dropFirst() { line(indent + "  " + more) }
            }
        }

        /// A block of recorded text: a fenced block in Markdown (the fence longer than any backtick run
        /// inside), indented lines in text.
        mutating func block(_ depth: Int, _ label: String?, _ text: String) {
            if md {
                if let label { line(String(repeating: "  ", count: depth) + "- **\(label)**") }
                var longest = 0
                var run = 0
                for ch in text.unicodeScalars {
                    if ch == "`" {
                        run += 1
                        longest = max(longest, run)
                    } else {
                        run = 0
                    }
                }
                let fence = String(repeating: "`", count: max(3, longest + 1))
                let pad = String(repeating: "  ", count: depth + 1)
                line(pad + fence + "text")
                for l in text.split(separator: "\n", omittingEmptySubsequences: false) { line(pad + l) }
                line(pad + fence)
            } else {
                let pad = String(repeating: "  ", count: depth + 1)
                if let label { line(pad + label + ":") }
                for l in text.split(separator: "\n", omittingEmptySubsequences: false) { line(pad + "  │ " + l) }
            }
        }

        /// Markdown inline text: characters that would start markup are escaped.
        func inline(_ s: String) -> String {
            guard md else { return s }
            var out = ""
            out.reserveCapacity(s.count)
            for ch in s {
                switch ch {
                case "\\", "`", "*", "_", "[", "]", "<", ">", "#", "|", "!":
                    out.append("\\")
                    out.append(ch)
                case "\n": out.append(" ")
                default: out.append(ch)
                }
            }
            return out
        }

        /// `**label**` in Markdown; plain in text. Only for fixed labels.
        func b(_ s: String) -> String { md ? "**\(s)**" : s }

        mutating func document(_ m: TranscriptModel) {
            let s = m.summary
            heading(1, "Job \(m.jobID) — \(m.planName) — \(s.status)")
            if !md { line() }
            item(0, "goal: \(m.goal)")
            if case .object(let inputs) = m.inputs, !inputs.isEmpty {
                item(0, "inputs: " + inputs.map { "\($0.0) = \($0.1.stringValue ?? $0.1.encoded)" }.joined(separator: ", "))
            }
            line()
            heading(2, "Summary")
            if !md { line() }
            item(0, "status: \(s.status)")
            if let reason = s.reason { item(0, "reason: \(reason)") }
            item(0, "duration: \(Format.duration(s.durationMS))")
            item(
                0,
                "calls: \(s.completedCalls)" + (s.callsByRole.isEmpty ? "" : " (\(s.callsByRoleText))")
                    + (s.failedCalls > 0 ? ", \(s.failedCalls) failed" : ""))
            item(0, "tokens: \(s.inputTokens + s.outputTokens) (\(s.inputTokens) in, \(s.outputTokens) out)")
            item(0, "cost: \(Format.cost(s.costUSD))")
            item(0, "steps: \(s.steps) (\(s.attempts) attempts)")
            item(0, "reruns: \(s.reruns)")
            item(0, "re-plans: \(s.replans)")
            if s.toolCalls > 0 { item(0, "tool calls: \(s.toolCalls)") }
            line()
            for entry in m.entries {
                switch entry {
                case .planning(let calls, let replan):
                    if let replan {
                        heading(2, "Re-plan #\(replan.number) from step \(replan.fromStep + 1)")
                    } else {
                        heading(2, "Plan")
                    }
                    if !md { line() }
                    for i in calls { call(m.calls[i], 0) }
                    if let replan {
                        item(0, "new steps:")
                        for (k, step) in replan.steps.enumerated() { item(1, "\(replan.fromStep + k + 1). \(step)") }
                    }
                    line()
                case .step(let i): step(m, m.steps[i])
                case .verification(let calls):
                    heading(2, "Verifier")
                    if !md { line() }
                    for i in calls { call(m.calls[i], 0) }
                    line()
                case .note(let seq, let text):
                    line(md ? "*[\(seq)] \(inline(text))*" : "[\(seq)] \(text)")
                    line()
                }
            }
        }

        mutating func step(_ m: TranscriptModel, _ step: TranscriptModel.Step) {
            heading(2, Format.stepName(step) + (step.title.map { ": \($0)" } ?? ""))
            if !md { line() }
            for attempt in step.attempts {
                heading(3, "Attempt \(attempt.index + 1)" + (attempt.index > 0 ? " (rerun)" : ""))
                if attempt.feedbackCarried != nil || attempt.suggestionCarried != nil {
                    item(0, "feedback carried into this rerun: \(attempt.feedbackCarried ?? "")")
                    if let s = attempt.suggestionCarried { item(1, "suggestion: \(s)") }
                }
                if attempt.candidates.count > 1 {
                    for candidate in attempt.candidates {
                        item(0, Format.candidateHead(candidate))
                        let actor = attempt.actorCalls.filter { m.calls[$0].sample == candidate.sample }
                        let critic = attempt.criticCalls.filter { m.calls[$0].sample == candidate.sample }
                        turns(m, actor, Format.tools(of: actor, in: attempt.tools, m), 1)
                        turns(m, critic, Format.tools(of: critic, in: attempt.criticTools, m), 1)
                        item(1, Format.candidateResult(candidate))
                    }
                    let unsampled = attempt.criticCalls.filter { m.calls[$0].sample == nil }
                    turns(m, unsampled, Format.tools(of: unsampled, in: attempt.criticTools, m))
                    if let jury = attempt.jury { self.jury(jury, 0) }
                    line()
                    continue
                }
                turns(m, attempt.actorCalls, attempt.tools)
                if let candidate = attempt.candidates.first, candidate.outcome == "duplicate" || candidate.chosen == "best" {
                    item(0, Format.candidateResult(candidate))
                }
                if let dup = attempt.duplicateOf {
                    item(
                        0,
                        "same output as rejected attempt \(dup + 1); not judged again (feedback reused: \(attempt.duplicateFeedback ?? ""))"
                    )
                }
                turns(m, attempt.criticCalls, attempt.criticTools)
                if let jury = attempt.jury { self.jury(jury, 0) }
                line()
            }
            if step.exhausted {
                item(0, "all \(step.attempts.count) attempts failed; last feedback: \(step.lastFeedback ?? "")")
                line()
            }
            if step.sampled {
                item(0, "candidates as a tree (each rerun revises its parent):")
                for (depth, candidate) in step.candidateTree { item(1 + depth, Format.candidateLine(candidate)) }
                line()
            }
        }

        /// A jury's order, each vote in juror order, and its decision.
        mutating func jury(_ jury: TranscriptModel.Jury, _ depth: Int) {
            item(depth, "jury (\(jury.rule)): asked in the order \(jury.askedOrder.joined(separator: ", ")) (seed \(jury.seed))")
            for vote in jury.votes {
                let said = vote.outcome == "error" ? vote.error ?? "" : vote.feedback
                item(
                    depth + 1,
                    "\(vote.juror): \(vote.outcome.uppercased())\(vote.score.map { " (score \(Format.score($0)))" } ?? ""): \(said)")
            }
            if let d = jury.decision {
                item(
                    depth,
                    "jury decided \(d.outcome.uppercased()) by \(jury.rule): \(d.passes) pass, \(d.fails) fail, \(d.errors) error (score \(Format.score(d.score)))"
                )
            }
        }

        /// A role's calls in an attempt, each followed by the tools it asked for (by their ids: a tool's
        /// id is its call's, a dot and an index), at `depth`; then any tool no call accounts for.
        mutating func turns(_ m: TranscriptModel, _ calls: [Int], _ tools: [Int], _ depth: Int = 0) {
            for i in calls {
                call(m.calls[i], depth, tools: m.tools)
                for t in Format.tools(of: [i], in: tools, m) { tool(m.tools[t], depth + 1) }
            }
            let shown = Set(Format.tools(of: calls, in: tools, m))
            for t in tools where !shown.contains(t) { tool(m.tools[t], depth + 1) }
        }

        /// `tools`: the job's, which a verdict's evidence names.
        mutating func call(_ c: TranscriptModel.Call, _ depth: Int, tools: [TranscriptModel.Tool] = []) {
            var head = "\(c.role) \(c.id)"
            if let juror = c.juror { head += " (juror \(juror))" }
            if c.reask > 0 { head += " (asked again: \(c.reask))" }
            if c.turn > 0 { head += " (turn \(c.turn + 1))" }
            head += " — " + Format.millis(c.durationMS) + Format.tokens(c) + (c.costUSD.map { ", " + Format.cost($0) } ?? "")
            if c.restarted { head += " — made again after a restart" }
            if c.reused { head += " — reused from the retried job's record" }
            item(depth, head)
            switch c.state {
            case .pending:
                item(depth + 1, "no reply recorded")
            case .failed:
                item(depth + 1, "call failed: \(c.error ?? "?"): \(c.errorMessage ?? "")")
                if let stderr = c.stderr, !stderr.isEmpty { block(depth + 1, "stderr", Format.capped(stderr, Format.outputCap)) }
            case .completed:
                if let invalid = c.invalid { item(depth + 1, "INVALID reply: \(invalid)") }
                if let v = c.verdict {
                    item(depth + 1, "\(Format.verdictLabel(v)) (score \(Format.score(v.score))): \(v.feedback)")
                    if let s = v.suggestion { item(depth + 2, "suggestion: \(s)") }
                    for detail in v.details { item(depth + 2, detail) }
                    for cited in Format.evidence(v, tools: tools) { item(depth + 2, "evidence: " + cited) }
                }
                if let steps = c.steps {
                    item(depth + 1, "plan of \(steps.count) steps:")
                    for (k, s) in steps.enumerated() { item(depth + 2, "\(k + 1). \(s)") }
                }
                if let output = c.output { block(depth + 1, "output", output) }
                if !c.toolCalls.isEmpty { item(depth + 1, "calls tools: " + c.toolCalls.joined(separator: ", ")) }
                if let verified = c.verified {
                    item(depth + 1, (verified ? "VERIFIED" : "REJECTED") + (c.reason.map { ": \($0)" } ?? ""))
                }
                if let argv = c.commandArgv {
                    item(
                        depth + 1,
                        "command\(Format.confinement(c.commandSandboxed)): " + argv.map(Format.quoted).joined(separator: " ")
                            + " → exit \(c.exitStatus.map(String.init) ?? "?")")
                    if let o = c.commandStdout, !o.isEmpty { block(depth + 1, "stdout", Format.capped(o, Format.outputCap)) }
                    if let e = c.commandStderr, !e.isEmpty { block(depth + 1, "stderr", Format.capped(e, Format.outputCap)) }
                }
                if c.commandArgv == nil, c.commandSandboxed == false { item(depth + 1, "the model's command ran unsandboxed") }
                if c.invalid != nil, let reply = c.reply { block(depth + 1, "raw reply", Format.capped(reply, Format.outputCap)) }
            }
        }

        mutating func tool(_ t: TranscriptModel.Tool, _ depth: Int) {
            item(depth, "tool \(Format.toolLine(t)) → \(Format.toolResult(t))")
            if let o = t.stdout, !o.isEmpty { block(depth + 1, "stdout", Format.capped(o, Format.outputCap)) }
            if let e = t.stderr, !e.isEmpty { block(depth + 1, "stderr", Format.capped(e, Format.outputCap)) }
            if let c = t.content, !c.isEmpty { block(depth + 1, "content", Format.capped(c, Format.outputCap)) }
        }
    }
}
