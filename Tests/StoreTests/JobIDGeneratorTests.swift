import Foundation
import XCTest

@testable import Store

final class JobIDGeneratorTests: XCTestCase {
    private static let crockford = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    /// The milliseconds encoded in an id's first ten characters.
    private func millis(of id: String) -> Int64 {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        return id.prefix(10).reduce(Int64(0)) { $0 * 32 + Int64(alphabet.firstIndex(of: $1)!) }
    }

    func testIDsAreEighteenCharactersOfCrockfordBase32() {
        let generator = JobIDGenerator(clock: SystemClock())
        for _ in 0..<1000 {
            let id = generator.next()
            XCTAssertEqual(id.count, 18, id)
            XCTAssertTrue(id.allSatisfy(Self.crockford.contains), id)
            XCTAssertTrue(JobIDGenerator.isValid(id), id)
        }
    }

    func testPrefixEncodesTheClock() {
        let clock = ManualClock(1_733_000_000_123)
        let generator = JobIDGenerator(clock: clock)
        XCTAssertEqual(millis(of: generator.next()), 1_733_000_000_123)
        clock.advance(by: 5)
        XCTAssertEqual(millis(of: generator.next()), 1_733_000_000_128)
    }

    func testStrictlyIncreasingWithinOneMillisecond() {
        let generator = JobIDGenerator(clock: ManualClock())
        var previous = generator.next()
        for _ in 0..<50_000 {
            let id = generator.next()
            XCTAssertLessThan(previous, id)
            if previous >= id { return }
            previous = id
        }
    }

    func testStrictlyIncreasingWhenTheClockGoesBackwards() {
        let clock = ManualClock(1_733_000_000_000)
        let generator = JobIDGenerator(clock: clock)
        var ids = [generator.next()]
        clock.set(1_733_000_000_500)
        ids.append(generator.next())
        // An NTP step back by a minute, then slowly forward again, still below the high mark.
        clock.set(1_732_999_940_000)
        for _ in 0..<1000 {
            ids.append(generator.next())
            clock.advance(by: 1)
        }
        clock.set(1_733_000_000_501)
        ids.append(generator.next())
        for (a, b) in zip(ids, ids.dropFirst()) {
            XCTAssertLessThan(a, b)
        }
        // The time part never went back.
        XCTAssertEqual(ids.map { millis(of: $0) }.max(), 1_733_000_000_501)
        XCTAssertEqual(millis(of: ids[2]), 1_733_000_000_500)
    }

    func testUniqueAndIncreasingPerThreadAcrossThreads() {
        let generator = JobIDGenerator(clock: ManualClock())
        let perThread = 2000
        let all = Locked<[[String]]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            var mine: [String] = []
            for _ in 0..<perThread { mine.append(generator.next()) }
            all.withLock { $0.append(mine) }
        }
        let lists = all.value
        XCTAssertEqual(Set(lists.joined()).count, 8 * perThread)
        for list in lists {
            XCTAssertEqual(list, list.sorted())
        }
    }

    func testGeneratorsDoNotShareCounters() {
        // Two generators in one millisecond (two daemons, say) still make different ids almost surely:
        // each counter is seeded at random.
        let clock = ManualClock()
        let a = JobIDGenerator(clock: clock).next()
        let b = JobIDGenerator(clock: clock).next()
        XCTAssertEqual(a.prefix(10), b.prefix(10))
        XCTAssertNotEqual(a, b)
    }

    func testIsValid() {
        XCTAssertTrue(JobIDGenerator.isValid("01JDQ3M8ZK7F3XW2QA"))
        XCTAssertTrue(JobIDGenerator.isValid("000000000000000000"))
        XCTAssertTrue(JobIDGenerator.isValid("ZZZZZZZZZZZZZZZZZZ"))
        XCTAssertFalse(JobIDGenerator.isValid(""))
        XCTAssertFalse(JobIDGenerator.isValid("01JDQ3M8ZK7F3XW2Q"), "17 characters")
        XCTAssertFalse(JobIDGenerator.isValid("01JDQ3M8ZK7F3XW2QAB"), "19 characters")
        XCTAssertFalse(JobIDGenerator.isValid("01jdq3m8zk7f3xw2qa"), "lower case")
        for letter in ["I", "L", "O", "U"] {
            XCTAssertFalse(JobIDGenerator.isValid("01JDQ3M8ZK7F3XW2Q" + letter), "Crockford has no \(letter)")
        }
        XCTAssertFalse(JobIDGenerator.isValid("01JDQ3M8ZK7F3XW2Q-"))
        XCTAssertFalse(JobIDGenerator.isValid("01JDQ3M8ZK7F3XW2Qé"))
        XCTAssertFalse(JobIDGenerator.isValid("../../etc/passwd00"))
    }
}
