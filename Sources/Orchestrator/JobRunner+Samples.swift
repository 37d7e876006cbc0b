import Agents
import Store

/// A step's attempts as candidates (record format 4): best-of-n and the attempt tree.
///
/// ```
///  attempt a ─▶ candidate.started ×n ─▶ act ×n (concurrent branches when n > 1) ─▶ judge each, in order
///      ▲            (parent: the candidate whose feedback the prompt carries)
///      │   ─▶ candidate.judged ×n ─┬─ a pass ─▶ candidate.chosen (the best-scored passing one) ─▶ next step
///      │                           └─ none ───▶ the rerun reads the best candidate's feedback
///      └──────────────────────────────────────┘       (exhausted + on_exhausted: best ─▶ candidate.chosen "best")
/// ```
/// `policy.samples` candidates of an attempt are asked of the actor concurrently (`fanOut`; one
/// candidate runs on the main line as before), candidate `k` at the attempt's temperature plus
/// `k * Policy.samplesTemperatureStep`. After the join, on the main line and in sample order, each is
/// judged: an unusable one (no output) and one whose output repeats an earlier candidate's of the step
/// (that one's judgement stands) are recorded as such and not judged again. Of the passing ones the
/// best-scored goes on (a tie goes to the lowest sample); a step review, when the plan asks for one,
/// reviews that one only, and a rejection fails the attempt. When none passes, the rerun reads the
/// best candidate's output and feedback — the best-scored one the critic judged, else the first — and
/// its candidates name that one as their parent, so a step's candidates form a tree.
///
/// With tools and more than one sample, each candidate works in its own copy of the job's workspace
/// (`CandidateWorkspace`, made at its first tool call, so every candidate starts from the workspace
/// as the step found it); the chosen one's copy is synced into the workspace and the others are
/// removed. Under `policy.on_exhausted: best` the copy of the step's best candidate so far is kept
/// until the step ends. Applying the choice follows the recorded `candidate.chosen`: a recovered job
/// applies it again, which finishes what a crash interrupted and does nothing once it is done.
extension JobRunner {
    /// One candidate of the step, as judged.
    struct Candidate: Sendable {
        let ref: CandidateRef
        /// Its copy of the workspace, when it has one.
        let workspace: String?
        /// Its output; nil when it gave none (unusable).
        var output: String?
        var outcome: CandidateJudged.Outcome = .unusable
        var verdict: Verdict?
        var score: Double?
        var feedback = ""
        /// The critic's call that judged it (the last one, after re-asks).
        var criticCall: String?
    }

