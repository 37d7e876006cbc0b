import CLibUV

#if canImport(Glibc)
    import Glibc
#endif

/// What a finished child process left: exit status or signal, and its capped output.
public struct ProcessResult: Sendable, Equatable {
    public var exitStatus: Int64
    /// The signal that ended the child, or 0.
    public var termSignal: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    public var timedOut: Bool
    public var cancelled: Bool
    /// Bytes the child wrote to each stream, the discarded ones beyond the cap included.
    public var stdoutReceived = 0
    public var stderrReceived = 0

    public var succeeded: Bool { exitStatus == 0 && termSignal == 0 && !timedOut && !cancelled }

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// "exit status 3", "killed by signal 9", "timed out after 2.0s"...
    public func summary(timeoutSeconds: Double) -> String {
        if cancelled { return "cancelled" }
        if timedOut { return "timed out after \(timeoutSeconds)s" }
        if termSignal != 0 { return "killed by signal \(termSignal)" }
        return "exit status \(exitStatus)"
    }
}

/// A child process started with `uv_spawn` on the loop, in its own process group, with stdin fed
/// from memory and stdout/stderr captured up to a cap. A timeout or the calling task's cancellation
/// kills the whole process group.
///
/// Everything here runs on the loop thread; `run` may be awaited from any task.
public final class ChildProcess: @unchecked Sendable {
    public struct Options: Sendable {
        public var argv: [String]
        public var cwd: String?
        /// `KEY=VALUE` entries; nil inherits the daemon's environment.
        public var environment: [String]?
        public var stdin: [UInt8]
        public var timeoutMilliseconds: UInt64
        public var outputCap: Int

        public init(
            argv: [String], cwd: String? = nil, environment: [String]? = nil, stdin: [UInt8] = [],
            timeoutMilliseconds: UInt64, outputCap: Int = 1 << 20
        ) {
            self.argv = argv
            self.cwd = cwd
            self.environment = environment
            self.stdin = stdin
            self.timeoutMilliseconds = timeoutMilliseconds
            self.outputCap = outputCap
        }
    }

    private let loop: EventLoop
    private let options: Options
    private let process = allocateHandle(uv_process_t.self)
    private let stdinPipe = allocateHandle(uv_pipe_t.self)
    private let stdoutPipe = allocateHandle(uv_pipe_t.self)
    private let stderrPipe = allocateHandle(uv_pipe_t.self)
    private var timer: LoopTimer?
    private var result = ProcessResult(
        exitStatus: -1, termSignal: 0, stdout: [], stderr: [], stdoutTruncated: false, stderrTruncated: false,
        timedOut: false, cancelled: false)
    private var openStreams = 2
    /// Whether the stdin pipe is still open (it is closed as soon as the request is written).
    private var stdinOpen = true
    private var exited = false
    private var continuation: UnsafeContinuation<Result<ProcessResult, LoopError>, Never>?
    private var pid: Int32 = 0

    private init(loop: EventLoop, options: Options) {
        self.loop = loop
        self.options = options
    }

