import CSQLite
import Foundation

/// A failure reported by SQLite: the result code, the operation and SQLite's message.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public let code: Int32
    public let operation: String
    public let message: String

    public init(code: Int32, operation: String, message: String) {
        self.code = code
        self.operation = operation
        self.message = message
    }

    public var description: String { "\(operation): \(message) (sqlite code \(code))" }

    /// A disk that is full or an I/O error: the store cannot take writes until the condition clears.
    public var isStorageFault: Bool {
        let primary = code & 0xFF
        return primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_READONLY
    }
}

/// One SQLite connection. Not thread-safe: each owner (the writer thread, a reader queue) has its own.
///
/// Every connection runs in WAL mode with `synchronous=NORMAL`: a commit is durable against a crash of
/// agentd (it is in the WAL file) and against power loss once the WAL is checkpointed.
public final class Database {
    let handle: OpaquePointer
    public let path: String

    /// Opens (and creates, unless `readOnly`) the database at `path`.
    public init(path: String, readOnly: Bool = false) throws(StoreError) {
        var db: OpaquePointer?
        let flags =
            readOnly
            ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
            : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw StoreError(code: rc, operation: "open \(path)", message: message)
        }
        self.handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5000)
        if !readOnly {
            try execute("PRAGMA journal_mode=WAL")
            // Checkpoint every 64 MiB of WAL instead of 4 MiB: pages written again and again (the
            // indexes' right edges, job_chains) are copied into the database once per checkpoint.
            try execute("PRAGMA wal_autocheckpoint=16384")
        }
        try execute("PRAGMA synchronous=NORMAL")
        try execute("PRAGMA foreign_keys=ON")
        try execute("PRAGMA cache_size=-65536")
        try execute("PRAGMA mmap_size=268435456")
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    func error(_ rc: Int32, _ operation: String) -> StoreError {
        StoreError(code: rc, operation: operation, message: String(cString: sqlite3_errmsg(handle)))
    }

    /// Runs one or more SQL statements that return no rows.
    public func execute(_ sql: String) throws(StoreError) {
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let message = errmsg.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(errmsg)
            throw StoreError(code: rc, operation: String(sql.prefix(60)), message: message)
        }
    }

    /// Compiles `sql` once for repeated use.
    public func prepare(_ sql: String) throws(StoreError) -> Statement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, "prepare \(sql.prefix(60))") }
        return Statement(stmt, db: self)
    }

    /// Rows of a query, each as an array of column values.
    public func query(_ sql: String, _ bindings: [SQLValue] = []) throws(StoreError) -> [[SQLValue]] {
        let stmt = try prepare(sql)
        try stmt.bind(bindings)
        var rows: [[SQLValue]] = []
        while try stmt.step() {
            rows.append((0..<stmt.columnCount).map { stmt.value($0) })
        }
        return rows
    }

    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Whether a transaction is open (SQLite may already have rolled one back after a failure).
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// `PRAGMA quick_check`: nil when the file is sound, else what SQLite found wrong (first lines).
    public func quickCheck() -> String? {
        do {
            let rows = try query("PRAGMA quick_check").compactMap { $0.first?.text }
            return rows == ["ok"] ? nil : rows.prefix(5).joined(separator: "; ")
        } catch {
            return error.message
        }
    }

    /// Copies the database, as of one moment, to a new file at `path` with SQLite's online backup API,
    /// a few pages at a time so a daemon writing meanwhile is held up only briefly. The copy is
    /// written to `path.partial` and renamed when complete, so `path` is never a half copy.
    public func backup(to path: String) throws(StoreError) {
        let partial = path + ".partial"
        unlink(partial)
        do {
            try copy(to: partial)
        } catch {
            unlink(partial)
            throw error
        }
        guard rename(partial, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial)
            throw StoreError(code: 0, operation: "backup", message: "cannot move the copy to \(path): \(reason)")
        }
    }

    /// The backup itself; the destination connection is closed when this returns.
    private func copy(to partial: String) throws(StoreError) {
        let destination = try Database(path: partial)
        guard let backup = sqlite3_backup_init(destination.handle, "main", handle, "main") else {
            throw destination.error(sqlite3_errcode(destination.handle), "backup")
        }
        var rc: Int32
        repeat {
            rc = sqlite3_backup_step(backup, 256)
            if rc == SQLITE_BUSY || rc == SQLITE_LOCKED { sqlite3_sleep(5) }
        } while rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED
        sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE else { throw StoreError(code: rc, operation: "backup", message: String(cString: sqlite3_errstr(rc))) }
        try destination.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if let problem = destination.quickCheck() {
            throw StoreError(code: 11, operation: "backup", message: "the copy failed its integrity check: \(problem)")
        }
    }
}

