import Dispatch
import Synchronization

/// Full-text search over the text of every event (schema version 3).
///
/// `events_fts` is an FTS5 index whose content is the view `events_text`: for each event, the string
/// values of its JSON payload joined by spaces (keys, numbers and booleans are left out). Nothing is
/// indexed when an event is committed — the writer's commit path does not change. Instead the index
/// catches up afterwards: `catchUp` adds the events above `events_fts_progress.last_indexed`, in
/// batches, each batch in its own short write transaction. The daemon runs a `SearchIndexer` on a
/// background queue while the store is idle, and `search` always catches up first, so a search sees
/// every event committed before it started.
public enum SearchIndex {
    /// Events added to the index per write transaction: small enough that the store writer, which
    /// waits for the write lock meanwhile, is never held up for long.
    public static let defaultBatch = 2000

    /// The highest event id in the index.
    public static func lastIndexed(_ db: Database) throws(StoreError) -> Int64 {
        try db.query("SELECT last_indexed FROM events_fts_progress WHERE id = 1").first?.first?.int ?? 0
    }

    /// Events committed but not yet indexed.
    public static func lag(_ db: Database) throws(StoreError) -> Int64 {
        let rows = try db.query(
            "SELECT count(*) FROM events WHERE id > (SELECT last_indexed FROM events_fts_progress WHERE id = 1)")
        return rows.first?.first?.int ?? 0
    }

