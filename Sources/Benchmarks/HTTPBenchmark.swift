import Agents
import Foundation
import Orchestrator
import Runtime
import Store

/// `agentd bench http`: the `openai` backend's HTTP path on one event loop — requests built and
/// sent through libcurl's multi interface on libuv, replies parsed and validated — with many calls in
/// flight against an endpoint that answers at once (the fake server of the test suite by default).
/// No store and no daemon: this measures the HTTP path alone.
public enum HTTPBenchmark {
    public struct Result: Sendable {
        public var calls: Int
        public var inFlight: Int
        public var seconds: Double
        public var latenciesMs: [Double]
        public var cpuSeconds: Double
        public var failures: Int
        public var firstFailure: String?

        public var callsPerSecond: Double { Double(calls) / seconds }

        public func percentile(_ p: Double) -> Double { nearestRank(latenciesMs, p) }

        public var json: JSON {
            .object([
                ("bench", "http"), ("calls", .int(calls)), ("in_flight", .int(inFlight)),
                ("seconds", .number((seconds * 1000).rounded() / 1000)),
                ("calls_per_s", .number((callsPerSecond * 10).rounded() / 10)),
                ("p50_ms", .number((percentile(50) * 1000).rounded() / 1000)),
                ("p99_ms", .number((percentile(99) * 1000).rounded() / 1000)),
                ("cpu_ms_per_call", .number((cpuSeconds * 1e6 / Double(calls)).rounded() / 1000)),
                ("failures", .int(failures)),
            ])
        }
    }

    /// Makes `calls` critic calls (a structured verdict each) to `baseURL`, `inFlight` at a time.
    public static func run(baseURL: String, calls: Int, inFlight: Int) throws -> Result {
        let loop = EventLoop()
        loop.start()
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        loop.execute {
            let endpoints = ModelEndpoints(loop: loop)
            var spec = OpenAISpec(model: "ok:bench")
            spec.baseURL = baseURL
            spec.structuredOutput = .jsonObject
            spec.maxConcurrent = inFlight
            spec.retries = 0
            let backend = OpenAIBackend(spec: spec, endpoints: endpoints, environment: [:], callTimeoutSeconds: 30)
            let rules = ReplyRules.strict(passScore: 0.5)
            let request = ModelRequest(
                model: "ok:bench",
                messages: [
                    ChatMessage(role: "system", content: "You review. Answer with JSON."),
                    ChatMessage(role: "user", content: "Output to judge: output for step 1, attempt 0"),
                ],
                temperature: 0.2, responseSchema: Verdict.schema(rules),
                context: CallContext(
                    jobID: "bench", role: .critic, step: 1, attempt: 0, replan: 0, reask: 0, hasFeedback: false, goal: "bench"))
            Task(executorPreference: loop) {
                let cpu0 = processCPUSeconds()
                let start = monotonicNanos()
                let state = Tally()
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<inFlight {
                        group.addTask(executorPreference: loop) {
                            // Every worker runs on the loop thread: the tally needs no lock.
                            while state.next < calls {
                                state.next += 1
                                let t0 = monotonicNanos()
                                do {
                                    let reply = try await backend.complete(request)
                                    if case .invalid(let error) = Agent.interpret(reply.content, role: .critic, rules: rules) {
                                        state.fail("invalid verdict: \(error.message)")
                                    }
                                } catch {
                                    state.fail("\(error)")
                                }
                                state.latencies.append(Double(monotonicNanos() - t0) / 1e6)
                            }
                        }
                    }
                }
                let (latencies, failures, firstFailure) = (state.latencies, state.failures, state.firstFailure)
                let seconds = Double(monotonicNanos() - start) / 1e9
                outcome.result = Result(
                    calls: calls, inFlight: inFlight, seconds: seconds, latenciesMs: latencies,
                    cpuSeconds: processCPUSeconds() - cpu0, failures: failures, firstFailure: firstFailure)
                endpoints.close()
                loop.shutdown()
                done.signal()
            }
        }
        done.wait()
        loop.join()
        guard let result = outcome.result else { throw BenchmarkFailure(description: "the benchmark did not finish") }
        return result
    }

    /// CPU time (user + system) of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

/// The result, written on the loop before `done` is signalled and read after it.
private final class Outcome: @unchecked Sendable {
    var result: HTTPBenchmark.Result?
}

/// The benchmark's counters, touched only on the loop thread.
private final class Tally: @unchecked Sendable {
    var next = 0
    var latencies: [Double] = []
    var failures = 0
    var firstFailure: String?

    func fail(_ message: String) {
        failures += 1
        if firstFailure == nil { firstFailure = message }
    }
}

public struct BenchmarkFailure: Error, CustomStringConvertible {
    public let description: String
}
