import Agents
import Store

/// One job's budgets for what its tools return: per result (`policy.tool_output_cap`), per model
/// turn (`policy.turn_tool_output_cap`, and `policy.max_tool_calls_per_turn` calls), and per job
/// (`policy.job_tool_output_cap`).
///
/// Each budget counts the output a result carries (stdout and stderr, or a file's content) as it is
/// encoded in JSON (see `ToolAllowance`), which is what every event and model request that repeats it
/// stores: so what one turn adds to the next request and to the database stays bounded however the
/// output is made up. Before each call the runner asks for an `allowance`: the smallest of the three
/// remainders, or — when the turn has made its calls or less than `minimumAllowance` is left of
/// the turn's or the job's budget — a `ToolProblem` that becomes the call's result (recorded like
/// any other, the tool not run). After each call it `charge`s the result. Refusals carry no output
/// and cost nothing.
///
/// Deterministic given the results: a recovered job charges its recorded results in the same order,
/// so it reaches the same allowances and refusals as the run it replays.
///
/// Owned by one job's runner (its actor, on the loop); a value type with no I/O.
struct ToolOutputBudget: Sendable {
    /// Below this much left of the turn's or the job's budget a call is refused instead of run: its
    /// output could hardly be shown. (A smaller `tool_output_cap` is used as it is.)
    static let minimumAllowance = 1024

    let policy: Policy
    /// Output charged so far, in the job and in the current turn.
    private(set) var jobUsed = 0
    private(set) var turnUsed = 0

    init(policy: Policy) {
        self.policy = policy
    }

    /// A new model turn's calls begin.
    mutating func startTurn() {
        turnUsed = 0
    }

    /// What the call at `index` (0-based) of the current turn may return, or why it is not run.
    func allowance(callIndex index: Int) -> Result<ToolAllowance, ToolProblem> {
        allowance(callIndex: index, turnUsed: turnUsed)
    }

    /// The same for a turn whose charges its caller keeps (`turnUsed`): an attempt's concurrent
    /// candidates each have their own turns, and share the job's budget.
    func allowance(callIndex index: Int, turnUsed: Int) -> Result<ToolAllowance, ToolProblem> {
        let calls = policy.maxToolCallsPerTurn
        guard index < calls else {
            return .failure(
                ToolProblem(
                    "not run: one model turn may make \(calls) tool calls (policy.max_tool_calls_per_turn) and this is call \(index + 1); make the others in the next turn"
                ))
        }
        let floor = min(Self.minimumAllowance, policy.toolOutputCap)
        let jobLeft = policy.jobToolOutputCap - jobUsed
        guard jobLeft >= floor else {
            return .failure(
                ToolProblem(
                    "not run: the job's tool output budget of \(policy.jobToolOutputCap) bytes (policy.job_tool_output_cap) is used up (\(jobUsed) bytes received); answer with what you have"
                ))
        }
        let turnLeft = policy.turnToolOutputCap - turnUsed
        guard turnLeft >= floor else {
            return .failure(
                ToolProblem(
                    "not run: this turn's tool output budget of \(policy.turnToolOutputCap) bytes (policy.turn_tool_output_cap) is used up (\(turnUsed) bytes received); make this call again in the next turn"
                ))
        }
        if policy.toolOutputCap <= min(turnLeft, jobLeft) {
            return .success(ToolAllowance(bytes: policy.toolOutputCap, limit: "policy.tool_output_cap"))
        }
        if turnLeft <= jobLeft {
            return .success(ToolAllowance(bytes: turnLeft, limit: "what is left of this turn's policy.turn_tool_output_cap"))
        }
        return .success(ToolAllowance(bytes: jobLeft, limit: "what is left of the job's policy.job_tool_output_cap"))
    }

    /// Counts the output `result` carries against the turn's and the job's budgets.
    mutating func charge(_ result: JSON) {
        let count = Self.outputCount(of: result)
        turnUsed += count
        jobUsed += count
    }

    /// Counts `result` against the job's budget and the caller's own turn, `turnUsed`.
    mutating func charge(_ result: JSON, turnUsed: inout Int) {
        let count = Self.outputCount(of: result)
        turnUsed += count
        jobUsed += count
    }

    /// The output a tool result carries, encoded: its `stdout`, `stderr` and `content` strings.
    static func outputCount(of result: JSON) -> Int {
        ["stdout", "stderr", "content"].reduce(0) { sum, key in sum + (result[key]?.stringValue.map(JSON.escapedCount(of:)) ?? 0) }
    }
}
