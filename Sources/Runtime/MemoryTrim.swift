import CLibUV

/// Gives memory freed after large output back to the operating system.
///
/// glibc's allocator keeps freed memory in its arenas (one per thread that allocated, so the reader
/// queue's and the loop's) for reuse, and returns to the kernel only what lies at the top of a heap:
/// after a burst of large replies — unread ones dropped with their connection, or a storm of large
/// answers — the daemon would stay at its peak resident size for good. Connections report the
/// bytes of output they free (`freed`); once `threshold` bytes have been freed, `malloc_trim(0)`
/// runs after `delayMilliseconds` on the loop, so a burst of frees costs one trim. Loop thread only.
public final class MemoryTrim: @unchecked Sendable {
    private let timer: LoopTimer
    private let threshold: Int
    private let delayMilliseconds: UInt64
    private var pending = 0
    private var scheduled = false
    private var closed = false
    /// Trims done (for tests and figures).
    public private(set) var trims = 0

    public init(loop: EventLoop, threshold: Int = 16 << 20, delayMilliseconds: UInt64 = 250) {
        timer = LoopTimer(loop: loop)
        self.threshold = threshold
        self.delayMilliseconds = delayMilliseconds
    }

    /// `bytes` of output were freed.
    public func freed(_ bytes: Int) {
        guard !closed else { return }
        pending += bytes
        guard pending >= threshold, !scheduled else { return }
        scheduled = true
        timer.start(after: delayMilliseconds) { [unowned self] in
            scheduled = false
            pending = 0
            trims += 1
            _ = agentd_malloc_trim()
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        timer.close()
    }
}
