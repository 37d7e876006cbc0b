import Logging
import Store
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Why the daemon could not start or serve; one line for the CLI.
public struct DaemonError: Error, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// `agentd serve`: the store, the loop, the engine and the socket, started in order and stopped in
/// reverse.
///
/// Start: take the database's lock (one daemon per database), migrate, read unfinished jobs, start the
/// writer thread, start the loop thread, re-admit jobs, listen. SIGTERM or SIGINT: stop accepting
/// (the socket file is removed, submissions are refused), let running calls finish up to the drain
/// deadline, then abandon the rest unrecorded (they run again at the next start), close every
/// handle, checkpoint the WAL, exit 0.
public final class Daemon: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var socketPath: String
        public var databasePath: String
        public var maxRunning = 256
        public var drainSeconds = 10.0
        public var limits = UnixListener.Limits()
        public var version = "0.1.0"
        /// Secrets kept out of events, replies and logs.
        public var redactor = Redactor()

        public init(socketPath: String, databasePath: String) {
            self.socketPath = socketPath
            self.databasePath = databasePath
        }
    }

    private let configuration: Configuration
    private let logger: Logger
    private let clock: any WallClock = SystemClock()

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Serves until a termination signal has been handled. Blocks the calling thread.
    public func run() throws(DaemonError) {
        let socketPath = configuration.socketPath
        let dbPath = configuration.databasePath
        try Paths.ensureDirectory(Paths.directory(of: socketPath), private: true)
        try Paths.ensureDirectory(Paths.directory(of: dbPath), private: false)
        Self.closeInheritedDescriptorsOnExec()
        let lock = try DatabaseLock(databasePath: dbPath)
        defer { lock.release() }
        try Paths.clearStaleSocket(socketPath)

        let loop = EventLoop()
        let writer: StoreWriter
        let reader: StoreReader
        let unfinished: [Engine.Unfinished]
        do {
            writer = try StoreWriter(path: dbPath, clock: clock, redactor: configuration.redactor, deliver: loop.deliverer)
            reader = try StoreReader(path: dbPath)
            // Before the loop serves: read what must resume. This thread is not the loop.
            unfinished = try reader.readNow { db in
                try db.unfinishedJobs().map { Engine.Unfinished(record: $0, events: try db.events(jobID: $0.id)) }
            }
        } catch {
            throw DaemonError("cannot open the database \(dbPath): \(error)")
        }
        writer.start()
        loop.spinHint = { [writer] in writer.hasInFlight }
        let indexer = startSearchIndexer(path: dbPath, writer: writer)

        let state = ServeState()
        loop.execute { [self] in
            do {
                try startServing(loop: loop, writer: writer, reader: reader, unfinished: unfinished, state: state)
            } catch {
                state.startError = error
                loop.shutdown()
            }
        }
        loop.start()
        loop.join()
        indexer?.close()
        writer.close()
        if let error = state.startError { throw DaemonError("\(error)") }
        logger.info("agentd stopped")
    }

    /// What the loop thread hands back to `run()` after it ends.
    private final class ServeState: @unchecked Sendable {
        var startError: (any Error)?
        var listener: UnixListener?
        var signals: [SignalWatcher] = []
        var stopping = false
    }

    /// Loop thread.
    private func startServing(
        loop: EventLoop, writer: StoreWriter, reader: StoreReader, unfinished: [Engine.Unfinished], state: ServeState
    ) throws {
        var engineConfig = Engine.Configuration()
        engineConfig.maxRunning = configuration.maxRunning
        engineConfig.protectedPaths = Bubblewrap.protectedPaths(database: configuration.databasePath, socket: configuration.socketPath)
        let engine = Engine(loop: loop, writer: writer, reader: reader, clock: clock, logger: logger, configuration: engineConfig)
        let server = RPCServer(
            engine: engine, loop: loop,
            info: .init(version: configuration.version, socketPath: configuration.socketPath, pid: getpid()),
            frameLimit: configuration.limits.frameLimit)
        let listener = try UnixListener(loop: loop, path: configuration.socketPath, limits: configuration.limits) { connection in
            server.attach(connection)
        }
        state.listener = listener
        for signal in [SIGTERM, SIGINT] {
            state.signals.append(
                try SignalWatcher(loop: loop, signal: signal) { [self] signum in
                    stop(loop: loop, engine: engine, state: state, signal: signum)
                })
        }
        // A client that disconnects mid-write must not kill the daemon.
        Glibc.signal(SIGPIPE, SIG_IGN)
        engine.recover(unfinished)
        logger.info(
            "agentd serving",
            metadata: [
                "socket": "\(configuration.socketPath)", "db": "\(configuration.databasePath)", "pid": "\(getpid())",
            ])
    }

    private func stop(loop: EventLoop, engine: Engine, state: ServeState, signal: Int32) {
        if state.stopping {
            logger.info("second signal: abandoning in-flight calls now")
            engine.abandonInFlight()
            return
        }
        state.stopping = true
        logger.info(
            "stopping: no new jobs; letting running calls finish",
            metadata: [
                "signal": "\(signal)", "running": "\(engine.runningCount)", "deadline_s": "\(configuration.drainSeconds)",
            ])
        state.listener?.close()
        let deadline = LoopTimer(loop: loop)
        deadline.start(after: UInt64(configuration.drainSeconds * 1000)) { [self] in
            logger.warning("drain deadline passed: abandoning in-flight calls; they run again at the next start")
            engine.abandonInFlight()
        }
        engine.drain {
            deadline.close()
            engine.close()
            state.listener?.closeConnections()
            state.signals.forEach { $0.close() }
            loop.shutdown()
        }
    }

    /// The search index's background indexer (its own connection and queue): it indexes while the
    /// writer has committed nothing since its last look, so it never competes with a busy store.
    private func startSearchIndexer(path: String, writer: StoreWriter) -> SearchIndexer? {
        let lastCommits = Mutex(-1)
        do {
            let indexer = try SearchIndexer(path: path) { [writer] in
                let commits = writer.currentStats.commits
                let previous = lastCommits.withLock { last in
                    defer { last = commits }
                    return last
                }
                return commits == previous && !writer.hasInFlight
            }
            indexer.start()
            return indexer
        } catch {
            logger.warning("no background search indexing (searches index for themselves)", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Marks every descriptor the daemon inherited (beyond stdio) close-on-exec, so model and tool
    /// processes never hold the daemon's parent's sockets or files open.
    static func closeInheritedDescriptorsOnExec() {
        guard let dir = opendir("/proc/self/fd") else { return }
        defer { closedir(dir) }
        var fds: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let fd = Int32(name), fd > 2 { fds.append(fd) }
        }
        for fd in fds {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}
