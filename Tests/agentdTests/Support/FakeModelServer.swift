import Foundation
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// A fixture server from `Tests/Fixtures` as a child process: it prints `listening PORT` once it is up
/// (port 0 picks a free one). Stopped (SIGTERM, then SIGKILL) by `stop()` or when released.
final class FixtureServer {
    let process = Process()
    let port: Int
    private let output: String

    init(script: String, arguments: [String], directory: String, what: String) throws {
        output = directory + "/\(script)-\(UUID().uuidString.prefix(8)).log"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process.executableURL = URL(fileURLWithPath: try Locations.python())
        process.arguments = [Locations.fixtures + "/" + script, "--port", "0"] + arguments
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? handle.close()
        var found: Int?
        let (path, process) = (output, self.process)
        _ = waitUntil(timeout: 15, interval: 0.02) {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }) {
                found = Int(line.dropFirst("listening ".count).trimmingCharacters(in: .whitespaces))
            }
            return found != nil || !process.isRunning
        }
        guard let found else {
            process.terminate()
            throw HarnessError("\(what) did not start: \((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")")
        }
        port = found
    }

    deinit { stop() }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        if !waitUntil(timeout: 5, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func log() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
}

/// `Tests/Fixtures/fake_openai.py`: an OpenAI-compatible server on loopback whose model names choose
/// its faults.
final class FakeModelServer {
    private let server: FixtureServer
    private let tls: Bool

    var port: Int { server.port }
    var baseURL: String { "\(tls ? "https" : "http")://127.0.0.1:\(port)/v1" }

    /// `arguments` go to the server (`--tls-cert C --tls-key K` serves HTTPS; `stats()` then does not work).
    init(directory: String, expectKey: String? = nil, arguments: [String] = []) throws {
        tls = arguments.contains("--tls-cert")
        server = try FixtureServer(
            script: "fake_openai.py", arguments: arguments + (expectKey.map { ["--expect-key", $0] } ?? []), directory: directory,
            what: "the fake model server")
    }

    func stop() { server.stop() }

    /// `openai-fake.yaml` in `harness`'s directory, every role on this server under the model string
    /// `model` (its mode and a tag), with `reasks`, `maxTokens`, each request's total `timeout` and
    /// extra model keys (`modelKeys`, YAML).
    func preparePlan(
        in harness: DaemonHarness, model: String, reasks: Int = 0, maxTokens: Int = 0, timeout: String = "2s", modelKeys: String = ""
    ) throws -> String {
        try harness.preparePlan(
            "openai-fake.yaml",
            values: [
                "BASE_URL": baseURL, "MODEL": model, "REASKS": String(reasks), "MAX_TOKENS": String(maxTokens), "TIMEOUT": timeout,
                "MODEL_KEYS": modelKeys,
            ])
    }

    func log() -> String { server.log() }

    /// `GET /_stats`: request counts per mode and per model string, bad keys, last bodies.
    func stats() throws -> JSON {
        try JSON.parse(Array(try get("/_stats").utf8))
    }

    /// Requests the server received for the model string `model`.
    func requests(model: String) throws -> Int {
        try stats()["by_model"]?[model]?.intValue ?? 0
    }

    /// `POST /_release`: every request mode `gate` holds now is answered.
    func release() throws {
        _ = try get("/_release", method: "POST")
    }

    /// A plain HTTP/1.1 request without a body (GET unless `method` says otherwise) over a fresh
    /// loopback connection; returns the body.
    private func get(_ path: String, method: String = "GET") throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw HarnessError("cannot connect to the fake model server on port \(port)") }
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else {
            throw HarnessError("a malformed reply from the fake server: \(text.prefix(200))")
        }
        return String(text[split.upperBound...])
    }
}
