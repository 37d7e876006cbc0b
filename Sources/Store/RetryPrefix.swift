/// What a retry from step N reuses of the job it retries (`agentd retry`, `job.retry`).
///
/// The prefix is the original's runner events before the first event of step N (steps counted from
/// 1, as people read them; events store the 0-based index): the plan (and any re-plan before that
/// point), and every call and tool of steps 1 to N-1 with its recorded answer. A retry's runner
/// matches it as it goes, and each event it matches is written to the retry's own log as a copy,
/// its payload marked with `member` (the original's seq). Nothing from step N on is ever reused,
/// and a step the original never reached has no prefix (everything runs live).
///
/// Pure; safe from any thread.
public enum RetryPrefix {
    /// The payload member that marks an event a retry copied from the job it retries: the seq of
    /// the original event.
    public static let member = "reused_from"

    /// Kinds that are not part of the runner's sequence, so never reused: written at submission,
    /// by recovery, for a refused gate decision, or to link jobs.
    public static let notReused: Set<String> = [
        EventKind.jobSubmitted.rawValue, EventKind.jobResumed.rawValue, EventKind.callRestarted.rawValue,
        EventKind.toolRestarted.rawValue, EventKind.gateRefused.rawValue, EventKind.jobRetried.rawValue,
    ]

    /// The steps a job reached, as people count them: the highest step any of its events names,
    /// plus one; at least 1. A retry may start from 1 to this; it is also the default (the step
    /// where a failed job stopped).
    public static func stepsReached(_ events: [EventRecord]) -> Int {
        (events.compactMap(\.step).max() ?? 0) + 1
    }

    /// The events a retry from `fromStep` (1-based) reuses: the runner's events before the first
    /// one of that step; none when the job never reached it.
    public static func events(_ events: [EventRecord], fromStep: Int) -> [EventRecord] {
        let runner = events.filter { !notReused.contains($0.kind) }
        guard let cut = runner.firstIndex(where: { $0.step == fromStep - 1 }) else { return [] }
        return Array(runner[..<cut])
    }

    /// The original's seq of an event a retry copied; nil for an event the job made itself.
    public static func source(of event: EventRecord) -> Int? {
        event.payload[member]?.intValue
    }

    /// `payload` without the mark (an original that was itself a retry has marked events).
    public static func unmarked(_ payload: JSON) -> JSON {
        guard case let .object(members) = payload else { return payload }
        return .object(members.filter { $0.0 != member })
    }

    /// `payload` marked as the copy of the original's event `seq`.
    public static func marking(_ payload: JSON, from seq: Int) -> JSON {
        payload.setting(member, .int(seq))
    }
}

/// A retried job's link to what it reuses, as recovery and replay read it. Pure value.
public struct RetrySource: Sendable {
    /// The job it retries, and the step (from 1) it runs live from.
    public var original: String
    public var fromStep: Int
    /// `RetryPrefix.events` of the original; nil when the original is no longer in the store.
    public var prefix: [EventRecord]?

    public init(original: String, fromStep: Int, prefix: [EventRecord]?) {
        self.original = original
        self.fromStep = fromStep
        self.prefix = prefix
    }
}

extension Database {
    /// What the job whose `job.submitted` is `submitted` reuses, when it is a retry (nil otherwise).
    public func retrySource(of submitted: JobSubmitted?) throws(StoreError) -> RetrySource? {
        guard let original = submitted?.retryOf, let step = submitted?.fromStep else { return nil }
        let events = try events(jobID: original)
        return RetrySource(original: original, fromStep: step, prefix: events.isEmpty ? nil : RetryPrefix.events(events, fromStep: step))
    }
}

/// How a job is linked to its retries, read from the record (`agentd show`, `job.get`). Pure value.
public struct RetryLinks: Sendable, Equatable {
    /// The job this one retries, and the step it ran live from; nil when it is not a retry.
    public var retryOf: String?
    public var fromStep: Int?
    /// The retries of this job, oldest first, each with its step.
    public var retries: [(job: String, fromStep: Int)]
    /// How many calls this retry answered from the original's record.
    public var reusedCalls: Int

    public init(retryOf: String? = nil, fromStep: Int? = nil, retries: [(job: String, fromStep: Int)] = [], reusedCalls: Int = 0) {
        self.retryOf = retryOf
        self.fromStep = fromStep
        self.retries = retries
        self.reusedCalls = reusedCalls
    }

    public static func == (a: RetryLinks, b: RetryLinks) -> Bool {
        a.retryOf == b.retryOf && a.fromStep == b.fromStep && a.reusedCalls == b.reusedCalls
            && a.retries.map(\.job) == b.retries.map(\.job) && a.retries.map(\.fromStep) == b.retries.map(\.fromStep)
    }
}

extension Database {
    /// The retry links of job `jobID`: its `job.submitted`'s and its `job.retried` events.
    public func retryLinks(jobID: String) throws(StoreError) -> RetryLinks {
        var links = RetryLinks()
        for row in try query(
            "SELECT kind, payload FROM events WHERE job_id = ? AND (seq = 1 OR kind = 'job.retried') ORDER BY seq", [.text(jobID)])
        {
            guard let payload = try? JSON.parse(row[1].text ?? "") else { continue }
            if row[0].text == EventKind.jobRetried.rawValue, let retried = try? JobRetried(payload: payload) {
                links.retries.append((retried.job, retried.fromStep))
            } else if let submitted = try? JobSubmitted(payload: payload) {
                (links.retryOf, links.fromStep) = (submitted.retryOf, submitted.fromStep)
            }
        }
        if links.retryOf != nil {
            links.reusedCalls = Int(
                try query(
                    "SELECT count(*) FROM events WHERE job_id = ? AND kind = 'call.started' AND json_extract(payload, '$.reused_from') IS NOT NULL",
                    [.text(jobID)])[0][0].int ?? 0)
        }
        return links
    }
}
