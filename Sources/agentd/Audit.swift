import ArgumentParser
import Foundation
import Orchestrator
import Store
import Telemetry

/// `agentd audit`: reading the recorded history directly from the database.
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Verify, search and export the recorded history (verify and search ask the daemon when one runs, else read the database; export reads the database).",
        subcommands: [AuditVerify.self, AuditSearch.self, AuditExport.self])
}

struct AuditSearch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Full-text search over the text of every event (FTS5 query syntax), newest first.",
        discussion: """
            QUERY is an FTS5 query: words (all must occur), "a phrase", OR, NOT, prefix*, NEAR(a b, 5).
            Words are matched case- and accent-insensitively against the string values of each event's
            payload (prompts, replies, feedback, tool results...). The search first indexes events
            committed since the index was last brought up to date, so it never misses one. Asks the
            daemon (audit.search) when one answers on --socket, else searches --db itself.
            """)

    @Argument(help: "The FTS5 query.")
    var query: String

    @Option(help: "Only this job's events.")
    var job: String?

    @Option(help: "Only events of this role: planner, actor, critic, verifier.")
    var role: String?

    @Option(help: "Only events of this kind, e.g. call.completed, tool.completed.")
    var kind: String?

    @Option(help: "Only events since a duration ago (90s, 15m, 2h, 7d) or a UTC time (2026-11-29, 2026-11-29T10:30:00Z).")
    var since: String?

    @Option(help: "At most this many events.")
    var limit = 20

    @Flag(help: "Best matches first (bm25) instead of newest first.")
    var rank = false

    @Flag(help: "Print one JSON object per matching event.")
    var json = false

    @OptionGroup var socket: SocketOption
    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let role, !["planner", "actor", "critic", "verifier"].contains(role) {
            throw ValidationError("--role must be planner, actor, critic or verifier, not '\(role)'")
        }
    }

    mutating func run() throws {
        let now = SystemClock().nowMillis()
        var sinceMillis: Int64?
        if let since {
            guard let parsed = SearchQuery.parseSince(since, now: now) else {
                throw ValidationError("--since takes a duration (90s, 15m, 2h, 7d) or a UTC time (2026-11-29T10:30:00Z), not '\(since)'")
            }
            sinceMillis = parsed
        }
        let params = SearchParams(
            query: query, job: job, role: role, kind: kind, since: sinceMillis, limit: limit, order: rank ? .rank : .newest)
        let reply = try DaemonOrDatabase(socket: socket, database: database).answer(.search(params)) { path in
            try RecordQueries.search(try openForAudit(path), params)
        }
        let hits = try failing { () throws -> [SearchHit] in
            guard let items = reply["hits"]?.arrayValue else { throw CLIFailure("the daemon's search result has no 'hits'") }
            return try items.map { item in
                guard let hit = SearchHit(json: item) else { throw CLIFailure("the daemon sent a search hit of another shape") }
                return hit
            }
        }
        for hit in hits {
            if json {
                emit(hit.json.encoded)
            } else {
                var context = [hit.kind]
                if let role = hit.role { context.append(role) }
                // Counted from 1, as watch and transcripts show them (the record's are zero-based).
                if let step = hit.step { context.append("step \(step + 1)") }
                if let attempt = hit.attempt { context.append("attempt \(attempt + 1)") }
                if let call = hit.callID { context.append(call) }
                emit("\(hit.jobID) #\(hit.seq) \(formatTime(Double(hit.at))) \(context.joined(separator: " "))")
                emit("    " + hit.snippet.replacingOccurrences(of: "\n", with: " "))
            }
        }
    }
}

/// Opens the database for an audit command: it must exist; it is brought to this binary's schema (so an
/// older database gets its search index).
func openForAudit(_ path: String) throws -> Database {
    guard FileManager.default.fileExists(atPath: path) else {
        throw CLIFailure("no database at \(path) (use --db or AGENTD_DB)")
    }
    do {
        let db = try Database(path: path)
        try Migrations.migrate(db, now: SystemClock().nowMillis())
        return db
    } catch {
        throw CLIFailure("cannot open the database \(path): \(error.message)")
    }
}

struct AuditExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a job as OpenTelemetry spans (OTLP/JSON, GenAI semantic conventions).",
        discussion: """
            Writes an ExportTraceServiceRequest in the OTLP protobuf JSON mapping: a root span for the
            job, `invoke_agent ROLE` per agent call with `chat MODEL` under it, and `execute_tool TOOL`
            per tool call. Ids derive from the job and call ids, so exporting again gives the same trace.
            POST the file to a collector's /v1/traces with Content-Type: application/json.
            """)

    @Argument(help: "The job id.")
    var job: String

    @Option(help: "The file to write (- for stdout).")
    var otlp: String

    @OptionGroup var database: DatabaseOption

    mutating func run() throws {
        let path = database.path
        let (job, otlp) = (job, otlp)
        try failing {
            guard FileManager.default.fileExists(atPath: path) else {
                throw CLIFailure("no database at \(path) (use --db or AGENTD_DB)")
            }
            let text: String
            do {
                let db = try Database(path: path, readOnly: true)
                guard let record = try db.job(job) else { throw CLIFailure("no job \(job) in \(path)") }
                text = GenAITrace.request(job: record, events: try db.events(jobID: job), version: Agentd.version).encoded
            } catch let error as StoreError {
                throw CLIFailure("cannot read the database \(path): \(error.message)")
            }
            if otlp == "-" {
                emit(text)
            } else if !FileManager.default.createFile(atPath: otlp, contents: Data((text + "\n").utf8)) {
                throw CLIFailure("cannot write \(otlp)")
            }
        }
    }
}