    /// Runs a child to completion. Throws only when it cannot be started (e.g. no such program);
    /// a non-zero exit, a signal or a timeout are reported in the result.
    public static func run(loop: EventLoop, _ options: Options) async throws(LoopError) -> ProcessResult {
        let child = ChildProcess(loop: loop, options: options)
        let result = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<ProcessResult, LoopError>, Never>) in
                loop.execute { child.start(continuation) }
            }
        } onCancel: {
            loop.execute { child.kill(cancelled: true) }
        }
        return try result.get()
    }

    private func start(_ continuation: UnsafeContinuation<Result<ProcessResult, LoopError>, Never>) {
        if result.cancelled {
            // Cancelled before it was spawned: never start it.
            continuation.resume(returning: .success(result))
            return
        }
        self.continuation = continuation
        let ctx = Unmanaged.passRetained(self).toOpaque()  // released in finish()
        for pipe in [stdinPipe, stdoutPipe, stderrPipe] {
            uv_pipe_init(loop.uv, pipe, 0)
            pipe.pointee.data = ctx
        }
        process.pointee.data = ctx

        var stdio = [uv_stdio_container_t](repeating: uv_stdio_container_t(), count: 3)
        agentd_uv_stdio_stream(&stdio[0], agentd_uv_flag_create_pipe() | agentd_uv_flag_readable_pipe(), asStream(stdinPipe))
        agentd_uv_stdio_stream(&stdio[1], agentd_uv_flag_create_pipe() | agentd_uv_flag_writable_pipe(), asStream(stdoutPipe))
        agentd_uv_stdio_stream(&stdio[2], agentd_uv_flag_create_pipe() | agentd_uv_flag_writable_pipe(), asStream(stderrPipe))

        let rc = withCStrings(options.argv) { argv in
            withOptionalCStrings(options.environment) { env in
                withOptionalCString(options.cwd) { cwd in
                    stdio.withUnsafeMutableBufferPointer { stdioBuf in
                        var opts = uv_process_options_t()
                        opts.exit_cb = childExited
                        opts.file = UnsafePointer(argv[0])
                        opts.args = argv
                        opts.env = env
                        opts.cwd = cwd
                        // Detached: the child leads its own process group, so a kill reaches its children too.
                        opts.flags = UInt32(agentd_uv_process_detached())
                        opts.stdio_count = 3
                        opts.stdio = stdioBuf.baseAddress
                        return uv_spawn(loop.uv, process, &opts)
                    }
                }
            }
        }
        if rc != 0 {
            // libuv requires closing the process handle even when spawn failed.
            exited = true
            openStreams = 0
            closeHandles()
            finish(.failure(LoopError("spawn \(options.argv.first ?? "")", rc)))
            return
        }
        pid = process.pointee.pid

        writeStdin()
        uv_read_start(asStream(stdoutPipe), allocBuffer, readStdout)
        uv_read_start(asStream(stderrPipe), allocBuffer, readStderr)

        let timer = LoopTimer(loop: loop)
        self.timer = timer
        timer.start(after: max(options.timeoutMilliseconds, 1)) { [unowned self] in
            result.timedOut = true
            kill(cancelled: false)
        }
    }

    private func writeStdin() {
        guard !options.stdin.isEmpty else {
            closeStdin()
            return
        }
        let request = allocateHandle(uv_write_t.self)
        let bytes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: options.stdin.count)
        _ = bytes.initialize(from: options.stdin)
        request.pointee.data = UnsafeMutableRawPointer(bytes.baseAddress!)
        var buf = uv_buf_init(UnsafeMutableRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self), UInt32(bytes.count))
        let rc = uv_write(request, asStream(stdinPipe), &buf, 1) { req, _ in
            guard let req else { return }
            req.pointee.data?.deallocate()
            // stdin is done once written: close it so the child sees EOF.
            let child = child(of: UnsafeMutableRawPointer(req.pointee.handle))
            UnsafeMutableRawPointer(req).deallocate()
            child?.closeStdin()
        }
        if rc != 0 {
            bytes.deallocate()
            UnsafeMutableRawPointer(request).deallocate()
            closeStdin()
        }
    }

    /// Closes the stdin pipe once; its memory is freed in libuv's close callback.
    fileprivate func closeStdin() {
        guard stdinOpen else { return }
        stdinOpen = false
        stdinPipe.pointee.data = nil
        closeAndFree(stdinPipe)
    }

    /// Kills the child's whole process group.
    fileprivate func kill(cancelled: Bool) {
        if cancelled { result.cancelled = true }
        guard !exited, pid > 0 else { return }
        _ = Glibc.kill(-pid, SIGKILL)
        _ = Glibc.kill(pid, SIGKILL)
    }

    fileprivate func append(_ data: UnsafeBufferPointer<UInt8>, toStderr: Bool) {
        let cap = options.outputCap
        if toStderr {
            let room = max(0, cap - result.stderr.count)
            result.stderr.append(contentsOf: data.prefix(room))
            result.stderrReceived += data.count
            if data.count > room { result.stderrTruncated = true }
        } else {
            let room = max(0, cap - result.stdout.count)
            result.stdout.append(contentsOf: data.prefix(room))
            result.stdoutReceived += data.count
            if data.count > room { result.stdoutTruncated = true }
        }
    }

    fileprivate func streamEnded(_ stream: UnsafeMutablePointer<uv_stream_t>) {
        uv_read_stop(stream)
        openStreams -= 1
        completeIfDone()
    }

    fileprivate func didExit(status: Int64, signal: Int32) {
        exited = true
        result.exitStatus = status
        result.termSignal = signal
        // Grandchildren may hold the pipes open; the group is done once the leader has exited.
        if pid > 0 { _ = Glibc.kill(-pid, SIGKILL) }
        completeIfDone()
    }

    private func completeIfDone() {
        guard exited, openStreams == 0 else { return }
        closeHandles()
        finish(.success(result))
    }

    private func closeHandles() {
        timer?.close()
        timer = nil
        closeStdin()
        for pipe in [stdoutPipe, stderrPipe] {
            pipe.pointee.data = nil
            closeAndFree(pipe)
        }
        process.pointee.data = nil
        closeAndFree(process)
    }

    private func finish(_ outcome: Result<ProcessResult, LoopError>) {
        let continuation = self.continuation
        self.continuation = nil
        Unmanaged.passUnretained(self).release()
        continuation?.resume(returning: outcome)
    }
}

