import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Makes job ids that sort by creation time: 10 characters of Crockford base-32 milliseconds followed
/// by 8 of a per-process counter seeded at random, e.g. `01JDQ3M8ZK7F3XW2QA`. Within one process ids
/// are strictly increasing even inside one millisecond.
///
/// Thread-safe.
public final class JobIDGenerator: Sendable {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    private let state: Mutex<(lastMillis: Int64, counter: UInt64)>
    private let clock: any WallClock

    public init(clock: any WallClock) {
        self.clock = clock
        let seed = UInt64.random(in: 0..<(1 << 39))
        self.state = Mutex((0, seed))
    }

    public func next() -> String {
        let now = clock.nowMillis()
        let (millis, counter) = state.withLock { s -> (Int64, UInt64) in
            if now > s.lastMillis { s.lastMillis = now }
            s.counter = (s.counter + 1) & 0xFF_FFFF_FFFF
            return (s.lastMillis, s.counter)
        }
        var out = [UInt8](repeating: 0, count: 18)
        var t = UInt64(max(millis, 0))
        for i in stride(from: 9, through: 0, by: -1) {
            out[i] = Self.alphabet[Int(t & 31)]
            t >>= 5
        }
        var c = counter
        for i in stride(from: 17, through: 10, by: -1) {
            out[i] = Self.alphabet[Int(c & 31)]
            c >>= 5
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `text` has the shape of a job id.
    public static func isValid(_ text: String) -> Bool {
        text.utf8.count == 18 && text.utf8.allSatisfy { alphabet.contains($0) }
    }
}
