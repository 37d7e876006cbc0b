import Foundation
import Orchestrator
import Store
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `agentd bench storm`: hostile clients against a real `agentd serve`, and whether the daemon gives
/// its memory back and keeps answering.
///
/// 1. **Idle**: the daemon with `jobs` finished jobs whose goals are `goalBytes` long; its resident
///    memory (`VmRSS`) is the baseline.
/// 2. **Unread replies**: `unreadClients` connections each send `unreadPerClient` `job.list`
///    requests for every job (large replies) and read nothing; once the daemon's memory stops growing,
///    they all close. Resident memory once the daemon is idle again (`settle`).
/// 3. **Connect and close**: `stormClients` connections at once each send one `job.list` and close
///    without reading, `stormRounds` times, while one more client asks `daemon.status` again and again:
///    its latencies. Resident memory once the daemon is idle again.
public enum StormBenchmark {
    public struct Result: Sendable {
        public var idleRSS: Int
        public var unreadPeakRSS: Int
        public var afterUnreadRSS: Int
        public var afterStormRSS: Int
        public var replyBytes: Int
        public var statusLatenciesMs: [Double]
        public var stormConnections: Int

        public func percentile(_ p: Double) -> Double { nearestRank(statusLatenciesMs, p) }
        public var afterUnreadRatio: Double { Double(afterUnreadRSS) / Double(max(1, idleRSS)) }
        public var afterStormRatio: Double { Double(afterStormRSS) / Double(max(1, idleRSS)) }

        public var json: JSON {
            func mb(_ bytes: Int) -> JSON { .number((Double(bytes) / 104_857.6).rounded() / 10) }
            func ms(_ v: Double) -> JSON { .number((v * 1000).rounded() / 1000) }
            return .object([
                ("bench", "storm"), ("reply_bytes", .int(replyBytes)), ("idle_rss_mb", mb(idleRSS)),
                ("unread_peak_rss_mb", mb(unreadPeakRSS)),
                ("after_unread_rss_mb", mb(afterUnreadRSS)), ("after_unread_ratio", .number((afterUnreadRatio * 100).rounded() / 100)),
                ("storm_connections", .int(stormConnections)), ("status_requests", .int(statusLatenciesMs.count)),
                ("status_p50_ms", ms(percentile(50))), ("status_p99_ms", ms(percentile(99))),
                ("status_max_ms", ms(statusLatenciesMs.max() ?? 0)), ("after_storm_rss_mb", mb(afterStormRSS)),
                ("after_storm_ratio", .number((afterStormRatio * 100).rounded() / 100)),
            ])
        }
    }

    public struct Settings: Sendable {
        public var jobs = 200
        public var goalBytes = 4096
        public var unreadClients = 300
        public var unreadPerClient = 10
        public var stormClients = 500
        public var stormRounds = 6
        public var settleSeconds = 3.0
        public init() {}
    }

