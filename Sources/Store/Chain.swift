import Crypto

/// A SHA-256 digest in a job's hash chain: 32 bytes, stored as 64 lowercase hex characters.
public struct ChainHash: Sendable, Equatable, CustomStringConvertible {
    private var words: (UInt64, UInt64, UInt64, UInt64)

    /// The 32 zero bytes that stand before a job's first event.
    public static let zero = ChainHash(words: (0, 0, 0, 0))

    private init(words: (UInt64, UInt64, UInt64, UInt64)) {
        self.words = words
    }

    init(_ digest: SHA256Digest) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { out in
            digest.withUnsafeBytes { out.copyMemory(from: $0) }
        }
        self.words = words
    }

    /// Parses 64 hex digits (either case); nil for anything else.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &words) { out -> Bool in
            for i in 0..<32 {
                guard let high = Self.nibble(digits[2 * i]), let low = Self.nibble(digits[2 * i + 1]) else { return false }
                out[i] = high << 4 | low
            }
            return true
        }
        guard ok else { return nil }
        self.words = words
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    public static func == (a: ChainHash, b: ChainHash) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    /// The raw 32 bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: words, body)
    }

    /// Replaces `out`'s contents with the 64 lowercase hex digits (no allocation once `out` has room).
    public func writeHex(to out: inout [UInt8]) {
        if out.count != 64 {
            out.removeAll(keepingCapacity: true)
            out.append(contentsOf: repeatElement(0, count: 64))
        }
        let digits: StaticString = "0123456789abcdef"
        let d = digits.utf8Start
        withUnsafeBytes { bytes in
            out.withUnsafeMutableBufferPointer { hex in
                for i in 0..<32 {
                    hex[2 * i] = d[Int(bytes[i] >> 4)]
                    hex[2 * i + 1] = d[Int(bytes[i] & 0xF)]
                }
            }
        }
    }

    /// The 64 lowercase hex digits.
    public var hex: String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        writeHex(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { hex }
}

/// The per-job hash chain over the event log.
///
/// Each event's `hash` is `SHA-256(previous || message)`: `previous` is the 32 raw bytes of the job's
/// previous event's hash (32 zero bytes for `seq` 1); `message` is the UTF-8 of the event's columns
/// `job_id, seq, at, kind, role, step, attempt, call_id, payload`, joined by the byte 0x1F, integers in
/// decimal, NULL as the empty string, and `payload` exactly as stored. That is exactly what
/// `sqlite3 -list -separator $'\x1f'` prints for those columns, so a third party can recompute it.
/// The job's `job_chains` row holds the hash of its last event (`head`) and their number (`length`).
public enum Chain {
    /// The field separator of the canonical encoding (ASCII unit separator).
    public static let separator: UInt8 = 0x1F

    /// The columns of the canonical encoding, in order, as SQL.
    public static let columns = "job_id, seq, at, kind, role, step, attempt, call_id, payload"

    /// Appends the canonical encoding of every field of `event` but the payload, each followed by the
    /// separator: what goes before the payload's bytes.
    public static func appendFields(of event: EventRecord, to out: inout [UInt8]) {
        appendUTF8(event.jobID, to: &out)
        out.append(separator)
        appendDecimal(Int64(event.seq), to: &out)
        out.append(separator)
        appendDecimal(event.at, to: &out)
        out.append(separator)
        appendUTF8(event.kind, to: &out)
        out.append(separator)
        if let role = event.role { appendUTF8(role, to: &out) }
        out.append(separator)
        if let step = event.step { appendDecimal(Int64(step), to: &out) }
        out.append(separator)
        if let attempt = event.attempt { appendDecimal(Int64(attempt), to: &out) }
        out.append(separator)
        if let callID = event.callID { appendUTF8(callID, to: &out) }
        out.append(separator)
    }

    /// `SHA-256(previous || message)`, the message given in parts.
    public static func hash(previous: ChainHash, _ first: [UInt8], _ second: [UInt8] = []) -> ChainHash {
        var hasher = SHA256()
        previous.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        first.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        if !second.isEmpty { second.withUnsafeBytes { hasher.update(bufferPointer: $0) } }
        return ChainHash(hasher.finalize())
    }

    /// Replaces `out` with the canonical message of the row at `stmt`'s columns `first ..< first + 9`
    /// (selected as `Chain.columns`), from the stored bytes.
    static func message(_ stmt: Statement, from first: Int32, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        for column in first..<(first + 9) {
            if column > first { out.append(separator) }
            stmt.appendPrinted(column, to: &out)
        }
    }

