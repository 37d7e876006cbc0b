/// The ground-truth figures of `agentd stats`: how the judges' decisions compare with the plan's
/// check (`step.checked`), flips, juror agreement, and how often the verifier overturned the judge.
///
/// Definitions (over the jobs the filter selects):
///
/// - A **judged output** is one candidate (an attempt's output; several per attempt when the step
///   draws samples) a judge decided on, keyed by `(job, re-plans so far, step, attempt, sample)`. Its
///   decision is, in order: its `candidate.judged` outcome (`pass`, or `rejected`, which a reviewer
///   rejected after the critic passed it, count as the judge's pass; `fail` as its rejection;
///   `unusable` and `duplicate` were not judged); else its attempt's `jury.decided`; else (jobs
///   recorded before candidates and juries) the outcome of the attempt's last critic call — a
///   verdict, or a fail for an invalid reply or a failed call. Calls of other critic-role agents
///   (the check's, jurors') are not the critic's.
/// - The **judge** is `jury` when the attempt had a `jury.decided`, else `critic`; each juror's
///   `jury.voted` (pass or fail; an error is no vote) is judged as that juror's decision. Jury events
///   carry no sample: they belong to the candidate whose `candidate.judged` follows them, or to
///   sample 0 without candidate events.
/// - With a **ground truth** (a `step.checked` for it): a **false pass** is a decision to pass an
///   output the check rejects, a **false fail** one to reject an output the check accepts; the
///   **check agreement** is the share of outputs where the judge and the check agree.
/// - A **flip** (docs/eval.md): an output the check accepts, rejected by the judge, one of whose
///   reruns the check rejects (correct → incorrect). A rerun of an output is a candidate whose
///   `candidate.started` parent it is; without candidate events, the next attempt of the same step.
///   The **flip rate** is flips / false fails (the right outputs the judge rejected).
/// - **Juror agreement**: per pair of jurors, the outputs both voted on and those they agreed on.
/// - **Passes overturned**: jobs whose every step the judge passed (a verifier decision exists and
///   no step went on unpassed under `policy.on_exhausted: best`) but whose verifier's last decision
///   rejected the result; the rate is over those jobs the judge passed. No check is needed.
extension CriticStats {
    /// One judge of one plan: the critic, the jury, or a juror (`juror` names it).
    public struct JudgeRow: Sendable, Equatable {
        public var plan: String
        /// `critic`, `jury` or `juror`.
        public var judge: String
        public var juror: String?
        /// Judged outputs with a ground truth.
        public var judged = 0
        public var falsePasses = 0
        public var falseFails = 0
        public var flips = 0
        /// Jobs every step of which the judge passed, and of those, the ones the verifier rejected.
        public var passedJobs = 0
        public var passesOverturned = 0

        public init(plan: String, judge: String, juror: String? = nil) {
            self.plan = plan
            self.judge = judge
            self.juror = juror
        }

        public var checkAgreement: Double? { judged > 0 ? Double(judged - falsePasses - falseFails) / Double(judged) : nil }
        public var flipRate: Double? { falseFails > 0 ? Double(flips) / Double(falseFails) : nil }
        public var overturnedRate: Double? { passedJobs > 0 ? Double(passesOverturned) / Double(passedJobs) : nil }
        /// `critic`, `jury`, or `juror NAME`.
        public var label: String { juror.map { "juror \($0)" } ?? judge }
    }

    /// Two jurors of one plan: the outputs both voted on (pass or fail) and those they agreed on.
    public struct AgreementRow: Sendable, Equatable {
        public var plan: String
        /// In juror index order.
        public var jurors: [String]
        public var outputs = 0
        public var agreed = 0

        public init(plan: String, jurors: [String], outputs: Int = 0, agreed: Int = 0) {
            self.plan = plan
            self.jurors = jurors
            self.outputs = outputs
            self.agreed = agreed
        }

        public var rate: Double? { outputs > 0 ? Double(agreed) / Double(outputs) : nil }
    }
}

