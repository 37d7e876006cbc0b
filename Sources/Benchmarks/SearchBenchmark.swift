import Orchestrator
import Runtime
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// `agentd bench search`: full-text search over a large event log.
///
/// Builds (once; reused from the cache directory) a database of `events` realistic events — jobs of
/// W1's shape: `job.submitted`, `job.state`, 14 calls each as `call.started` (the full request:
/// model, messages with the role's prompt and the step) and `call.completed` (reply, usage, verdicts),
/// tool calls on some actor turns — with text drawn from a Zipf-distributed vocabulary, so words range
/// from everywhere to rare. Indexes it, then times each query (catch-up included, as `audit search`
/// does) warm, several times.
public enum SearchBenchmark {
    public struct QueryResult: Sendable {
        public var name: String
        public var query: SearchQuery
        public var hits: Int
        public var millis: [Double]

        public var median: Double { millis.sorted()[millis.count / 2] }
        public var max: Double { millis.max() ?? 0 }
    }

    public struct Result: Sendable {
        public var path: String
        public var events: Int
        public var built: Bool
        public var buildSeconds: Double
        public var indexSeconds: Double
        public var databaseBytes: Int
        public var queries: [QueryResult]

        public var json: JSON {
            .object([
                ("bench", "search"), ("events", .int(events)), ("db", .string(path)), ("built", .bool(built)),
                ("build_s", .number(buildSeconds)), ("index_s", .number(indexSeconds)),
                ("db_mb", .number(Double(databaseBytes) / 1_048_576)),
                ("median_ms", .number(queries.map(\.median).sorted()[queries.count / 2])),
                ("max_ms", .number(queries.map(\.max).max() ?? 0)),
                (
                    "queries",
                    .array(
                        queries.map { q in
                            .object([
                                ("name", .string(q.name)), ("query", .string(q.query.text)), ("hits", .int(q.hits)),
                                ("median_ms", .number(q.median)), ("max_ms", .number(q.max)),
                            ])
                        })
                ),
            ])
        }
    }