    // MARK: Migration

    /// Hashes every event of a database written before the chain existed, job by job in `seq` order,
    /// and sets each job's head. Runs inside migration 2's transaction, with the update trigger dropped.
    static func hashExistingEvents(_ db: Database) throws(StoreError) {
        let jobs = try db.query("SELECT id FROM jobs ORDER BY id").compactMap { $0[0].text }
        let select = try db.prepare("SELECT id, \(columns) FROM events WHERE job_id = ? ORDER BY seq")
        let setHash = try db.prepare("UPDATE events SET hash = ? WHERE id = ?")
        let setHead = try db.prepare(
            "INSERT INTO job_chains(head, length, job_id) VALUES (?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET head = excluded.head, length = excluded.length"
        )
        var buffer: [UInt8] = []
        var hexBuffer: [UInt8] = []
        for job in jobs {
            var hashes: [(id: Int64, hash: ChainHash)] = []
            var previous = ChainHash.zero
            try select.bind([.text(job)])
            while try select.step() {
                message(select, from: 1, into: &buffer)
                previous = hash(previous: previous, buffer)
                hashes.append((select.int(0), previous))
            }
            select.reset()
            for (id, hash) in hashes {
                setHash.reset()
                hash.writeHex(to: &hexBuffer)
                try setHash.bindText(hexBuffer, at: 1)
                try setHash.bind(.int(id), at: 2)
                _ = try setHash.step()
            }
            if !hashes.isEmpty {
                try setHead.run([.text(previous.hex), .int(Int64(hashes.count)), .text(job)])
            }
        }
    }
}

// MARK: - Verification

/// What `audit verify` found wrong with a job's chain: the first event that does not match.
public struct ChainProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The stored hash differs from the recomputed one.
        case edited
        /// A `seq` is missing.
        case missing
        /// Events were written in another order than their `seq`s say.
        case outOfOrder = "out_of_order"
        /// The event has no hash.
        case noHash = "no_hash"
        /// The job's `job_chains` head or length disagrees with the last event.
        case head
        /// The job's row (its plan, goal, inputs or working directory) differs from what its first
        /// event committed to (`JobCommitment`).
        case job
    }

    public var kind: Kind
    /// The `seq` the problem is at.
    public var seq: Int
    /// The kind of the event at that `seq`, when there is one.
    public var eventKind: String?
    public var message: String

    public init(kind: Kind, seq: Int, eventKind: String?, message: String) {
        self.kind = kind
        self.seq = seq
        self.eventKind = eventKind
        self.message = message
    }

    public var description: String {
        "seq \(seq)\(eventKind.map { " (\($0))" } ?? ""): \(message)"
    }
}

/// The outcome of verifying one job's chain.
public struct ChainReport: Sendable, Equatable {
    public var jobID: String
    /// Events in the job's log.
    public var events: Int
    /// The recomputed hash of the last event (nil when the job has none).
    public var head: ChainHash?
    public var problem: ChainProblem?

    public var ok: Bool { problem == nil }
}

extension Database {
    /// Whether the schema has the hash chain (migration 2).
    public func hasHashChain() throws(StoreError) -> Bool {
        try query("SELECT count(*) FROM pragma_table_info('events') WHERE name = 'hash'")[0][0].int == 1
    }

    /// The ids of every job, oldest first.
    public func allJobIDs() throws(StoreError) -> [String] {
        try query("SELECT id FROM jobs ORDER BY id").compactMap { $0[0].text }
    }