private func child(of handle: UnsafeMutableRawPointer?) -> ChildProcess? {
    guard let data = handle?.assumingMemoryBound(to: uv_handle_t.self).pointee.data else { return nil }
    return Unmanaged<ChildProcess>.fromOpaque(data).takeUnretainedValue()
}

private func childExited(_ process: UnsafeMutablePointer<uv_process_t>?, _ status: Int64, _ signal: Int32) {
    child(of: UnsafeMutableRawPointer(process))?.didExit(status: status, signal: signal)
}

/// Read buffers come from malloc and are freed after each read callback.
func allocBuffer(_ handle: UnsafeMutablePointer<uv_handle_t>?, _ suggested: Int, _ buf: UnsafeMutablePointer<uv_buf_t>?) {
    let size = 64 * 1024
    buf?.pointee = uv_buf_init(UnsafeMutablePointer<CChar>.allocate(capacity: size), UInt32(size))
}

private func readStdout(_ stream: UnsafeMutablePointer<uv_stream_t>?, _ nread: Int, _ buf: UnsafePointer<uv_buf_t>?) {
    readChild(stream, nread, buf, toStderr: false)
}

private func readStderr(_ stream: UnsafeMutablePointer<uv_stream_t>?, _ nread: Int, _ buf: UnsafePointer<uv_buf_t>?) {
    readChild(stream, nread, buf, toStderr: true)
}

private func readChild(_ stream: UnsafeMutablePointer<uv_stream_t>?, _ nread: Int, _ buf: UnsafePointer<uv_buf_t>?, toStderr: Bool) {
    defer { buf?.pointee.base?.deallocate() }
    guard let stream, let child = child(of: UnsafeMutableRawPointer(stream)) else { return }
    if nread > 0, let base = buf?.pointee.base {
        child.append(
            UnsafeBufferPointer(start: UnsafeRawPointer(base).assumingMemoryBound(to: UInt8.self), count: nread), toStderr: toStderr)
    } else if nread < 0 {
        child.streamEnded(stream)
    }
}

// MARK: - C strings for uv_spawn

private func withCStrings<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    var array = pointers + [nil]
    return array.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}

private func withOptionalCStrings<R>(_ strings: [String]?, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> R) -> R {
    guard let strings else { return body(nil) }
    return withCStrings(strings) { body($0) }
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}
