import Agents
import Foundation
import Logging
import Runtime
import Store

/// The agent of every role during `agentd replay`: reached only when the runner makes a call the
/// recording does not have, which it fails with that reason (nothing real is ever called).
struct RecordingEnds: ModelBackend {
    func complete(_ request: ModelRequest) async throws(ModelCallError) -> ModelReply {
        throw ModelCallError(.configuration, "the recording ends here: the recorded job made no such call")
    }
}

/// `agentd replay JOB`: runs a recorded job again, answering every agent call and tool call from its
/// recorded replies and results, and checks that the runner makes the same calls, in the same order,
/// with the same requests — a deterministic reproduction for debugging.
///
/// The recorded job is copied into a scratch database (the original is only read), recovered there by
/// an engine in replay mode (`Engine.Configuration.replay`), and run to its end. The first event where
/// the replay departs from the recording is reported.
public enum Replay {
    public struct Report: Sendable {
        public var jobID: String
        public var recordedCalls: Int
        public var replayedCalls: Int
        public var recordedStatus: JobStatus
        public var replayedStatus: JobStatus
        /// Why the replay departed from the recording, naming the first differing event; nil if it did not.
        public var divergence: String?

        public var matches: Bool { divergence == nil }

        public var json: JSON {
            .object([
                ("job", .string(jobID)), ("matches", .bool(matches)), ("recorded_calls", .int(recordedCalls)),
                ("replayed_calls", .int(replayedCalls)), ("recorded_status", .string(recordedStatus.rawValue)),
                ("replayed_status", .string(replayedStatus.rawValue)), ("divergence", divergence.map(JSON.string) ?? .null),
            ])
        }
    }

    public static func run(jobID: String, databasePath: String, logger: Logger) throws(DaemonError) -> Report {
        let source: (JobRecord?, Engine.Unfinished?)
        do {
            let reader = try StoreReader(path: databasePath)
            source = try reader.readNow { db in
                guard let job = try db.job(jobID) else { return (nil, nil) }
                return (job, try Engine.Unfinished.read(job, from: db))
            }
        } catch {
            throw DaemonError("cannot read \(databasePath): \(error)")
        }
        guard let recorded = source.0, let read = source.1 else { throw DaemonError("no job \(jobID) in \(databasePath)") }
        let events = read.events
        let scratch = NSTemporaryDirectory() + "agentd-replay-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Paths.ensureDirectory(scratch, private: true)

        let clock = SystemClock()
        let loop = EventLoop()
        let writer: StoreWriter
        let reader: StoreReader
        do {
            writer = try StoreWriter(path: scratch + "/replay.db", clock: clock, deliver: loop.deliverer)
            reader = try StoreReader(path: scratch + "/replay.db")
        } catch {
            throw DaemonError("cannot create the replay's scratch database: \(error)")
        }
        writer.start()
        defer { writer.close() }
        let job: JobRecord = {
            var running = recorded
            running.status = .running
            return running
        }()
        loop.spinHint = { [writer] in writer.hasInFlight }
        let outcome = Outcome()
        loop.execute {
            var configuration = Engine.Configuration()
            configuration.replay = true
            let engine = Engine(loop: loop, writer: writer, reader: reader, clock: clock, logger: logger, configuration: configuration)
            Task(executorPreference: loop) {
                do throws(EngineError) {
                    // The job row the replayed events belong to (the events themselves are matched, not copied).
                    do {
                        try await writer.write([.insertJob(job)])
                    } catch {
                        throw EngineError.storage("cannot prepare the replay: \(error)")
                    }
                    engine.recover([Engine.Unfinished(record: job, events: events, retry: read.retry)])
                    outcome.final = try await engine.wait(jobID)
                    outcome.events = try await engine.events(jobID, afterSeq: 0, limit: Int(Int32.max))
                } catch {
                    outcome.error = error
                }
                engine.close()
                loop.shutdown()
            }
        }
        loop.start()
        loop.join()
        if let error = outcome.error { throw DaemonError("the replay failed: \(error.description)") }
        guard let final = outcome.final else { throw DaemonError("the replay did not finish") }

        let isCall = { (e: EventRecord) in e.eventKind == .callCompleted || e.eventKind == .callFailed }
        let recordedCalls = events.filter(isCall).count
        let lastRecordedSeq = events.last?.seq ?? 0
        // Events past the recording are what the replay did differently (or beyond the recording's end).
        let extra = outcome.events.filter { $0.seq > lastRecordedSeq && !JobLog.notFromRunner.contains($0.kind) }
        var divergence: String?
        if final.status == .failed, let reason = final.reason, reason.hasPrefix("recovery diverged") {
            divergence = String(reason.dropFirst("recovery ".count))
        } else if let first = extra.first(where: isCall) {
            divergence =
                "the replay made a call the recording does not have: \(first.callID ?? "?") (\(first.role ?? "?"), step \(first.step.map { String($0 + 1) } ?? "-"), attempt \(first.attempt.map { String($0 + 1) } ?? "-"))"
        } else if final.status != recorded.status && recorded.status.isTerminal {
            divergence = "the replay ended \(final.status.rawValue), the recording \(recorded.status.rawValue)"
        }
        return Report(
            jobID: jobID, recordedCalls: recordedCalls, replayedCalls: recordedCalls + extra.filter(isCall).count,
            recordedStatus: recorded.status, replayedStatus: final.status, divergence: divergence)
    }

    private final class Outcome: @unchecked Sendable {
        var final: JobRecord?
        var events: [EventRecord] = []
        var error: EngineError?
    }
}
