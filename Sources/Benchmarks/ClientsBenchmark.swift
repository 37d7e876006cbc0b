import Foundation
import Orchestrator
import Runtime
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// `agentd bench clients`: many clients at once against a real `agentd serve`, each keeping several
/// `job.get` requests in flight on its own connection (pipelined), for a fixed number of rounds, after
/// one untimed warm-up request per client.
/// Reports the latency of every request (send to reply), requests/s, and the daemon's peak RSS
/// before and after (memory must stay bounded however many clients talk at once).
///
/// The clients are driven by one thread with `poll(2)` over every socket, so the benchmark's own cost
/// per request stays small beside the daemon's.
public enum ClientsBenchmark {
    public struct Result: Sendable {
        public var clients: Int
        public var pipelined: Int
        public var requests: Int
        public var seconds: Double
        public var latenciesMs: [Double]
        public var rssBeforeBytes: Int
        public var rssAfterBytes: Int

        public func percentile(_ p: Double) -> Double { nearestRank(latenciesMs, p) }

        public var json: JSON {
            .object([
                ("bench", "clients"), ("clients", .int(clients)), ("pipelined", .int(pipelined)), ("requests", .int(requests)),
                ("seconds", .number((seconds * 1000).rounded() / 1000)),
                ("requests_per_s", .number((Double(requests) / seconds).rounded())),
                ("p50_ms", .number((percentile(50) * 1000).rounded() / 1000)),
                ("p99_ms", .number((percentile(99) * 1000).rounded() / 1000)),
                ("max_ms", .number(((latenciesMs.max() ?? 0) * 1000).rounded() / 1000)),
                ("daemon_rss_before_mb", .number((Double(rssBeforeBytes) / 104_857.6).rounded() / 10)),
                ("daemon_peak_rss_mb", .number((Double(rssAfterBytes) / 104_857.6).rounded() / 10)),
            ])
        }
    }

    private final class Client {
        let fd: Int32
        var buffer: [UInt8] = []
        var sentAt: [Int: UInt64] = [:]
        var nextID = 0
        var answered = 0
        init(fd: Int32) { self.fd = fd }
    }

    public static func run(agentd: String, directory: String, clients: Int, pipelined: Int, rounds: Int) throws -> Result {
        let served = try BenchDaemon(agentd: agentd, directory: directory)
        defer { served.stop() }
        let (daemon, socket) = (served.process, served.socket)
        // One job to ask about.
        let setup = try W1Benchmark.connect(socket: socket, daemon: daemon)
        let plan = directory + "/one.yaml"
        try """
        name: one
        models: {s: {backend: scripted, script: {critic: [{reply: {verdict: pass, score: 1, feedback: ok}}], verifier: [{reply: {verified: true}}]}}}
        roles: {actor: {model: s, prompt: a}, critic: {model: s, prompt: c}, verifier: {model: s, prompt: v}}
        steps: [one]
        """.write(toFile: plan, atomically: true, encoding: .utf8)
        let submitted: JSON
        do {
            submitted = try setup.call(.submit(SubmitParams(planPath: plan, goal: "bench")))
        } catch {
            throw BenchmarkFailure(description: "cannot submit the job to ask about: \(error)")
        }
        guard let jobID = submitted["id"]?.stringValue else { throw BenchmarkFailure(description: "submit returned no id") }
        let rssBefore = W1Benchmark.peakRSS(pid: daemon.processIdentifier)

        var connections: [Client] = []
        for _ in 0..<clients {
            let fd = try connectUnixSocket(socket)
            connections.append(Client(fd: fd))
        }
        let total = clients * rounds * pipelined
        var latencies: [Double] = []
        latencies.reserveCapacity(total)
        // The constant part is encoded once, so the clients' own cost stays out of the latencies.
        let call = MethodCall.get(JobIDParams(id: jobID))
        let method = JSON.string(call.method.rawValue).encoded
        let params = call.params.encoded
        func line(id: Int) -> [UInt8] {
            Array(#"{"jsonrpc":"2.0","id":\#(id),"method":\#(method),"params":\#(params)}"#.utf8) + [0x0A]
        }
        func request(_ client: Client) {
            client.nextID += 1
            let bytes = line(id: client.nextID)
            client.sentAt[client.nextID] = monotonicNanos()
            _ = bytes.withUnsafeBytes { Glibc.send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        // One untimed round first: every client's first request, and the daemon's first read of the job.
        for client in connections {
            try send(line(id: 0), to: client.fd)
        }
        for client in connections {
            try readWarmUpReply(client)
        }
        let start = monotonicNanos()
        for client in connections {
            for _ in 0..<pipelined { request(client) }
        }
        var pollSet = connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while latencies.count < total {
            let ready = poll(&pollSet, nfds_t(pollSet.count), 10_000)
            if ready <= 0 { throw BenchmarkFailure(description: "no reply within 10 s (\(latencies.count) of \(total) answered)") }
            for index in pollSet.indices where pollSet[index].revents != 0 {
                let client = connections[index]
                let n = chunk.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { throw BenchmarkFailure(description: "the daemon closed a client's connection") }
                client.buffer.append(contentsOf: chunk[0..<n])
                while let newline = client.buffer.firstIndex(of: 0x0A) {
                    let line = Array(client.buffer[..<newline])
                    client.buffer.removeFirst(newline + 1)
                    guard let reply = try? JSON.parse(line), let id = reply["id"]?.intValue,
                        let sent = client.sentAt.removeValue(forKey: id)
                    else { continue }
                    if reply["error"] != nil { throw BenchmarkFailure(description: "job.get failed: \(reply.encoded)") }
                    latencies.append(Double(monotonicNanos() - sent) / 1e6)
                    client.answered += 1
                    if client.nextID < rounds * pipelined { request(client) }
                }
            }
        }
        let seconds = Double(monotonicNanos() - start) / 1e9
        let rssAfter = W1Benchmark.peakRSS(pid: daemon.processIdentifier)
        for client in connections { close(client.fd) }
        return Result(
            clients: clients, pipelined: pipelined, requests: total, seconds: seconds, latenciesMs: latencies, rssBeforeBytes: rssBefore,
            rssAfterBytes: rssAfter)
    }

    private static func send(_ bytes: [UInt8], to fd: Int32) throws {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n == bytes.count else { throw BenchmarkFailure(description: "send: \(String(cString: strerror(errno)))") }
    }

    /// Reads one whole reply line (the warm-up's), blocking.
    private static func readWarmUpReply(_ client: Client) throws {
        var byte: UInt8 = 0
        while true {
            let n = recv(client.fd, &byte, 1, 0)
            guard n == 1 else { throw BenchmarkFailure(description: "the daemon closed a client's connection during the warm-up") }
            if byte == 0x0A { return }
        }
    }
}
