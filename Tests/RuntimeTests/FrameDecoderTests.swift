import TestSupport
import XCTest

@testable import Runtime

final class FrameDecoderTests: XCTestCase {
    private func frame(_ text: String) -> FrameDecoder.Frame { .frame(Array(text.utf8)) }

    private func feed(_ decoder: inout FrameDecoder, _ text: String) -> [FrameDecoder.Frame] {
        decoder.feed(Array(text.utf8))
    }

    func testOneFrame() {
        var decoder = FrameDecoder(limit: 100)
        XCTAssertEqual(feed(&decoder, "{\"a\":1}\n"), [frame("{\"a\":1}")])
        XCTAssertEqual(decoder.pending, 0)
    }

    func testFrameSplitAcrossFeeds() {
        var decoder = FrameDecoder(limit: 100)
        XCTAssertEqual(feed(&decoder, "{\"meth"), [])
        XCTAssertEqual(decoder.pending, 6)
        XCTAssertEqual(feed(&decoder, "od\":"), [])
        XCTAssertEqual(feed(&decoder, "1}"), [])
        XCTAssertEqual(feed(&decoder, "\n{\"next\""), [frame("{\"method\":1}")])
        XCTAssertEqual(decoder.pending, 7)
        XCTAssertEqual(feed(&decoder, ":2}\n"), [frame("{\"next\":2}")])
        XCTAssertEqual(decoder.pending, 0)
    }

    func testByteAtATime() {
        var decoder = FrameDecoder(limit: 100)
        var frames: [FrameDecoder.Frame] = []
        for byte in "one\ntwo\r\nthree\n".utf8 {
            frames += decoder.feed([byte])
        }
        XCTAssertEqual(frames, [frame("one"), frame("two"), frame("three")])
    }

    func testManyFramesInOneFeed() {
        var decoder = FrameDecoder(limit: 100)
        let text = (0..<50).map { "{\"id\":\($0)}\n" }.joined() + "{\"id\":"
        XCTAssertEqual(feed(&decoder, text), (0..<50).map { frame("{\"id\":\($0)}") })
        XCTAssertEqual(decoder.pending, 6)
    }

    func testCRLFAndEmptyLinesAreIgnored() {
        var decoder = FrameDecoder(limit: 100)
        XCTAssertEqual(feed(&decoder, "\n\r\n\na\r\n\r\nb\n\n"), [frame("a"), frame("b")])
        // A CR split from its LF by a feed boundary is still dropped.
        XCTAssertEqual(feed(&decoder, "c\r"), [])
        XCTAssertEqual(feed(&decoder, "\n"), [frame("c")])
        // A CR that is not right before the newline stays.
        XCTAssertEqual(feed(&decoder, "d\re\n"), [frame("d\re")])
    }

    func testFrameOfExactlyTheLimitIsAccepted() {
        let limit = 64
        let body = String(repeating: "x", count: limit)
        var decoder = FrameDecoder(limit: limit)
        XCTAssertEqual(feed(&decoder, body + "\n"), [frame(body)])
        // The same, arriving in pieces.
        XCTAssertEqual(feed(&decoder, String(body.prefix(10))), [])
        XCTAssertEqual(feed(&decoder, String(body.dropFirst(10))), [])
        XCTAssertEqual(decoder.pending, limit)
        XCTAssertEqual(feed(&decoder, "\n"), [frame(body)])
    }

    func testCRLFFrameOfExactlyTheLimitIsAccepted() {
        // The CR is not part of the frame, so it does not count towards the limit.
        let limit = 64
        let body = String(repeating: "x", count: limit)
        var decoder = FrameDecoder(limit: limit)
        XCTAssertEqual(feed(&decoder, body + "\r\n"), [frame(body)])
        XCTAssertEqual(feed(&decoder, body), [])
        XCTAssertEqual(feed(&decoder, "\r\n"), [frame(body)])
    }

    func testOversizedFrameIsReportedOnceAndTheStreamResynchronises() {
        let limit = 64
        var decoder = FrameDecoder(limit: limit)
        let tooLong = String(repeating: "y", count: limit + 1)
        XCTAssertEqual(feed(&decoder, tooLong + "\n{\"ok\":1}\n"), [.oversized, frame("{\"ok\":1}")])
        XCTAssertEqual(decoder.pending, 0)

        // Split so the limit is crossed while buffering, with the next frame in the same feed as the newline.
        XCTAssertEqual(feed(&decoder, "before\n" + String(tooLong.prefix(30))), [frame("before")])
        XCTAssertEqual(feed(&decoder, String(tooLong.dropFirst(30))), [])
        XCTAssertEqual(decoder.pending, 0, "an oversized frame is not buffered")
        XCTAssertEqual(feed(&decoder, "\nafter\n"), [.oversized, frame("after")])

        // Limit crossed by the chunk that holds the newline.
        XCTAssertEqual(feed(&decoder, String(tooLong.prefix(limit))), [])
        XCTAssertEqual(feed(&decoder, "z\nnext\n"), [.oversized, frame("next")])
    }

    func testOversizedDataInSmallChunksNeverBuffersMoreThanTheLimit() {
        let limit = 1000
        var decoder = FrameDecoder(limit: limit)
        var frames: [FrameDecoder.Frame] = []
        var maxPending = 0
        let chunk = Array(repeating: UInt8(ascii: "z"), count: 37)
        for _ in 0..<10_000 {
            frames += decoder.feed(chunk)
            maxPending = max(maxPending, decoder.pending)
        }
        XCTAssertEqual(frames, [], "nothing is reported before the line ends")
        XCTAssertLessThanOrEqual(maxPending, limit)
        XCTAssertEqual(decoder.pending, 0)
        frames += feed(&decoder, "zzz\n{\"id\":1}\n")
        XCTAssertEqual(frames, [.oversized, frame("{\"id\":1}")])
    }

    func testOneHugeFeedIsNotBuffered() {
        let limit = 100
        var decoder = FrameDecoder(limit: limit)
        XCTAssertEqual(decoder.feed([UInt8](repeating: 0x41, count: 1 << 20)), [])
        XCTAssertEqual(decoder.pending, 0)
        XCTAssertEqual(feed(&decoder, "\nok\n"), [.oversized, frame("ok")])
    }

    func testEveryFrameIsDecodedRegardlessOfHowTheStreamIsSplit() {
        let lines = ["{\"a\":1}", String(repeating: "q", count: 40), "x", String(repeating: "w", count: 41), "{}"]
        let stream = Array(lines.map { $0 + "\n" }.joined().utf8)
        let expected: [FrameDecoder.Frame] = [frame(lines[0]), frame(lines[1]), frame("x"), .oversized, frame("{}")]
        for size in 1...stream.count {
            var decoder = FrameDecoder(limit: 40)
            var frames: [FrameDecoder.Frame] = []
            var start = 0
            while start < stream.count {
                let end = min(start + size, stream.count)
                frames += decoder.feed(Array(stream[start..<end]))
                XCTAssertLessThanOrEqual(decoder.pending, 40)
                start = end
            }
            XCTAssertEqual(frames, expected, "chunks of \(size)")
            XCTAssertEqual(decoder.pending, 0)
        }
    }
}
