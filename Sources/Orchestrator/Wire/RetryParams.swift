import Store

/// `job.retry`: the finished job to retry, the step (from 1) to run live from — by default the step
/// where it stopped — and, optionally, a new goal. Pure value; any thread.
public struct RetryParams: MethodParams {
    public var id: String
    public var fromStep: Int?
    public var goal: String?

    public init(id: String, fromStep: Int? = nil, goal: String? = nil) {
        self.id = id
        self.fromStep = fromStep
        self.goal = goal
    }

    public init(decoding p: Params) throws(RPCError) {
        id = try p.jobID()
        if let value = p.raw["from_step"], !value.isNull {
            guard let step = value.intValue, step >= 1 else {
                throw .invalidParams("'from_step' must be a step number from 1, got \(value.encoded)")
            }
            fromStep = step
        }
        goal = try p.string("goal")
        if goal?.isEmpty == true { throw .invalidParams("'goal' must not be empty (leave it out to keep the job's goal)") }
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("id", .string(id))]
        if let fromStep { members.append(("from_step", .int(fromStep))) }
        if let goal { members.append(("goal", .string(goal))) }
        return .object(members)
    }
}
