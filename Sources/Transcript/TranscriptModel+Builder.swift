import Store

extension TranscriptModel {
    /// Mutable state while events are read.
    struct Builder {
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
                // A jury's merged suggestions are not in its record; its last juror's would mislead.
                if previous.jury == nil, let last = previous.criticCalls.last {
                    new.suggestionCarried = model.calls[last].verdict?.suggestion
                }
            }
            model.steps[s].attempts.append(new)
            return (s, model.steps[s].attempts.count - 1)
        }

        static func feedback(of attempt: Attempt, _ model: TranscriptModel) -> String? {
            if let dup = attempt.duplicateFeedback { return dup }
            if let decided = attempt.jury?.decision { return decided.feedback }
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
                if let original = submitted?.retryOf {
                    let step = submitted?.fromStep ?? 1
                    model.entries.append(
                        .note(
                            seq: seq,
                            text:
                                "a retry of job \(original) from step \(step): the calls before step \(step) are reused from its record, not made again"
                        ))
                }
            case .jobRetried?:
                guard let retried = try? JobRetried(payload: payload) else { return note(kind, seq, &model) }
                model.entries.append(.note(seq: seq, text: "retried as job \(retried.job) from step \(retried.fromStep)"))
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
                    if role == "critic", let job = event["job"]?.stringValue, started.agent.hasPrefix("critic/\(job)/") {
                        call.juror = String(started.agent.dropFirst("critic/\(job)/".count))
                    }
                    call.reask = started.reask
                    call.turn = request.turn
                    call.sample = started.request["sample"]?.intValue
                    call.model = request.model
                    call.messages = request.messages.map { m in
                        var content = m.content
                        if let calls = m.toolCalls { content += (content.isEmpty ? "" : "\n") + "tool_calls: " + calls.encoded }
                        return Message(role: m.role, content: content)
                    }
                }
                call.reused = payload[RetryPrefix.member] != nil
                // The ground-truth check's calls (the agent `critic/JOB/check`) are not the critic's:
                // its `step.checked` shows what it said.
                if role == "critic", (try? CallStarted(payload: payload))?.agent.hasSuffix("/check") == true { call.role = "check" }
                model.calls.append(call)
                let i = model.calls.count - 1
                callIndex[call.id] = i
                if call.role == "check" { return }
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
                        if let evidence = call.verdict?.evidence, !evidence.isEmpty {
                            let tools = model.steps[s].attempts[a].criticTools
                            model.calls[i].verdict?.evidenceTools = evidence.map { id in
                                tools.last { model.tools[$0].modelID == id }
                            }
                        }
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
                tool.role = event["role"]?.stringValue ?? "actor"
                tool.modelID = started?.toolCallID
                tool.argv = started?.argv
                tool.path = started?.path
                tool.bytes = started?.bytes
                tool.invalid = started?.invalid
                tool.arguments = started?.arguments
                model.tools.append(tool)
                let i = model.tools.count - 1
                toolIndex[tool.id] = i
                let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                if tool.role == "critic" {
                    model.steps[s].attempts[a].criticTools.append(i)
                } else {
                    model.steps[s].attempts[a].tools.append(i)
                }
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
            case .candidateStarted?:
                guard let started = try? CandidateStarted(payload: payload) else { return note(kind, seq, &model) }
                let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                // A rerun of several candidates reads the feedback of the one it revises.
                if let p = started.parent, let parentAttempt = model.steps[s].attempts.first(where: { $0.index == p.attempt }),
                    parentAttempt.candidates.count > 1, let revised = parentAttempt.candidates.first(where: { $0.sample == p.sample })
                {
                    model.steps[s].attempts[a].feedbackCarried = revised.feedback
                    model.steps[s].attempts[a].suggestionCarried = nil
                }
                model.steps[s].attempts[a].candidates.append(
                    Candidate(
                        attempt: attempt ?? 0, sample: started.sample, parent: started.parent.map { ($0.attempt, $0.sample) },
                        temperature: started.temperature, workspace: started.workspace))
            case .candidateJudged?:
                guard let judged = try? CandidateJudged(payload: payload) else { return note(kind, seq, &model) }
                let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                guard let c = model.steps[s].attempts[a].candidates.firstIndex(where: { $0.sample == judged.sample }) else { return }
                model.steps[s].attempts[a].candidates[c].outcome = judged.outcome.rawValue
                model.steps[s].attempts[a].candidates[c].score = judged.score
                model.steps[s].attempts[a].candidates[c].feedback = judged.feedback
                // One candidate's attempt is as its critic judged it; an attempt of several passes only
                // when one is chosen.
                let single = model.steps[s].attempts[a].candidates.count == 1
                if !single || judged.outcome != .pass {
                    model.steps[s].attempts[a].outcome = single && judged.outcome == .unusable ? .invalid : .fail
                }
            case .candidateChosen?:
                guard let chosen = try? CandidateChosen(payload: payload) else { return note(kind, seq, &model) }
                let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                if let c = model.steps[s].attempts[a].candidates.firstIndex(where: { $0.sample == chosen.sample }) {
                    model.steps[s].attempts[a].candidates[c].chosen = chosen.reason.rawValue
                }
                if chosen.reason == .passed {
                    model.steps[s].attempts[a].outcome = .pass
                } else {
                    let score = chosen.score.map { " (score \(JSON.number($0).encoded))" } ?? ""
                    model.entries.append(
                        .note(
                            seq: seq,
                            text:
                                "step \((step ?? 0) + 1): the job goes on with attempt \((attempt ?? 0) + 1), candidate \(chosen.sample + 1)\(score), the best scored (policy.on_exhausted: best)"
                        ))
                }
            case .stepExhausted?:
                let s = self.step(step ?? 0, in: &model)
                let exhausted = try? StepExhausted(payload: payload)
                model.steps[s].exhausted = true
                model.steps[s].lastFeedback = exhausted?.lastFeedback
                if let best = exhausted?.bestAttempt {
                    let score = exhausted?.bestScore.map { " (score \(JSON.number($0).encoded))" } ?? ""
                    model.entries.append(
                        .note(
                            seq: seq,
                            text:
                                "step \((step ?? 0) + 1): every attempt failed; the job goes on with attempt \(best + 1)\(score), the best scored (policy.on_exhausted: best)"
                        ))
                }
            case .stepTimedOut?:
                let reason = (try? StepTimedOut(payload: payload))?.reason ?? "the step ran out of time"
                model.entries.append(.note(seq: seq, text: "step \((step ?? 0) + 1): \(reason)"))
            case .gateRequested?:
                guard let gate = try? GateRequested(payload: payload) else { return note(kind, seq, &model) }
                model.entries.append(
                    .note(
                        seq: seq,
                        text:
                            "step \((step ?? 0) + 1): gate \(gate.gate) holds \(gate.tool) \(gate.arguments) for review (\(gate.review)); request \(gate.requestSHA256.prefix(12))"
                    ))
            case .gateDecided?:
                guard let d = try? GateDecided(payload: payload) else { return note(kind, seq, &model) }
                var who = "by the \(d.by.rawValue)"
                if d.by == .person { who = "by " + (d.user ?? "a person") + (d.uid.map { " (uid \($0))" } ?? "") }
                if let call = d.call { who += " (\(call))" }
                var text = "gate \(d.gate) \(d.decision.rawValue) \(who) after \(Format.millis(d.waitedMs))"
                if let edited = d.editedArguments { text += "; runs with the arguments \(edited)" }
                if let note = d.note { text += ": \(note)" }
                model.entries.append(.note(seq: seq, text: "step \((step ?? 0) + 1): " + text))
            case .gateRefused?:
                guard let r = try? GateRefused(payload: payload) else { return note(kind, seq, &model) }
                model.entries.append(
                    .note(
                        seq: seq,
                        text: "gate \(r.gate): a decision by uid \(r.uid)\(r.user.map { " (\($0))" } ?? "") was refused: \(r.reason)"))
            case .stepChecked?:
                guard let checked = try? StepChecked(payload: payload) else { return note(kind, seq, &model) }
                model.entries.append(
                    .note(
                        seq: seq,
                        text:
                            "step \((step ?? 0) + 1) attempt \((attempt ?? 0) + 1): the ground-truth check found it \(checked.passed ? "right" : "wrong") (for stats only; no agent sees it)"
                    ))
            case .stepInfeasible?:
                let infeasible = try? StepInfeasible(payload: payload)
                let text =
                    infeasible.map {
                        "judged infeasible after \($0.attempts) attempt\($0.attempts == 1 ? "" : "s") (feasibility \(JSON.number($0.feasibility).encoded) below policy.replan_below \(JSON.number($0.replanBelow).encoded)): re-planned at once"
                    } ?? "judged infeasible: re-planned at once"
                model.entries.append(.note(seq: seq, text: "step \((step ?? 0) + 1): \(text)"))
            case .juryConvened?:
                guard let c = try? JuryConvened(payload: payload) else { return note(kind, seq, &model) }
                let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                model.steps[s].attempts[a].jury = Jury(rule: c.rule, jurors: c.jurors, order: c.order, seed: c.seed)
            case .juryVoted?:
                guard let v = try? JuryVoted(payload: payload) else { return note(kind, seq, &model) }
                let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                model.steps[s].attempts[a].jury?.votes.append(
                    Jury.Vote(juror: v.juror, outcome: v.outcome.rawValue, score: v.score, feedback: v.feedback, error: v.error))
            case .juryDecided?:
                guard let d = try? JuryDecided(payload: payload) else { return note(kind, seq, &model) }
                let (s, a) = self.attempt(step ?? 0, attempt ?? 0, in: &model)
                model.steps[s].attempts[a].jury?.decision = Jury.Decision(
                    outcome: d.outcome.rawValue, passes: d.passes, fails: d.fails, errors: d.errors, score: d.score, feedback: d.feedback)
                // The jury's decision is the attempt's verdict, whatever its jurors said one by one.
                model.steps[s].attempts[a].outcome = d.outcome == .pass ? .pass : .fail
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
                var details: [String] = []
                if let e = v["first_error"]?.stringValue { details.append("first error: \(e)") }
                if let modes = v["failure_modes"]?.arrayValue, !modes.isEmpty {
                    details.append("failure modes: " + modes.map { $0.stringValue ?? $0.encoded }.joined(separator: "; "))
                }
                for key in ["confidence", "feasibility"] {
                    if let n = v[key], case .number = n { details.append("\(key): \(n.encoded)") }
                }
                call.verdict = Verdict(
                    verdict: v["verdict"]?.stringValue ?? "?", score: v["score"]?.doubleValue,
                    feedback: v["feedback"]?.stringValue ?? "", suggestion: v["suggestion"]?.stringValue, details: details,
                    evidence: v["evidence"]?.arrayValue?.compactMap(\.stringValue) ?? [])
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