    /// Recomputes `jobID`'s chain from the stored rows and checks it: `seq`s run 1…n in the order the
    /// events were written, each stored hash equals the recomputed one, and the job's `job_chains`
    /// head and length match the last event (a job without events has no such row). Reads in one transaction, so a running daemon's commits
    /// do not interleave. Nil when there is no such job.
    public func verifyChain(jobID: String) throws(StoreError) -> ChainReport? {
        try execute("BEGIN")
        defer { try? execute("COMMIT") }
        guard try !query("SELECT 1 FROM jobs WHERE id = ?", [.text(jobID)]).isEmpty else { return nil }
        let chainRow = try query("SELECT head, length FROM job_chains WHERE job_id = ?", [.text(jobID)]).first
        let storedHead = chainRow?[0].text
        let storedLength = chainRow?[1].int ?? 0

        // Written order (row id) against seq order: a swap of seqs shows here.
        let written = try query("SELECT seq FROM events WHERE job_id = ? ORDER BY id", [.text(jobID)])
        let writtenSeqs = written.map { Int($0[0].int ?? 0) }
        let sortedSeqs = writtenSeqs.sorted()
        var report = ChainReport(jobID: jobID, events: written.count, head: nil, problem: nil)

        let select = try prepare("SELECT \(Chain.columns), hash FROM events WHERE job_id = ? ORDER BY seq")
        try select.bind([.text(jobID)])
        var buffer: [UInt8] = []
        var previous = ChainHash.zero
        var expected = 1
        var lastKind: String?
        while try select.step() {
            let seq = Int(select.int(1))
            let kind = select.text(3)
            if seq != expected {
                report.problem = ChainProblem(
                    kind: .missing, seq: expected, eventKind: nil,
                    message:
                        "event seq \(expected) missing (deleted)\(seq > expected ? "; the next event is seq \(seq) (\(kind ?? "?"))" : "")")
                return report
            }
            let position = seq - 1
            if writtenSeqs[position] != sortedSeqs[position] {
                report.problem = ChainProblem(
                    kind: .outOfOrder, seq: seq, eventKind: kind,
                    message: "out of order: the event written in position \(seq) now has seq \(writtenSeqs[position])")
                return report
            }
            Chain.message(select, from: 0, into: &buffer)
            let recomputed = Chain.hash(previous: previous, buffer)
            guard let stored = select.text(9) else {
                report.problem = ChainProblem(
                    kind: .noHash, seq: seq, eventKind: kind, message: "no hash recorded (inserted outside agentd)")
                return report
            }
            if stored != recomputed.hex {
                report.problem = ChainProblem(kind: .edited, seq: seq, eventKind: kind, message: "payload or fields edited")
                return report
            }
            previous = recomputed
            lastKind = kind
            expected += 1
        }
        let count = expected - 1
        report.head = count > 0 ? previous : nil
        if count > 0, let problem = try jobRowProblem(jobID) {
            report.problem = ChainProblem(kind: .job, seq: 1, eventKind: EventKind.jobSubmitted.rawValue, message: problem)
            return report
        }
        if count == 0 && storedHead == nil && storedLength == 0 { return report }
        if count == 0 {
            report.problem = ChainProblem(kind: .missing, seq: 1, eventKind: nil, message: "event seq 1 missing (deleted)")
        } else if storedHead != previous.hex {
            report.problem = ChainProblem(
                kind: .head, seq: count, eventKind: lastKind,
                message: "chain head does not match the last event (edited or events removed from the end)")
        } else if storedLength != Int64(count) {
            report.problem = ChainProblem(
                kind: .head, seq: count, eventKind: lastKind,
                message: "chain length \(storedLength) does not match the \(count) events (edited or events removed from the end)")
        }
        return report
    }

    /// What is wrong with `jobID`'s row given its verified first event (`JobCommitment`), or nil.
    private func jobRowProblem(_ jobID: String) throws(StoreError) -> String? {
        let first = try query("SELECT kind, payload FROM events WHERE job_id = ? AND seq = 1", [.text(jobID)]).first
        guard first?[0].text == EventKind.jobSubmitted.rawValue, let text = first?[1].text, let payload = try? JSON.parse(text) else {
            return nil
        }
        guard let row = try query("SELECT plan, goal, inputs, cwd FROM jobs WHERE id = ?", [.text(jobID)]).first else { return nil }
        return JobCommitment.problem(
            submitted: payload, plan: row[0].text ?? "", goal: row[1].text ?? "", inputs: row[2].text ?? "", cwd: row[3].text)
    }
}

// MARK: - Encoding helpers

/// Appends `s`'s UTF-8 bytes.
@inline(__always)
func appendUTF8(_ s: String, to out: inout [UInt8]) {
    var s = s
    s.withUTF8 { out.append(contentsOf: $0) }
}

/// Appends `value` in decimal, as SQLite prints an INTEGER.
func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
    if value < 0 { out.append(UInt8(ascii: "-")) }
    var v = value.magnitude
    var digits = 1
    var rest = v
    while rest >= 10 {
        rest /= 10
        digits += 1
    }
    let start = out.count
    out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
    var i = start + digits - 1
    repeat {
        out[i] = UInt8(ascii: "0") + UInt8(v % 10)
        v /= 10
        i -= 1
    } while v > 0
}
