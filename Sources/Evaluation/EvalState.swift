import Foundation
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// The eval's progress on disk: one JSON line per judged run (`EvalResult.json`), appended as each
/// run is judged, so an eval killed at any moment resumes without judging a run twice. The jobs
/// themselves are found again through their idempotency keys; this file only saves re-judging them.
///
/// A line torn by a kill mid-write is cut off when the file is opened. Appends are serialised by the
/// caller (`EvalRunner` holds its lock); each is one `write` followed by `fsync`.
public final class EvalState: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    /// The results read at open, by key (a later line for the same key wins).
    public private(set) var results: [String: EvalResult] = [:]

    /// Opens (creating) the state file and reads what it holds. Throws `EvalError` naming the file and
    /// line when a complete line is not a result.
    public init(path: String) throws(EvalError) {
        self.path = path
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EvalError("state \(path): cannot open: \(String(cString: strerror(errno)))") }
        guard let data = FileManager.default.contents(atPath: path) else {
            close(fd)
            throw EvalError("state \(path): cannot read")
        }
        var bytes = [UInt8](data)
        if let lastNewline = bytes.lastIndex(of: 0x0A), lastNewline != bytes.count - 1 {
            bytes.removeSubrange((lastNewline + 1)...)
            ftruncate(fd, off_t(bytes.count))
        } else if !bytes.isEmpty && bytes.last != 0x0A {
            bytes = []
            ftruncate(fd, 0)
        }
        for (i, line) in bytes.split(separator: 0x0A).enumerated() {
            do {
                let result = try EvalResult(json: try JSON.parse(Array(line)))
                results[result.key] = result
            } catch {
                close(fd)
                throw EvalError("state \(path) line \(i + 1): not a result (\(error)); remove the file to start the eval afresh")
            }
        }
        lseek(fd, 0, SEEK_END)
    }

    deinit {
        close(fd)
    }

    /// Appends one result and makes it durable.
    public func append(_ result: EvalResult) throws(EvalError) {
        var bytes: [UInt8] = []
        result.json.write(to: &bytes)
        bytes.append(0x0A)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw EvalError("state \(path): cannot write: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        fsync(fd)
        results[result.key] = result
    }
}
