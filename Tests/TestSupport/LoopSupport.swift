import Foundation
import Runtime
import Synchronization
import XCTest

// Helpers for tests that run a loop, processes or files: shared by the Runtime and Orchestrator tests.

/// A directory under the system's temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init() throws {
        path = NSTemporaryDirectory() + "agentd-orchestrator-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public var databasePath: String { path + "/agentd.db" }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A value behind a lock, shareable with escaping closures.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: Value) {
        mutex = Mutex(value)
    }

    public func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R {
        mutex.withLock { body(&$0) }
    }

    public var value: Value { mutex.withLock { $0 } }
}

/// State touched only on the loop thread, handed between closures that run there.
public final class LoopBox<Value>: @unchecked Sendable {
    public var value: Value
    public init(_ value: Value) { self.value = value }
}

/// A started loop for one test. `finish()` shuts it down and joins its thread; reaching the end of
/// `join` means `uv_loop_close` succeeded (the loop traps otherwise), i.e. no handle leaked.
public func startedLoop() -> EventLoop {
    let loop = EventLoop()
    loop.start()
    return loop
}

extension EventLoop {
    public func finish() {
        shutdown()
        join()
    }

    /// Runs `body` as a task on the loop and returns its result.
    public func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task(executorPreference: self) { try await body() }.value
    }
}

/// Processes whose command line contains `marker` and that are neither dead nor already hit by a
/// SIGKILL that has yet to be delivered.
public func liveProcesses(withMarker marker: String) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    var found: [Int32] = []
    for entry in entries {
        guard let pid = Int32(entry), pid != getpid() else { continue }
        guard let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
            String(decoding: cmdline.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).contains(marker)
        else { continue }
        guard let status = FileManager.default.contents(atPath: "/proc/\(entry)/status") else { continue }
        var dying = false
        for line in String(decoding: status, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("State:"), line.contains("Z") || line.contains("X") { dying = true }
            if line.hasPrefix("SigPnd:") || line.hasPrefix("ShdPnd:"),
                let mask = UInt64(line.split(separator: "\t").last.map(String.init) ?? "", radix: 16),
                mask & (1 << (SIGKILL - 1)) != 0
            {
                dying = true
            }
        }
        if !dying { found.append(pid) }
    }
    return found
}

/// A marker unlikely to appear in any other process's command line: a fractional number of seconds,
/// so it can be `sleep`'s argument.
public func uniqueSleepMarker(seconds: Int) -> String {
    "\(seconds).\(UInt32.random(in: 100_000_000..<999_999_999))"
}

/// A named pipe the test reads to learn that a child reached a given point.
public struct ReadyPipe: Sendable {
    public let path: String
    private let fd: Int32

    public init(in directory: String) throws {
        path = directory + "/ready-\(UUID().uuidString.prefix(8))"
        guard mkfifo(path, 0o600) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        // Non-blocking, so opening does not wait for a writer and reads can be bounded by poll.
        fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    }

    /// Waits (at most `timeout` seconds) until a writer has written something. True when it did.
    public func waitForWriter(timeout: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&pfd, 1, 100)
            if rc > 0, pfd.revents & Int16(POLLIN) != 0 {
                var byte: UInt8 = 0
                if read(fd, &byte, 1) == 1 { return true }
            }
        }
        return false
    }

    public func close() {
        _ = Glibc.close(fd)
    }
}
