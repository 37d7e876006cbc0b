import Store

/// `audit.verify`'s result, and what `agentd audit verify --json` prints for `--all`: whether every
/// chain verifies, each job's report (the first broken `seq` and why, for a broken one), and what
/// prunes removed. Pure value; any thread.
public struct ChainVerification: Sendable, Equatable {
    /// One job's chain: `problem` is nil when it verifies.
    public struct Report: Sendable, Equatable {
        public var job: String
        public var events: Int
        /// The recomputed head, hex (nil for a job without events).
        public var head: String?
        public var problem: ChainProblem?

        public var ok: Bool { problem == nil }

        public init(_ report: ChainReport) {
            job = report.jobID
            events = report.events
            head = report.head?.hex
            problem = report.problem
        }

        /// `agentd audit verify --json JOB`'s object.
        public var json: JSON {
            var members: [(String, JSON)] = [
                ("job", .string(job)), ("ok", .bool(ok)), ("events", .int(events)), ("head", head.map(JSON.string) ?? .null),
            ]
            if let problem {
                members.append(("seq", .int(problem.seq)))
                members.append(("kind", problem.eventKind.map(JSON.string) ?? .null))
                members.append(("problem", .string(problem.kind.rawValue)))
                members.append(("message", .string(problem.message)))
            }
            return .object(members)
        }

        init(json: JSON) throws(WireShapeError) {
            guard let job = json["job"]?.stringValue, let events = json["events"]?.intValue else {
                throw WireShapeError("verify: a report needs 'job' and 'events'")
            }
            self.job = job
            self.events = events
            head = json["head"]?.stringValue
            if json["ok"]?.boolValue == false {
                guard let seq = json["seq"]?.intValue, let word = json["problem"]?.stringValue,
                    let kind = ChainProblem.Kind(rawValue: word),
                    let message = json["message"]?.stringValue
                else { throw WireShapeError("verify: a broken report needs 'seq', 'problem' and 'message'") }
                problem = ChainProblem(kind: kind, seq: seq, eventKind: json["kind"]?.stringValue, message: message)
            }
        }
    }

    public var reports: [Report]
    /// How many jobs prunes removed, by how many prunes, the last when (Unix ms).
    public var prunedJobs: Int
    public var prunes: Int
    public var lastPruneAt: Int64?
    /// For a single job that a prune removed: the record of it (and no report).
    public var pruned: PrunedJob?

    public init(reports: [Report], summary: PruneSummary?, pruned: PrunedJob? = nil) {
        self.reports = reports
        prunedJobs = summary?.jobs ?? 0
        prunes = summary?.prunes ?? 0
        lastPruneAt = summary?.lastAt
        self.pruned = pruned
    }

    public var ok: Bool { pruned == nil && reports.allSatisfy(\.ok) }
    public var events: Int { reports.reduce(0) { $0 + $1.events } }

    public var json: JSON {
        var members: [(String, JSON)] = [
            ("ok", .bool(ok)), ("jobs", .int(reports.count)), ("events", .int(events)), ("reports", .array(reports.map(\.json))),
            ("pruned_jobs", .int(prunedJobs)), ("prunes", .int(prunes)), ("last_prune_at", lastPruneAt.map { .int(Int($0)) } ?? .null),
        ]
        if let pruned {
            members.append(
                (
                    "pruned_job",
                    .object([
                        ("job", .string(pruned.jobID)), ("prune", .int(Int(pruned.pruneID))), ("pruned_at", .int(Int(pruned.prunedAt))),
                        ("before", .int(Int(pruned.before))), ("status", .string(pruned.status)),
                        ("finished_at", .int(Int(pruned.finishedAt))), ("head", pruned.head.map(JSON.string) ?? .null),
                        ("length", .int(pruned.length)),
                    ])
                ))
        }
        return .object(members)
    }

    /// Decodes a result. Throws `WireShapeError` naming the member when the shape is wrong.
    public init(json: JSON) throws(WireShapeError) {
        guard case let .array(items)? = json["reports"] else { throw WireShapeError("verify: 'reports' must be an array") }
        reports = []
        for item in items { reports.append(try Report(json: item)) }
        prunedJobs = json["pruned_jobs"]?.intValue ?? 0
        prunes = json["prunes"]?.intValue ?? 0
        lastPruneAt = json["last_prune_at"]?.intValue.map(Int64.init)
        if let p = json["pruned_job"], !p.isNull {
            guard let job = p["job"]?.stringValue, let prune = p["prune"]?.intValue, let at = p["pruned_at"]?.intValue,
                let before = p["before"]?.intValue, let status = p["status"]?.stringValue, let finished = p["finished_at"]?.intValue,
                let length = p["length"]?.intValue
            else { throw WireShapeError("verify: 'pruned_job' is incomplete") }
            pruned = PrunedJob(
                jobID: job, pruneID: Int64(prune), prunedAt: Int64(at), before: Int64(before), status: status, finishedAt: Int64(finished),
                head: p["head"]?.stringValue, length: length)
        }
    }
}

/// `daemon.backup`'s result: which database was copied, where the checked copy is, and what it holds.
public struct BackupOutcome: Sendable, Equatable {
    public var database: String
    public var path: String
    public var jobs: Int
    public var bytes: Int

    public init(database: String, path: String, jobs: Int, bytes: Int) {
        self.database = database
        self.path = path
        self.jobs = jobs
        self.bytes = bytes
    }

    public var json: JSON {
        .object([("database", .string(database)), ("path", .string(path)), ("jobs", .int(jobs)), ("bytes", .int(bytes))])
    }

    public init(json: JSON) throws(WireShapeError) {
        guard let database = json["database"]?.stringValue, let path = json["path"]?.stringValue, let jobs = json["jobs"]?.intValue,
            let bytes = json["bytes"]?.intValue
        else { throw WireShapeError("backup: 'database', 'path', 'jobs' and 'bytes' are required") }
        self.init(database: database, path: path, jobs: jobs, bytes: bytes)
    }
}
