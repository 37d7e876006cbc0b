import Store

/// The outcome of one run — a task under an arm, one repetition — as the eval judged it. One line of
/// the state file (`EvalState`), in JSON. Pure value; any thread.
public struct EvalResult: Sendable, Equatable {
    /// The ground truth and the critic on one attempt.
    public struct Attempt: Sendable, Equatable {
        public var replan: Int
        public var step: Int
        public var attempt: Int
        /// The candidate (`policy.samples`), and the candidate of the previous attempt it revises
        /// when the record names it.
        public var sample = 0
        public var parent: Int?
        /// Whether the suite's check accepted the attempt's output.
        public var correct: Bool
        /// The critic's verdict; nil when it did not judge the attempt.
        public var criticPassed: Bool?
    }

    /// The job's idempotency key (`EvalArm.key`).
    public var key: String
    public var arm: String
    public var task: String
    public var rep: Int
    public var jobID: String
    /// The job's final status.
    public var status: String
    /// The suite's check accepted the job's result.
    public var verified: Bool
    /// The suite's check accepted the first actor output of every step of the first plan.
    public var firstAttempt: Bool
    public var actorCalls: Int
    public var calls: Int
    public var inputTokens: Int
    public var outputTokens: Int
    public var costUSD: Double?
    public var attempts: [Attempt]
    /// What the check (or the job's failure) said when the result was not verified.
    public var note: String

    /// Judges a finished job: the final result, then every attempt.
    public static func judge(
        key: String, arm: String, task: EvalTask, rep: Int, job: RecordedJob, workspace: String?, truth: GroundTruth
    ) -> EvalResult {
        let final = truth.final(task, job: job, workspace: workspace)
        var attempts: [Attempt] = []
        for (i, a) in job.attempts.enumerated() {
            let judged = truth.attempt(task, job: job, at: i)
            attempts.append(
                Attempt(
                    replan: a.replan, step: a.step, attempt: a.attempt, sample: a.sample, parent: a.parent, correct: judged.correct,
                    criticPassed: a.criticPassed))
        }
        let firstAttempt =
            !job.firstSteps.isEmpty
            && job.firstSteps.indices.allSatisfy { s in
                attempts.contains { $0.replan == 0 && $0.step == s && $0.attempt == 0 && $0.sample == 0 && $0.correct }
            }
        return EvalResult(
            key: key, arm: arm, task: task.id, rep: rep, jobID: job.id, status: job.status.rawValue, verified: final.correct,
            firstAttempt: firstAttempt, actorCalls: job.actorCalls, calls: job.calls, inputTokens: job.inputTokens,
            outputTokens: job.outputTokens, costUSD: job.costUSD, attempts: attempts, note: final.correct ? "" : final.note)
    }

    /// Flips: attempts the check accepted and the critic rejected, whose rerun (the next attempt at
    /// the same step; of several candidates, those that revise it) the check rejected.
    public var flips: Int {
        attempts.filter { a in
            a.correct && a.criticPassed == false
                && attempts.contains {
                    $0.replan == a.replan && $0.step == a.step && $0.attempt == a.attempt + 1 && ($0.parent ?? a.sample) == a.sample
                        && !$0.correct
                }
        }.count
    }

    public var json: JSON {
        var members: [(String, JSON)] = [
            ("key", .string(key)), ("arm", .string(arm)), ("task", .string(task)), ("rep", .int(rep)), ("job", .string(jobID)),
            ("status", .string(status)), ("verified", .bool(verified)), ("first_attempt", .bool(firstAttempt)),
            ("actor_calls", .int(actorCalls)), ("calls", .int(calls)), ("input_tokens", .int(inputTokens)),
            ("output_tokens", .int(outputTokens)),
        ]
        if let costUSD { members.append(("cost_usd", .number(costUSD))) }
        members.append(
            (
                "attempts",
                .array(
                    attempts.map {
                        var members: [(String, JSON)] = [
                            ("replan", .int($0.replan)), ("step", .int($0.step)), ("attempt", .int($0.attempt)),
                        ]
                        if $0.sample != 0 { members.append(("sample", .int($0.sample))) }
                        if let parent = $0.parent { members.append(("parent", .int(parent))) }
                        members += [("correct", .bool($0.correct)), ("critic", $0.criticPassed.map(JSON.bool) ?? .null)]
                        return .object(members)
                    })
            ))
        members.append(("note", .string(note)))
        return .object(members)
    }

    /// Decodes a state line. Throws `EvalError` naming the member.
    public init(json: JSON) throws(EvalError) {
        func string(_ k: String) throws(EvalError) -> String {
            guard let s = json[k]?.stringValue else { throw EvalError("result: '\(k)' must be a string") }
            return s
        }
        func int(_ k: String) throws(EvalError) -> Int {
            guard let n = json[k]?.intValue else { throw EvalError("result: '\(k)' must be an integer") }
            return n
        }
        func bool(_ k: String, in value: JSON) throws(EvalError) -> Bool {
            guard let b = value[k]?.boolValue else { throw EvalError("result: '\(k)' must be true or false") }
            return b
        }
        key = try string("key")
        arm = try string("arm")
        task = try string("task")
        rep = try int("rep")
        jobID = try string("job")
        status = try string("status")
        verified = try bool("verified", in: json)
        firstAttempt = try bool("first_attempt", in: json)
        actorCalls = try int("actor_calls")
        calls = try int("calls")
        inputTokens = try int("input_tokens")
        outputTokens = try int("output_tokens")
        costUSD = json["cost_usd"]?.doubleValue
        guard let items = json["attempts"]?.arrayValue else { throw EvalError("result: 'attempts' must be an array") }
        attempts = []
        for item in items {
            guard let replan = item["replan"]?.intValue, let step = item["step"]?.intValue, let attempt = item["attempt"]?.intValue else {
                throw EvalError("result: an attempt lacks 'replan', 'step' or 'attempt'")
            }
            attempts.append(
                Attempt(
                    replan: replan, step: step, attempt: attempt, sample: item["sample"]?.intValue ?? 0, parent: item["parent"]?.intValue,
                    correct: try bool("correct", in: item), criticPassed: item["critic"]?.boolValue))
        }
        note = json["note"]?.stringValue ?? ""
    }

    public init(
        key: String, arm: String, task: String, rep: Int, jobID: String, status: String, verified: Bool, firstAttempt: Bool,
        actorCalls: Int, calls: Int, inputTokens: Int, outputTokens: Int, costUSD: Double?, attempts: [Attempt], note: String
    ) {
        self.key = key
        self.arm = arm
        self.task = task
        self.rep = rep
        self.jobID = jobID
        self.status = status
        self.verified = verified
        self.firstAttempt = firstAttempt
        self.actorCalls = actorCalls
        self.calls = calls
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.costUSD = costUSD
        self.attempts = attempts
        self.note = note
    }
}
