import Agents
import Store

/// Turns job events (as the protocol sends them) into lines a person can follow live:
/// step i of n, attempt, role, verdict. Steps and attempts are shown one-based.
struct ProgressPrinter {
    private var stepCount: Int?
    /// The ground-truth check's calls (critic-role calls of the agent `critic/JOB/check`), shown as `check`.
    private var checkCalls: Set<String> = []
    /// Whether the job asks for more than one candidate per attempt (a second one started): only
    /// then are candidates printed one by one.
    private var samples = false
    /// The temperature of the attempt's first candidate, printed once a second one starts.
    private var firstTemperature: Double?
    /// The candidate each model call asks for or judges (its request's `sample`), by call id.
    private var sampleOf: [String: Int] = [:]

    mutating func lines(for event: JSON) -> [String] {
        let kind = event["kind"]?.stringValue ?? "?"
        let call = event["call"]?.stringValue ?? ""
        if kind == EventKind.callStarted.rawValue, event["payload"]?["agent"]?.stringValue?.hasSuffix("/check") == true {
            checkCalls.insert(call)
        }
        let role = checkCalls.contains(call) ? "check" : event["role"]?.stringValue
        let step = event["step"]?.intValue
        let attempt = event["attempt"]?.intValue
        let payload = event["payload"] ?? .null
        let seq = event["seq"]?.intValue ?? 0
        var out: [String] = []
        let seqText = String(seq)
        let prefix = "[" + String(repeating: " ", count: max(0, 3 - seqText.count)) + seqText + "] "
        func stepLabel() -> String {
            guard let step else { return pad("", 10) }
            return pad("step \(step + 1)/\(stepCount.map(String.init) ?? "?")", 10)
        }
        func roleLabel() -> String { pad(role ?? "", 8) }
        if kind == EventKind.callStarted.rawValue, let sample = event["payload"]?["request"]?["sample"]?.intValue {
            sampleOf[call] = sample
        }
        // A tool's call id is its model call's, a dot and an index.
        let sample = sampleOf[String(call.prefix { $0 != "." })]
        func attemptLabel() -> String {
            attempt.map { "attempt \($0 + 1)" + (sample.map { ", candidate \($0 + 1)" } ?? "") } ?? ""
        }

        switch EventKind(rawValue: kind) {
        case .jobSubmitted?:
            let submitted = try? JobSubmitted(payload: payload)
            out.append(prefix + "queued     plan \(submitted?.plan ?? "?"): \(submitted?.goal ?? "")")
            if let original = submitted?.retryOf {
                out.append(
                    "           a retry of job \(original) from step \(submitted?.fromStep ?? 1): the calls before it are answered from its record"
                )
            }
        case .jobState?:
            let state = try? JobState(payload: payload)
            let to = state?.to.rawValue ?? "?"
            if let fixed = state?.steps { stepCount = fixed.count }
            var line = prefix + to
            if let reason = state?.reason { line = prefix + pad(to, 10) + " \(reason)" }
            out.append(line)
        case .jobResumed?:
            out.append(prefix + "resumed    after a restart; completed calls are not made again")
        case .jobReplanned?:
            let replanned = (try? JobReplanned(payload: payload)) ?? JobReplanned(replan: 0, fromStep: 0, steps: [])
            let (steps, from) = (replanned.steps, replanned.fromStep)
            stepCount = from + steps.count
            out.append(prefix + "re-plan    #\(replanned.replan) from step \(from + 1): \(steps.count) new steps")
            for (i, s) in steps.enumerated() { out.append("           \(from + i + 1). \(s)") }
        case .callStarted?:
            let reask = (try? CallStarted(payload: payload))?.reask ?? 0
            if role == "actor", let a = attempt, a > 0 {
                out.append(prefix + "\(stepLabel()) \(roleLabel()) \(attemptLabel())  rerun with the critic's feedback")
            } else if reask > 0 {
                out.append(prefix + "\(stepLabel()) \(roleLabel()) asked again after an invalid reply (\(reask))")
            }
        case .callRestarted?:
            out.append(prefix + "\(stepLabel()) \(roleLabel()) call made again: the daemon stopped before it completed")
        case .callCompleted? where checkCalls.contains(call):
            break  // the check's `step.checked` says what it found
        case .callCompleted?:
            let reused = payload[RetryPrefix.member] == nil ? "" : " (reused)"
            out.append(prefix + completed(payload, stepLabel(), roleLabel(), attemptLabel()) + reused)
        case .callFailed?:
            let failed = try? CallFailed(payload: payload)
            var line = prefix + "\(stepLabel()) \(roleLabel()) \(attemptLabel())  call failed: \(failed?.message ?? "?")"
            if let stderr = failed?.stderr, !stderr.isEmpty { line += " (stderr: \(oneLine(stderr, 120)))" }
            out.append(line)
        case .toolStarted?:
            let started = try? ToolStarted(payload: payload)
            let what =
                started?.argv.map { JSON.array($0.map(JSON.string)).encoded } ?? started?.path
                ?? "invalid call: \(started?.invalid ?? "?")"
            out.append(prefix + "\(stepLabel()) \(roleLabel()) \(attemptLabel())  tool \(started?.tool ?? "?") \(oneLine(what, 160))")
        case .toolCompleted?:
            let completed = try? ToolCompleted(payload: payload)
            let result = completed?.outcome
            var summary = completed?.ok == true ? "ok" : "failed"
            if let error = result?.error {
                summary += ": \(oneLine(error, 160))"
            } else if let status = result?.exitStatus {
                summary += " (exit status \(status))"
            }
            out.append(prefix + "\(stepLabel()) \(roleLabel()) \(attemptLabel())  tool \(completed?.tool ?? "?") \(summary)")
        case .toolRestarted?:
            out.append(prefix + "\(stepLabel()) \(roleLabel()) tool run again: the daemon stopped before it completed")
        case .attemptDuplicate?:
            out.append(
                prefix
                    + "\(stepLabel()) \(roleLabel()) \(attemptLabel())  same output as rejected attempt \(((try? AttemptDuplicate(payload: payload))?.sameAsAttempt ?? 0) + 1); not judged again"
            )
        case .candidateStarted?:
            guard let started = try? CandidateStarted(payload: payload) else { break }
            guard started.sample > 0 else {
                firstTemperature = started.temperature
                break
            }
            samples = true
            // Known to be one of several once the second starts: the first is printed then.
            if started.sample == 1, let first = firstTemperature {
                out.append(prefix + "\(stepLabel()) \(roleLabel()) \(attemptLabel())  candidate 1 (temperature \(rounded(first)))")
            }
            out.append(
                prefix
                    + "\(stepLabel()) \(roleLabel()) \(attemptLabel())  candidate \(started.sample + 1) (temperature \(rounded(started.temperature)))"
            )
        case .candidateJudged?:
            guard samples, let judged = try? CandidateJudged(payload: payload) else { break }
            let score = judged.score.map { ", score \($0)" } ?? ""
            out.append(
                prefix
                    + "\(stepLabel()) \(roleLabel()) attempt \((attempt ?? 0) + 1), candidate \(judged.sample + 1)  judged \(judged.outcome.rawValue)\(score)"
            )
        case .candidateChosen?:
            guard let chosen = try? CandidateChosen(payload: payload), samples || chosen.reason == .best else { break }
            let why = chosen.reason == .best ? "the best scored, though none passed" : "the best-scored pass"
            out.append(prefix + "\(stepLabel()) going on with attempt \((attempt ?? 0) + 1), candidate \(chosen.sample + 1): \(why)")
        case .stepExhausted?:
            let exhausted = try? StepExhausted(payload: payload)
            var line = prefix + "\(stepLabel()) all \(exhausted?.attempts ?? 0) attempts failed"
            if let best = exhausted?.bestAttempt { line += "; going on with attempt \(best + 1), the best scored" }
            out.append(line)
        case .stepTimedOut?:
            out.append(prefix + "\(stepLabel()) \((try? StepTimedOut(payload: payload))?.reason ?? "the step ran out of time")")
        case .gateRequested?:
            let gate = try? GateRequested(payload: payload)
            let job = event["job"]?.stringValue ?? "JOB"
            out.append(
                prefix
                    + "\(stepLabel()) gate     \(gate?.gate ?? "?") \(gate?.tool ?? "?") \(gate?.arguments ?? "") — review: \(gate?.review ?? "?")"
            )
            if gate?.review != GateRule.Review.critic.rawValue {
                out.append(
                    "           approve: agentd approve \(job) \(gate?.gate ?? "")   reject: agentd reject \(job) \(gate?.gate ?? "") --reason TEXT"
                )
            }
        case .gateDecided?:
            let decided = try? GateDecided(payload: payload)
            let who =
                decided.map { d in d.by == .person ? "by \(d.user ?? d.uid.map { "uid \($0)" } ?? "a person")" : "by the \(d.by.rawValue)" }
                ?? ""
            var line = prefix + "\(stepLabel()) gate     \(decided?.gate ?? "?") \(decided?.decision.rawValue.uppercased() ?? "?") \(who)"
            if let note = decided?.note { line += ": \(oneLine(note, 160))" }
            if decided?.editedArguments != nil { line += " (arguments edited)" }
            out.append(line)
        case .gateRefused?:
            let refused = try? GateRefused(payload: payload)
            out.append(prefix + "\(stepLabel()) gate     \(refused?.gate ?? "?") decision refused: \(refused?.reason ?? "")")
        case .stepInfeasible?:
            let feasibility = (try? StepInfeasible(payload: payload)).map { " (feasibility \($0.feasibility))" } ?? ""
            out.append(prefix + "\(stepLabel()) judged infeasible\(feasibility): re-planning at once")
        case .stepChecked?:
            let checked = try? StepChecked(payload: payload)
            out.append(
                prefix
                    + "\(stepLabel()) check    \(attemptLabel())  ground truth: \(checked?.passed == true ? "right" : "wrong") (recorded for stats only)"
            )
        case .jobRetried?:
            let retried = try? JobRetried(payload: payload)
            out.append(prefix + "retried    as job \(retried?.job ?? "?") from step \(retried?.fromStep ?? 1)")
        case .juryConvened?:
            let convened = try? JuryConvened(payload: payload)
            let order =
                convened.map { c in c.order.map { c.jurors.indices.contains($0) ? c.jurors[$0] : "?" }.joined(separator: ", ") } ?? "?"
            out.append(
                prefix
                    + "\(stepLabel()) jury     \(attemptLabel())  \(convened?.jurors.count ?? 0) jurors, \(convened?.rule ?? "?"); asked in the order \(order)"
            )
        case .juryVoted?:
            let voted = try? JuryVoted(payload: payload)
            let score = voted?.score.map { " (score \(fmt($0)))" } ?? ""
            let said = voted?.outcome == .error ? voted?.error ?? "" : voted?.feedback ?? ""
            out.append(
                prefix
                    + "\(stepLabel()) jury     \(attemptLabel())  \(voted?.juror ?? "?") \(voted?.outcome.rawValue.uppercased() ?? "?")\(score) \(oneLine(said, 160))"
            )
        case .juryDecided?:
            let decided = try? JuryDecided(payload: payload)
            let votes = decided.map { "\($0.passes) pass, \($0.fails) fail, \($0.errors) error, score \(fmt($0.score))" } ?? "?"
            out.append(
                prefix
                    + "\(stepLabel()) jury     \(attemptLabel())  \(decided?.outcome.rawValue.uppercased() ?? "?") by \(decided?.rule ?? "?") (\(votes))"
            )
        case nil:
            // A kind this build does not know (a newer daemon's): printed by name.
            out.append(prefix + kind)
        }
        return out
    }

