import Store

/// A request's `id` exactly as the client wrote it. Replies echo its text byte for byte: a number
/// such as 9007199254740993 or `1e2` would come back as other text through a `Double`, and a string's
/// escapes are the client's to choose. Pure value; any thread.
public struct RequestID: Sendable, Equatable {
    /// The id's value (string, number or null), for matching and messages.
    public let value: JSON
    /// Its JSON text as received.
    public let text: [UInt8]

    /// An id read from a request: `text` is its JSON text, `value` what that text parses to.
    public init(value: JSON, text: [UInt8]) {
        self.value = value
        self.text = text
    }

    /// An id made here rather than received: its compact encoding.
    public init(_ value: JSON) {
        var text: [UInt8] = []
        value.write(to: &text)
        self.init(value: value, text: text)
    }

    /// The id of a reply to no readable request (JSON-RPC 2.0, section 5).
    public static let null = RequestID(.null)

    /// The id's text.
    public var encoded: String { String(decoding: text, as: UTF8.self) }
}

extension RPCError {
    /// The error reply to the request `id` as one encoded message (no newline).
    public func replyFrame(id: RequestID) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(96 + message.utf8.count)
        bytes.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        bytes.append(contentsOf: id.text)
        bytes.append(contentsOf: #","error":"#.utf8)
        json.write(to: &bytes)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