extension Database {
    /// The events the ground-truth figures read, in each job's order. Only these kinds (and only
    /// critic and verifier calls) come back, each reduced in SQL to the one or three scalars the pass
    /// needs (`a`, `b`, `c`), so no payload is decoded in Swift. SQLite reads the events once in the
    /// order of their `(job_id, seq)` index, which is the order asked for (no sort, no temporary
    /// table), as the other stats queries scan them; the pass keeps one job in memory at a time.
    static let groundTruthEvents = """
        WITH sel AS (
            SELECT id, plan_name FROM jobs
            WHERE (?1 IS NULL OR plan_name = ?1) AND (?2 IS NULL OR created_at >= ?2)
        )
        SELECT sel.plan_name, e.job_id, e.kind, e.step, e.attempt, e.call_id, e.role,
               CASE e.kind
                   WHEN 'call.started' THEN json_extract(e.payload, '$.agent')
                   WHEN 'call.completed' THEN coalesce(json_extract(e.payload, '$.verdict.verdict'), json_extract(e.payload, '$.verified'))
                   WHEN 'step.checked' THEN json_extract(e.payload, '$.passed')
                   WHEN 'step.exhausted' THEN json_extract(e.payload, '$.best_attempt')
                   WHEN 'candidate.judged' THEN json_extract(e.payload, '$.outcome')
                   WHEN 'candidate.started' THEN json_extract(e.payload, '$.parent.attempt')
                   WHEN 'jury.voted' THEN json_extract(e.payload, '$.juror')
                   WHEN 'jury.decided' THEN json_extract(e.payload, '$.outcome')
               END,
               CASE e.kind
                   WHEN 'jury.voted' THEN json_extract(e.payload, '$.outcome')
                   ELSE json_extract(e.payload, '$.sample')
               END,
               CASE e.kind
                   WHEN 'candidate.started' THEN json_extract(e.payload, '$.parent.sample')
                   WHEN 'jury.voted' THEN json_extract(e.payload, '$.index')
               END
        FROM sel JOIN events e ON e.job_id = sel.id
        WHERE e.kind IN ('job.replanned', 'call.started', 'call.completed', 'call.failed', 'step.checked', 'step.exhausted',
                         'candidate.started', 'candidate.judged', 'jury.voted', 'jury.decided')
          AND (e.kind NOT IN ('call.started', 'call.completed', 'call.failed') OR e.role IN ('critic', 'verifier'))
          -- A retry's copies of its original's events: counted once, in the job that made them.
          AND json_extract(e.payload, '$.reused_from') IS NULL
        ORDER BY e.job_id, e.seq
        """

    /// The judges' rows and the jurors' agreement (see `CriticStats.JudgeRow`), computed job by job
    /// in one streamed pass: memory holds one job's candidates at a time.
    func groundTruthStats(_ bindings: [SQLValue]) throws(StoreError) -> ([CriticStats.JudgeRow], [CriticStats.AgreementRow]) {
        var tally = GroundTruthTally()
        var job = GroundTruthJob(plan: "", id: "")
        let stmt = try prepare(Self.groundTruthEvents)
        try stmt.bind(bindings)
        while try stmt.step() {
            let (plan, id) = (stmt.value(0).text ?? "?", stmt.value(1).text ?? "?")
            if id != job.id {
                if !job.id.isEmpty { tally.add(job) }
                job = GroundTruthJob(plan: plan, id: id)
            }
            job.read(
                kind: stmt.value(2).text ?? "", step: stmt.value(3).int.map(Int.init), attempt: stmt.value(4).int.map(Int.init),
                callID: stmt.value(5).text, role: stmt.value(6).text, a: stmt.value(7), b: stmt.value(8), c: stmt.value(9))
        }
        if !job.id.isEmpty { tally.add(job) }
        return tally.rows
    }
}

/// One job's judged outputs as its events tell them (`CriticStats.JudgeRow` has the definitions).
struct GroundTruthJob {
    struct Key: Hashable, Comparable {
        var epoch: Int
        var step: Int
        var attempt: Int
        var sample: Int

