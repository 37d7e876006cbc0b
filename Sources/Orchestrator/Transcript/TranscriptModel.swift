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
        public var model: String?
        public var messages: [Message] = []
        public var state = State.pending
        /// A `call.restarted` marked it: the daemon stopped before it completed.
        public var restarted = false
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
    }

    /// One tool call of the actor: `tool.started` and its `tool.completed`.
    public struct Tool: Sendable {
        public var id: String
        public var seq: Int
        public var name: String
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

    public struct Attempt: Sendable {
        public enum Outcome: String, Sendable { case pass, fail, invalid, pending }
        public var index: Int
        /// Indices into `calls`: the actor's model turns, then the critic's calls.
        public var actorCalls: [Int] = []
        public var criticCalls: [Int] = []
        /// Indices into `tools`.
        public var tools: [Int] = []
        public var duplicateOf: Int?
        public var duplicateFeedback: String?
        /// What the rerun was told: the previous attempt's feedback (and suggestion).
        public var feedbackCarried: String?
        public var suggestionCarried: String?
        public var outcome = Outcome.pending
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

    /// Mutable state while events are read.
    private struct Builder {
        var callIndex: [String: Int] = [:]
        var toolIndex: [String: Int] = [:]
        var stepIndex: [Int: [Int: Int]] = [:]  // replan -> step -> index into steps
        var replan = 0
        var currentSteps: [String] = []
        var firstAt: Int64?
        var lastAt: Int64?
        var lastState: String?
        var lastReason: String?

        mutating func step(_ step: Int, in model: inout TranscriptModel) -> Int {
            if let i = stepIndex[replan]?[step] { return i }
            let title = step < currentSteps.count ? currentSteps[step] : nil
            model.steps.append(Step(replan: replan, index: step, title: title))
            let i = model.steps.count - 1
            stepIndex[replan, default: [:]][step] = i
            model.entries.append(.step(i))
            return i
        }

        mutating func attempt(_ step: Int, _ attempt: Int, in model: inout TranscriptModel) -> (Int, Int) {
            let s = self.step(step, in: &model)
            if let a = model.steps[s].attempts.firstIndex(where: { $0.index == attempt }) { return (s, a) }
            var new = Attempt(index: attempt)
            if let previous = model.steps[s].attempts.last {
                new.feedbackCarried = Self.feedback(of: previous, model)
                if let last = previous.criticCalls.last { new.suggestionCarried = model.calls[last].verdict?.suggestion }
            }
            model.steps[s].attempts.append(new)
            return (s, model.steps[s].attempts.count - 1)
        }

        static func feedback(of attempt: Attempt, _ model: TranscriptModel) -> String? {
            if let dup = attempt.duplicateFeedback { return dup }
            for i in attempt.criticCalls.reversed() {
                if let v = model.calls[i].verdict { return v.feedback }
            }
            if let last = attempt.actorCalls.last {
                let call = model.calls[last]
                return call.invalid ?? call.errorMessage
            }
            return nil
        }

        mutating func add(_ event: JSON, to model: inout TranscriptModel) {
            let kind = event["kind"]?.stringValue ?? ""
            let seq = event["seq"]?.intValue ?? 0
            let payload = event["payload"] ?? .object([])
            let role = event["role"]?.stringValue
            let step = event["step"]?.intValue
            let attempt = event["attempt"]?.intValue
            if let at = event["at"]?.intValue {
                if firstAt == nil { firstAt = Int64(at) }
                lastAt = Int64(at)
            }
            switch EventKind(rawValue: kind) {
            case .jobSubmitted?:
                let submitted = try? JobSubmitted(payload: payload)
                if model.goal.isEmpty { model.goal = submitted?.goal ?? "" }
                if model.planName == "?" { model.planName = submitted?.plan ?? "?" }
            case .jobState?:
                guard let state = try? JobState(payload: payload) else { return note(kind, seq, &model) }
                if let fixed = state.steps { currentSteps = fixed }
                lastState = state.to.rawValue
                if let reason = state.reason { lastReason = reason }
                if let to = lastState, to != "running" {
                    model.entries.append(.note(seq: seq, text: "job \(to)" + (lastReason.map { ": \($0)" } ?? "")))
                }
            case .jobResumed?:
                let n = (try? JobResumed(payload: payload))?.replayingEvents ?? 0
                model.entries.append(
                    .note(seq: seq, text: "resumed after a restart (\(n) recorded events replayed; completed calls not made again)"))
            case .jobReplanned?:
                replan += 1
                guard let replanned = try? JobReplanned(payload: payload) else { return note(kind, seq, &model) }
                let (new, from) = (replanned.steps, replanned.fromStep)
                currentSteps = Array(currentSteps.prefix(from)) + new
                let info = Replan(number: replanned.replan, seq: seq, fromStep: from, steps: new)
                if case .planning(let calls, nil)? = model.entries.last {
                    model.entries[model.entries.count - 1] = .planning(calls: calls, replan: info)
                } else {
                    model.entries.append(.planning(calls: [], replan: info))
                }
                model.summary.replans += 1
            case .callStarted?:
                var call = Call(id: event["call"]?.stringValue ?? "c?", seq: seq, role: role ?? "?", step: step, attempt: attempt)
                if let started = try? CallStarted(payload: payload) {
                    let request = started.summary
                    call.reask = started.reask
                    call.turn = request.turn
                    call.model = request.model
                    call.messages = request.messages.map { m in
                        var content = m.content
                        if let calls = m.toolCalls { content += (content.isEmpty ? "" : "\n") + "tool_calls: " + calls.encoded }
                        return Message(role: m.role, content: content)
                    }
                }
                model.calls.append(call)
                let i = model.calls.count - 1
                callIndex[call.id] = i
                switch role {
                case "actor":
                    let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                    model.steps[s].attempts[a].actorCalls.append(i)
                case "critic":
                    let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                    model.steps[s].attempts[a].criticCalls.append(i)
                case "verifier":
                    if case .verification(let calls)? = model.entries.last {
                        model.entries[model.entries.count - 1] = .verification(calls: calls + [i])
                    } else {
                        model.entries.append(.verification(calls: [i]))
                    }
                default:
                    if case .planning(let calls, nil)? = model.entries.last {
                        model.entries[model.entries.count - 1] = .planning(calls: calls + [i], replan: nil)
                    } else {
                        model.entries.append(.planning(calls: [i], replan: nil))
                    }
                }
            case .callCompleted?, .callFailed?, .callRestarted?:
                guard let i = event["call"]?.stringValue.flatMap({ callIndex[$0] }) else { return }
                if kind == CallRestarted.kind.rawValue {
                    model.calls[i].restarted = true
                    return
                }
                complete(&model.calls[i], kind: kind, payload: payload)
                let call = model.calls[i]
                if call.role == "planner", replan == 0, let steps = call.steps, currentSteps.isEmpty { currentSteps = steps }
                if call.role == "critic" || call.role == "actor", let step, let attempt {
                    let (s, a) = self.attempt(step, attempt, in: &model)
                    if call.role == "critic" {
                        if let v = call.verdict {
                            model.steps[s].attempts[a].outcome = v.verdict == "pass" ? .pass : .fail
                        } else if model.steps[s].attempts[a].outcome == .pending {
                            model.steps[s].attempts[a].outcome = .invalid
                        }
                    } else if call.state == .failed || call.invalid != nil {
                        model.steps[s].attempts[a].outcome = .invalid
                    }
                }
            case .toolStarted?:
                let started = try? ToolStarted(payload: payload)
                var tool = Tool(id: event["call"]?.stringValue ?? "?", seq: seq, name: started?.tool ?? "?")
                tool.argv = started?.argv
                tool.path = started?.path
                tool.bytes = started?.bytes
                tool.invalid = started?.invalid
                tool.arguments = started?.arguments
                model.tools.append(tool)
                let i = model.tools.count - 1
                toolIndex[tool.id] = i
                let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                model.steps[s].attempts[a].tools.append(i)
            case .toolCompleted?, .toolRestarted?:
                guard let i = event["call"]?.stringValue.flatMap({ toolIndex[$0] }) else { return }
                if kind == ToolRestarted.kind.rawValue {
                    model.tools[i].restarted = true
                    return
                }
                guard let completed = try? ToolCompleted(payload: payload) else { return }
                let result = completed.outcome
                model.tools[i].ok = completed.ok
                model.tools[i].durationMS = completed.durationMs
                model.tools[i].exitStatus = result.exitStatus
                model.tools[i].signal = result.signal
                model.tools[i].timedOut = result.timedOut
                model.tools[i].errorText = result.error
                model.tools[i].stdout = result.stdout
                model.tools[i].stderr = result.stderr
                model.tools[i].content = result.content
                model.tools[i].truncation = result.truncation
                model.tools[i].bytesWritten = result.bytesWritten
            case .attemptDuplicate?:
                let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                let duplicate = try? AttemptDuplicate(payload: payload)
                model.steps[s].attempts[a].duplicateOf = duplicate?.sameAsAttempt
                model.steps[s].attempts[a].duplicateFeedback = duplicate?.feedback
                model.steps[s].attempts[a].outcome = .fail
            case .stepExhausted?:
                let s = self.step(step ?? 0, in: &model)
                model.steps[s].exhausted = true
                model.steps[s].lastFeedback = (try? StepExhausted(payload: payload))?.lastFeedback
            case .stepTimedOut?:
                let reason = (try? StepTimedOut(payload: payload))?.reason ?? "the step ran out of time"
                model.entries.append(.note(seq: seq, text: "step \((step ?? 0) + 1): \(reason)"))
            default:
                note(kind, seq, &model)
            }
        }

        /// An event shown by its kind alone: one this build does not know, or whose payload does not
        /// have its kind's shape.
        private func note(_ kind: String, _ seq: Int, _ model: inout TranscriptModel) {
            model.entries.append(.note(seq: seq, text: kind))
        }

        /// Fills `call` from its `call.completed` or `call.failed` payload; a payload of the wrong shape
        /// leaves the call without its results (the transcript still shows it).
        private func complete(_ call: inout Call, kind: String, payload: JSON) {
            if kind == CallFailed.kind.rawValue {
                call.state = .failed
                guard let failed = try? CallFailed(payload: payload) else { return }
                call.durationMS = failed.durationMs
                call.error = failed.error
                call.errorMessage = failed.message
                call.stderr = failed.stderr
                return
            }
            call.state = .completed
            guard let completed = try? CallCompleted(payload: payload) else { return }
            call.durationMS = completed.durationMs
            call.reply = completed.reply
            call.inputTokens = completed.usage?.inputTokens ?? 0
            call.outputTokens = completed.usage?.outputTokens ?? 0
            call.costUSD = completed.costUSD
            switch completed.outcome {
            case let .invalid(message)?: call.invalid = message
            case let .steps(steps)?: call.steps = steps
            case let .verdict(v)?:
                call.verdict = Verdict(
                    verdict: v["verdict"]?.stringValue ?? "?", score: v["score"]?.doubleValue,
                    feedback: v["feedback"]?.stringValue ?? "", suggestion: v["suggestion"]?.stringValue)
            case let .verification(verified, reason)?:
                call.verified = verified
                call.reason = reason
            case nil: break
            }
            call.toolCalls = completed.toolCalls.map { $0["function"]?["name"]?.stringValue ?? $0["name"]?.stringValue ?? "?" }
            if call.role == "actor", call.toolCalls.isEmpty, call.invalid == nil, let reply = call.reply {
                if reply.first == "{", let parsed = try? JSON.parse(reply), let output = parsed["output"]?.stringValue {
                    call.output = output
                } else {
                    call.output = reply
                }
            }
            call.commandSandboxed = completed.raw?["sandbox"]?.boolValue
            if let raw = completed.raw, let argv = raw["argv"]?.arrayValue {
                call.commandArgv = argv.map { $0.stringValue ?? $0.encoded }
                call.exitStatus = raw["exit_status"]?.intValue
                call.commandStdout = raw["stdout"]?.stringValue
                call.commandStderr = raw["stderr"]?.stringValue
            }
        }
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

    static func stepName(_ step: TranscriptModel.Step) -> String {
        "Step \(step.index + 1)" + (step.replan > 0 ? " (plan \(step.replan + 1))" : "")
    }

    /// The output cap for tool and command output.
    static let outputCap = 4000
}
