import Agents
import Store

/// The plan's ground-truth check (`check`): after the critic's verdict on an output, the check's
/// command judges the same output, and its result is recorded as `step.checked` for `agentd stats`
/// (false passes, false fails, flips). It runs as an agent of its own (`Engine.checkAgent`, a
/// critic-role agent keyed `JOBID/check`), so its call goes through the bus like any other: committed
/// before it runs, answered from the record on recovery (never run twice) and on `agentd replay`.
///
/// It never decides anything: its result reaches no prompt, verdict, re-plan or job status, and a
/// check that fails to run is recorded as not passed. It costs one call per judged output.
extension JobRunner {
    /// Runs the check on `output` (the actor's output at `index`, `attempt`, `sample`) when the plan
    /// has one, as the next call of `line` (the main line when nil); in `workspace`, a candidate's
    /// copy of the workspace, when it has one.
    func check(
        steps: [String], index: Int, attempt: Int, replan: Int, output: String, sample: Int = 0, workspace: String? = nil,
        line: CallLine? = nil
    ) async throws {
        guard let spec = plan.check else { return }
        var request = commandCriticRequest(spec, steps: steps, index: index, attempt: attempt, replan: replan, output: output)
        request.workspace = workspace
        try await checkLive()
        let reply = try await call(request, role: .critic, agent: Engine.checkAgent(job.id), line: line)
        let result: StepChecked
        switch (reply.reply, reply.interpretation) {
        case let (.success, .verdict(verdict)?):
            result = StepChecked(sample: sample, passed: verdict.outcome == .pass, feedback: verdict.feedback)
        case let (.failure(error), _):
            result = StepChecked(sample: sample, passed: false, feedback: "the check's call failed: \(error.message)")
        default:
            result = StepChecked(sample: sample, passed: false, feedback: "the check gave no verdict")
        }
        // The event carries the check's call id, so the record ties the result to its call.
        try await log.emit(EventDraft(result, step: index, attempt: attempt, callID: (line ?? main).last))
    }
}