        var slot: Slot { Slot(epoch: epoch, step: step, attempt: attempt) }
        static func < (l: Key, r: Key) -> Bool {
            (l.epoch, l.step, l.attempt, l.sample) < (r.epoch, r.step, r.attempt, r.sample)
        }
    }

    /// One attempt: `(re-plans so far, step, attempt)`.
    struct Slot: Hashable {
        var epoch: Int
        var step: Int
        var attempt: Int
    }

    struct Vote {
        var juror: String
        var index: Int
        var passed: Bool
    }

    struct Candidate {
        var decision: Bool?
        var jury = false
        var check: Bool?
        var parent: Key?
        var votes: [Vote] = []
    }

    let plan: String
    let id: String
    var epoch = 0
    var candidates: [Key: Candidate] = [:]
    /// Per attempt: its last critic call's outcome (true: a pass), its jury's decision, and the votes
    /// not yet given to a candidate.
    var criticOutcome: [Slot: Bool] = [:]
    var juryDecision: [Slot: Bool] = [:]
    var pendingVotes: [Slot: [Vote]] = [:]
    /// Critic-role calls of other agents (the check, jurors).
    var otherCalls: Set<String> = []
    var verified: Bool?
    var wentOnUnpassed = false
    var hasJury = false
    /// Whether the job recorded candidates (record format 4 on): then their events alone decide.
    var hasCandidates = false

    init(plan: String, id: String) {
        self.plan = plan
        self.id = id
    }

    mutating func read(kind: String, step: Int?, attempt: Int?, callID: String?, role: String?, a: SQLValue, b: SQLValue, c: SQLValue) {
        if kind == "job.replanned" {
            epoch += 1
            return
        }
        if kind == "call.completed", role == "verifier" {
            if let v = a.int { verified = v != 0 }
            return
        }
        if kind == "step.exhausted" {
            if a.int != nil { wentOnUnpassed = true }
            return
        }
        guard let step, let attempt else { return }
        let slot = Slot(epoch: epoch, step: step, attempt: attempt)
        let key = Key(epoch: epoch, step: step, attempt: attempt, sample: Int(b.int ?? 0))
        switch kind {
        case "call.started":
            if role == "critic", let callID, a.text != "critic/\(id)" { otherCalls.insert(callID) }
        case "call.completed", "call.failed":
            guard role == "critic", let callID, !otherCalls.contains(callID) else { return }
            criticOutcome[slot] = a.text == "pass"
        case "step.checked":
            candidates[key, default: Candidate()].check = a.int.map { $0 != 0 }
        case "candidate.started":
            hasCandidates = true
            if let parentAttempt = a.int {
                candidates[key, default: Candidate()].parent = Key(
                    epoch: epoch, step: step, attempt: Int(parentAttempt), sample: Int(c.int ?? 0))
            }
        case "candidate.judged":
            hasCandidates = true
            var candidate = candidates[key] ?? Candidate()
            switch a.text {
            case "pass", "rejected": candidate.decision = true
            case "fail": candidate.decision = false
            default: break
            }
            if let votes = pendingVotes.removeValue(forKey: slot) { candidate.votes = votes }
            candidate.jury = juryDecision[slot] != nil
            candidates[key] = candidate
        case "jury.voted":
            hasJury = true
            guard let outcome = b.text, outcome == "pass" || outcome == "fail", let juror = a.text else { return }
            pendingVotes[slot, default: []].append(Vote(juror: juror, index: Int(c.int ?? 0), passed: outcome == "pass"))
        case "jury.decided":
            hasJury = true
            juryDecision[slot] = a.text == "pass"
        default:
            break
        }
    }

