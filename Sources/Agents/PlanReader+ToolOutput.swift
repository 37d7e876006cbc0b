extension PlanReader {
    /// `turn_tool_output_cap` and `job_tool_output_cap`: each at least the cap below it (a result's,
    /// then a turn's). Left out, each is its default or the cap below it, whichever is larger, so a
    /// plan (or a stored snapshot from before these keys) that raises only `tool_output_cap` still
    /// gets whole results.
    func toolOutputBudgets(_ entries: Entries, _ policy: inout Policy) throws(PlanError) {
        policy.turnToolOutputCap = max(Policy.defaultTurnToolOutputCap, policy.toolOutputCap)
        if let f = entries["turn_tool_output_cap"] {
            policy.turnToolOutputCap = try int(f, in: 1...(1 << 30))
            guard policy.turnToolOutputCap >= policy.toolOutputCap else {
                throw fail(
                    f.mark, f.path,
                    "\(policy.turnToolOutputCap) is less than tool_output_cap (\(policy.toolOutputCap)): one turn's results must have room for one whole result"
                )
            }
        }
        policy.jobToolOutputCap = max(Policy.defaultJobToolOutputCap, policy.turnToolOutputCap)
        if let f = entries["job_tool_output_cap"] {
            policy.jobToolOutputCap = try int(f, in: 1...(1 << 40))
            guard policy.jobToolOutputCap >= policy.turnToolOutputCap else {
                throw fail(
                    f.mark, f.path,
                    "\(policy.jobToolOutputCap) is less than turn_tool_output_cap (\(policy.turnToolOutputCap)): the job's budget must have room for one whole turn"
                )
            }
        }
    }
}
