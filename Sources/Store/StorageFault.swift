#if canImport(Glibc)
    import Glibc
#endif

/// Why the store takes no writes: SQLite reported a full disk, an I/O error or a read-only database
/// while the writer committed. Set by `StoreWriter` when a commit fails that way, and cleared when a
/// probe write commits again.
public struct StorageFault: Sendable, CustomStringConvertible {
    /// The error of the commit that failed.
    public let error: StoreError
    /// When the writer met it (Unix ms).
    public let since: Int64

    public init(error: StoreError, since: Int64) {
        self.error = error
        self.since = since
    }

    /// Whether the disk is full, so free space on the database's file system is worth checking.
    public var isDiskFull: Bool { error.code & 0xFF == 13 }

    /// What went wrong, with SQLite's name for the code: "disk full writing the database (SQLITE_FULL)".
    public var cause: String {
        let name = error.codeName
        switch error.code & 0xFF {
        case 13: return "disk full writing the database (\(name))"
        case 8: return "the database is read-only (\(name))"
        default: return "I/O error writing the database (\(name))"
        }
    }

    public var description: String { "\(cause): \(error.message)" }

    /// The error every write gets while the fault lasts; it is a storage fault itself.
    var refusal: StoreError {
        StoreError(
            code: error.code, operation: "write",
            message: "storage unavailable: \(cause); no writes until a probe write commits again")
    }
}

extension StoreError {
    /// SQLite's symbolic name of the result code (extended codes of the storage faults included), e.g.
    /// `SQLITE_IOERR_WRITE`; other codes as `SQLITE_ERROR 1`.
    public var codeName: String {
        if let name = Self.names[code] { return name }
        if let primary = Self.names[code & 0xFF] { return "\(primary) (extended code \(code))" }
        return "SQLite code \(code)"
    }

    private static let names: [Int32: String] = [
        1: "SQLITE_ERROR", 5: "SQLITE_BUSY", 8: "SQLITE_READONLY", 10: "SQLITE_IOERR", 11: "SQLITE_CORRUPT",
        13: "SQLITE_FULL", 14: "SQLITE_CANTOPEN",
        264: "SQLITE_READONLY_RECOVERY", 520: "SQLITE_READONLY_CANTLOCK", 776: "SQLITE_READONLY_ROLLBACK",
        1032: "SQLITE_READONLY_DBMOVED", 1288: "SQLITE_READONLY_CANTINIT", 1544: "SQLITE_READONLY_DIRECTORY",
        266: "SQLITE_IOERR_READ", 522: "SQLITE_IOERR_SHORT_READ", 778: "SQLITE_IOERR_WRITE", 1034: "SQLITE_IOERR_FSYNC",
        1290: "SQLITE_IOERR_DIR_FSYNC", 1546: "SQLITE_IOERR_TRUNCATE", 1802: "SQLITE_IOERR_FSTAT",
        2058: "SQLITE_IOERR_UNLOCK", 2314: "SQLITE_IOERR_RDLOCK", 2570: "SQLITE_IOERR_DELETE", 3082: "SQLITE_IOERR_NOMEM",
        3338: "SQLITE_IOERR_ACCESS", 3850: "SQLITE_IOERR_LOCK", 4106: "SQLITE_IOERR_CLOSE", 4618: "SQLITE_IOERR_SHMOPEN",
        4874: "SQLITE_IOERR_SHMSIZE", 5386: "SQLITE_IOERR_SHMMAP", 5642: "SQLITE_IOERR_SEEK", 6154: "SQLITE_IOERR_MMAP",
        6410: "SQLITE_IOERR_GETTEMPPATH", 6666: "SQLITE_IOERR_CONVPATH", 8202: "SQLITE_IOERR_DATA",
        8458: "SQLITE_IOERR_CORRUPTFS",
    ]
}

/// Free space on a file system, as `statvfs` reports it.
enum FileSystemSpace {
    /// Bytes the current user may still write on the file system holding `path` (root may use the
    /// blocks reserved for it); nil when `statvfs` fails.
    static func available(at path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let blocks = geteuid() == 0 ? info.f_bfree : info.f_bavail
        return Int64(blocks) * Int64(info.f_frsize)
    }
}