    func candidateAttempts(steps: [String], index: Int, replan: Int) async throws -> StepOutcome {
        currentSteps = steps
        let samples = plan.policy.samples
        var rejected: [RejectedAttempt] = []
        /// Every candidate of the step so far, for duplicates.
        var seen: [Candidate] = []
        /// The best-scored candidate the critic failed in this step (`policy.on_exhausted: best`); the first wins a tie.
        var best: Candidate?
        var parent: CandidateRef?
        var lastFeedback = ""
        stepFeedback = ""
        let root = await workspaceRoot(samples: samples)
        // Copies an earlier step left behind go when a step starts live (a replayed step may be
        // followed by the recorded work of later steps' candidates, whose copies must stay).
        if let root, !log.isReplaying { await discardCopies(beside: root, keeping: "r\(replan)-s\(index)-") }
        for attempt in 0..<plan.policy.maxAttempts {
            stepAttempt = attempt
            try await checkLive()
            let requests = (0..<samples).map { k in
                prompts.actor(
                    steps: steps, index: index, attempt: attempt, replan: replan, rejected: rejected, sample: samples > 1 ? k : nil)
            }
            var copies: [String?] = []
            for k in 0..<samples {
                let planned = root.map {
                    CandidateWorkspace.path(beside: $0, jobID: job.id, replan: replan, step: index, attempt: attempt, sample: k)
                }
                let started = CandidateStarted(sample: k, parent: parent, temperature: requests[k].temperature, workspace: planned)
                let (event, replayed) = try await log.emit(
                    EventDraft(started, role: Role.actor.rawValue, step: index, attempt: attempt))
                // A recovered candidate works in the copy its record names.
                copies.append(replayed ? (try event.decode(CandidateStarted.self)).workspace : planned)
            }
            let boxes = copies.map { copy in candidateTools(copy, root: root) }
            let results: [ActResult]
            if samples == 1 {
                results = [ActResult(try await act(requests[0], tools: boxes[0]))]
            } else {
                results = try await fanOut(samples) { k, line in ActResult(try await self.act(requests[k], line: line, tools: boxes[k])) }
            }

            var candidates: [Candidate] = []
            for k in 0..<samples {
                var candidate = Candidate(ref: CandidateRef(attempt: attempt, sample: k), workspace: copies[k])
                switch results[k].result {
                case let .failure(unusable):
                    candidate.feedback = unusable.feedback
                case let .success(output):
                    candidate.output = output
                    if let same = (seen + candidates).first(where: { $0.output == output }) {
                        // Not judged again as if it were new: the earlier judgement stands.
                        candidate.outcome = .duplicate
                        (candidate.verdict, candidate.score) = (same.verdict, same.score)
                        candidate.feedback = same.feedback
                    } else {
                        let own = copies[k] == nil || root == nil ? nil : boxes[k]
                        let verdict = try await judge(
                            steps: steps, index: index, attempt: attempt, replan: replan, output: output, sample: samples > 1 ? k : nil,
                            workspace: own)
                        candidate.criticCall = main.last
                        // The plan's ground-truth check, recorded and never deciding (`JobRunner+Check`).
                        try await check(
                            steps: steps, index: index, attempt: attempt, replan: replan, output: output, sample: k,
                            workspace: plan.check == nil ? nil : await candidateWorkspace(own))
                        candidate.verdict = verdict
                        candidate.outcome = verdict.outcome == .pass ? .pass : .fail
                        candidate.score = verdict.score
                        candidate.feedback = verdict.feedback
                    }
                }
                candidates.append(candidate)
            }

            // The best-scored passing candidate goes on, after its review when the plan asks for one.
            var chosen: (sample: Int, output: String)?
            if let k = Self.ranked(candidates.filter { $0.outcome == .pass }).first?.ref.sample,
                let output = candidates[k].output, let verdict = candidates[k].verdict
            {
                switch try await reviewStepOutput(output, verdict: verdict, steps: steps, index: index, attempt: attempt, replan: replan) {
                case nil: chosen = (k, output)
                case let .success(accepted)?: chosen = (k, accepted)
                case let .failure(rejection)?:
                    candidates[k].outcome = .rejected
                    candidates[k].feedback = rejection.feedback
                }
            }
            for candidate in candidates {
                try await log.emit(
                    EventDraft(
                        CandidateJudged(
                            sample: candidate.ref.sample, outcome: candidate.outcome, score: candidate.score, feedback: candidate.feedback),
                        role: Role.critic.rawValue, step: index, attempt: attempt, callID: candidate.criticCall))
            }
            seen += candidates
            if let chosen {
                let winner = candidates[chosen.sample]
                try await choose(winner, reason: .passed, root: root, discarding: copies + [best?.workspace], step: index)
                return .passed(chosen.output)
            }

            // None passed: the rerun reads the best candidate's feedback and revises it.
            let lead = Self.ranked(candidates.filter { $0.score != nil }).first ?? candidates[0]
            parent = lead.ref
            lastFeedback = lead.feedback
            stepFeedback = lastFeedback
            if let verdict = lead.verdict, lead.outcome == .fail || lead.outcome == .duplicate {
                rejected.append(RejectedAttempt(attempt: attempt, output: lead.output ?? "", verdict: verdict))
            } else {
                rejected.append(RejectedAttempt(attempt: attempt, output: lead.output ?? "", feedback: lead.feedback, suggestion: nil))
            }
            var discarded = copies
            for candidate in candidates where candidate.outcome == .fail {
                guard let score = candidate.score, score > (best?.score ?? -1) else { continue }
                if plan.policy.onExhausted == .best {
                    discarded.removeAll { $0 == candidate.workspace }
                    discarded.append(best?.workspace)
                }
                best = candidate
            }
            await discard(discarded, keeping: plan.policy.onExhausted == .best ? best?.workspace : nil)
            if let feasibility = lead.verdict?.feasibility, lead.outcome == .fail, attempt + 1 < plan.policy.maxAttempts,
                replansEarly(feasibility: feasibility, replan: replan)
            {
                await discard([best?.workspace], keeping: nil)
                return try await judgedInfeasible(index: index, attempt: attempt, feasibility: feasibility, feedback: lead.feedback)
            }
        }
        let goesOn = plan.policy.onExhausted == .best ? best : nil
        try await log.emit(
            EventDraft(
                StepExhausted(
                    attempts: plan.policy.maxAttempts, lastFeedback: lastFeedback, bestAttempt: goesOn?.ref.attempt,
                    bestScore: goesOn?.score),
                step: index))
        if let goesOn, let output = goesOn.output {
            try await choose(goesOn, reason: .best, root: root, discarding: [], step: index)
            return .passed(output)
        }
        await discard([best?.workspace], keeping: nil)
        return .failed("failed \(plan.policy.maxAttempts) attempts", feedback: lastFeedback)
    }

