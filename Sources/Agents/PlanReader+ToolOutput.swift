extension PlanReader {
    /// `turn_tool_output_cap` and `job_tool_output_cap`: each at least the cap below it (a result's,
    /// then a turn's). Left out, each is its default or the cap below it, whichever is larger, so a
    /// plan (or a stored snapshot from before these keys) that raises only `tool_output_cap` still
    /// gets whole results.
    func toolOutputBudgets(_ entries: YAMLEntries, _ policy: inout Policy) throws(PlanError) {
        policy.turnToolOutputCap = try budget(
            entries["turn_tool_output_cap"], in: 1...(1 << 30), default: Policy.defaultTurnToolOutputCap,
            atLeast: (policy.toolOutputCap, "tool_output_cap"), why: "one turn's results must have room for one whole result")
        policy.jobToolOutputCap = try budget(
            entries["job_tool_output_cap"], in: 1...(1 << 40), default: Policy.defaultJobToolOutputCap,
            atLeast: (policy.turnToolOutputCap, "turn_tool_output_cap"), why: "the job's budget must have room for one whole turn")
    }

    /// One budget: `field`'s value, at least `below` (the budget under it, named); without the field,
    /// the larger of `fallback` and `below`.
    private func budget(
        _ field: YAMLField?, in range: ClosedRange<Int>, default fallback: Int, atLeast below: (value: Int, key: String), why: String
    ) throws(PlanError) -> Int {
        guard let field else { return max(fallback, below.value) }
        let value = try int(field, in: range)
        guard value >= below.value else {
            throw fail(field.mark, field.path, "\(value) is less than \(below.key) (\(below.value)): \(why)")
        }
        return value
    }
}
