import Store

/// A job's history arranged for people: the plan, each step with its attempts (the actor's calls and
/// tools, the critic's verdicts), re-plans, the verifier's decision and a summary.
///
/// Built from the job object and its events exactly as the socket returns them (`job.get` /
/// `job.transcript`), so it works on anything recorded, including unfinished and recovered jobs.
/// Steps and attempts are zero-based here, as on the wire; renderers show them one-based.
public struct TranscriptModel: Sendable {
    public struct Message: Sendable, Equatable {
        public var role: String
        public var content: String
    }

    public struct Verdict: Sendable, Equatable {
        public var verdict: String
        public var score: Double?
        public var feedback: String
        public var suggestion: String?
        /// The rest of what the critic said, as labelled lines: `first error: …`, `failure modes: …`,
        /// `confidence: …`, `feasibility: …` (each only when given).
        public var details: [String] = []
        /// A critic with tools: the ids of its tool calls (as the model named them) the verdict relies on.
        public var evidence: [String] = []
        /// For each of `evidence`, the index into `tools` of the critic's call it names (the latest
        /// of that id in the attempt), or nil when the record holds none.
        public var evidenceTools: [Int?] = []
    }

    /// One agent call: `call.started` and what followed it.
    public struct Call: Sendable {
        public enum State: String, Sendable { case pending, completed, failed }
        public var id: String
        public var seq: Int
        public var role: String
        public var step: Int?
        public var attempt: Int?
        public var reask = 0
        public var turn = 0
        /// The candidate of its attempt the call asks for or judges, when the attempt has several.
        public var sample: Int?
        public var model: String?
        public var messages: [Message] = []
        public var state = State.pending
        /// A `call.restarted` marked it: the daemon stopped before it completed.
        public var restarted = false
        /// A retry copied it from the job it retries (`RetryPrefix`): answered from that record, not made.
        public var reused = false
        public var reply: String?
        /// The actor's output (its `{"output": …}` or plain text), for a completed actor call without tool calls.
        public var output: String?
        public var verdict: Verdict?
        public var invalid: String?
        public var verified: Bool?
        public var reason: String?
        public var steps: [String]?
        /// The tools this turn asked for, by name.
        public var toolCalls: [String] = []
        public var error: String?
        public var errorMessage: String?
        public var stderr: String?
        public var inputTokens = 0
        public var outputTokens = 0
        public var costUSD: Double?
        public var durationMS: Double?
        /// A command verifier's argv, exit status and output (`raw`).
        public var commandArgv: [String]?
        public var exitStatus: Int?
        public var commandStdout: String?
        public var commandStderr: String?
        /// Whether a plan's command (a command model or verifier) ran in the sandbox; nil for other
        /// calls and for records that predate the field.
        public var commandSandboxed: Bool?
        /// The juror asked, for a jury critic's call (its agent is `critic/JOB/NAME`).
        public var juror: String?
    }

    /// A jury's judgement of one attempt: `jury.convened`, the `jury.voted` events, `jury.decided`.
    public struct Jury: Sendable, Equatable {
        public struct Vote: Sendable, Equatable {
            public var juror: String
            /// `pass`, `fail` or `error`.
            public var outcome: String
            public var score: Double?
            public var feedback: String
            public var error: String?
        }

        public struct Decision: Sendable, Equatable {
            public var outcome: String
            public var passes: Int
            public var fails: Int
            public var errors: Int
            public var score: Double
            public var feedback: String
        }

        public var rule: String
        public var jurors: [String]
        /// Juror indexes in the order they were asked.
        public var order: [Int]
        public var seed: Int
        public var votes: [Vote] = []
        public var decision: Decision?

        /// The jurors' names in the order they were asked.
        public var askedOrder: [String] { order.map { jurors.indices.contains($0) ? jurors[$0] : "?" } }
    }

    /// One tool call of the actor or of a model critic: `tool.started` and its `tool.completed`.
    public struct Tool: Sendable {
        public var id: String
        public var seq: Int
        public var name: String
        /// Whose call it is: `actor` or `critic`.
        public var role = "actor"
        /// The model's id for the call (`tool_call_id`), which a critic's `evidence` names.
        public var modelID: String?
        public var argv: [String]?
        public var path: String?
        public var bytes: Int?
        public var invalid: String?
        public var arguments: String?
        public var ok: Bool?
        public var restarted = false
        public var exitStatus: Int?
        public var signal: Int?
        public var timedOut = false
        public var errorText: String?
        public var stdout: String?
        public var stderr: String?
        public var content: String?
        /// Why and how the result's output was cut (`ToolAllowance.truncation`), when it was.
        public var truncation: String?
        public var bytesWritten: Int?
        public var durationMS: Double?
    }

