import CLibUV

/// A libuv timer. Loop thread only: create, start, stop and close it on the loop.
///
/// The callback runs on the loop thread and must not block. `close()` must be called once the timer
/// is no longer needed; it frees the handle in libuv's close callback.
public final class LoopTimer: @unchecked Sendable {
    private let handle: UnsafeMutablePointer<uv_timer_t>
    private var callback: (() -> Void)?
    private var closed = false

    public init(loop: EventLoop) {
        loop.assertInLoop()
        handle = allocateHandle(uv_timer_t.self)
        precondition(uv_timer_init(loop.uv, handle) == 0)
    }

    /// Fires `callback` after `milliseconds`, then every `repeat` milliseconds when non-zero.
    public func start(after milliseconds: UInt64, repeat interval: UInt64 = 0, _ callback: @escaping () -> Void) {
        precondition(!closed, "timer used after close")
        self.callback = callback
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        uv_timer_start(
            handle,
            { h in
                guard let data = h?.pointee.data else { return }
                let timer = Unmanaged<LoopTimer>.fromOpaque(data).takeUnretainedValue()
                timer.callback?()
            }, milliseconds, interval)
    }

    public func stop() {
        guard !closed else { return }
        uv_timer_stop(handle)
        callback = nil
    }

    public func close() {
        guard !closed else { return }
        closed = true
        uv_timer_stop(handle)
        callback = nil
        handle.pointee.data = nil
        closeAndFree(handle)
    }

    deinit {
        // A timer dropped without `close()` must not leave libuv holding a dangling context.
        if !closed {
            handle.pointee.data = nil
            closeAndFree(handle)
        }
    }
}

/// Watches POSIX signals on the loop. Loop thread only.
public final class SignalWatcher: @unchecked Sendable {
    private let handle: UnsafeMutablePointer<uv_signal_t>
    private let callback: (Int32) -> Void
    private var closed = false

    public init(loop: EventLoop, signal: Int32, _ callback: @escaping (Int32) -> Void) throws(LoopError) {
        loop.assertInLoop()
        self.callback = callback
        handle = allocateHandle(uv_signal_t.self)
        precondition(uv_signal_init(loop.uv, handle) == 0)
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let rc = uv_signal_start(
            handle,
            { h, signum in
                guard let data = h?.pointee.data else { return }
                Unmanaged<SignalWatcher>.fromOpaque(data).takeUnretainedValue().callback(signum)
            }, signal)
        if rc != 0 {
            closeAndFree(handle)
            throw LoopError("uv_signal_start", rc)
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        handle.pointee.data = nil
        closeAndFree(handle)
    }
}

/// Watches one file for changes (inotify through `uv_fs_event`). Loop thread only.
public final class FileWatch: @unchecked Sendable {
    private let handle: UnsafeMutablePointer<uv_fs_event_t>
    private var callback: (() -> Void)?
    private var closed = false

    /// Calls `onChange` (on the loop) whenever the file is written, replaced, renamed or removed.
    public init(loop: EventLoop, path: String, onChange: @escaping () -> Void) throws(LoopError) {
        loop.assertInLoop()
        handle = allocateHandle(uv_fs_event_t.self)
        precondition(uv_fs_event_init(loop.uv, handle) == 0)
        callback = onChange
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let rc = uv_fs_event_start(
            handle,
            { h, _, _, _ in
                guard let data = h?.pointee.data else { return }
                Unmanaged<FileWatch>.fromOpaque(data).takeUnretainedValue().callback?()
            }, path, 0)
        if rc != 0 {
            handle.pointee.data = nil
            closeAndFree(handle)
            closed = true
            throw LoopError("watch \(path)", rc)
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        callback = nil
        handle.pointee.data = nil
        closeAndFree(handle)
    }

    deinit {
        if !closed {
            handle.pointee.data = nil
            closeAndFree(handle)
        }
    }
}

extension EventLoop {
    /// Suspends the calling task for `milliseconds` of loop time. Call from a task on the loop.
    public func sleep(milliseconds: UInt64) async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            execute {
                let timer = LoopTimer(loop: self)
                timer.start(after: milliseconds) {
                    timer.close()
                    continuation.resume()
                }
            }
        }
    }
}
