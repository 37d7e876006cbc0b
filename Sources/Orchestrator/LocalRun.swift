import Logging
import Runtime
import Store

/// `agentd run`: one job in this process, with the same engine, store and loop as the daemon but no
/// socket. The job is recorded in the database like any other.
public enum LocalRun {
    /// Runs the plan to the end, passing each committed event (as the protocol shows it) to `onEvent`
    /// on the loop thread; returns the finished job.
    public static func run(
        submission: Engine.Submission, databasePath: String, logger: Logger, onEvent: @escaping @Sendable (JSON) -> Void
    ) throws(DaemonError) -> JobRecord {
        try Paths.ensureDirectory(Paths.directory(of: databasePath), private: false)
        let lock = try DatabaseLock(databasePath: databasePath)
        defer { lock.release() }
        let clock = SystemClock()
        let loop = EventLoop()
        let writer: StoreWriter
        let reader: StoreReader
        do {
            writer = try StoreWriter(path: databasePath, clock: clock, deliver: loop.deliverer)
            reader = try StoreReader(path: databasePath)
        } catch {
            throw DaemonError("cannot open the database \(databasePath): \(error)")
        }
        writer.start()
        loop.spinHint = { [writer] in writer.hasInFlight }
        let outcome = Outcome()
        loop.execute {
            var configuration = Engine.Configuration()
            configuration.protectedPaths = Bubblewrap.protectedPaths(database: databasePath, socket: nil)
            // As in the daemon: the writer's redactor has read the secrets; wipe them from the process.
            configuration.scrubsSecrets = true
            let engine = Engine(loop: loop, writer: writer, reader: reader, clock: clock, logger: logger, configuration: configuration)
            Task(executorPreference: loop) {
                do throws(EngineError) {
                    let (job, _) = try await engine.submit(submission)
                    outcome.job = try await engine.watch(job.id, since: 0, deliver: { onEvent($0.json) })
                } catch {
                    outcome.error = error
                }
                engine.close()
                loop.shutdown()
            }
        }
        loop.start()
        loop.join()
        writer.close()
        if let error = outcome.error { throw DaemonError(error.description) }
        guard let job = outcome.job else { throw DaemonError("the job did not finish") }
        return job
    }

    private final class Outcome: @unchecked Sendable {
        var job: JobRecord?
        var error: EngineError?
    }
}
