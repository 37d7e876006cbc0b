import Agents
import Orchestrator
import Store

/// One actor attempt at a step, as the job's record shows it.
public struct RecordedAttempt: Sendable, Equatable {
    /// Re-plans before the attempt; the step's index and text in the plan of that time.
    public var replan: Int
    public var step: Int
    public var stepText: String
    public var attempt: Int
    /// The candidate of the attempt (`policy.samples`); 0 when there is one.
    public var sample: Int = 0
    /// The candidate of the previous attempt this one revises, when the record says (format 4).
    public var parent: Int?
    /// Whether the attempt was one of several candidates (each in its own copy of the workspace).
    public var sampled = false
    /// Whether it was its step's chosen candidate (format 4).
    public var chosen = false
    /// The actor's output; nil when the attempt gave none (an unusable reply, a failed call).
    public var output: String?
    /// The files the attempt's `write_file` calls wrote, in order (those that succeeded).
    public var writes: [FileWrite]
    /// The critic's verdict: true pass, false fail (an invalid verdict too); nil when it did not judge
    /// (no output, or the same output as a rejected attempt).
    public var criticPassed: Bool?

    public struct FileWrite: Sendable, Equatable {
        public var path: String
        public var content: String
    }
}

/// What the eval reads of a finished job: its attempts and final outputs from the events
/// (`job.transcript`), its usage from `job.get`. Built on the caller's thread; pure.
public struct RecordedJob: Sendable {
    public var id: String
    public var status: JobStatus
    public var reason: String?
    /// The steps of the job's first plan.
    public var firstSteps: [String]
    /// Every attempt, in the order the actor made them.
    public var attempts: [RecordedAttempt]
    /// Each step's accepted output, in step order (the input a command verifier would get).
    public var finalOutputs: [(step: String, output: String)]
    public var actorCalls: Int
    public var calls: Int
    public var inputTokens: Int
    public var outputTokens: Int
    public var costUSD: Double?

