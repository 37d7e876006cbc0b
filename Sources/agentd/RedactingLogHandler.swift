import Logging
import Store

/// A log handler that takes secrets out of every message, metadata value and attached error before
/// the wrapped handler writes them.
///
/// The logger's own metadata (`logger[metadataKey:]`) is kept here, not in the wrapped handler, and
/// merged into each line before it is redacted: the wrapped handler would write its own metadata as
/// given, and a secret may become known (a job's `api_key_env`) after the value was set.
struct RedactingLogHandler: LogHandler {
    var wrapped: any LogHandler
    let redactor: Redactor
    var metadata: Logger.Metadata = [:]

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        var merged = metadata
        if let given = event.metadata { merged.merge(given) { _, new in new } }
        if let error = event.error {
            // As `StreamLogHandler` would write it, but redacted.
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
            event.error = nil
        }
        event.message = "\(redactor.redact(event.message.description))"
        event.metadata = merged.isEmpty ? nil : merged.mapValues { .string(redactor.redact($0.description)) }
        wrapped.log(event: event)
    }
}
