/// Names the agent calls of one line of work in a job, so every call id is unique in the job and
/// the same on every replay, whatever order concurrent calls run in.
///
/// The job's main line names its calls `c1, c2, …`. A fan-out (`JobRunner.fanOut`) reserves one id
/// of the line it starts from, `c7`, and its branch b (0-based) names its calls `c7-(b+1)-1,
/// c7-(b+1)-2, …`; a fan-out inside a branch nests the same way (`c7-2-3-1-1`). Ids never contain a
/// `.`: a tool call's id is its model call's id, a dot and its index (`c7-2-1.0`).
///
/// Loop-confined: created and advanced by the job's runner on the loop thread.
final class CallLine: @unchecked Sendable {
    private let prefix: String
    /// Ids given so far.
    private(set) var count = 0

    private init(prefix: String) {
        self.prefix = prefix
    }

    /// A job's main line: `c1, c2, …`.
    static func main() -> CallLine { CallLine(prefix: "c") }

    /// Gives the line's next id.
    func next() -> String {
        count += 1
        return last
    }

    /// The id `next` gives next.
    var upcoming: String { prefix + String(count + 1) }

    /// The last id given (`c0` on a main line that gave none).
    var last: String { prefix + String(count) }

    /// The lines of the `count` branches of a fan-out that reserved the id `reserved`.
    static func branches(_ count: Int, of reserved: String) -> [CallLine] {
        (0..<count).map { CallLine(prefix: "\(reserved)-\($0 + 1)-") }
    }
}
