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
        _ jobID: String, seq: Int, kind: String = "job.state", role: String? = nil, step: Int? = nil, attempt: Int? = nil,
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

/// Polls `condition` until it holds or `timeout` seconds pass, and returns whether it held. The wait
/// is how a test waits for another thread, never an assertion by itself: callers assert the result,
/// with a generous timeout that only a regression reaches.
func waitUntil(timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while try !condition() {
        if Date() >= deadline { return false }
        usleep(5000)
    }
    return true
}