    /// `candidates` best first: the highest score, then the lowest attempt and sample.
    static func ranked(_ candidates: [Candidate]) -> [Candidate] {
        candidates.sorted { a, b in
            let (x, y) = (a.score ?? -1, b.score ?? -1)
            if x != y { return x > y }
            return (a.ref.attempt, a.ref.sample) < (b.ref.attempt, b.ref.sample)
        }
    }

    /// Records `winner` as the step's choice and makes its copy of the workspace the job's (see the
    /// type's description); the other copies in `discarding` go.
    private func choose(_ winner: Candidate, reason: CandidateChosen.Reason, root: String?, discarding: [String?], step: Int) async throws {
        try await log.emit(
            EventDraft(
                CandidateChosen(sample: winner.ref.sample, score: winner.score, reason: reason, workspace: winner.workspace),
                role: Role.critic.rawValue, step: step, attempt: winner.ref.attempt))
        if let copy = winner.workspace, let root {
            let applied = await ToolBox.onFiles { () -> String? in
                do {
                    try CandidateWorkspace.apply(copy, to: root)
                    return nil
                } catch {
                    return "\(error)"
                }
            }
            if let problem = applied {
                throw Failure(reason: "the chosen candidate's workspace could not replace the job's: \(problem)")
            }
        }
        await discard(discarding, keeping: winner.workspace)
    }

    /// Removes the copies in `copies` other than `keeping`.
    private func discard(_ copies: [String?], keeping: String?) async {
        let gone = copies.compactMap { $0 }.filter { $0 != keeping }
        guard !gone.isEmpty else { return }
        // A copy that cannot be removed is left behind; the job's work does not depend on it.
        _ = await ToolBox.onFiles { (try? CandidateWorkspace.discard(gone)) != nil }
    }

    /// Removes the job's copies that do not belong to the step beginning (`keeping`, a name prefix):
    /// those an earlier step left when it ended early (its time up, its rejections used up).
    private func discardCopies(beside root: String, keeping prefix: String) async {
        let directory = CandidateWorkspace.directory(beside: root, jobID: job.id)
        _ = await ToolBox.onFiles { (try? CandidateWorkspace.discard(in: directory, except: prefix)) != nil }
    }

    /// The job's workspace (a real path) when its candidates get copies of it: the actor has tools,
    /// the policy asks for more than one sample, and the workspace can be had.
    private func workspaceRoot(samples: Int) async -> String? {
        // `agentd replay` touches no files: it runs no tool, so its candidates need no copies.
        guard samples > 1, !log.strictReplay, let tools, case let .success(root) = await tools.launcher.prepareWorkspace() else {
            return nil
        }
        return root
    }

    /// The copy of the workspace a command critic judges a candidate in (made now if its candidate
    /// never used its tools); nil for a candidate without one.
    func candidateWorkspace(_ tools: ToolBox?) async -> String? {
        guard let tools, case let .success(path) = await tools.launcher.prepareWorkspace() else { return nil }
        return path
    }

    /// A model critic's read-only tools in a candidate's copy of the workspace (`candidate`, its
    /// tools); nil when the critic has no tools or the candidate no copy.
    func candidateCriticTools(_ candidate: ToolBox?) -> ToolBox? {
        guard let candidate, let criticTools else { return nil }
        return ToolBox(offered: criticTools.offered, policy: plan.policy, launcher: candidate.launcher, readOnly: true)
    }

    /// The tools a candidate works with: in its copy of the workspace when it has one.
    private func candidateTools(_ copy: String?, root: String?) -> ToolBox? {
        guard let tools, let copy, let root else { return tools }
        return ToolBox(offered: tools.offered, policy: plan.policy, launcher: tools.launcher.working(in: .success(copy), copyOf: root))
    }
}

/// One branch's result: the actor's output or why there is none.
struct ActResult: Sendable {
    let result: Result<String, JobRunner.Unusable>

    init(_ result: Result<String, JobRunner.Unusable>) {
        self.result = result
    }
}
