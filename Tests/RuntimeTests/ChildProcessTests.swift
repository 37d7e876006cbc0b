import Foundation
import TestSupport
import XCTest

@testable import Runtime

final class ChildProcessTests: XCTestCase {
    private var loop: EventLoop!
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        loop = startedLoop()
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        // Every child's handles are closed by now, or the loop cannot close and this traps.
        loop.finish()
        directory.remove()
    }

    private func run(_ argv: [String], stdin: String = "", timeout: UInt64 = 30_000, cap: Int = 1 << 20) async throws(LoopError)
        -> ProcessResult
    {
        try await ChildProcess.run(
            loop: loop, .init(argv: argv, stdin: Array(stdin.utf8), timeoutMilliseconds: timeout, outputCap: cap))
    }

    func testCapturesStdoutStderrAndExitStatus() async throws {
        let result = try await run(["/bin/sh", "-c", "printf 'to out\\n'; printf 'to err' >&2"])
        XCTAssertEqual(result.stdoutText, "to out\n")
        XCTAssertEqual(result.stderrText, "to err")
        XCTAssertEqual(result.exitStatus, 0)
        XCTAssertEqual(result.termSignal, 0)
        XCTAssertTrue(result.succeeded)
        XCTAssertFalse(result.timedOut)
        XCTAssertFalse(result.cancelled)
        XCTAssertFalse(result.stdoutTruncated)
        XCTAssertEqual(result.summary(timeoutSeconds: 1), "exit status 0")
    }

    func testNonZeroExit() async throws {
        let result = try await run(["sh", "-c", "echo failing >&2; exit 3"])
        XCTAssertEqual(result.exitStatus, 3)
        XCTAssertFalse(result.succeeded)
        XCTAssertEqual(result.stderrText, "failing\n")
        XCTAssertEqual(result.summary(timeoutSeconds: 1), "exit status 3")
    }

    func testKilledBySignal() async throws {
        let result = try await run(["sh", "-c", "kill -TERM $$"])
        XCTAssertEqual(result.termSignal, SIGTERM)
        XCTAssertFalse(result.succeeded)
        XCTAssertEqual(result.summary(timeoutSeconds: 1), "killed by signal \(SIGTERM)")
    }

    func testStdinIsDelivered() async throws {
        let result = try await run(["cat"], stdin: "line one\nline two ✓\n")
        XCTAssertEqual(result.stdoutText, "line one\nline two ✓\n")
        XCTAssertTrue(result.succeeded)
    }

    func testLargeStdinAndStdoutAreDeliveredWhole() async throws {
        let text = String(repeating: "0123456789abcdef", count: 64 * 1024)  // 1 MiB, more than a pipe holds
        let result = try await run(["cat"], stdin: text, cap: 2 << 20)
        XCTAssertEqual(result.stdout.count, text.utf8.count)
        XCTAssertEqual(result.stdoutText, text)
        XCTAssertFalse(result.stdoutTruncated)
    }

    func testEmptyStdinIsClosedAtOnce() async throws {
        // `cat` would wait forever if stdin stayed open.
        let result = try await run(["cat"], timeout: 20_000)
        XCTAssertFalse(result.timedOut)
        XCTAssertEqual(result.stdout, [])
        XCTAssertTrue(result.succeeded)
    }

    func testEnvironmentAndWorkingDirectory() async throws {
        let result = try await ChildProcess.run(
            loop: loop,
            .init(
                argv: ["/bin/sh", "-c", "printf '%s|%s' \"$GREETING\" \"$(pwd)\""], cwd: directory.path,
                environment: ["GREETING=hello there"], timeoutMilliseconds: 30_000))
        let cwd = (directory.path as NSString).resolvingSymlinksInPath
        XCTAssertEqual(result.stdoutText, "hello there|\(cwd)")
    }

    func testMissingProgramThrows() async throws {
        do {
            let result = try await run(["/nonexistent/agentd-no-such-program", "arg"])
            XCTFail("started a missing program: \(result)")
        } catch {
            XCTAssertEqual(error.code, -ENOENT)
            XCTAssertTrue(error.description.contains("/nonexistent/agentd-no-such-program"), error.description)
        }
        // The loop is still usable.
        let result = try await run(["true"])
        XCTAssertTrue(result.succeeded)
    }

    func testMissingWorkingDirectoryThrows() async throws {
        do {
            _ = try await ChildProcess.run(loop: loop, .init(argv: ["true"], cwd: directory.path + "/missing", timeoutMilliseconds: 30_000))
            XCTFail("started in a missing directory")
        } catch {
            XCTAssertEqual(error.code, -ENOENT)
        }
    }

    func testTimeoutKillsTheChildAndItsGrandchildren() async throws {
        let marker = uniqueSleepMarker(seconds: 60)
        let result = try await run(["sh", "-c", "sleep \(marker) & sleep \(marker); echo never", "sh-\(marker)"], timeout: 200)
        XCTAssertTrue(result.timedOut)
        XCTAssertFalse(result.succeeded)
        XCTAssertEqual(result.termSignal, SIGKILL)
        XCTAssertEqual(result.stdoutText, "")
        XCTAssertEqual(result.summary(timeoutSeconds: 0.2), "timed out after 0.2s")
        XCTAssertEqual(liveProcesses(withMarker: marker), [], "the shell and both sleeps are gone")
    }

    func testGrandchildrenAreKilledWhenTheChildExits() async throws {
        // The background sleep holds stdout open; the run still ends when its parent exits.
        let marker = uniqueSleepMarker(seconds: 60)
        let result = try await run(["sh", "-c", "sleep \(marker) & echo started"])
        XCTAssertEqual(result.stdoutText, "started\n")
        XCTAssertEqual(result.exitStatus, 0)
        XCTAssertFalse(result.timedOut)
        XCTAssertEqual(liveProcesses(withMarker: marker), [])
    }

    func testOutputCapTruncates() async throws {
        let result = try await run(["sh", "-c", "head -c 100000 /dev/zero; head -c 10 /dev/zero >&2"], cap: 1000)
        XCTAssertEqual(result.stdout.count, 1000)
        XCTAssertTrue(result.stdoutTruncated)
        XCTAssertEqual(result.stderr.count, 10)
        XCTAssertFalse(result.stderrTruncated)
        XCTAssertTrue(result.succeeded, "the child still ran to the end")
    }

    func testOutputOfExactlyTheCapIsNotTruncated() async throws {
        let result = try await run(["head", "-c", "1000", "/dev/zero"], cap: 1000)
        XCTAssertEqual(result.stdout.count, 1000)
        XCTAssertFalse(result.stdoutTruncated)
    }

    func testCancellationKillsTheChildAndItsGrandchildren() async throws {
        let marker = uniqueSleepMarker(seconds: 60)
        let ready = try ReadyPipe(in: directory.path)
        defer { ready.close() }
        let loop = self.loop!
        let task = Task {
            try await ChildProcess.run(
                loop: loop,
                .init(
                    argv: ["sh", "-c", "sleep \(marker) & echo up > '\(ready.path)'; sleep \(marker)", "sh-\(marker)"],
                    timeoutMilliseconds: 60_000))
        }
        XCTAssertTrue(ready.waitForWriter(), "the child started")
        XCTAssertFalse(liveProcesses(withMarker: marker).isEmpty)
        task.cancel()
        let result = try await task.value
        XCTAssertTrue(result.cancelled)
        XCTAssertFalse(result.timedOut)
        XCTAssertEqual(result.termSignal, SIGKILL)
        XCTAssertFalse(result.succeeded)
        XCTAssertEqual(result.summary(timeoutSeconds: 60), "cancelled")
        XCTAssertEqual(liveProcesses(withMarker: marker), [])
    }

    func testATaskCancelledBeforeTheChildStartsDoesNotLeaveItRunning() async throws {
        // The cancellation handler runs at once for an already-cancelled task, before the child is
        // spawned; the child must still not run to the end of its work.
        let marker = uniqueSleepMarker(seconds: 5)
        let loop = self.loop!
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await ChildProcess.run(
                loop: loop,
                .init(
                    argv: ["sh", "-c", "sleep \(marker); echo finished"], timeoutMilliseconds: 60_000))
        }
        let result = try await task.value
        XCTAssertTrue(result.cancelled)
        XCTAssertNotEqual(result.stdoutText, "finished\n", "the child ran its whole course after the task was cancelled")
        XCTAssertFalse(result.succeeded)
    }

    func testManyChildrenAtOnce() async throws {
        let loop = self.loop!
        let outputs = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for i in 0..<32 {
                group.addTask {
                    let result = try await ChildProcess.run(
                        loop: loop,
                        .init(
                            argv: ["sh", "-c", "cat; echo \(i) >&2"], stdin: Array("in \(i)".utf8), timeoutMilliseconds: 30_000))
                    return (i, result.stdoutText + "|" + result.stderrText)
                }
            }
            var all: [Int: String] = [:]
            for try await (i, text) in group { all[i] = text }
            return all
        }
        XCTAssertEqual(outputs.count, 32)
        for (i, text) in outputs {
            XCTAssertEqual(text, "in \(i)|\(i)\n")
        }
    }
}
