import CSQLite
import Foundation
import Synchronization

/// Secret values that must never leave the process in clear: each occurrence in an event's encoded
/// payload (before it is stored or sent to a client) and in a log line is replaced by
/// `[REDACTED:NAME]`, NAME being the environment variable that held it.
///
/// Secrets are the values of environment variables: `OPENAI_API_KEY`, the variables named in
/// `AGENTD_SECRET_ENV` (comma-separated) or `--secret-env`, and the `api_key_env` of every `openai`
/// model a job uses (added when the job starts). Each value is matched in three forms: as it is (a
/// log line, a goal), JSON-escaped (a string in an event's payload) and escaped twice (a tool result,
/// itself JSON, inside the next model request); the forms differ only for a value with a quote, a
/// backslash or a control character. A secret that was encoded some other way (base64, hex, split
/// across two strings) is not found: redaction is a safety net for accidents, not a barrier.
/// Values shorter than 8 bytes are not treated as secrets (they would redact ordinary words).
/// Thread-safe; `redact` is cheap when there are no secrets and one `memmem` per form otherwise.
public final class Redactor: Sendable {
    private struct Secret: Sendable {
        let name: String
        let bytes: [UInt8]
        let replacement: [UInt8]
    }

    private let secrets = Mutex<[Secret]>([])
    private let environment: [String: String]

    public static let minimumLength = 8

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, names: [String] = []) {
        self.environment = environment
        for name in Self.secretNames(environment: environment, names: names) { add(variable: name) }
    }

    /// The variables whose values are secrets from the start: `OPENAI_API_KEY`, `names`, and those
    /// `AGENTD_SECRET_ENV` in `environment` lists (comma-separated); each once.
    public static func secretNames(environment: [String: String], names: [String]) -> [String] {
        var all = ["OPENAI_API_KEY"] + names
        if let listed = environment["AGENTD_SECRET_ENV"] {
            all += listed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        var unique: [String] = []
        for name in all where !unique.contains(name) { unique.append(name) }
        return unique
    }

    /// Treats the value of the environment variable `name` (if set and long enough) as a secret, in
    /// each of its forms (see the type's description).
    public func add(variable name: String) {
        guard let value = environment[name], value.utf8.count >= Self.minimumLength else { return }
        let once = JSON.escaped(value)
        let twice = JSON.escaped(String(decoding: once, as: UTF8.self))
        let replacement = Array("[REDACTED:\(name)]".utf8)
        secrets.withLock { list in
            for form in [Array(value.utf8), once, twice] where !list.contains(where: { $0.bytes == form }) {
                list.append(Secret(name: name, bytes: form, replacement: replacement))
            }
            // Longest first, so a secret that contains another is replaced whole.
            list.sort { $0.bytes.count > $1.bytes.count }
        }
    }

    public var isEmpty: Bool { secrets.withLock { $0.isEmpty } }

    /// Replaces every secret in `bytes`, in place. Returns whether anything was replaced.
    @discardableResult
    public func redact(_ bytes: inout [UInt8]) -> Bool {
        let list = secrets.withLock { $0 }
        guard !list.isEmpty else { return false }
        var changed = false
        for secret in list {
            var next = Self.find(secret.bytes, in: bytes, from: 0)
            guard next != nil else { continue }
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            var start = 0
            while let hit = next {
                out.append(contentsOf: bytes[start..<hit])
                out.append(contentsOf: secret.replacement)
                start = hit + secret.bytes.count
                next = Self.find(secret.bytes, in: bytes, from: start)
            }
            out.append(contentsOf: bytes[start...])
            bytes = out
            changed = true
        }
        return changed
    }

    public func redact(_ text: String) -> String {
        var bytes = Array(text.utf8)
        return redact(&bytes) ? String(decoding: bytes, as: UTF8.self) : text
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count - start >= needle.count else { return nil }
        return haystack.withUnsafeBytes { hay in
            needle.withUnsafeBytes { n in
                guard let hit = agentd_memmem(hay.baseAddress! + start, hay.count - start, n.baseAddress!, n.count) else { return nil }
                return hay.baseAddress!.distance(to: UnsafeRawPointer(hit))
            }
        }
    }
}
