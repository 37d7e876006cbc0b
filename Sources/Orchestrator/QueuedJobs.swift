#if canImport(Glibc)
    import Glibc
#endif

/// The jobs waiting to run, counted in total and per client, and the limits on them: what keeps one
/// client's flood of submissions from filling the daemon's memory or crowding out other users.
///
/// A job counts from its admission (before its submission is written) until it starts running, is
/// cancelled, or its submission fails. A client is the submitting connection's peer user id
/// (`SO_PEERCRED`), so every connection of one user shares that user's count; recovered jobs count
/// in the total only. Limits may change at any time (a configuration reload): jobs already queued stay,
/// and new submissions are refused until the counts are below the limits again. Loop thread only.
final class QueuedJobs: @unchecked Sendable {
    /// Jobs queued at once, in total (`max_queued_jobs`).
    var maxTotal: Int
    /// Jobs queued at once per client (`max_queued_jobs_per_client`).
    var maxPerClient: Int
    /// Each counted job and its client (nil: a recovered job).
    private var clients: [String: uid_t?] = [:]
    private var perClient: [uid_t: Int] = [:]

    init(maxTotal: Int, maxPerClient: Int) {
        self.maxTotal = maxTotal
        self.maxPerClient = maxPerClient
    }

    /// Jobs counted now.
    var count: Int { clients.count }

    /// Jobs counted now for `client`.
    func count(of client: uid_t) -> Int { perClient[client] ?? 0 }

    /// Throws `-32009` when one more job for `client` would exceed a limit; the error names the limit,
    /// its value and the current count.
    func checkRoom(for client: uid_t?) throws(EngineError) {
        if let client, count(of: client) >= maxPerClient {
            throw .tooManyQueued(limit: "max_queued_jobs_per_client", max: maxPerClient, queued: count(of: client), client: client)
        }
        if count >= maxTotal {
            throw .tooManyQueued(limit: "max_queued_jobs", max: maxTotal, queued: count, client: nil)
        }
    }

    /// Counts `jobID` as queued for `client`. Does not check the limits (recovery never refuses).
    func add(_ jobID: String, client: uid_t?) {
        guard clients[jobID] == nil else { return }
        clients[jobID] = client
        if let client { perClient[client, default: 0] += 1 }
    }

    /// Stops counting `jobID` (it started, was cancelled, or was never written); nothing if not counted.
    func remove(_ jobID: String) {
        guard let entry = clients.removeValue(forKey: jobID) else { return }
        guard let client = entry else { return }
        let left = (perClient[client] ?? 1) - 1
        perClient[client] = left > 0 ? left : nil
    }
}
