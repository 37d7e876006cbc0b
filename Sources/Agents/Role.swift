/// The four agent roles of a job.
///
/// The planner turns a goal into steps, the actor carries a step out, the critic judges the actor's
/// result, and the verifier alone decides whether the job succeeded.
public enum Role: String, Sendable, CaseIterable, Codable, Comparable {
    case planner
    case actor
    case critic
    case verifier

    public static func < (lhs: Role, rhs: Role) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// The address of an agent on the bus: a role and a key (the job it serves), printed `role/key`.
public struct AgentID: Hashable, Sendable, CustomStringConvertible {
    public let role: Role
    public let key: String

    public init(role: Role, key: String) {
        self.role = role
        self.key = key
    }

    public var description: String { "\(role.rawValue)/\(key)" }

    /// A jury critic's juror: `critic/JOB/NAME`.
    public static func juror(job: String, name: String) -> AgentID {
        AgentID(role: .critic, key: "\(job)/\(name)")
    }

    /// The job an agent serves: its key up to the first `/` (a juror's key is `JOB/NAME`).
    public var jobID: String { String(key.prefix { $0 != "/" }) }
}
