import Store

/// `job.prune`'s result, and what `agentd prune` prints as JSON when it prunes without a daemon:
/// the request echoed, then what was (or would be) removed. Pure value; any thread.
public struct PruneOutcome: Sendable, Equatable {
    public var dryRun: Bool
    /// The cutoff, Unix ms.
    public var before: Int
    public var statuses: [JobStatus]
    public var result: PruneResult

    public init(dryRun: Bool, before: Int, statuses: [JobStatus], result: PruneResult) {
        self.dryRun = dryRun
        self.before = before
        self.statuses = statuses
        self.result = result
    }

    /// Decodes a result. Throws `WireShapeError` naming the member when the shape is wrong.
    public init(json: JSON) throws(WireShapeError) {
        func int(_ key: String) throws(WireShapeError) -> Int {
            guard let n = json[key]?.intValue else { throw WireShapeError("prune: '\(key)' must be an integer") }
            return n
        }
        guard let dryRun = json["dry_run"]?.boolValue else { throw WireShapeError("prune: 'dry_run' must be true or false") }
        self.dryRun = dryRun
        before = try int("before")
        guard case let .array(items)? = json["statuses"] else { throw WireShapeError("prune: 'statuses' must be an array") }
        statuses = []
        for item in items {
            guard let status = item.stringValue.flatMap(JobStatus.init(rawValue:)) else {
                throw WireShapeError("prune: unknown status \(item.encoded)")
            }
            statuses.append(status)
        }
        let pruneID: Int64?
        switch json["prune"] {
        case .none, .null?: pruneID = nil
        case let value?:
            guard let n = value.intValue else { throw WireShapeError("prune: 'prune' must be an integer or null") }
            pruneID = Int64(n)
        }
        result = PruneResult(jobs: try int("jobs"), events: try int("events"), pruneID: pruneID)
    }

    public var json: JSON {
        .object([
            ("dry_run", .bool(dryRun)), ("before", .int(before)), ("statuses", .array(statuses.map { .string($0.rawValue) })),
            ("jobs", .int(result.jobs)), ("events", .int(result.events)), ("prune", result.pruneID.map { .int(Int($0)) } ?? .null),
        ])
    }
}
