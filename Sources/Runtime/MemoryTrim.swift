import CLibUV

/// Gives memory freed after large output back to the operating system.
///
/// glibc's allocator keeps freed memory in its arenas (one per thread that allocated, so the reader
/// queue's and the loop's) for reuse, and returns to the kernel only what lies at the top of a heap:
/// after a burst of large replies — unread ones dropped with their connection, or a storm of large
/// answers — the daemon would stay at its peak resident size for good. Connections report the
/// bytes of output they free (`freed`); once `threshold` bytes have been freed, `malloc_trim(0)`
/// runs after `delayMilliseconds` on the loop, so a burst of frees costs one trim. A burst is followed
/// by `followUps` more trims at doubling intervals (0.5 s, 1 s, 2 s, …), so what its stragglers free
/// later without passing through a connection (store reads finished after their client left, say)
/// is given back too. Loop thread only.
public final class MemoryTrim: @unchecked Sendable {
    private let timer: LoopTimer
    private let threshold: Int
    private let delayMilliseconds: UInt64
    private var pending = 0
    private var scheduled = false
    /// Trims still to come after the last burst, and the delay before the next.
    private var followUps = 0
    private var followUpDelay: UInt64 = 0
    private let maxFollowUps: Int
    /// Whether the trim scheduled is a follow-up (a new burst may bring it forward).
    private var waitingFollowUp = false
    private var closed = false
    /// Trims done (for tests and figures).
    public private(set) var trims = 0

    public init(loop: EventLoop, threshold: Int = 16 << 20, delayMilliseconds: UInt64 = 250, followUps: Int = 5) {
        timer = LoopTimer(loop: loop)
        self.threshold = threshold
        self.delayMilliseconds = delayMilliseconds
        self.maxFollowUps = followUps
    }

    /// `bytes` of output were freed.
    public func freed(_ bytes: Int) {
        guard !closed else { return }
        pending += bytes
        // The burst's trim is on its way: later frees do not put it off.
        guard pending >= threshold, !scheduled || waitingFollowUp else { return }
        // A new burst: its trim comes soon (sooner than a follow-up already waiting).
        (followUps, followUpDelay) = (maxFollowUps, 2 * delayMilliseconds)
        if scheduled { timer.stop() }
        schedule(after: delayMilliseconds, followUp: false)
    }

    private func schedule(after milliseconds: UInt64, followUp: Bool) {
        scheduled = true
        waitingFollowUp = followUp
        timer.start(after: milliseconds) { [unowned self] in
            scheduled = false
            pending = 0
            trims += 1
            _ = agentd_malloc_trim()
            guard followUps > 0 else { return }
            followUps -= 1
            schedule(after: followUpDelay, followUp: true)
            followUpDelay *= 2
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        timer.close()
    }
}
