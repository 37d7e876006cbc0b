import Foundation
import TestSupport
import XCTest

@testable import Runtime

/// An actor that lives on the loop, as the engine's agents do.
private actor LoopBound {
    nonisolated let loop: EventLoop
    var calls = 0

    init(loop: EventLoop) {
        self.loop = loop
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    func work() -> Bool {
        calls += 1
        return loop.inLoop
    }

    func workAfterSuspending() async -> Bool {
        await Task.yield()
        await loop.sleep(milliseconds: 1)
        return loop.inLoop
    }
}

final class EventLoopTests: XCTestCase {
    func testActorWhoseExecutorIsTheLoopRunsOnTheLoopThread() async throws {
        let loop = startedLoop()
        let bound = LoopBound(loop: loop)
        XCTAssertFalse(loop.inLoop, "the test itself is not on the loop")
        let first = await bound.work()
        XCTAssertTrue(first)
        let resumed = await bound.workAfterSuspending()
        XCTAssertTrue(resumed)
        let calls = await bound.calls
        XCTAssertEqual(calls, 1)
        loop.finish()
    }

    func testCheckIsolatedAcceptsPlainClosuresOnTheLoop() async throws {
        let loop = startedLoop()
        let bound = LoopBound(loop: loop)
        let done = expectation(description: "ran")
        loop.execute {
            // Only passes because the loop reports that this thread is its own.
            loop.preconditionIsolated()
            bound.assumeIsolated { $0.calls += 1 }
            done.fulfill()
        }
        await fulfillment(of: [done], timeout: 30)
        let calls = await bound.calls
        XCTAssertEqual(calls, 1)
        loop.finish()
    }

    func testTaskWithTheLoopAsExecutorPreferenceRunsThere() async throws {
        let loop = startedLoop()
        let placement = try await loop.run { () async -> [Bool] in
            var seen = [loop.inLoop]
            await Task.yield()
            seen.append(loop.inLoop)
            await loop.sleep(milliseconds: 1)
            seen.append(loop.inLoop)
            // Child tasks inherit the preference.
            async let child = { loop.inLoop }()
            seen.append(await child)
            return seen
        }
        XCTAssertEqual(placement, [true, true, true, true])
        loop.finish()
    }

    func testWorkFromManyThreadsAllRunsInOrderPerProducer() throws {
        let loop = startedLoop()
        let producers = 8
        let perProducer = 5000
        let seen = LoopBox<[[Int]]>(Array(repeating: [], count: producers))
        let offLoop = Locked(0)
        let allDone = expectation(description: "every producer's last closure ran")
        allDone.expectedFulfillmentCount = producers
        allDone.assertForOverFulfill = true
        let result = Locked<[[Int]]>([])
        let threads = (0..<producers).map { p in
            Thread {
                for i in 0..<perProducer {
                    loop.execute {
                        if !loop.inLoop { offLoop.withLock { $0 += 1 } }
                        seen.value[p].append(i)
                    }
                }
                // Runs after everything this producer enqueued: the queue is FIFO per producer.
                loop.execute {
                    result.withLock { $0 = seen.value }
                    allDone.fulfill()
                }
            }
        }
        threads.forEach { $0.start() }
        wait(for: [allDone], timeout: 60)
        // The last producer's final closure copied the lists after every item had run.
        for (p, list) in result.value.enumerated() {
            XCTAssertEqual(list, Array(0..<perProducer), "producer \(p)")
        }
        XCTAssertEqual(offLoop.value, 0)
        loop.finish()
    }

    func testTimerFiresOnTheLoop() {
        let loop = startedLoop()
        let fired = expectation(description: "fired")
        let onLoop = Locked(false)
        loop.execute {
            let timer = LoopTimer(loop: loop)
            timer.start(after: 5) {
                onLoop.withLock { $0 = loop.inLoop }
                timer.close()
                fired.fulfill()
            }
        }
        wait(for: [fired], timeout: 30)
        XCTAssertTrue(onLoop.value)
        loop.finish()
    }

    func testRepeatingTimerStopsFiringOnceClosed() {
        let loop = startedLoop()
        let count = LoopBox(0)
        let fired = expectation(description: "fired three times")
        fired.expectedFulfillmentCount = 3
        fired.assertForOverFulfill = true
        loop.execute {
            let timer = LoopTimer(loop: loop)
            timer.start(after: 1, repeat: 1) {
                count.value += 1
                fired.fulfill()
                if count.value == 3 { timer.close() }
            }
        }
        wait(for: [fired], timeout: 30)
        // A timer due after the repeating one's next tick would have been: it fires after any tick
        // still scheduled, so the count it reads is final.
        let final = Locked(-1)
        let checked = expectation(description: "checked")
        loop.execute {
            let later = LoopTimer(loop: loop)
            later.start(after: 20) {
                final.withLock { $0 = count.value }
                later.close()
                checked.fulfill()
            }
        }
        wait(for: [checked], timeout: 30)
        XCTAssertEqual(final.value, 3)
        loop.finish()
    }

    func testStoppedTimerDoesNotFire() {
        let loop = startedLoop()
        let firedEarly = LoopBox(false)
        let checked = expectation(description: "checked")
        let result = Locked(true)
        loop.execute {
            let stopped = LoopTimer(loop: loop)
            stopped.start(after: 1) { firedEarly.value = true }
            stopped.stop()
            // libuv runs due timers in order of their due time: by the time this one fires, the
            // stopped one would have.
            let later = LoopTimer(loop: loop)
            later.start(after: 10) {
                result.withLock { $0 = firedEarly.value }
                stopped.close()
                later.close()
                checked.fulfill()
            }
        }
        wait(for: [checked], timeout: 30)
        XCTAssertFalse(result.value)
        loop.finish()
    }

    func testSleepResumesOnTheLoop() async throws {
        let loop = startedLoop()
        let order = try await loop.run { () async -> [String] in
            let log = LoopBox<[String]>([])
            async let slow: Void = {
                await loop.sleep(milliseconds: 50)
                log.value.append("slow")
            }()
            async let fast: Void = {
                await loop.sleep(milliseconds: 0)
                log.value.append("fast")
            }()
            _ = await (slow, fast)
            log.value.append(loop.inLoop ? "on loop" : "off loop")
            return log.value
        }
        XCTAssertEqual(order.last, "on loop")
        XCTAssertEqual(Set(order.dropLast()), ["slow", "fast"])
        loop.finish()
    }

    func testShutdownClosesTheLoopAndLaterWorkIsDropped() {
        let loop = startedLoop()
        let ran = expectation(description: "ran before shutdown")
        loop.execute { ran.fulfill() }
        wait(for: [ran], timeout: 30)
        loop.finish()
        // The thread is gone and the wake-up handle closed: this must neither crash nor run.
        let late = Locked(false)
        loop.execute { late.withLock { $0 = true } }
        XCTAssertFalse(late.value)
        XCTAssertFalse(loop.inLoop)
    }

    func testLoopRunsOnTheCallingThreadUntilShutdown() {
        let loop = EventLoop()
        let sawLoop = Locked(false)
        loop.execute {
            sawLoop.withLock { $0 = loop.inLoop }
            loop.shutdown()
        }
        // Returns only once shutdown closed every handle and uv_loop_close succeeded.
        loop.runOnThisThread()
        XCTAssertTrue(sawLoop.value)
    }
}