    /// Reads the record. The events are the job's whole transcript, in order.
    public init(details: JobDetails, events: [JSON]) {
        id = details.job.id
        status = details.job.status
        reason = details.job.reason
        let usage = details.total
        actorCalls = details.usage["actor"]?.calls ?? 0
        calls = usage.calls
        inputTokens = usage.inputTokens
        outputTokens = usage.outputTokens
        costUSD = usage.costUSD

        var steps: [String] = []
        var first: [String]?
        var replan = 0
        var attempts: [RecordedAttempt] = []
        var index: [String: Int] = [:]  // "replan/step/attempt/sample" → position in attempts
        var samples: [String: Int] = [:]  // an actor or critic call's candidate, from its request
        var pendingWrites: [String: (key: String, write: RecordedAttempt.FileWrite)] = [:]  // tool call "cN.I"
        var otherCalls: Set<String> = []  // critic-role calls that are not the critic's (the ground-truth check's)
        func slot(_ step: Int, _ attempt: Int, _ sample: Int = 0) -> Int {
            let key = "\(replan)/\(step)/\(attempt)/\(sample)"
            if let at = index[key] { return at }
            attempts.append(
                RecordedAttempt(
                    replan: replan, step: step, stepText: step < steps.count ? steps[step] : "", attempt: attempt, sample: sample,
                    output: nil, writes: [], criticPassed: nil))
            index[key] = attempts.count - 1
            return attempts.count - 1
        }
        /// A step's chosen candidate (format 4): its accepted output, whether or not the critic passed it.
        var chosen: [Int: Int] = [:]
        for event in events {
            let kind = event["kind"]?.stringValue.flatMap(EventKind.init(rawValue:))
            let role = event["role"]?.stringValue
            let step = event["step"]?.intValue
            let attempt = event["attempt"]?.intValue
            let payload = event["payload"] ?? .null
            switch kind {
            case .jobState?:
                if let fixed = (try? JobState(payload: payload))?.steps, steps.isEmpty { steps = fixed }
            case .jobReplanned?:
                if let replanned = try? JobReplanned(payload: payload) {
                    replan = replanned.replan
                    steps = Array(steps.prefix(replanned.fromStep)) + replanned.steps
                }
            case .callStarted? where role == "actor":
                guard let step, let attempt else { continue }
                let sample = (try? CallStarted(payload: payload))?.request["sample"]?.intValue
                if let sample, let call = event["call"]?.stringValue { samples[call] = sample }
                let at = slot(step, attempt, sample ?? 0)
                if sample != nil { attempts[at].sampled = true }
            case .callStarted? where role == "critic":
                let started = try? CallStarted(payload: payload)
                guard let call = event["call"]?.stringValue else { continue }
                if started?.agent != "critic/\(id)" { otherCalls.insert(call) }
                if let sample = started?.request["sample"]?.intValue { samples[call] = sample }
            case .callCompleted?:
                guard let completed = try? CallCompleted(payload: payload) else { continue }
                if role == "planner", case let .steps(planned)? = completed.outcome, steps.isEmpty {
                    steps = planned
                }
                guard let step, let attempt else { continue }
                let at = slot(step, attempt, samples[event["call"]?.stringValue ?? ""] ?? 0)
                if role == "actor" {
                    if first == nil { first = steps }
                    if completed.toolCalls.isEmpty {
                        attempts[at].output = try? ActorReply.parse(completed.reply)
                    }
                    let call = event["call"]?.stringValue ?? ""
                    for (i, toolCall) in completed.toolCalls.enumerated() {
                        guard toolCall["function"]?["name"]?.stringValue == "write_file",
                            let text = toolCall["function"]?["arguments"]?.stringValue, let arguments = try? JSON.parse(text),
                            let path = arguments["path"]?.stringValue, let content = arguments["content"]?.stringValue
                        else { continue }
                        pendingWrites["\(call).\(i)"] = (
                            "\(replan)/\(step)/\(attempt)/\(attempts[at].sample)", RecordedAttempt.FileWrite(path: path, content: content)
                        )
                    }
                } else if role == "critic", !otherCalls.contains(event["call"]?.stringValue ?? "") {
                    switch completed.outcome {
                    case let .verdict(verdict)?: attempts[at].criticPassed = verdict["verdict"]?.stringValue == "pass"
                    case .invalid?: if attempts[at].criticPassed == nil { attempts[at].criticPassed = false }
                    default: break
                    }
                }
            case .toolCompleted?:
                guard let call = event["call"]?.stringValue, let pending = pendingWrites.removeValue(forKey: call),
                    (try? ToolCompleted(payload: payload))?.ok == true, let at = index[pending.key]
                else { continue }
                attempts[at].writes.append(pending.write)
            case .juryDecided?:
                // A jury's decision is the critic's verdict; its jurors' own verdicts came before it.
                guard let step, let attempt, let decided = try? JuryDecided(payload: payload) else { continue }
                attempts[slot(step, attempt)].criticPassed = decided.outcome == .pass
            case .attemptDuplicate?:
                guard let step, let attempt, let same = try? AttemptDuplicate(payload: payload) else { continue }
                let at = slot(step, attempt)
                attempts[at].output = index["\(replan)/\(step)/\(same.sameAsAttempt)/0"].flatMap { attempts[$0].output }
            case .candidateStarted?:
                guard let step, let attempt, let started = try? CandidateStarted(payload: payload) else { continue }
                attempts[slot(step, attempt, started.sample)].parent = started.parent?.sample
            case .candidateJudged?:
                // The candidate's verdict, whoever gave it (the critic, a jury); a reviewer's rejection
                // came after the critic's pass.
                guard let step, let attempt, let judged = try? CandidateJudged(payload: payload) else { continue }
                let at = slot(step, attempt, judged.sample)
                switch judged.outcome {
                case .pass, .rejected: attempts[at].criticPassed = true
                case .fail: attempts[at].criticPassed = false
                case .unusable, .duplicate: break
                }
            case .candidateChosen?:
                guard let step, let attempt, let picked = try? CandidateChosen(payload: payload) else { continue }
                chosen[step] = slot(step, attempt, picked.sample)
                attempts[chosen[step]!].chosen = true
            default:
                break
            }
        }
        firstSteps = first ?? steps
        self.attempts = attempts
        // A step's accepted output is its chosen candidate (format 4), else its last attempt the critic
        // passed (a re-plan keeps the steps before the one that failed).
        var accepted: [Int: RecordedAttempt] = [:]
        for a in attempts where a.criticPassed == true && a.output != nil { accepted[a.step] = a }
        for (step, at) in chosen where attempts[at].output != nil { accepted[step] = attempts[at] }
        finalOutputs = steps.indices.compactMap { i in accepted[i].map { (steps[i], $0.output!) } }
    }
}