/// A value bound to or read from SQL.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)

    public var int: Int64? {
        if case let .int(v) = self { return v }
        return nil
    }

    public var text: String? {
        if case let .text(v) = self { return v }
        return nil
    }

    /// A REAL, or an INTEGER as a double.
    public var double: Double? {
        switch self {
        case let .double(v): return v
        case let .int(v): return Double(v)
        default: return nil
        }
    }
}

/// A prepared statement. Belongs to its connection's thread.
public final class Statement {
    let stmt: OpaquePointer
    unowned let db: Database

    init(_ stmt: OpaquePointer, db: Database) {
        self.stmt = stmt
        self.db = db
    }

    deinit {
        sqlite3_finalize(stmt)
    }

    /// Resets the statement for new bindings (every parameter becomes NULL).
    public func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    public func bind(_ values: [SQLValue]) throws(StoreError) {
        reset()
        for (i, value) in values.enumerated() {
            try bind(value, at: Int32(i + 1))
        }
    }

    public func bind(_ value: SQLValue, at index: Int32) throws(StoreError) {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(stmt, index)
        case let .int(v): rc = sqlite3_bind_int64(stmt, index, v)
        case let .double(v): rc = sqlite3_bind_double(stmt, index, v)
        case let .text(s):
            var s = s
            rc = s.withUTF8 { buf in
                agentd_sqlite3_bind_text(
                    stmt, index, UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self), Int32(buf.count))
            }
        }
        guard rc == SQLITE_OK else { throw db.error(rc, "bind") }
    }

    /// Binds UTF-8 bytes as TEXT without building a `String`.
    public func bindText(_ bytes: [UInt8], at index: Int32) throws(StoreError) {
        let rc = bytes.withUnsafeBufferPointer { buf in
            agentd_sqlite3_bind_text(
                stmt, index, UnsafeRawPointer(buf.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self),
                Int32(buf.count))
        }
        guard rc == SQLITE_OK else { throw db.error(rc, "bind") }
    }

    /// Binds `bytes[range]` (UTF-8) as TEXT.
    public func bindText(_ bytes: [UInt8], range: Range<Int>, at index: Int32) throws(StoreError) {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count)
        let rc = bytes.withUnsafeBufferPointer { buf in
            agentd_sqlite3_bind_text(
                stmt, index,
                UnsafeRawPointer(buf.baseAddress.map { $0 + range.lowerBound } ?? UnsafePointer(bitPattern: 1)!)
                    .assumingMemoryBound(to: CChar.self),
                Int32(range.count))
        }
        guard rc == SQLITE_OK else { throw db.error(rc, "bind") }
    }

    /// Advances; true while a row is available.
    public func step() throws(StoreError) -> Bool {
        let rc = sqlite3_step(stmt)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw db.error(rc, "step")
    }

    /// Runs a statement that returns no rows.
    public func run(_ values: [SQLValue]) throws(StoreError) {
        try bind(values)
        _ = try step()
    }

    public var columnCount: Int32 { sqlite3_column_count(stmt) }

    public func value(_ column: Int32) -> SQLValue {
        switch sqlite3_column_type(stmt, column) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(stmt, column))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(stmt, column))
        case SQLITE_NULL: return .null
        default:
            guard let text = sqlite3_column_text(stmt, column) else { return .null }
            return .text(String(cString: text))
        }
    }

    public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(stmt, column) }

    public func text(_ column: Int32) -> String? {
        guard let text = sqlite3_column_text(stmt, column) else { return nil }
        return String(cString: text)
    }

    /// Appends a column's value as the `sqlite3` CLI prints it in list mode: TEXT and BLOB as their
    /// exact bytes, INTEGER in decimal, NULL as nothing. Returns false for NULL.
    @discardableResult
    public func appendPrinted(_ column: Int32, to out: inout [UInt8]) -> Bool {
        switch sqlite3_column_type(stmt, column) {
        case SQLITE_NULL:
            return false
        case SQLITE_INTEGER:
            appendDecimal(sqlite3_column_int64(stmt, column), to: &out)
        case SQLITE_FLOAT:
            // Not in agentd's STRICT tables; the CLI's own format for completeness.
            out.append(contentsOf: "\(sqlite3_column_double(stmt, column))".utf8)
        default:
            // The pointer first, then its size (SQLite's rule); a TEXT value comes back unconverted.
            let bytes = sqlite3_column_blob(stmt, column)
            let count = Int(sqlite3_column_bytes(stmt, column))
            if count > 0, let bytes {
                out.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: count))
            }
        }
        return true
    }

    public func optionalInt(_ column: Int32) -> Int64? {
        sqlite3_column_type(stmt, column) == SQLITE_NULL ? nil : sqlite3_column_int64(stmt, column)
    }
}
