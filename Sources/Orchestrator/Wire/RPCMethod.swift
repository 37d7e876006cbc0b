/// Every JSON-RPC method the daemon answers, by its wire name.
///
/// The server dispatches on this enum with an exhaustive `switch`, so a new case does not compile
/// until it has a handler; docs/protocol.md's method headings list exactly these (a test checks it).
/// The client, the CLI and the benchmarks name methods through it. Pure value; any thread.
public enum RPCMethod: String, Sendable, CaseIterable {
    case jobSubmit = "job.submit"
    case jobGet = "job.get"
    case jobList = "job.list"
    case jobCancel = "job.cancel"
    case jobWait = "job.wait"
    case jobWatch = "job.watch"
    case jobTranscript = "job.transcript"
    case jobPrune = "job.prune"
    case jobRetry = "job.retry"
    case auditVerify = "audit.verify"
    case auditSearch = "audit.search"
    case statsGet = "stats.get"
    case daemonStatus = "daemon.status"
    case gateList = "gate.list"
    case gateDecide = "gate.decide"
    case daemonBackup = "daemon.backup"

    /// The notification that carries one event during `job.watch` (sent by the daemon, never called).
    public static let jobEvent = "job.event"
}