    public static func run(agentd: String, directory: String, settings s: Settings, progress: (String) -> Void) throws -> Result {
        let served = try BenchDaemon(agentd: agentd, directory: directory)
        defer { served.stop() }
        let (daemon, socket) = (served.process, served.socket)
        let pid = daemon.processIdentifier
        let setup = try W1Benchmark.connect(socket: socket, daemon: daemon)
        let plan = directory + "/one.yaml"
        try """
        name: one
        models: {s: {backend: scripted, script: {critic: [{reply: {verdict: pass, score: 1, feedback: ok}}], verifier: [{reply: {verified: true}}]}}}
        roles: {actor: {model: s, prompt: a}, critic: {model: s, prompt: c}, verifier: {model: s, prompt: v}}
        steps: [one]
        """.write(toFile: plan, atomically: true, encoding: .utf8)
        progress("storm: submitting \(s.jobs) jobs with \(s.goalBytes)-byte goals")
        var last = ""
        for i in 0..<s.jobs {
            let goal = "job \(i) " + String(repeating: "g", count: max(0, s.goalBytes - 8))
            guard let id = try? setup.call(.submit(SubmitParams(planPath: plan, goal: goal)))["id"]?.stringValue else {
                throw BenchmarkFailure(description: "cannot submit job \(i)")
            }
            last = id
        }
        _ = try? setup.call(.wait(JobIDParams(id: last)))
        let list = Array(MethodCall.list(ListParams(limit: s.jobs)).request(id: 1).encoded.utf8) + [0x0A]
        let replyBytes = (try? setup.call(.list(ListParams(limit: s.jobs))).encoded.utf8.count) ?? 0
        // Idle: a few rounds of ordinary use first, so the baseline is a daemon that has served.
        for _ in 0..<20 { _ = try? setup.call(.list(ListParams(limit: s.jobs))) }
        Thread.sleep(forTimeInterval: s.settleSeconds)
        let idle = residentBytes(pid)
        progress("storm: idle \(idle >> 20) MiB; \(s.unreadClients * s.unreadPerClient) unread job.list replies of \(replyBytes) bytes")

        var unread: [Int32] = []
        for _ in 0..<s.unreadClients {
            let fd = try connectUnixSocket(socket)
            var batch: [UInt8] = []
            for _ in 0..<s.unreadPerClient { batch += list }
            _ = batch.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            unread.append(fd)
        }
        // Until the daemon has queued them all: its memory stops growing.
        var previous = 0
        for _ in 0..<100 {
            Thread.sleep(forTimeInterval: 0.2)
            let now = residentBytes(pid)
            if now > 0, abs(now - previous) < now / 100 { break }
            previous = now
        }
        let unreadPeak = peakBytes(pid)
        for fd in unread { close(fd) }
        let afterUnread = try settle(pid, setup, seconds: s.settleSeconds)
        progress("storm: peak \(unreadPeak >> 20) MiB, \(afterUnread >> 20) MiB after the clients closed")

        // The prober: daemon.status, one at a time, until the storm is over.
        let done = Atomic<Bool>(false)
        let latencies = Mutex<[Double]>([])
        let prober = try RPCClient(socketPath: socket)
        let thread = Thread {
            while !done.load(ordering: .relaxed) {
                let start = monotonicNanos()
                guard (try? prober.call(.status)) != nil else { break }
                let ms = Double(monotonicNanos() - start) / 1e6
                latencies.withLock { $0.append(ms) }
            }
        }
        thread.start()
        var opened = 0
        for _ in 0..<s.stormRounds {
            var fds: [Int32] = []
            for _ in 0..<s.stormClients {
                guard let fd = try? connectUnixSocket(socket) else { continue }
                _ = list.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                fds.append(fd)
            }
            opened += fds.count
            for fd in fds { close(fd) }
        }
        // Let the daemon finish with what the storm left, while the prober still measures.
        Thread.sleep(forTimeInterval: 1)
        done.store(true, ordering: .relaxed)
        while thread.isExecuting { usleep(10_000) }
        let afterStorm = try settle(pid, setup, seconds: s.settleSeconds)
        return Result(
            idleRSS: idle, unreadPeakRSS: unreadPeak, afterUnreadRSS: afterUnread, afterStormRSS: afterStorm, replyBytes: replyBytes,
            statusLatenciesMs: latencies.withLock { $0 }, stormConnections: opened)
    }

    /// Waits until the daemon is idle again — `daemon.status` answers within 20 ms and its resident
    /// memory moved less than 2% over half a second (at most two minutes) — then `seconds` more, and
    /// returns its resident memory.
    static func settle(_ pid: Int32, _ client: RPCClient, seconds: Double) throws -> Int {
        var previous = residentBytes(pid)
        let deadline = monotonicNanos() + 120_000_000_000
        while monotonicNanos() < deadline {
            Thread.sleep(forTimeInterval: 0.5)
            let start = monotonicNanos()
            _ = try? client.call(.status)
            let quick = monotonicNanos() - start < 20_000_000
            let now = residentBytes(pid)
            if quick, abs(now - previous) < max(1, previous / 50) { break }
            previous = now
        }
        Thread.sleep(forTimeInterval: seconds)
        return residentBytes(pid)
    }

    /// `VmRSS` of a process: what it holds now.
    static func residentBytes(_ pid: Int32) -> Int { statusField(pid, "VmRSS:") }

    /// `VmHWM` of a process: the most it held.
    static func peakBytes(_ pid: Int32) -> Int { statusField(pid, "VmHWM:") }

    private static func statusField(_ pid: Int32, _ field: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(field) {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return 0
    }
}