    /// One candidate of an attempt (record format 4): `candidate.started` and what became of it.
    public struct Candidate: Sendable, Equatable {
        public var attempt: Int
        public var sample: Int
        /// The candidate it revises (attempt, sample); nil for a step's first attempt.
        public var parent: (attempt: Int, sample: Int)?
        public var temperature: Double?
        /// Its private copy of the workspace, when it had one.
        public var workspace: String?
        /// `pass`, `fail`, `unusable`, `duplicate`, `rejected`; nil until judged.
        public var outcome: String?
        public var score: Double?
        public var feedback: String?
        /// Why the job went on with it (`passed`, `best`), when it did.
        public var chosen: String?

        public static func == (a: Candidate, b: Candidate) -> Bool {
            a.attempt == b.attempt && a.sample == b.sample && a.parent?.attempt == b.parent?.attempt
                && a.parent?.sample == b.parent?.sample && a.temperature == b.temperature && a.workspace == b.workspace
                && a.outcome == b.outcome && a.score == b.score && a.feedback == b.feedback && a.chosen == b.chosen
        }
    }

    public struct Attempt: Sendable {
        public enum Outcome: String, Sendable { case pass, fail, invalid, pending }
        public var index: Int
        /// Indices into `calls`: the actor's model turns, then the critic's calls.
        public var actorCalls: [Int] = []
        public var criticCalls: [Int] = []
        /// Indices into `tools`: the actor's tool calls, then the critic's.
        public var tools: [Int] = []
        public var criticTools: [Int] = []
        public var duplicateOf: Int?
        public var duplicateFeedback: String?
        /// What the rerun was told: the previous attempt's feedback (and suggestion).
        public var feedbackCarried: String?
        public var suggestionCarried: String?
        /// The jury that judged this attempt, when the critic is one.
        public var jury: Jury?
        public var outcome = Outcome.pending
        /// Its candidates, by sample (record format 4); several when the policy asks for samples.
        public var candidates: [Candidate] = []
    }

    public struct Step: Sendable {
        /// Which plan the step belongs to: 0 before any re-plan, then the re-plan's number.
        public var replan: Int
        public var index: Int
        public var title: String?
        public var attempts: [Attempt] = []
        public var exhausted = false
        public var lastFeedback: String?

        public var passed: Bool { attempts.last?.outcome == .pass }

        /// Whether an attempt of the step had more than one candidate: then the step's candidates
        /// are shown one by one and as a tree.
        public var sampled: Bool { attempts.contains { $0.candidates.count > 1 } }

        /// The step's candidates as a tree: each with its depth, children right after their parent,
        /// siblings by attempt and sample.
        public var candidateTree: [(depth: Int, candidate: Candidate)] {
            let all = attempts.flatMap(\.candidates)
            var out: [(depth: Int, candidate: Candidate)] = []
            func visit(_ c: Candidate, _ depth: Int) {
                out.append((depth, c))
                for child in all where child.parent?.attempt == c.attempt && child.parent?.sample == c.sample { visit(child, depth + 1) }
            }
            // Roots: no parent, or a parent the record does not hold.
            for c in all
            where c.parent.map({ p in !all.contains { $0.attempt == p.attempt && $0.sample == p.sample } }) ?? true {
                visit(c, 0)
            }
            return out
        }
    }

    public struct Replan: Sendable {
        public var number: Int
        public var seq: Int
        public var fromStep: Int
        public var steps: [String]
    }

    /// The timeline, in the order things happened.
    public enum Entry: Sendable {
        /// Planner calls (indices into `calls`); with the re-plan they produced, if any.
        case planning(calls: [Int], replan: Replan?)
        /// Index into `steps`.
        case step(Int)
        /// Verifier calls.
        case verification(calls: [Int])
        case note(seq: Int, text: String)
    }

    public struct Summary: Sendable {
        public var status: String
        public var reason: String?
        public var durationMS: Int64?
        public var completedCalls = 0
        public var failedCalls = 0
        public var callsByRole: [(role: String, calls: Int)] = []
        public var inputTokens = 0
        public var outputTokens = 0
        public var costUSD: Double?
        public var steps = 0
        public var attempts = 0
        public var reruns = 0
        public var replans = 0
        public var toolCalls = 0
        public var verified: Bool?
    }

    public var jobID: String
    public var planName: String
    public var goal: String
    public var inputs: JSON
    public var createdAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64?
    public var calls: [Call] = []
    public var tools: [Tool] = []
    public var steps: [Step] = []
    public var entries: [Entry] = []
    public var summary: Summary
    public var eventCount = 0

