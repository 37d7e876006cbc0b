import Foundation
import Synchronization
import XCTest

@testable import Store

/// A directory under the system's temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "agentd-store-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A database path inside the directory.
    var databasePath: String { path + "/agentd.db" }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A clock the test sets by hand.
final class ManualClock: WallClock {
    private let now: Mutex<Int64>

    init(_ millis: Int64 = 1_700_000_000_000) {
        now = Mutex(millis)
    }

    func nowMillis() -> Int64 { now.withLock { $0 } }

    func set(_ millis: Int64) { now.withLock { $0 = millis } }

    func advance(by millis: Int64) { now.withLock { $0 += millis } }
}

/// Builders for rows.
enum Rows {
    static func job(_ id: String, status: JobStatus = .queued, key: String? = nil, createdAt: Int64 = 1000) -> JobRecord {
        JobRecord(
            id: id, planName: "plan", plan: #"{"name":"plan"}"#, goal: "goal of \(id)", inputs: ["n": 1], cwd: "/tmp",
            idempotencyKey: key, status: status, createdAt: createdAt)
    }

    static func event(
        _ jobID: String, seq: Int, kind: String = "note", role: String? = nil, step: Int? = nil, attempt: Int? = nil,
        callID: String? = nil, payload: JSON = ["seq": 0]
    ) -> EventRecord {
        EventRecord(
            jobID: jobID, seq: seq, at: 2000 + Int64(seq), kind: kind, role: role, step: step, attempt: attempt,
            callID: callID, payload: payload)
    }
}

/// Collects a value per key from any thread.
final class Tally<Key: Hashable & Sendable>: Sendable {
    private let counts = Mutex<[Key: Int]>([:])

    func add(_ key: Key) { counts.withLock { $0[key, default: 0] += 1 } }

    var snapshot: [Key: Int] { counts.withLock { $0 } }
}

extension StoreError {
    /// SQLite's primary result code.
    var primaryCode: Int32 { code & 0xFF }
}

/// A value behind a lock, shareable with escaping closures.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        mutex = Mutex(value)
    }

    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R {
        mutex.withLock { body(&$0) }
    }

    var value: Value { mutex.withLock { $0 } }
}

/// A small tmpfs mounted for one test, to run out of space for real; needs the right to mount (root).
final class SmallFileSystem {
    let path: String
    private var ballast: [String] = []

    /// Mounts a tmpfs of `megabytes` at a new directory, or throws `XCTSkip` saying why it cannot.
    init(megabytes: Int) throws {
        path = NSTemporaryDirectory() + "agentd-small-fs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let (status, output) = Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)M", "tmpfs", path])
        if status != 0 {
            try? FileManager.default.removeItem(atPath: path)
            throw XCTSkip("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): \(output)")
        }
    }

    /// Writes ballast files until the file system has no block left (ENOSPC), then gives `leaving`
    /// bytes back.
    func fill(leaving: Int = 0) throws {
        let file = path + "/ballast-\(ballast.count)"
        ballast.append(file)
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw NSError(domain: "ballast", code: Int(errno)) }
        defer { close(fd) }
        for size in [1 << 20, 4096, 1] {
            let chunk = [UInt8](repeating: 0xAB, count: size)
            while true {
                let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, size) }
                if n > 0 || (n < 0 && errno == EINTR) { continue }
                if n == 0 || errno == ENOSPC { break }
                throw NSError(domain: "ballast: \(String(cString: strerror(errno)))", code: Int(errno))
            }
        }
        if leaving > 0 { ftruncate(fd, max(0, lseek(fd, 0, SEEK_END) - off_t(leaving))) }
    }

    /// Removes the ballast: the space is back.
    func drain() {
        for file in ballast { unlink(file) }
        ballast = []
    }

    func unmount() {
        drain()
        if Self.run("/bin/umount", [path]).status != 0 { _ = Self.run("/bin/umount", ["-l", path]) }
        try? FileManager.default.removeItem(atPath: path)
    }

    private static func run(_ tool: String, _ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            return (-1, "\(tool): \(error)")
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
