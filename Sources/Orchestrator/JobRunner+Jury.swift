import Agents
import Store

/// A jury critic (`JurySpec`): every juror judges the output on its own, and the plan's rule turns
/// their votes into the one verdict the step acts on.
///
/// ```
///  jury.convened (order, seed) ─▶ juror order[0] ┐
///                                 juror order[1] ├─ concurrently ─▶ jury.voted × N (juror order) ─▶ jury.decided
///                                 …              ┘
/// ```
/// `jury.convened` is committed before any juror is asked, with the order they are asked in: a
/// shuffle seeded from the job, re-plan, step and attempt, so it differs between judgements but not
/// between a run and its replay (which reads the order from the record). Each juror is its own
/// critic agent (`critic/JOB/NAME`) and its calls are recorded like any critic's; a model juror is
/// asked again after an invalid reply within `policy.max_invalid_replies`, a command juror runs
/// once. A juror that gives no valid verdict votes `error`. The votes are recorded once every juror
/// answered, in juror order, then the decision — so what the record says about them never depends on
/// which juror happened to answer first.
extension JobRunner {
    /// What one juror said, and the call id of its last call.
    struct JurorAnswer: Sendable {
        let vote: JuryVote
        let callID: String
    }

    /// The jury's verdict on `output` (see the extension's description). The jurors' lines branch
    /// from `line` (the main line when nil). It records events without a call id, so it runs on a
    /// line of the job's sequence, not inside another fan-out's branch.
    func convene(_ jury: JurySpec, steps: [String], index: Int, attempt: Int, replan: Int, output: String, line: CallLine? = nil)
        async throws -> Verdict
    {
        let names = jury.jurors.map(\.name)
        let seed = Self.jurySeed(jobID: job.id, replan: replan, step: index, attempt: attempt)
        var order = Self.juryOrder(count: names.count, seed: seed)
        let (convened, replayed) = try await log.emit(
            EventDraft(
                JuryConvened(rule: jury.rule.text, jurors: names, order: order, seed: seed), role: Role.critic.rawValue, step: index,
                attempt: attempt))
        // A replay asks in the recorded order, whatever this build would shuffle.
        if replayed, let recorded = convened.payload(as: JuryConvened.self), recorded.order.sorted() == Array(names.indices) {
            order = recorded.order
        }
        let presented = order
        let given = try await fanOut(presented.count, from: line) { branch, line in
            try await self.ask(
                jury.jurors[presented[branch]], steps: steps, index: index, attempt: attempt, replan: replan, output: output, line: line)
        }
        var answers: [JurorAnswer?] = Array(repeating: nil, count: names.count)
        for (branch, answer) in given.enumerated() { answers[presented[branch]] = answer }
        for (juror, answer) in answers.enumerated() {
            guard let answer else { continue }
            let vote = answer.vote
            let voted = JuryVoted(
                juror: vote.juror, index: juror,
                outcome: vote.verdict.map { $0.outcome == .pass ? .pass : .fail } ?? .error, score: vote.verdict?.score,
                feedback: vote.verdict?.feedback ?? "", error: vote.error)
            // Staged: committed with the decision, in one transaction.
            try await log.emit(
                EventDraft(voted, role: Role.critic.rawValue, step: index, attempt: attempt, callID: answer.callID), deferred: true)
        }
        let decision = JuryDecision(jury, votes: answers.compactMap { $0?.vote })
        try await log.emit(
            EventDraft(
                JuryDecided(
                    rule: jury.rule.text, passes: decision.passes, fails: decision.fails, errors: decision.errors,
                    outcome: decision.outcome == .pass ? .pass : .fail, score: decision.score, feedback: decision.feedback),
                role: Role.critic.rawValue, step: index, attempt: attempt))
        return decision.verdict
    }

    /// One juror's vote: a model juror asked again after an invalid reply or a failed call within
    /// `policy.max_invalid_replies`, a command juror once (its exit status would not change). No
    /// valid verdict is an error vote; a stop (`CallAbandoned`) or the job's failure propagates.
    /// Runs as a branch of the jury's fan-out, on `line`: it keeps its state in locals and emits only
    /// its own calls' events.
    private func ask(_ juror: Juror, steps: [String], index: Int, attempt: Int, replan: Int, output: String, line: CallLine)
        async throws -> JurorAnswer
    {
        var request: ModelRequest
        let tries: Int
        switch juror.kind {
        case let .model(spec):
            request = prompts.juror(spec, steps: steps, index: index, attempt: attempt, replan: replan, output: output)
            tries = plan.policy.maxInvalidReplies
        case let .command(command):
            request = commandCriticRequest(command, steps: steps, index: index, attempt: attempt, replan: replan, output: output)
            tries = 0
        }
        let agent = AgentID.juror(job: job.id, name: juror.name)
        var problem = ""
        for _ in 0...tries {
            try await checkLive()
            let reply = try await call(request, role: .critic, agent: agent, line: line)
            // The reply is committed now rather than with the runner's next write: a crash while
            // another juror is still out then never asks this one again.
            try await log.flush()
            switch (reply.reply, reply.interpretation) {
            case let (.success, .verdict(verdict)?):
                return JurorAnswer(vote: JuryVote(juror: juror.name, verdict: verdict), callID: line.last)
            case let (.success(model), .invalid(error)?):
                problem = "no valid verdict: \(error.message)"
                request = prompts.reask(request, badReply: model.content, error: error)
            case let (.failure(error), _):
                problem = "the call failed (\(error.kind.rawValue)): \(error.message)"
            default:
                problem = "internal: unexpected critic reply"
            }
        }
        return JurorAnswer(vote: JuryVote(juror: juror.name, error: problem), callID: line.last)
    }

    /// The seed of a judgement's juror order: FNV-1a of `JOB/REPLAN/STEP/ATTEMPT`, cut to 52 bits so
    /// every JSON reader reads the recorded number exactly.
    static func jurySeed(jobID: String, replan: Int, step: Int, attempt: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(jobID)/\(replan)/\(step)/\(attempt)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return Int(hash & ((1 << 52) - 1))
    }

    /// `0..<count` shuffled by Fisher–Yates on `SplitMix64(seed)`: spelled out rather than
    /// `shuffle(using:)`, whose algorithm the standard library does not promise to keep.
    static func juryOrder(count: Int, seed: Int) -> [Int] {
        var order = Array(0..<count)
        var random = SplitMix64(seed: UInt64(seed))
        var i = count - 1
        while i > 0 {
            let j = Int(random.next() % UInt64(i + 1))
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }
}
