/// Concurrent branches of a job: candidates sampled at once, jurors asked at once.
///
/// Each branch runs on the runner's actor (so on the loop thread), interleaved with the others at
/// their suspension points, and names its calls from its own `CallLine`, so a call's id does not
/// depend on the order the calls happened to run in. While branches run, the job's log matches the
/// recorded events that carry a call id out of order (`JobLog.enterBranches`): recovery and
/// `agentd replay` answer each call from its own recorded reply, whatever order the replies came in.
///
/// The contract for branch code:
/// - keep per-branch state in locals; the runner's step fields (`stepAttempt`, `stepFeedback`,
///   `currentSteps`) belong to the main line;
/// - emit only events that carry the branch's call ids (its calls, tools and gates); record what the
///   branches produced after the join, in branch order, so the record's sequence stays deterministic;
/// - job-wide budgets (tokens, `ToolOutputBudget`'s job total) are shared; a per-turn budget is the
///   branch's own.
extension JobRunner {
    /// Runs `count` branches concurrently and returns their results in branch order. Reserves one id
    /// of `line` (the main line when nil) to name the branches' lines after. A branch that throws
    /// cancels the others, and the first error is rethrown once all have ended.
    /// An actor method of the runner: the branches' calls and writes happen on the loop thread.
    func fanOut<T: Sendable>(
        _ count: Int, from line: CallLine? = nil, _ branch: @escaping @Sendable (_ index: Int, _ line: CallLine) async throws -> T
    ) async throws -> [T] {
        let lines = CallLine.branches(count, of: (line ?? main).next())
        log.enterBranches()
        defer { log.leaveBranches() }
        return try await withThrowingTaskGroup(of: (Int, T).self) { group in
            for (index, line) in lines.enumerated() {
                group.addTask(executorPreference: loop) { (index, try await branch(index, line)) }
            }
            var results: [T?] = Array(repeating: nil, count: count)
            var first: (any Error)?
            while !group.isEmpty {
                do {
                    guard let (index, result) = try await group.next() else { break }
                    results[index] = result
                } catch {
                    if first == nil { first = error }
                    // On replay a branch whose record ends where its step ran out of time stops there,
                    // while its siblings still replay what they recorded before it; any other end
                    // stops them all.
                    if !(error is CallAbandoned && log.isReplaying) { group.cancelAll() }
                }
            }
            if let first { throw first }
            return results.map { $0! }
        }
    }
}