    /// `job` is the job object (`job.get` or the `job` of `job.transcript`); `events` its events in `seq` order.
    public init(job: JSON, events: [JSON]) {
        jobID = job["id"]?.stringValue ?? events.first?["job"]?.stringValue ?? "?"
        planName = job["plan"]?.stringValue ?? "?"
        goal = job["goal"]?.stringValue ?? ""
        inputs = job["inputs"] ?? .object([])
        createdAt = job["created_at"]?.intValue.map(Int64.init)
        startedAt = job["started_at"]?.intValue.map(Int64.init)
        finishedAt = job["finished_at"]?.intValue.map(Int64.init)
        summary = Summary(status: job["status"]?.stringValue ?? "?", reason: job["reason"]?.stringValue)
        var builder = Builder()
        for event in events { builder.add(event, to: &self) }
        eventCount = events.count
        finish(builder)
    }

    private mutating func finish(_ builder: Builder) {
        if let start = startedAt ?? builder.firstAt, let end = finishedAt ?? builder.lastAt { summary.durationMS = end - start }
        var perRole: [String: Int] = [:]
        var cost: Double?
        for call in calls {
            switch call.state {
            case .completed:
                summary.completedCalls += 1
                perRole[call.role, default: 0] += 1
            case .failed: summary.failedCalls += 1
            case .pending: break
            }
            summary.inputTokens += call.inputTokens
            summary.outputTokens += call.outputTokens
            if let c = call.costUSD { cost = (cost ?? 0) + c }
        }
        summary.costUSD = cost
        summary.callsByRole = ["planner", "actor", "critic", "verifier"].compactMap { role in
            perRole[role].map { (role, $0) }
        }
        summary.steps = steps.count
        summary.attempts = steps.reduce(0) { $0 + $1.attempts.count }
        summary.reruns = steps.reduce(0) { $0 + max(0, $1.attempts.count - 1) }
        summary.toolCalls = tools.count
        if summary.status == "?", let last = builder.lastState { summary.status = last }
        if summary.reason == nil { summary.reason = builder.lastReason }
    }

}

extension TranscriptModel.Summary {
    /// Calls per role as `planner 1, actor 6, …`.
    public var callsByRoleText: String {
        callsByRole.map { "\($0.role) \($0.calls)" }.joined(separator: ", ")
    }
}

/// Formatting shared by the renderers.
enum Format {
    /// How a plan's command ran, as a suffix: " (unsandboxed)" when the plan opted out of the sandbox;
    /// nothing when it was sandboxed or the record predates the field.
    static func confinement(_ sandboxed: Bool?) -> String {
        sandboxed == false ? " (unsandboxed)" : ""
    }

    static func duration(_ ms: Int64?) -> String {
        guard let ms else { return "—" }
        if ms < 1000 { return "\(ms) ms" }
        if ms < 60_000 { return fixed(Double(ms) / 1000, 2) + " s" }
        return "\(ms / 60_000) min \((ms % 60_000) / 1000) s"
    }

    static func millis(_ ms: Double?) -> String {
        guard let ms else { return "—" }
        return ms < 10 ? fixed(ms, 2) + " ms" : fixed(ms, 0) + " ms"
    }

    static func cost(_ usd: Double?) -> String {
        usd.map { "$" + fixed($0, 4) } ?? "—"
    }

    static func score(_ s: Double?) -> String {
        s.map { fixed($0, 2) } ?? "—"
    }

