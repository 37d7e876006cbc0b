import ArgumentParser
import Benchmarks
import Foundation
import Orchestrator
import Store
import Transcript

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (use a release build: swift build -c release).",
        subcommands: [W1.self, HTTP.self, TranscriptRender.self, Search.self, Clients.self, Storm.self, ToolOutput.self])

    struct W1: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "w1",
            abstract:
                "The W1 critic-retry benchmark of docs/benchmarks.md: a real daemon, jobs over the socket, completeness checked, the floor beside it."
        )

        @Option(help: "seq (one job after another) or conc (all submitted at once); both when omitted.")
        var mode: W1Benchmark.Mode?

        @Option(help: "Jobs per mode (default: 200 for seq, 10000 for conc).")
        var jobs: Int?

        @Option(help: "The W1 plan file.")
        var plan = "plans/w1.yaml"

        @Option(help: "Where the benchmark's daemons keep their sockets and databases (default: a new temp directory).")
        var dir: String?

        @Flag(help: "Print one JSON line per mode.")
        var json = false

        mutating func run() throws {
            let modes = mode.map { [$0] } ?? W1Benchmark.Mode.allCases
            let directory = dir ?? (NSTemporaryDirectory() + "agentd-bench-\(getpid())")
            let planPath = Paths.absolute(plan)
            guard FileManager.default.fileExists(atPath: planPath) else {
                throw CLIFailure("no plan at \(planPath); run from the repository or pass --plan")
            }
            let agentd = try Bench.thisExecutable()
            let quiet = json
            for mode in modes {
                let count = jobs ?? (mode == .seq ? 200 : 10_000)
                let result = try failing {
                    try W1Benchmark.run(mode: mode, jobs: count, agentd: agentd, planPath: planPath, directory: directory) { line in
                        if !quiet { printError(line) }
                    }
                }
                if json {
                    emit(result.json.encoded)
                } else {
                    emit(
                        String(
                            format:
                                "w1 %@: %d jobs in %.2f s = %.0f jobs/s, %.0f agent calls/s; latency p50 %.2f ms, p99 %.2f ms; daemon peak RSS %.1f MiB, CPU %.3f ms/job; %d DB bytes/job; floor %.0f jobs/s (efficiency %.2f)",
                            mode.rawValue, count, result.seconds, result.jobsPerSecond, result.callsPerSecond, result.percentile(50),
                            result.percentile(99), Double(result.peakRSSBytes) / 1_048_576, result.daemonCPUSeconds * 1000 / Double(count),
                            result.databaseBytes / count,
                            result.floor.jobsPerSecond, result.jobsPerSecond / result.floor.jobsPerSecond))
                }
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}

extension W1Benchmark.Mode: ExpressibleByArgument {}

extension Bench {
    /// This `agentd` binary, which the benchmarks start as the daemon they measure.
    static func thisExecutable() throws -> String {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            throw CLIFailure("cannot find this executable")
        }
        return exe
    }
}

extension Bench {
    struct HTTP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "http",
            abstract:
                "The openai backend's HTTP path on one loop: structured critic calls, many in flight, against an endpoint that answers at once (by default the test suite's fake server, started here)."
        )

        @Option(help: "An OpenAI-compatible base URL to call instead of starting the fake server (…/v1).")
        var baseURL: String?

        @Option(help: "Calls to make.")
        var calls = 20_000

        @Option(help: "Calls in flight at once.")
        var inFlight = 64

        @Option(help: "The fake server script.")
        var fakeServer = "Tests/Fixtures/fake_openai.py"

        @Flag(help: "Print one JSON line.")
        var json = false

        mutating func run() throws {
            var server: Process?
            defer { server?.terminate() }
            let url: String
            if let baseURL {
                url = baseURL
            } else {
                let (process, port) = try failing { try startFakeServer(Paths.absolute(fakeServer)) }
                server = process
                url = "http://127.0.0.1:\(port)/v1"
            }
            let result = try failing { try HTTPBenchmark.run(baseURL: url, calls: calls, inFlight: inFlight) }
            if json {
                emit(result.json.encoded)
            } else {
                emit(
                    String(
                        format:
                            "http: %d calls, %d in flight, in %.2f s = %.0f calls/s; latency p50 %.2f ms, p99 %.2f ms; CPU %.1f µs/call; %d failed",
                        result.calls, result.inFlight, result.seconds, result.callsPerSecond, result.percentile(50), result.percentile(99),
                        result.cpuSeconds * 1e6 / Double(result.calls), result.failures))
            }
            if let first = result.firstFailure { throw CLIFailure("\(result.failures) calls failed; the first: \(first)") }
        }

        /// Starts the fake server on a free port; returns it and the port.
        private func startFakeServer(_ script: String) throws -> (Process, Int) {
            guard FileManager.default.fileExists(atPath: script) else {
                throw CLIFailure("no fake server at \(script); run from the repository or pass --base-url")
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script, "--port", "0"]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            var line = [UInt8]()
            while true {
                let byte = pipe.fileHandleForReading.readData(ofLength: 1)
                if byte.isEmpty || byte.first == 0x0A { break }
                line.append(contentsOf: byte)
            }
            let text = String(decoding: line, as: UTF8.self)
            guard text.hasPrefix("listening "), let port = Int(text.dropFirst("listening ".count)) else {
                process.terminate()
                throw CLIFailure("the fake server did not start (it said: \(text))")
            }
            return (process, port)
        }
    }
}

