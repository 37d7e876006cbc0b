import Store

/// Fans committed job events out to watchers, and terminal states out to waiters.
///
/// Publish-to-topic (a job's events) beside the bus's send-and-await-reply. Every event reaches
/// subscribers only after it is committed. Loop thread only.
final class EventHub: @unchecked Sendable {
    final class Subscription {
        let jobID: String
        let deliver: (EventRecord) -> Void
        var active = true

        init(jobID: String, deliver: @escaping (EventRecord) -> Void) {
            self.jobID = jobID
            self.deliver = deliver
        }
    }

    private var subscribers: [String: [Subscription]] = [:]
    private var waiters: [String: [(JobRecord) -> Void]] = [:]

    var subscriberCount: Int { subscribers.values.reduce(0) { $0 + $1.count } }

    func subscribe(jobID: String, _ deliver: @escaping (EventRecord) -> Void) -> Subscription {
        let s = Subscription(jobID: jobID, deliver: deliver)
        subscribers[jobID, default: []].append(s)
        return s
    }

    func unsubscribe(_ s: Subscription) {
        s.active = false
        subscribers[s.jobID]?.removeAll { $0 === s }
        if subscribers[s.jobID]?.isEmpty == true { subscribers[s.jobID] = nil }
    }

    func publish(_ events: [EventRecord]) {
        guard let jobID = events.first?.jobID, let subs = subscribers[jobID] else { return }
        for event in events {
            for s in subs where s.active { s.deliver(event) }
        }
    }

    /// Calls `waiter` with the job's committed final record once it reaches a terminal state.
    func wait(jobID: String, _ waiter: @escaping (JobRecord) -> Void) {
        waiters[jobID, default: []].append(waiter)
    }

    func finished(_ job: JobRecord) {
        guard let list = waiters.removeValue(forKey: job.id) else { return }
        for w in list { w(job) }
    }
}
