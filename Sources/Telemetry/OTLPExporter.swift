import Logging
import Runtime
import Store

/// Sends each finished job's spans (`GenAITrace`) to an OTLP/HTTP collector as JSON, through the
/// daemon's HTTP client on the loop. Configured from the daemon's environment:
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is
/// appended), and `OTEL_EXPORTER_OTLP_HEADERS` (`name=value,name2=value2`, values percent-decoded).
///
/// Never blocks the loop (the job's events are read and encoded on the reader queue) and never
/// affects the job: a failed export is retried at most `attempts` times for statuses 429 / 5xx and
/// network errors, then logged and dropped. Loop thread only.
package final class OTLPExporter: @unchecked Sendable {
    package struct Configuration: Sendable, Equatable {
        package var url: String
        var headers: [String: String] = [:]
        var attempts = 3
        var timeoutMilliseconds = 10_000

        /// Nil when the environment names no endpoint.
        package static func from(environment env: [String: String]) -> Configuration? {
            var url: String
            if let traces = env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], !traces.isEmpty {
                url = traces
            } else if let base = env["OTEL_EXPORTER_OTLP_ENDPOINT"], !base.isEmpty {
                url = base
                while url.hasSuffix("/") { url.removeLast() }
                url += "/v1/traces"
            } else {
                return nil
            }
            var headers: [String: String] = [:]
            for pair in (env["OTEL_EXPORTER_OTLP_HEADERS"] ?? "").split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let name = percentDecoded(parts[0]).trimmingSpaces
                if !name.isEmpty { headers[name] = percentDecoded(parts[1]).trimmingSpaces }
            }
            return Configuration(url: url, headers: headers)
        }
    }

    let configuration: Configuration
    private let loop: EventLoop
    private let reader: StoreReader
    private let http: () -> HTTPClient
    private let logger: Logger
    private let version: String
    private(set) var inFlight = 0
    private(set) var exported = 0
    private(set) var failed = 0

    package init(
        configuration: Configuration, loop: EventLoop, reader: StoreReader, logger: Logger, version: String = "0.1.0",
        http: @escaping () -> HTTPClient
    ) {
        self.configuration = configuration
        self.loop = loop
        self.reader = reader
        self.logger = logger
        self.version = version
        self.http = http
    }

    /// Exports the finished job `jobID` in the background.
    package func export(jobID: String) {
        inFlight += 1
        Task(executorPreference: loop) { [self] in
            defer { inFlight -= 1 }
            let version = self.version
            let body: [UInt8]
            do {
                body = try await reader.read { db -> [UInt8] in
                    guard let job = try db.job(jobID) else { return [] }
                    return Array(GenAITrace.request(job: job, events: try db.events(jobID: jobID), version: version).encoded.utf8)
                }
            } catch {
                logger.warning("OTLP export: cannot read the job", metadata: ["job.id": "\(jobID)", "error": "\(error)"])
                failed += 1
                return
            }
            guard !body.isEmpty else { return }
            await send(body, jobID: jobID)
        }
    }

    private func send(_ body: [UInt8], jobID: String) async {
        var request = HTTPRequest(
            url: configuration.url,
            headers: [(name: "Content-Type", value: "application/json")]
                + configuration.headers.sorted { $0.key < $1.key }.map {
                    (name: $0.key, value: $0.value)
                }, body: body)
        request.totalTimeoutMilliseconds = configuration.timeoutMilliseconds
        request.connectTimeoutMilliseconds = min(5000, configuration.timeoutMilliseconds)
        var problem = ""
        for attempt in 1...max(1, configuration.attempts) {
            if attempt > 1 {
                do {
                    try await Task.sleep(nanoseconds: UInt64(500_000_000) << UInt64(attempt - 2))
                } catch {
                    break
                }
            }
            do {
                let response = try await http().send(request)
                if (200..<300).contains(response.status) {
                    exported += 1
                    logger.debug("OTLP export sent", metadata: ["job.id": "\(jobID)", "status": "\(response.status)"])
                    return
                }
                problem = "HTTP \(response.status): \(String(decoding: response.body.prefix(200), as: UTF8.self))"
                if response.status != 429 && response.status < 500 { break }
            } catch {
                problem = "\(error)"
                if error.kind == .cancelled { break }
            }
        }
        failed += 1
        logger.warning(
            "OTLP export failed; the job's spans are dropped",
            metadata: ["job.id": "\(jobID)", "url": "\(configuration.url)", "error": "\(problem)"])
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