extension Bench {
    struct TranscriptRender: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "transcript",
            abstract: "Renders the HTML transcript of a synthetic job (model, tools, reruns, a re-plan) and reports ms per render.")

        @Option(help: "Events in the synthetic job.")
        var events = 1000

        @Option(help: "Timed renders (the median is reported).")
        var runs = 15

        @Option(help: "html, text, md or jsonl.")
        var format: TranscriptFormat = .html

        @Flag(help: "Print one JSON line.")
        var json = false

        mutating func run() throws {
            let (job, recorded) = SyntheticJob.make(events: events)
            var bytes = TranscriptModel.render(job: job, events: recorded, format: format).utf8.count  // warm-up
            var times: [Double] = []
            for _ in 0..<max(1, runs) {
                let start = DispatchTime.now().uptimeNanoseconds
                bytes = TranscriptModel.render(job: job, events: recorded, format: format).utf8.count
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            times.sort()
            let median = times[times.count / 2]
            if json {
                emit(
                    JSON.object([
                        ("bench", "transcript"), ("format", .string(format.rawValue)), ("events", .int(recorded.count)),
                        ("runs", .int(times.count)), ("median_ms", .number(median)), ("min_ms", .number(times[0])),
                        ("max_ms", .number(times[times.count - 1])), ("bytes", .int(bytes)),
                    ]).encoded)
            } else {
                emit(
                    String(
                        format: "transcript %@: %d events, %d bytes; median %.2f ms per render (min %.2f, max %.2f, %d runs)",
                        format.rawValue, recorded.count, bytes, median, times[0], times[times.count - 1], times.count))
            }
        }
    }

    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "search",
            abstract:
                "audit search over a large event log: builds (once, then reuses from the cache directory) a database of realistic events, indexes it, times queries warm."
        )

        @Option(help: "Events in the database.")
        var events = 1_000_000

        @Option(help: "Where the database is kept between runs (default: $XDG_CACHE_HOME/agentd, else ~/.cache/agentd).")
        var cacheDir: String?

        @Option(help: "Timed runs of each query (after one warm-up run).")
        var runs = 9

        @Flag(help: "Build the database again even if the cached one is complete.")
        var rebuild = false

        @Flag(help: "Print one JSON object.")
        var json = false

        mutating func run() throws {
            let env = ProcessInfo.processInfo.environment
            let cache =
                cacheDir ?? env["XDG_CACHE_HOME"].map { $0 + "/agentd" } ?? (env["HOME"] ?? NSTemporaryDirectory()) + "/.cache/agentd"
            try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
            let path = Paths.absolute(cache + "/bench-search-\(events).db")
            let quiet = json
            let (events, rebuild, runs) = (events, rebuild, runs)
            let result = try failing {
                try SearchBenchmark.run(path: path, events: events, rebuild: rebuild, runs: runs) { line in
                    if !quiet { printError(line) }
                }
            }
            if json {
                emit(result.json.encoded)
                return
            }
            emit(
                String(
                    format: "search: %d events, %.0f MiB database%@", result.events, Double(result.databaseBytes) / 1_048_576,
                    result.built
                        ? String(format: " (generated in %.1f s, indexed in %.1f s)", result.buildSeconds, result.indexSeconds) : ""))
            for q in result.queries {
                emit(
                    String(
                        format: "  %@ %@ %3d hits  median %7.2f ms  max %7.2f ms", pad(q.name, 18),
                        pad(String(q.query.text.prefix(32)), 32), q.hits, q.median, q.max))
            }
            let medians = result.queries.map(\.median).sorted()
            emit(
                String(
                    format: "all queries: median %.2f ms, max %.2f ms", medians[medians.count / 2],
                    result.queries.map(\.max).max() ?? 0))
        }
    }

    struct Clients: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clients",
            abstract:
                "Many clients at once, each pipelining job.get requests on its own connection to a real daemon: latency per request and the daemon's memory."
        )

        @Option(help: "Clients (connections) at once.")
        var clients = 500

        @Option(help: "Requests each client keeps in flight.")
        var pipelined = 8

        @Option(help: "Rounds of requests per client.")
        var rounds = 25

        @Flag(help: "Print one JSON line.")
        var json = false

        mutating func run() throws {
            let agentd = try Bench.thisExecutable()
            let directory = NSTemporaryDirectory() + "agentd-bench-clients-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (clients, pipelined, rounds) = (self.clients, self.pipelined, self.rounds)
            let result = try failing {
                try ClientsBenchmark.run(agentd: agentd, directory: directory, clients: clients, pipelined: pipelined, rounds: rounds)
            }
            if json {
                emit(result.json.encoded)
            } else {
                emit(
                    String(
                        format:
                            "clients: %d clients × %d in flight, %d job.get in %.2f s = %.0f/s; latency p50 %.2f ms, p99 %.2f ms, max %.2f ms; daemon RSS %.1f MiB before, %.1f MiB peak",
                        result.clients, result.pipelined, result.requests, result.seconds, Double(result.requests) / result.seconds,
                        result.percentile(50), result.percentile(99), result.latenciesMs.max() ?? 0,
                        Double(result.rssBeforeBytes) / 1_048_576, Double(result.rssAfterBytes) / 1_048_576))
            }
        }
    }
}