    public static func run(
        path: String, events: Int, rebuild: Bool, runs: Int, progress: (String) -> Void
    ) throws(StoreError) -> Result {
        if rebuild {
            for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        }
        var built = false
        var buildSeconds = 0.0
        var db = try Database(path: path)
        try Migrations.migrate(db, now: 1_800_000_000_000)
        let existing = try db.query("SELECT count(*) FROM events")[0][0].int ?? 0
        if existing != Int64(events) {
            db = try rebuilt(path: path, db: db)
            progress("generating \(events) events into \(path)")
            let start = monotonicNanos()
            try generate(db, events: events)
            buildSeconds = seconds(since: start)
            built = true
            progress(String(format: "generated in %.1f s", buildSeconds))
        }
        let lag = try SearchIndex.lag(db)
        var indexSeconds = 0.0
        if lag > 0 {
            progress("indexing \(lag) events")
            let start = monotonicNanos()
            try SearchIndex.catchUp(db, batch: 50_000)
            indexSeconds = seconds(since: start)
            progress(String(format: "indexed in %.1f s", indexSeconds))
            try db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        let jobID = try db.query("SELECT job_id FROM events WHERE id = (SELECT max(id) / 2 FROM events)").first?[0].text ?? ""
        let queries: [(String, SearchQuery)] = [
            ("rare word", SearchQuery(text: Vocabulary.word(rank: 20_000))),
            ("medium word", SearchQuery(text: Vocabulary.word(rank: 800))),
            ("common word", SearchQuery(text: Vocabulary.word(rank: 1))),
            ("two words", SearchQuery(text: "\(Vocabulary.word(rank: 300)) \(Vocabulary.word(rank: 900))")),
            ("phrase", SearchQuery(text: "\"release notes\"")),
            ("prefix", SearchQuery(text: "migrat*")),
            ("OR", SearchQuery(text: "\(Vocabulary.word(rank: 5000)) OR \(Vocabulary.word(rank: 7000))")),
            ("job filter", SearchQuery(text: "step", jobID: jobID)),
            ("role+kind filter", SearchQuery(text: "missing", role: "critic", kind: "call.completed")),
            ("since filter", SearchQuery(text: Vocabulary.word(rank: 50), since: 1_800_000_000_000 + Int64(events) * 10 - 600_000)),
            ("rank, medium word", SearchQuery(text: Vocabulary.word(rank: 2000), order: .rank)),
            ("rank, rare word", SearchQuery(text: Vocabulary.word(rank: 20_000), order: .rank)),
        ]
        var results: [QueryResult] = []
        for (name, query) in queries {
            var hits = 0
            var millis: [Double] = []
            for run in 0...runs {
                let start = monotonicNanos()
                let found: [SearchHit]
                do {
                    found = try SearchIndex.search(db, query)
                } catch {
                    throw StoreError(code: 0, operation: "search \(query.text)", message: "\(error)")
                }
                let ms = Double(monotonicNanos() - start) / 1e6
                if run > 0 { millis.append(ms) }  // the first run warms the cache
                hits = found.count
            }
            results.append(QueryResult(name: name, query: query, hits: hits, millis: millis))
        }
        var st = stat()
        let bytes = stat(path, &st) == 0 ? Int(st.st_size) : 0
        return Result(
            path: path, events: events, built: built, buildSeconds: buildSeconds, indexSeconds: indexSeconds, databaseBytes: bytes,
            queries: results)
    }

    private static func seconds(since start: UInt64) -> Double { Double(monotonicNanos() - start) / 1e9 }

    private static func rebuilt(path: String, db: Database) throws(StoreError) -> Database {
        _ = db
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        let fresh = try Database(path: path)
        try Migrations.migrate(fresh, now: 1_800_000_000_000)
        return fresh
    }

    // MARK: Generation

    /// Writes jobs of W1's shape until `events` events exist, 200 jobs per transaction.
    static func generate(_ db: Database, events: Int) throws(StoreError) {
        var rng = SplitMix64(seed: 42)
        let insertJob = try db.prepare(
            "INSERT INTO jobs(id, plan_name, plan, goal, inputs, status, reason, created_at, started_at, finished_at) VALUES (?, 'w1', '{}', ?, '{}', ?, ?, ?, ?, ?)"
        )
        let insertEvent = try db.prepare(
            "INSERT INTO events(job_id, seq, at, kind, role, step, attempt, call_id, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        var written = 0
        var job = 0
        var at: Int64 = 1_800_000_000_000
        let prompts = [
            "planner": "Split the goal into steps. Answer with a JSON object {\"steps\": [...]}, one short imperative step each.",
            "actor": "Carry out the step. Be specific and complete; answer with {\"output\": ...}.",
            "critic": "Judge the step's output against the step and the goal. Answer with a verdict: pass or fail, a score, feedback.",
            "verifier": "Decide whether the goal is met by the accepted outputs. Answer {\"verified\": true|false, \"reason\": ...}.",
        ]
        let topics = [
            "release notes", "database migration", "latency regression", "billing report", "incident review",
            "onboarding guide", "api changelog", "security audit", "cache invalidation", "test flakiness",
        ]
        try db.execute("BEGIN")
        while written < events {
            job += 1
            let id = "01BENCH" + String(job, radix: 10).leftPadded(to: 11)
            let topic = topics[Int(rng.next() % UInt64(topics.count))]
            let goal = "Write the \(topic) for \(Vocabulary.sentence(&rng, words: 6))"
            try insertJob.run([
                .text(id), .text(goal), .text("succeeded"), .text("verified"), .int(at), .int(at + 1), .int(at + 400),
            ])
            var seq = 0
            var call = 0
            func event(_ recorded: some RecordedEvent, _ role: String?, _ step: Int?, _ attempt: Int?, _ callID: String?)
                throws(StoreError)
            {
                let (kind, payload) = (type(of: recorded).kind.rawValue, recorded.json)
                guard written < events else { return }
                seq += 1
                written += 1
                at += 10
                try insertEvent.run([
                    .text(id), .int(Int64(seq)), .int(at), .text(kind), role.map(SQLValue.text) ?? .null,
                    step.map { .int(Int64($0)) } ?? .null, attempt.map { .int(Int64($0)) } ?? .null,
                    callID.map(SQLValue.text) ?? .null, .text(payload.encoded),
                ])
            }
            func modelCall(_ role: String, step: Int?, attempt: Int?, user: String, reply: String, outcome: CallCompleted.Outcome?)
                throws(StoreError)
            {
                call += 1
                let callID = "c\(call)"
                var request: [(String, JSON)] = [
                    ("model", "gpt-4o-mini"), ("role", .string(role)),
                    (
                        "messages",
                        [["role": "system", "content": .string(prompts[role]!)], ["role": "user", "content": .string(user)]]
                    ),
                    ("temperature", 0.2),
                ]
                if let step { request.append(("step", .int(step))) }
                if let attempt { request.append(("attempt", .int(attempt))) }
                try event(CallStarted(agent: "\(role)/\(id)", reask: 0, request: .object(request)), role, step, attempt, callID)
                let input = 180 + Int(rng.next() % 400)
                let output = 20 + Int(rng.next() % 200)
                let completed = CallCompleted(
                    reply: reply, usage: .init(inputTokens: input, outputTokens: output), durationMs: Double(rng.next() % 900),
                    outcome: outcome)
                try event(completed, role, step, attempt, callID)
            }
            try event(JobSubmitted(plan: "w1", goal: goal, inputs: [:]), nil, nil, nil, nil)
            try event(JobState(from: .queued, to: .running), nil, nil, nil, nil)
            let steps = (0..<4).map { "step \($0): \(Vocabulary.sentence(&rng, words: 5 + Int(rng.next() % 6)))" }
            try modelCall(
                "planner", step: nil, attempt: nil, user: "Goal: \(goal)",
                reply: JSON.object([("steps", .array(steps.map(JSON.string)))]).encoded,
                outcome: .steps(steps))
            for (index, step) in steps.enumerated() {
                let failsFirst = index == 1 || index == 3
                for attempt in 0...(failsFirst ? 1 : 0) {
                    let output = "\(Vocabulary.sentence(&rng, words: 20 + Int(rng.next() % 30))) (\(topic))"
                    try modelCall(
                        "actor", step: index, attempt: attempt, user: "Goal: \(goal)\nStep \(index + 1) of 4: \(step)",
                        reply: JSON.object([("output", .string(output))]).encoded, outcome: nil)
                    if rng.next() % 4 == 0 {
                        let toolID = "c\(call).0"
                        let argv = ["grep", "-rn", Vocabulary.word(rank: 1 + Int(rng.next() % 3000)), "src"]
                        try event(
                            ToolStarted(tool: "run_command", toolCallID: "call_0", idempotencyKey: "\(id)/c\(call)/0", argv: argv), "actor",
                            index, attempt, toolID)
                        let stdout =
                            "src/\(Vocabulary.word(rank: 1 + Int(rng.next() % 5000))).swift:12: \(Vocabulary.sentence(&rng, words: 8))"
                        let result = JSON.object([("exit_status", 0), ("stdout", .string(stdout)), ("stderr", "")]).encoded
                        try event(
                            ToolCompleted(tool: "run_command", toolCallID: "call_0", ok: true, result: .string(result), durationMs: 4),
                            "actor",
                            index, attempt, toolID)
                    }
                    let pass = !(failsFirst && attempt == 0)
                    let feedback =
                        pass
                        ? "ok: \(Vocabulary.sentence(&rng, words: 4))"
                        : "step \(index): missing detail about \(Vocabulary.sentence(&rng, words: 3)), be more specific"
                    let verdict: JSON = [
                        "verdict": .string(pass ? "pass" : "fail"), "score": pass ? 0.9 : 0.35, "feedback": .string(feedback),
                    ]
                    try modelCall(
                        "critic", step: index, attempt: attempt, user: "Step: \(step)\nOutput: \(output)", reply: verdict.encoded,
                        outcome: .verdict(verdict))
                }
            }
            try modelCall(
                "verifier", step: nil, attempt: nil, user: "Goal: \(goal)\nOutputs: …", reply: "{\"verified\":true}",
                outcome: .verification(verified: true, reason: nil))
            try event(JobState(from: .running, to: .succeeded, reason: "verified"), nil, nil, nil, nil)
            if job % 200 == 0 {
                try db.execute("COMMIT")
                try db.execute("BEGIN")
            }
        }
        try db.execute("COMMIT")
    }
}

/// A deterministic vocabulary: a few domain words, then pronounceable made-up words, used with
/// Zipf-like frequencies (rank r is drawn with weight 1/r).
enum Vocabulary {
    static let size = 50_000
    static let domain = [
        "the", "step", "output", "database", "migration", "release", "notes", "latency", "error", "request", "tests",
        "deploy", "config", "schema", "index", "query", "users", "report", "build", "cache",
    ]
    static let syllables = [
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "zen", "dra", "ple", "qua", "sti", "bro", "fen", "gal", "hor",
        "jin", "mar", "nov", "pex", "rin", "sol", "tur", "vex", "wal", "yor", "zu",
    ]
    /// Cumulative 1/r weights.
    static let cumulative: [Double] = {
        var out: [Double] = []
        out.reserveCapacity(size)
        var total = 0.0
        for r in 1...size {
            total += 1 / Double(r)
            out.append(total)
        }
        return out
    }()

    /// The word of rank `rank` (1 is the most frequent).
    static func word(rank: Int) -> String {
        if rank <= domain.count { return domain[rank - 1] }
        var n = rank * 2_654_435_761 % 1_000_003
        var word = ""
        for _ in 0..<(2 + rank % 3) {
            word += syllables[n % syllables.count]
            n /= syllables.count
        }
        return word + String(rank, radix: 36)
    }

    static func randomRank(_ rng: inout SplitMix64) -> Int {
        let x = Double(rng.next() >> 11) / Double(1 << 53) * cumulative[cumulative.count - 1]
        var lo = 0
        var hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo + 1
    }

    static func sentence(_ rng: inout SplitMix64, words: Int) -> String {
        (0..<words).map { _ in word(rank: randomRank(&rng)) }.joined(separator: " ")
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
