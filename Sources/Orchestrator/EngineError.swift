import Store

/// Why the engine refused a request or could not answer it, in the engine's own terms.
///
/// Thrown by `Engine`'s API and its helpers (`WorkspaceClaims`, `QueuedJobs`). The engine never
/// builds a protocol error: the socket boundary maps each reason to its code, message and data in one
/// place, `RPCError.init(_:)` (Wire/RPCError+Engine.swift); local callers (`LocalRun`, `Replay`) show
/// `description`, the same one line a client gets. Descriptions carry no payloads. Pure value; any
/// thread.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    enum Reason: Sendable {
        /// A submission field the engine refuses (e.g. one holding U+0000); the text names the field.
        case invalidInput(String)
        /// The plan does not load or is refused; the loader's diagnostic.
        case invalidPlan(String)
        /// The trust model refuses the client; the text names the rule.
        case permissionDenied(String)
        case shuttingDown
        /// SQLite failed a read or a write (other than a storage fault).
        case storage(String)
        /// A write is needed while a storage fault lasts; `refusing` names what is refused.
        case storageUnavailable(StorageFault, refusing: String)
        case jobNotFound(String)
        case workspaceInUse(directory: String, job: String, status: JobStatus?)
        case workspaceRefused(String)
        case tooManyQueued(limit: String, max: Int, queued: Int, client: UInt32?)
        /// A decision for a gate that is not waiting for one, or for another request than it holds.
        case gateNotWaiting(String)
    }

    let reason: Reason

    private init(_ reason: Reason) {
        self.reason = reason
    }

    public var description: String { RPCError(self).message }

    public static func invalidInput(_ message: String) -> EngineError { EngineError(.invalidInput(message)) }
    public static func invalidPlan(_ message: String) -> EngineError { EngineError(.invalidPlan(message)) }
    public static func permissionDenied(_ message: String) -> EngineError { EngineError(.permissionDenied(message)) }
    public static var shuttingDown: EngineError { EngineError(.shuttingDown) }
    public static func gateNotWaiting(_ message: String) -> EngineError { EngineError(.gateNotWaiting(message)) }
    public static func storage(_ message: String) -> EngineError { EngineError(.storage(message)) }
    public static func storageUnavailable(_ fault: StorageFault, refusing what: String = "new jobs") -> EngineError {
        EngineError(.storageUnavailable(fault, refusing: what))
    }
    public static func jobNotFound(_ id: String) -> EngineError { EngineError(.jobNotFound(id)) }
    /// Another job (`job`, in state `status`) works in the same workspace `directory`.
    public static func workspaceInUse(_ directory: String, job: String, status: JobStatus?) -> EngineError {
        EngineError(.workspaceInUse(directory: directory, job: job, status: status))
    }
    /// The workspace may not be used at all (it contains the daemon's files).
    public static func workspaceRefused(_ message: String) -> EngineError { EngineError(.workspaceRefused(message)) }
    /// A submission over a queue limit: `limit` names the setting, `max` its value, `queued` the jobs
    /// queued now (the client's, when `client` is set).
    public static func tooManyQueued(limit: String, max: Int, queued: Int, client: UInt32?) -> EngineError {
        EngineError(.tooManyQueued(limit: limit, max: max, queued: queued, client: client))
    }
}