    /// Indexes one batch of at most `batch` events in one write transaction; returns how many.
    ///
    /// The progress row is read inside the transaction (`BEGIN IMMEDIATE` holds the write lock), so
    /// two indexers — the daemon's and a search in another process — never index an event twice.
    public static func indexBatch(_ db: Database, batch: Int = defaultBatch) throws(StoreError) -> Int {
        try db.execute("BEGIN IMMEDIATE")
        do {
            let last = try lastIndexed(db)
            let upper = try db.query(
                "SELECT max(id), count(*) FROM (SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?)",
                [.int(last), .int(Int64(batch))])
            guard let row = upper.first, let high = row[0].int, let count = row[1].int, count > 0 else {
                try db.execute("COMMIT")
                return 0
            }
            let insert = try db.prepare(
                "INSERT INTO events_fts(rowid, text) SELECT id, text FROM events_text WHERE id > ? AND id <= ?")
            try insert.run([.int(last), .int(high)])
            let progress = try db.prepare("UPDATE events_fts_progress SET last_indexed = ? WHERE id = 1")
            try progress.run([.int(high)])
            try db.execute("COMMIT")
            return Int(count)
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    /// Indexes every committed event not yet indexed, batch by batch, while `keepGoing` says so;
    /// returns how many were indexed.
    @discardableResult
    public static func catchUp(
        _ db: Database, batch: Int = defaultBatch, keepGoing: () -> Bool = { true }
    ) throws(StoreError) -> Int {
        var total = 0
        while keepGoing() {
            let n = try indexBatch(db, batch: batch)
            total += n
            if n < batch { break }
        }
        return total
    }
}

// MARK: - Queries

/// What to search for: an FTS5 query and filters from the `events` table.
public struct SearchQuery: Sendable, Equatable {
    public enum Order: String, Sendable, CaseIterable {
        /// The newest events first (by commit order). Stops as soon as `limit` events matched.
        case newest
        /// The best matches first (FTS5's bm25 `rank`); ranks every match, so slower for common words.
        case rank
    }

    /// FTS5 query syntax: words, "phrases", `AND` / `OR` / `NOT`, `prefix*`, `NEAR(...)`.
    public var text: String
    public var jobID: String?
    public var role: String?
    public var kind: String?
    /// Only events written at or after this time (Unix ms).
    public var since: Int64?
    public var limit: Int
    public var order: Order

    public init(
        text: String, jobID: String? = nil, role: String? = nil, kind: String? = nil, since: Int64? = nil, limit: Int = 20,
        order: Order = .newest
    ) {
        self.text = text
        self.jobID = jobID
        self.role = role
        self.kind = kind
        self.since = since
        self.limit = limit
        self.order = order
    }
}

/// One matching event, with a snippet of its text around the match (matched words in `**`).
public struct SearchHit: Sendable, Equatable {
    public var eventID: Int64
    public var jobID: String
    public var seq: Int
    public var at: Int64
    public var kind: String
    public var role: String?
    public var step: Int?
    public var attempt: Int?
    public var callID: String?
    public var snippet: String
    /// FTS5's bm25 rank (lower is better).
    public var rank: Double

    public var json: JSON {
        var members: [(String, JSON)] = [
            ("job", .string(jobID)), ("seq", .int(seq)), ("at", .number(Double(at))), ("kind", .string(kind)),
            ("role", role.map(JSON.string) ?? .null), ("step", step.map(JSON.int) ?? .null),
            ("attempt", attempt.map(JSON.int) ?? .null),
        ]
        if let callID { members.append(("call", .string(callID))) }
        members.append(("snippet", .string(snippet)))
        members.append(("rank", .number(rank)))
        return .object(members)
    }
}

extension SearchHit {
    /// Decodes `json` (what `audit.search` returns), nil when its shape is not that.
    public init?(json: JSON) {
        guard let job = json["job"]?.stringValue, let seq = json["seq"]?.intValue, let at = json["at"]?.intValue,
            let kind = json["kind"]?.stringValue, let snippet = json["snippet"]?.stringValue
        else { return nil }
        self.init(
            eventID: 0, jobID: job, seq: seq, at: Int64(at), kind: kind, role: json["role"]?.stringValue, step: json["step"]?.intValue,
            attempt: json["attempt"]?.intValue, callID: json["call"]?.stringValue, snippet: snippet, rank: json["rank"]?.doubleValue ?? 0)
    }
}

/// A search that could not run: a query FTS5 cannot parse, or a store failure.
public enum SearchError: Error, Sendable, CustomStringConvertible {
    case badQuery(String)
    case store(StoreError)

    public var description: String {
        switch self {
        case let .badQuery(message): return message
        case let .store(error): return "\(error)"
        }
    }
}

extension SearchIndex {
    public static let highlightStart = "**"
    public static let highlightEnd = "**"

    /// Catches the index up, then runs `query`. `db` must be a read-write connection.
    public static func search(_ db: Database, _ query: SearchQuery) throws(SearchError) -> [SearchHit] {
        do {
            try catchUp(db)
        } catch {
            throw .store(error)
        }
        return try searchIndexed(db, query)
    }

    /// Runs `query` on the index as it is (no catch-up).
    public static func searchIndexed(_ db: Database, _ query: SearchQuery) throws(SearchError) -> [SearchHit] {
        let text = query.text.trimmingSpaces
        guard !text.isEmpty else { throw .badQuery("empty search query") }
        var conditions = ["events_fts MATCH ?"]
        var bindings: [SQLValue] = [.text(text)]
        if let job = query.jobID {
            // The job's events lie between its first and last id: bounding the FTS5 rowid keeps a
            // common word from being scanned across every other job.
            conditions.append("e.job_id = ?")
            conditions.append("events_fts.rowid >= (SELECT min(id) FROM events WHERE job_id = ?)")
            conditions.append("events_fts.rowid <= (SELECT max(id) FROM events WHERE job_id = ?)")
            bindings += [.text(job), .text(job), .text(job)]
        }
        if let role = query.role {
            conditions.append("e.role = ?")
            bindings.append(.text(role))
        }
        if let kind = query.kind {
            conditions.append("e.kind = ?")
            bindings.append(.text(kind))
        }
        if let since = query.since {
            conditions.append("e.at >= ?")
            bindings.append(.int(since))
        }
        bindings.append(.int(Int64(max(0, query.limit))))
        let order = query.order == .rank ? "events_fts.rank, events_fts.rowid DESC" : "events_fts.rowid DESC"
        let sql = """
            SELECT e.id, e.job_id, e.seq, e.at, e.kind, e.role, e.step, e.attempt, e.call_id,
                   snippet(events_fts, 0, '\(highlightStart)', '\(highlightEnd)', '…', 16), events_fts.rank
            FROM events_fts JOIN events AS e ON e.id = events_fts.rowid
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY \(order) LIMIT ?
            """
        var hits: [SearchHit] = []
        do {
            let stmt = try db.prepare(sql)
            try stmt.bind(bindings)
            while try stmt.step() {
                hits.append(
                    SearchHit(
                        eventID: stmt.int(0), jobID: stmt.text(1) ?? "", seq: Int(stmt.int(2)), at: stmt.int(3),
                        kind: stmt.text(4) ?? "", role: stmt.text(5), step: stmt.optionalInt(6).map { Int($0) },
                        attempt: stmt.optionalInt(7).map { Int($0) }, callID: stmt.text(8), snippet: stmt.text(9) ?? "",
                        rank: stmt.value(10).double ?? 0))
            }
        } catch {
            // FTS5 reports a query it cannot parse as "fts5: syntax error near ..." (or "unknown special
            // query", "no such column" for a `column:` filter); all are the user's query, not the store.
            let message = error.message
            if message.hasPrefix("fts5:") || message.contains("no such column") || message.contains("unterminated string") {
                throw .badQuery(
                    "bad search query \"\(text)\": \(message) (put words with punctuation in double quotes, e.g. \"step-1\")")
            }
            throw .store(error)
        }
        return hits
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\n" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s.removeLast() }
        return String(s)
    }
}

// MARK: - The daemon's background indexer

/// Keeps the search index close to the event log without touching the writer's commit path: its own
/// read-write connection on its own queue (`agentd.search.indexer`), woken every `interval`; when
/// `isIdle` says the store is idle it indexes batch after batch until it has caught up or the store
/// gets busy again. While the store stays busy for longer than `maxDeferral` it still indexes one
/// batch per wake-up, so the lag stays bounded.
public final class SearchIndexer: @unchecked Sendable {
    private let queue = DispatchQueue(label: "agentd.search.indexer", qos: .utility)
    private let db: Database
    private let isIdle: @Sendable () -> Bool
    private let interval: DispatchTimeInterval
    private let maxDeferralTicks: Int
    private var timer: DispatchSourceTimer?
    private var busyTicks = 0
    private let stopped = Atomic<Bool>(false)
    private let indexedCount = Atomic<Int>(0)
    private let lastErrorText = Mutex<String?>(nil)

    /// `isIdle` is called on the indexer's queue once per wake-up and between batches.
    public init(
        path: String, intervalMilliseconds: Int = 1000, maxDeferralSeconds: Int = 60, isIdle: @escaping @Sendable () -> Bool
    ) throws(StoreError) {
        db = try Database(path: path)
        self.isIdle = isIdle
        interval = .milliseconds(intervalMilliseconds)
        maxDeferralTicks = max(1, maxDeferralSeconds * 1000 / max(1, intervalMilliseconds))
    }

    /// Events this indexer has indexed.
    public var indexed: Int { indexedCount.load(ordering: .relaxed) }

    /// The last indexing failure, if any (it is retried at the next wake-up).
    public var lastError: String? { lastErrorText.withLock { $0 } }

    public func start() {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(100))
        timer.setEventHandler { [weak self] in self?.tick() }
        self.timer = timer
        timer.resume()
    }

    /// Indexes now, on the indexer's queue, whatever the store is doing; returns when done.
    public func catchUpNow() {
        queue.sync { run { true } }
    }

    /// Stops the timer and waits for a batch in progress to end.
    public func close() {
        stopped.store(true, ordering: .relaxed)
        timer?.cancel()
        queue.sync {}
    }

    private func tick() {
        guard !stopped.load(ordering: .relaxed) else { return }
        if isIdle() {
            busyTicks = 0
            run { !self.stopped.load(ordering: .relaxed) && self.isIdle() }
        } else {
            busyTicks += 1
            if busyTicks >= maxDeferralTicks {
                do {
                    indexedCount.add(try SearchIndex.indexBatch(db), ordering: .relaxed)
                } catch {
                    lastErrorText.withLock { $0 = "\(error)" }
                }
            }
        }
    }

    private func run(_ keepGoing: () -> Bool) {
        do {
            indexedCount.add(try SearchIndex.catchUp(db, keepGoing: keepGoing), ordering: .relaxed)
        } catch {
            lastErrorText.withLock { $0 = "\(error)" }
        }
    }
}

// MARK: - Times

extension SearchQuery {
    /// Parses `--since`: a duration back from `now` (`90s`, `15m`, `2h`, `7d`, `1w`, `500ms`), a UTC
    /// date or time (`2026-11-29`, `2026-11-29T10:30`, `2026-11-29T10:30:00Z`, a space for the `T`),
    /// or Unix milliseconds. Returns Unix ms, or nil when `text` is none of these.
    public static func parseSince(_ text: String, now: Int64) -> Int64? {
        let s = text.trimmingSpaces
        guard !s.isEmpty else { return nil }
        if s.allSatisfy(\.isASCIIDigit), let ms = Int64(s) { return ms }
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]
        for (suffix, factor) in units where s.hasSuffix(suffix) {
            let number = s.dropLast(suffix.count)
            if !number.isEmpty, number.allSatisfy(\.isASCIIDigit), let n = Int64(number), n <= Int64.max / factor {
                return now - n * factor
            }
        }
        // YYYY-MM-DD[(T| )HH:MM[:SS][Z]]
        var rest = Substring(s)
        if rest.hasSuffix("Z") || rest.hasSuffix("z") { rest = rest.dropLast() }
        let parts = rest.split(whereSeparator: { $0 == "T" || $0 == " " }).map(String.init)
        guard parts.count == 1 || parts.count == 2 else { return nil }
        let date = parts[0].split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        guard date.count == 3, let year = date[0], let month = date[1], let day = date[2], (1...12).contains(month),
            (1...31).contains(day), parts[0].split(separator: "-")[0].count == 4
        else { return nil }
        var hour = 0
        var minute = 0
        var second = 0
        if parts.count == 2 {
            let time = parts[1].split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
            guard time.count == 2 || time.count == 3, let h = time[0], let m = time[1], (0...23).contains(h), (0...59).contains(m)
            else { return nil }
            hour = h
            minute = m
            if time.count == 3 {
                guard let sec = time[2], (0...60).contains(sec) else { return nil }
                second = sec
            }
        }
        return (daysFromCivil(year: year, month: month, day: day) * 86_400 + Int64(hour * 3600 + minute * 60 + second)) * 1000
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
