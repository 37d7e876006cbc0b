import Dispatch
import Logging
import Runtime
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
///
/// SIGHUP: read the configuration file again (off the loop) and apply what changed to the running
/// daemon — limits, queue limits, endpoint limits, the drain deadline, more secrets — without
/// stopping a job or closing a connection. A file that does not load is reported in the log
/// (`FILE:LINE:COL: FIELD: MESSAGE`) and the configuration in force stays; a changed socket,
/// database or allowed group is logged as needing a restart and keeps its running value.
public final class Daemon: @unchecked Sendable {
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
        // Holding the lock: what a previous daemon left running dies before anything runs again.
        let owner = Paths.absolute(dbPath)
        Orphans.reap(database: owner, logger: logger)
        Orphans.mark(database: owner)
        CallInputs.sweep()
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
                try db.unfinishedJobs().map { try Engine.Unfinished.read($0, from: db) }
            }
        } catch {
            throw DaemonError("cannot open the database \(dbPath): \(error)")
        }
        writer.start()
        loop.spinHint = { [writer] in writer.hasInFlight }
        let indexer = startSearchIndexer(path: dbPath, writer: writer)

        let state = ServeState(configuration: configuration, loadedAt: clock.nowMillis())
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

    /// What the loop thread serves with, and hands back to `run()` after it ends. Loop thread only
    /// (but `startError`, read after the loop has ended).
    private final class ServeState: @unchecked Sendable {
        var startError: (any Error)?
        var listener: UnixListener?
        var signals: [SignalWatcher] = []
        var stopping = false
        /// The configuration in force, how many times it was loaded, and when last.
        var configuration: Configuration
        var generation = 1
        var loadedAt: Int64
        var engine: Engine?
        var server: RPCServer?

        init(configuration: Configuration, loadedAt: Int64) {
            self.configuration = configuration
            self.loadedAt = loadedAt
        }
    }

    /// Where the configuration file is read and checked on SIGHUP, in order, off the loop.
    private let configQueue = DispatchQueue(label: "agentd.config")

    /// Loop thread.
    private func startServing(
        loop: EventLoop, writer: StoreWriter, reader: StoreReader, unfinished: [Engine.Unfinished], state: ServeState
    ) throws {
        var engineConfig = Engine.Configuration()
        engineConfig.maxRunning = configuration.maxRunning
        engineConfig.maxQueuedJobs = configuration.maxQueuedJobs
        engineConfig.maxQueuedJobsPerClient = configuration.maxQueuedJobsPerClient
        engineConfig.endpoints = configuration.endpoints
        engineConfig.trust = configuration.trust
        engineConfig.protectedPaths = Bubblewrap.protectedPaths(database: configuration.databasePath, socket: configuration.socketPath)
        // The copy read at start, with the mark `Orphans.mark` has since set in the process, which
        // every process the daemon starts must carry.
        engineConfig.environment = configuration.environment
        engineConfig.environment[Orphans.variable] = Paths.absolute(configuration.databasePath)
        engineConfig.secretVariables = Redactor.secretNames(environment: configuration.environment, names: configuration.secretEnv)
        engineConfig.scrubsSecrets = true
        let engine = Engine(loop: loop, writer: writer, reader: reader, clock: clock, logger: logger, configuration: engineConfig)
        let server = RPCServer(
            engine: engine, loop: loop, info: .init(version: configuration.version, socketPath: configuration.socketPath, pid: getpid()))
        server.configuration = configuration.json(generation: state.generation, loadedAt: state.loadedAt)
        let listener = try UnixListener(
            loop: loop, path: configuration.socketPath, limits: configuration.limits, refusal: RPCServer.refusalFrame
        ) { connection in
            server.attach(connection)
        }
        state.listener = listener
        state.engine = engine
        state.server = server
        for signal in [SIGTERM, SIGINT] {
            state.signals.append(
                try SignalWatcher(loop: loop, signal: signal) { [self] signum in
                    stop(loop: loop, engine: engine, state: state, signal: signum)
                })
        }
        state.signals.append(try SignalWatcher(loop: loop, signal: SIGHUP) { [self] _ in reload(loop: loop, state: state) })
        // A client that disconnects mid-write must not kill the daemon.
        Glibc.signal(SIGPIPE, SIG_IGN)
        engine.recover(unfinished)
        logger.info(
            "agentd serving",
            metadata: [
                "socket": "\(configuration.socketPath)", "db": "\(configuration.databasePath)", "pid": "\(getpid())",
                "config": "\(configuration.file ?? "none")",
            ])
    }

    // MARK: Reload

    /// SIGHUP: resolves the configuration again off the loop, then applies it on the loop.
    private func reload(loop: EventLoop, state: ServeState) {
        guard !state.stopping else {
            logger.notice("SIGHUP ignored: the daemon is stopping")
            return
        }
        let current = state.configuration
        guard let file = current.file else {
            logger.notice("SIGHUP: there is no configuration file to reload (serve --config FILE)")
            return
        }
        logger.info("SIGHUP: reloading the configuration", metadata: ["file": "\(file)"])
        configQueue.async { [self] in
            let result: Result<Configuration, DaemonError>
            do throws(DaemonError) {
                result = .success(try Configuration.resolve(file: file, commandLine: current.commandLine))
            } catch {
                result = .failure(error)
            }
            loop.execute { [self] in apply(result, state: state) }
        }
    }

    /// Applies a reloaded configuration to the running daemon (loop thread). Nothing is stopped or
    /// restarted: jobs and connections go on under the new limits.
    private func apply(_ result: Result<Configuration, DaemonError>, state: ServeState) {
        guard !state.stopping, let engine = state.engine else { return }
        var next: Configuration
        switch result {
        case let .failure(error):
            logger.error(
                "configuration not reloaded; the configuration in force stays",
                metadata: ["error": "\(error)", "config.generation": "\(state.generation)"])
            return
        case let .success(loaded):
            next = loaded
        }
        let current = state.configuration
        let before = Dictionary(uniqueKeysWithValues: current.settings.map { ($0.name, $0.value) })
        var changes: [String] = []
        for (name, value) in next.settings where before[name] != value {
            if Configuration.restartOnly.contains(name) {
                logger.warning(
                    "\(name) changed in the configuration: needs a restart; the running value stays",
                    metadata: ["setting": "\(name)", "running": "\(before[name] ?? "")", "configured": "\(value)"])
            } else {
                changes.append("\(name): \(before[name] ?? "") -> \(value)")
            }
        }
        // What cannot change live keeps its running value.
        next.socketPath = current.socketPath
        next.databasePath = current.databasePath
        next.allowGroup = current.allowGroup
        next.limits.allowedGroup = current.limits.allowedGroup
        next.version = current.version
        next.redactor = current.redactor
        next.environment = current.environment
        for name in next.secretEnv where !current.secretEnv.contains(name) { current.redactor.add(variable: name) }
        engine.addSecretVariables(next.secretEnv)
        for name in current.secretEnv where !next.secretEnv.contains(name) {
            logger.warning("secret_env no longer names \(name): its value stays redacted until a restart")
        }
        engine.reconfigure(
            maxRunning: next.maxRunning, maxQueuedJobs: next.maxQueuedJobs, maxQueuedJobsPerClient: next.maxQueuedJobsPerClient,
            endpoints: next.endpoints)
        state.listener?.update(next.limits)
        state.configuration = next
        state.generation += 1
        state.loadedAt = clock.nowMillis()
        state.server?.configuration = next.json(generation: state.generation, loadedAt: state.loadedAt)
        logger.info(
            "configuration reloaded",
            metadata: [
                "config.generation": "\(state.generation)", "changed": "\(changes.isEmpty ? "nothing" : changes.joined(separator: "; "))",
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
                "signal": "\(signal)", "running": "\(engine.runningCount)", "deadline_s": "\(state.configuration.drainSeconds)",
            ])
        state.listener?.close()
        let deadline = LoopTimer(loop: loop)
        deadline.start(after: UInt64(state.configuration.drainSeconds * 1000)) { [self] in
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
    /// writer has committed nothing since its last look, so it never competes with a busy store, and
    /// not while a storage fault lasts.
    private func startSearchIndexer(path: String, writer: StoreWriter) -> SearchIndexer? {
        let lastCommits = Mutex(-1)
        do {
            let indexer = try SearchIndexer(path: path) { [writer] in
                let commits = writer.currentStats.commits
                let previous = lastCommits.withLock { last in
                    defer { last = commits }
                    return last
                }
                return commits == previous && !writer.hasInFlight && writer.storageFault == nil
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