extension Bench {
    struct Storm: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "storm",
            abstract:
                "Hostile clients against a real daemon: unread large replies, then connect-and-close storms while daemon.status is timed; the daemon's resident memory against idle after each."
        )

        @Option(help: "Finished jobs in the database (each job.list asks for all of them).")
        var jobs = 200

        @Option(help: "Bytes of each job's goal (so each job.list reply is about jobs × this).")
        var goalBytes = 4096

        @Option(help: "Connections that send job.list requests and never read.")
        var unreadClients = 300

        @Option(help: "Requests each unread connection sends.")
        var unreadPerClient = 10

        @Option(help: "Connections per connect-and-close round.")
        var stormClients = 500

        @Option(help: "Connect-and-close rounds.")
        var stormRounds = 6

        @Flag(help: "Print one JSON line.")
        var json = false

        mutating func run() throws {
            let agentd = try Bench.thisExecutable()
            let directory = NSTemporaryDirectory() + "agentd-bench-storm-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var settings = StormBenchmark.Settings()
            (settings.jobs, settings.goalBytes) = (jobs, goalBytes)
            (settings.unreadClients, settings.unreadPerClient) = (unreadClients, unreadPerClient)
            (settings.stormClients, settings.stormRounds) = (stormClients, stormRounds)
            let quiet = json
            let result = try failing {
                try StormBenchmark.run(agentd: agentd, directory: directory, settings: settings) { line in
                    if !quiet { printError(line) }
                }
            }
            if json {
                emit(result.json.encoded)
                return
            }
            let mb = { (bytes: Int) in Double(bytes) / 1_048_576 }
            emit(
                String(
                    format:
                        "storm: RSS idle %.1f MiB; unread replies peak %.1f MiB, after %.1f MiB (%.2fx idle); %d connect-and-close clients: daemon.status p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d requests); after %.1f MiB (%.2fx idle)",
                    mb(result.idleRSS), mb(result.unreadPeakRSS), mb(result.afterUnreadRSS), result.afterUnreadRatio,
                    result.stormConnections,
                    result.percentile(50), result.percentile(99), result.statusLatenciesMs.max() ?? 0, result.statusLatenciesMs.count,
                    mb(result.afterStormRSS), result.afterStormRatio))
        }
    }

    struct ToolOutput: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tool-output",
            abstract:
                "Tool output floods (16 MiB of NULs under an 8 MiB tool_output_cap; 20 calls × 128 KiB of NULs in one turn) against an ordinary job: the daemon's peak RSS and the bytes stored, each job on a fresh daemon."
        )

        @Flag(help: "Print one JSON line.")
        var json = false

        mutating func run() throws {
            let agentd = try Bench.thisExecutable()
            let directory = NSTemporaryDirectory() + "agentd-bench-tool-output-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let quiet = json
            let result = try failing {
                try ToolOutputBenchmark.run(agentd: agentd, directory: directory) { line in
                    if !quiet { printError(line) }
                }
            }
            if json {
                emit(result.json.encoded)
                return
            }
            let base = result.cases[0]
            for m in result.cases {
                emit(
                    String(
                        format:
                            "tool-output %@: daemon peak RSS %.1f MiB after the job, %.1f MiB (%.2fx) after its transcript; database %.2f MiB (%.2fx), events %.2f MiB (largest %.2f MiB), text transcript %.1f KiB",
                        pad(m.name, 9), Double(m.jobPeakRSSBytes) / 1_048_576, Double(m.peakRSSBytes) / 1_048_576,
                        Double(m.peakRSSBytes) / Double(max(1, base.peakRSSBytes)),
                        Double(m.databaseBytes) / 1_048_576, Double(m.databaseBytes) / Double(max(1, base.databaseBytes)),
                        Double(m.eventBytes) / 1_048_576, Double(m.largestEventBytes) / 1_048_576, Double(m.transcriptBytes) / 1024))
            }
        }
    }
}