    private mutating func completed(_ payload: JSON, _ stepLabel: String, _ roleLabel: String, _ attemptLabel: String) -> String {
        // A payload of the wrong shape is shown as an empty output rather than stopping the watch.
        let completed = (try? CallCompleted(payload: payload)) ?? CallCompleted(reply: "", durationMs: 0)
        switch completed.outcome {
        case let .invalid(invalid)?:
            return "\(stepLabel) \(roleLabel) \(attemptLabel)  invalid reply: \(oneLine(invalid, 160))"
        case let .steps(steps)?:
            if stepCount == nil { stepCount = steps.count }
            var line = "\(stepLabel) \(roleLabel) plan of \(steps.count) steps"
            for (i, s) in steps.enumerated() { line += "\n           \(i + 1). \(s)" }
            return line
        case let .verdict(verdict)?:
            let pass = verdict["verdict"]?.stringValue == "pass"
            let score = verdict["score"]?.doubleValue.map { " (score \(fmt($0)))" } ?? ""
            var line =
                "\(stepLabel) \(roleLabel) \(attemptLabel)  \(pass ? "PASS" : "FAIL")\(score) \(oneLine(verdict["feedback"]?.stringValue ?? "", 160))"
            if let s = verdict["suggestion"]?.stringValue { line += "\n           suggestion: \(oneLine(s, 160))" }
            return line
        case let .verification(verified, reason)?:
            let reason = reason.map { ": \(oneLine($0, 160))" } ?? ""
            return "\(stepLabel) \(roleLabel) \(verified ? "VERIFIED" : "REJECTED")\(reason)"
        case nil:
            break
        }
        if !completed.toolCalls.isEmpty {
            let names = completed.toolCalls.compactMap { $0["function"]?["name"]?.stringValue }.joined(separator: ", ")
            return "\(stepLabel) \(roleLabel) \(attemptLabel)  calls tools: \(names)"
        }
        let output = (try? JSON.parse(completed.reply))?["output"]?.stringValue ?? completed.reply
        return "\(stepLabel) \(roleLabel) \(attemptLabel)  output: \(oneLine(output, 120))"
    }
}

/// A temperature as people write it: at most three decimals (0.30000000000000004 is 0.3).
func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}

func oneLine(_ s: String, _ limit: Int) -> String {
    let flat = s.split(whereSeparator: \.isNewline).joined(separator: " ")
    return flat.count > limit ? String(flat.prefix(limit - 1)) + "…" : flat
}

func fmt(_ d: Double) -> String {
    let r = (d * 100).rounded() / 100
    return String(r)
}