    /// `value` with `digits` decimals, without Foundation.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let negative = value < 0
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        let frac = Int(scaled - Double(whole) * scale)
        var text = (negative && scaled != 0 ? "-" : "") + String(whole)
        if digits > 0 {
            let f = String(frac)
            text += "." + String(repeating: "0", count: max(0, digits - f.count)) + f
        }
        return text
    }

    /// At most `limit` characters, with how many were left out.
    static func capped(_ text: String, _ limit: Int) -> String {
        guard text.count > limit else { return text }
        return String(text.prefix(limit)) + "… (\(text.count - limit) more characters)"
    }

    static func verdictLabel(_ v: TranscriptModel.Verdict) -> String {
        v.verdict == "pass" ? "PASS" : v.verdict == "fail" ? "FAIL" : v.verdict.uppercased()
    }

    /// One line per item of a verdict's `evidence`: the id the critic cited and the tool call of
    /// its own it names (`call_0 → c3.0 read_file notes.txt`), or that the record holds none.
    static func evidence(_ v: TranscriptModel.Verdict, tools: [TranscriptModel.Tool]) -> [String] {
        v.evidence.enumerated().map { k, id in
            let index = k < v.evidenceTools.count ? v.evidenceTools[k] : nil
            guard let index else { return "\(id) → no tool call of the critic's has this id" }
            return "\(id) → \(tools[index].id) \(toolLine(tools[index]))"
        }
    }

    static func tokens(_ call: TranscriptModel.Call) -> String {
        call.inputTokens + call.outputTokens > 0 ? ", \(call.inputTokens)+\(call.outputTokens) tokens" : ""
    }

    /// A tool call on one line: `run_command [ls, -l]`.
    static func toolLine(_ tool: TranscriptModel.Tool) -> String {
        var line = tool.name
        if let argv = tool.argv { line += " [" + argv.map(quoted).joined(separator: ", ") + "]" }
        if let path = tool.path { line += " " + path }
        if let bytes = tool.bytes { line += " (\(bytes) bytes)" }
        if let invalid = tool.invalid { line += " — invalid: " + invalid }
        return line
    }

    static func toolResult(_ tool: TranscriptModel.Tool) -> String {
        var parts: [String] = []
        if let ok = tool.ok { parts.append(ok ? "ok" : "not ok") } else { parts.append("no result recorded") }
        if let status = tool.exitStatus { parts.append("exit \(status)") }
        if let signal = tool.signal, signal != 0 { parts.append("signal \(signal)") }
        if tool.timedOut { parts.append("timed out") }
        if let written = tool.bytesWritten { parts.append("\(written) bytes written") }
        if let error = tool.errorText { parts.append("error: \(error)") }
        if let truncation = tool.truncation { parts.append(truncation) }
        if tool.durationMS != nil { parts.append(millis(tool.durationMS)) }
        if tool.restarted { parts.append("ran again after a restart") }
        return parts.joined(separator: ", ")
    }

    static func quoted(_ s: String) -> String {
        s.isEmpty || s.contains(where: { $0 == " " || $0 == "\"" || $0 == "," }) ? JSON.string(s).encoded : s
    }

    /// The tools among `tools` that the calls `calls` asked for (a tool's id is its call's id, a dot
    /// and an index), in their order.
    static func tools(of calls: [Int], in tools: [Int], _ m: TranscriptModel) -> [Int] {
        let prefixes = calls.map { m.calls[$0].id + "." }
        return tools.filter { t in prefixes.contains { m.tools[t].id.hasPrefix($0) } }
    }

    /// `attempt 2, candidate 1`, one-based.
    static func candidateName(attempt: Int, sample: Int) -> String {
        "attempt \(attempt + 1), candidate \(sample + 1)"
    }

    /// A candidate's heading: which it is, what it revises, its temperature and workspace.
    static func candidateHead(_ c: TranscriptModel.Candidate) -> String {
        var parts: [String] = []
        if let t = c.temperature { parts.append("temperature \(fixed(t, 2))") }
        if let p = c.parent { parts.append("revises " + candidateName(attempt: p.attempt, sample: p.sample)) }
        if let w = c.workspace { parts.append("workspace \(w)") }
        return "Candidate \(c.sample + 1)" + (parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")")
    }

    /// What became of a candidate: `judged PASS (score 0.90) — chosen: …`; the feedback when no
    /// critic's call shows it (a duplicate, an unusable or rejected candidate).
    static func candidateResult(_ c: TranscriptModel.Candidate) -> String {
        var text: String
        switch c.outcome {
        case nil: text = "not judged yet"
        case "duplicate"?: text = "same output as an earlier candidate; not judged again (feedback reused: \(c.feedback ?? ""))"
        case "unusable"?: text = "UNUSABLE: \(c.feedback ?? "")"
        case "rejected"?: text = "REJECTED by the reviewer (score \(score(c.score))): \(c.feedback ?? "")"
        case let outcome?: text = "judged \(outcome.uppercased()) (score \(score(c.score)))"
        }
        switch c.chosen {
        case "passed"?: text += " — chosen: the best-scored pass"
        case "best"?: text += " — chosen: the best scored, though none passed (policy.on_exhausted: best)"
        default: break
        }
        return text
    }

    /// A candidate on one line of the step's tree.
    static func candidateLine(_ c: TranscriptModel.Candidate) -> String {
        var text = candidateName(attempt: c.attempt, sample: c.sample) + ": " + (c.outcome ?? "not judged")
        if let s = c.score { text += " " + score(s) }
        if let chosen = c.chosen { text += " ← chosen (\(chosen))" }
        return text
    }

    static func stepName(_ step: TranscriptModel.Step) -> String {
        "Step \(step.index + 1)" + (step.replan > 0 ? " (plan \(step.replan + 1))" : "")
    }

    /// The output cap for tool and command output.
    static let outputCap = 4000
}