    /// The candidates with every decision in place: jobs without candidate events have one per
    /// attempt (sample 0), judged by the critic or the jury, the previous attempt its parent.
    func finished() -> [Key: Candidate] {
        var all = candidates
        for (slot, votes) in pendingVotes {
            all[Key(epoch: slot.epoch, step: slot.step, attempt: slot.attempt, sample: 0), default: Candidate()].votes = votes
        }
        guard !hasCandidates else { return all }
        let slots = Set(criticOutcome.keys).union(juryDecision.keys).union(all.keys.map(\.slot))
        for slot in slots {
            let key = Key(epoch: slot.epoch, step: slot.step, attempt: slot.attempt, sample: 0)
            var candidate = all[key] ?? Candidate()
            if candidate.decision == nil {
                if let jury = juryDecision[slot] {
                    candidate.decision = jury
                    candidate.jury = true
                } else {
                    candidate.decision = criticOutcome[slot]
                }
            }
            if slot.attempt > 0 {
                candidate.parent = Key(epoch: slot.epoch, step: slot.step, attempt: slot.attempt - 1, sample: 0)
            }
            if candidate.decision != nil || candidate.check != nil || !candidate.votes.isEmpty { all[key] = candidate }
        }
        return all
    }
}

/// The judges' rows summed over jobs, per plan.
struct GroundTruthTally {
    private var judges: [String: CriticStats.JudgeRow] = [:]
    private var agreements: [String: CriticStats.AgreementRow] = [:]

    private mutating func update(_ plan: String, _ judge: String, juror: String? = nil, _ change: (inout CriticStats.JudgeRow) -> Void) {
        let key = "\(plan)\u{0}\(judge)\u{0}\(juror ?? "")"
        var row = judges[key] ?? CriticStats.JudgeRow(plan: plan, judge: judge, juror: juror)
        change(&row)
        judges[key] = row
    }

    mutating func add(_ job: GroundTruthJob) {
        let plan = job.plan
        if let verified = job.verified, !job.wentOnUnpassed {
            update(plan, job.hasJury ? "jury" : "critic") {
                $0.passedJobs += 1
                if !verified { $0.passesOverturned += 1 }
            }
        }
        let candidates = job.finished()
        var wrongReruns: Set<GroundTruthJob.Key> = []
        for (_, candidate) in candidates where candidate.check == false {
            if let parent = candidate.parent { wrongReruns.insert(parent) }
        }
        for (key, candidate) in candidates.sorted(by: { $0.key < $1.key }) {
            let votes = candidate.votes.sorted { $0.index < $1.index }
            for (i, first) in votes.enumerated() {
                for second in votes[(i + 1)...] {
                    let pairKey = "\(plan)\u{0}\(first.juror)\u{0}\(second.juror)"
                    var row = agreements[pairKey] ?? CriticStats.AgreementRow(plan: plan, jurors: [first.juror, second.juror])
                    row.outputs += 1
                    if first.passed == second.passed { row.agreed += 1 }
                    agreements[pairKey] = row
                }
            }
            guard let check = candidate.check else { continue }
            let flipped = check && wrongReruns.contains(key)
            func judged(_ passed: Bool) -> (inout CriticStats.JudgeRow) -> Void {
                { row in
                    row.judged += 1
                    if passed, !check { row.falsePasses += 1 }
                    if !passed, check { row.falseFails += 1 }
                    if !passed, flipped { row.flips += 1 }
                }
            }
            if let decision = candidate.decision { update(plan, candidate.jury ? "jury" : "critic", judged(decision)) }
            for vote in votes { update(plan, "juror", juror: vote.juror, judged(vote.passed)) }
        }
    }

    /// Per plan: the critic, the jury, then the jurors by name; agreement pairs by names.
    var rows: ([CriticStats.JudgeRow], [CriticStats.AgreementRow]) {
        let order = ["critic": 0, "jury": 1, "juror": 2]
        let judgeRows = judges.values.sorted {
            ($0.plan, order[$0.judge] ?? 3, $0.juror ?? "") < ($1.plan, order[$1.judge] ?? 3, $1.juror ?? "")
        }
        let pairs = agreements.values.sorted {
            ($0.plan, $0.jurors.joined(separator: "\u{0}")) < ($1.plan, $1.jurors.joined(separator: "\u{0}"))
        }
        return (judgeRows, pairs)
    }
}
