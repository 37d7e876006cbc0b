/// A result or params object whose shape is not the protocol's; the message names the member.
/// Pure value; any thread.
public struct WireShapeError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
