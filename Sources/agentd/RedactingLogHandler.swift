import Logging
import Store

/// A log handler that takes secrets out of every message and metadata value before the wrapped
/// handler writes them.
struct RedactingLogHandler: LogHandler {
    var wrapped: any LogHandler
    let redactor: Redactor

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.message = "\(redactor.redact(event.message.description))"
        event.metadata = event.metadata.map { $0.mapValues { .string(redactor.redact($0.description)) } }
        wrapped.log(event: event)
    }
}
