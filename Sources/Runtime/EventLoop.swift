import CLibUV
import Store
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's one libuv loop, on its own thread, and the Swift executor that runs work on it.
///
/// ```
///   any thread ── enqueue(job) / execute(body) ──▶ pending ──uv_async_send──▶ loop thread
///                                                                             drain(): run each
///   loop thread: uv_run ── sockets, timers, signals, child processes, drained work
/// ```
/// `EventLoop` is a `SerialExecutor` and a `TaskExecutor`: actors whose `unownedExecutor` is this loop
/// (the engine, job runners, agents) run on the loop thread, serialised with libuv's callbacks, so loop
/// state needs no locks. Nothing that runs here may block: SQLite work goes to the store's threads.
///
/// Other threads reach the loop only through `uv_async_send`; sends coalesce and the drain empties the
/// whole queue (bounded rounds, so I/O is polled between long bursts of work).
public final class EventLoop: SerialExecutor, TaskExecutor, @unchecked Sendable {
    private enum Work {
        case job(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    private struct Pending {
        var items: [Work] = []
        /// Mirrors `items.count` for lock-free polling while spinning.
        let queued = AtomicCounter()
        /// A wake-up is requested or the drain is running: further work needs no new `uv_async_send`.
        var awake = false
        var closed = false
    }

    /// The libuv loop. Loop thread only.
    let uv: UnsafeMutablePointer<uv_loop_t>
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    private let pending = Mutex(Pending())
    private let threadID = Mutex<pthread_t?>(nil)
    private let finished = Mutex(false)
    private var thread: pthread_t?
    /// Says whether work is about to arrive (see `drain`). Set before `start()`.
    public var spinHint: (@Sendable () -> Bool)?
    private let spinNanos: UInt64 = 150_000
    /// Spin opportunities to skip after a spin that found nothing. Loop thread only.
    private var spinBackoff = 0

    public init() {
        uv = .allocate(capacity: 1)
        precondition(uv_loop_init(uv) == 0, "uv_loop_init failed")
        wakeup = allocateHandle(uv_async_t.self)
        precondition(uv_async_init(uv, wakeup, eventLoopWakeup) == 0, "uv_async_init failed")
        wakeup.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        uv.deallocate()
    }

    // MARK: Thread

    /// Starts the loop thread. Returns at once.
    public func start() {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let rc = pthread_create(
            &tid, nil,
            { raw in
                let loop = Unmanaged<EventLoop>.fromOpaque(raw!).takeRetainedValue()
                loop.runOnThisThread()
                return nil
            }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = tid
    }

    /// Waits until the loop thread has ended (after `shutdown`).
    public func join() {
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    /// Runs the loop on the calling thread until `shutdown` has closed every handle, then closes the
    /// loop. Traps if a handle was leaked (the loop cannot close).
    public func runOnThisThread() {
        threadID.withLock { $0 = pthread_self() }
        uv_run(uv, UV_RUN_DEFAULT)
        // Run close callbacks of handles closed in the last iteration.
        uv_run(uv, UV_RUN_DEFAULT)
        let rc = uv_loop_close(uv)
        precondition(rc == 0, "uv_loop_close: handles still open (\(String(cString: uv_strerror(rc))))")
        finished.withLock { $0 = true }
    }

    /// Whether the caller is on the loop thread.
    public var inLoop: Bool {
        threadID.withLock { id in id.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    /// Traps unless called on the loop thread; the contract of every loop-only API.
    public func assertInLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inLoop, "must run on the event loop thread", file: file, line: line)
    }

    /// Stops the loop: closes its wake-up handle so `uv_run` returns once every other handle is
    /// closed. Work enqueued afterwards is dropped. Runs on the loop.
    public func shutdown() {
        execute { [self] in
            pending.withLock { $0.closed = true }
            uv_close(asHandle(wakeup)) { handle in UnsafeMutableRawPointer(handle)?.deallocate() }
        }
    }

    // MARK: Executor

    public func enqueue(_ job: consuming ExecutorJob) {
        schedule(.job(UnownedJob(job)))
    }

    /// Runs `body` on the loop thread soon. Callable from any thread.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        schedule(.closure(body))
    }

    /// Hands a batch of store-write completions to the loop in one hop (see `StoreWriter`).
    public var deliverer: @Sendable ([StoreWriter.Completion], [StoreError?]) -> Void {
        { [self] done, results in
            execute {
                for (d, r) in zip(done, results) { d(r) }
            }
        }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    public func checkIsolated() {
        precondition(inLoop, "expected to run on the agentd event loop thread")
    }

    public func isIsolatingCurrentContext() -> Bool? {
        inLoop
    }

    private func schedule(_ work: Work) {
        let wake = pending.withLock { p -> Bool in
            if p.closed { return false }
            p.items.append(work)
            p.queued.increment()
            if p.awake { return false }
            p.awake = true
            return true
        }
        if wake { uv_async_send(wakeup) }
    }

    /// Runs queued work. Loop thread only.
    ///
    /// When the queue empties while `spinHint` says an answer is imminent (a store commit in flight),
    /// the loop polls for up to `spinNanos` before returning to `epoll_wait`: a commit takes tens of
    /// microseconds, and sleeping through it would add a wake-up to every write a job waits on.
    fileprivate func drain() {
        let serial = asUnownedSerialExecutor()
        let task = asUnownedTaskExecutor()
        var rounds = 0
        while true {
            let batch = pending.withLock { p -> [Work] in
                let b = p.items
                p.items = []
                p.queued.reset()
                return b
            }
            if batch.isEmpty {
                if spinForWork() { continue }
                let done = pending.withLock { p -> Bool in
                    guard p.items.isEmpty else { return false }
                    p.awake = false
                    return true
                }
                if done { return }
                continue
            }
            for work in batch {
                switch work {
                case let .job(job): job.runSynchronously(isolatedTo: serial, taskExecutor: task)
                case let .closure(body): body()
                }
            }
            rounds += 1
            if rounds == 16 {
                // Still busy: come back after the loop has polled I/O.
                let more = pending.withLock { p -> Bool in
                    if p.items.isEmpty || p.closed {
                        p.awake = false
                        return false
                    }
                    return true
                }
                if more { uv_async_send(wakeup) }
                return
            }
        }
    }

    private func spinForWork() -> Bool {
        guard let hint = spinHint, hint() else { return false }
        if spinBackoff > 0 {
            spinBackoff -= 1
            return false
        }
        let queued = pending.withLock { $0.queued }
        let until = monotonicNanos() + spinNanos
        while monotonicNanos() < until {
            if queued.current > 0 { return true }
            if !hint() { return false }
        }
        // The answer took longer than a spin (a large commit): stop spinning for a while so a busy
        // daemon does not burn the CPU its writer needs.
        spinBackoff = 8
        return false
    }
}

/// A shareable atomic counter (an `Atomic` cannot be copied out of the lock that guards `Pending`).
final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)

    func increment() { value.add(1, ordering: .releasing) }
    func reset() { value.store(0, ordering: .relaxed) }
    var current: Int { value.load(ordering: .acquiring) }
}

private func eventLoopWakeup(_ handle: UnsafeMutablePointer<uv_async_t>?) {
    guard let data = handle?.pointee.data else { return }
    Unmanaged<EventLoop>.fromOpaque(data).takeUnretainedValue().drain()
}

// MARK: - Handle helpers (used only by the files that wrap libuv)

/// A zeroed libuv handle or request of type `H`, to be freed in its close callback.
func allocateHandle<H>(_: H.Type) -> UnsafeMutablePointer<H> {
    let p = UnsafeMutablePointer<H>.allocate(capacity: 1)
    UnsafeMutableRawPointer(p).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<H>.stride)
    return p
}

func asHandle<H>(_ p: UnsafeMutablePointer<H>) -> UnsafeMutablePointer<uv_handle_t> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: uv_handle_t.self)
}

func asStream<H>(_ p: UnsafeMutablePointer<H>) -> UnsafeMutablePointer<uv_stream_t> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: uv_stream_t.self)
}

/// Closes a handle and frees its memory once libuv is done with it.
func closeAndFree<H>(_ p: UnsafeMutablePointer<H>) {
    let handle = asHandle(p)
    if uv_is_closing(handle) != 0 { return }
    uv_close(handle) { handle in UnsafeMutableRawPointer(handle)?.deallocate() }
}

/// A libuv error code as a message.
func uvMessage(_ code: Int32) -> String {
    String(cString: uv_strerror(code))
}

/// A failure from a libuv call: the operation and libuv's message.
public struct LoopError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let code: Int32
    public let message: String

    init(_ operation: String, _ code: Int32) {
        self.operation = operation
        self.code = code
        self.message = uvMessage(code)
    }

    public var description: String { "\(operation): \(message)" }
}
