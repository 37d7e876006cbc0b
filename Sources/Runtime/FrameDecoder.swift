/// Splits a byte stream into newline-delimited frames with a hard size limit.
///
/// A frame longer than `limit` bytes is not buffered: its bytes are discarded up to the next newline
/// and `.oversized` is reported once, so one huge line can neither exhaust memory nor desynchronise
/// the stream. Empty lines (and a `\r` before the newline) are ignored. Pure value type.
public struct FrameDecoder: Sendable {
    public enum Frame: Equatable, Sendable {
        case frame([UInt8])
        case oversized
    }

    public let limit: Int
    private var buffer: [UInt8] = []
    private var discarding = false
    /// A "\r" just past a full buffer: the frame is still within the limit if "\n" follows at once.
    private var heldCR = false

    public init(limit: Int) {
        self.limit = limit
    }

    /// Bytes buffered for an incomplete frame.
    public var pending: Int { buffer.count }

    /// Feeds bytes; returns the frames they complete, in order.
    public mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>) -> [Frame] {
        var frames: [Frame] = []
        var start = 0
        while start < bytes.count {
            let rest = UnsafeBufferPointer(rebasing: bytes[start...])
            guard let nl = rest.firstIndex(of: 0x0A) else {
                if !discarding {
                    if heldCR {
                        startDiscarding()
                    } else {
                        buffer.append(contentsOf: rest)
                        if buffer.count == limit + 1, buffer.last == 0x0D {
                            buffer.removeLast()
                            heldCR = true
                        } else if buffer.count > limit {
                            startDiscarding()
                        }
                    }
                }
                break
            }
            let end = start + (nl - rest.startIndex)
            if discarding {
                discarding = false
                frames.append(.oversized)
            } else if heldCR {
                heldCR = false
                if end == start {
                    if !buffer.isEmpty { frames.append(.frame(buffer)) }
                } else {
                    frames.append(.oversized)
                }
                buffer.removeAll(keepingCapacity: buffer.capacity <= 65536)
            } else {
                let chunk = UnsafeBufferPointer(rebasing: bytes[start..<end])
                let last = chunk.last ?? buffer.last
                let length = buffer.count + chunk.count - (last == 0x0D ? 1 : 0)
                if length > limit {
                    frames.append(.oversized)
                } else {
                    var line = buffer
                    line.append(contentsOf: chunk)
                    if line.last == 0x0D { line.removeLast() }
                    if !line.isEmpty { frames.append(.frame(line)) }
                }
                buffer.removeAll(keepingCapacity: buffer.capacity <= 65536)
            }
            start = end + 1
        }
        return frames
    }

    private mutating func startDiscarding() {
        buffer.removeAll()
        heldCR = false
        discarding = true
    }

    public mutating func feed(_ bytes: [UInt8]) -> [Frame] {
        bytes.withUnsafeBufferPointer { feed($0) }
    }
}
