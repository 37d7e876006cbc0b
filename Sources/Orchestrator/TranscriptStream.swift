import Dispatch
import Store
import Transcript

/// `job.transcript`'s result, encoded in parts so that a large one is never held whole: a page of
/// events is read from the store a few events at a time (as many as make about `partBytes`, learned
/// from the events read so far), and a rendering (`format`) is cut into parts of about `partBytes`.
/// Concatenated, the parts are exactly the result object's JSON.
///
/// The server writes each part as the client takes the last (`Connection.drained(below:)`). Loop
/// thread only; the store reads go to the reader queue, rendering to a global queue.
final class TranscriptStream {
    /// The size of a part aimed at.
    static let partBytes = 1 << 20
    /// Events read from the store for the next part: doubled while parts come out small, halved when
    /// they come out large, so a history of large events is never read many at once.
    private var page = 16

    private let engine: Engine
    private let params: TranscriptParams
    private let job: WireJob
    private var afterSeq: Int
    private var sent = 0
    private var rendered: [UInt8] = []
    private var renderedOffset = 0
    private var done = false
    /// Whether every part has been returned.
    var complete: Bool { done && !failed }
    /// Whether the store failed after the first part (the reply cannot be finished).
    private(set) var failed = false

    init(engine: Engine, params: TranscriptParams, job: WireJob) {
        self.engine = engine
        self.params = params
        self.job = job
        self.afterSeq = params.afterSeq
    }

    /// The first part: the result's opening and its first events or text. Throws what the store
    /// throws, before any byte is sent.
    func first() async throws(EngineError) -> [UInt8] {
        var bytes: [UInt8] = Array(#"{"job":"#.utf8)
        job.json.write(to: &bytes)
        if let format = params.format {
            let text = try await render(format)
            bytes.append(contentsOf: #","format":"#.utf8)
            JSON.string(format.rawValue).write(to: &bytes)
            bytes.append(contentsOf: #","text":""#.utf8)
            // Escaped once, then sent in slices: the escaped text is what would be sent anyway.
            rendered = JSON.escaped(text)
            return bytes + nextSlice()
        }
        bytes.append(contentsOf: #","events":["#.utf8)
        return bytes + (try await nextEvents())
    }

    /// The next part, or nil once the result is complete (or the store failed: see `failed`).
    func next() async -> [UInt8]? {
        guard !done else { return nil }
        if params.format != nil { return nextSlice() }
        do {
            return try await nextEvents()
        } catch {
            failed = true
            done = true
            return nil
        }
    }

    private func nextSlice() -> [UInt8] {
        var end = min(rendered.count, renderedOffset + Self.partBytes)
        // Never between a backslash escape's bytes or inside a UTF-8 sequence: a part may be redacted
        // on its own, and each part should be text.
        while end < rendered.count, rendered[end] & 0xC0 == 0x80 || rendered[end - 1] == UInt8(ascii: "\\") { end += 1 }
        var part = Array(rendered[renderedOffset..<end])
        renderedOffset = end
        if renderedOffset == rendered.count {
            part.append(contentsOf: #""}"#.utf8)
            rendered = []
            done = true
        }
        return part
    }

    private func nextEvents() async throws(EngineError) -> [UInt8] {
        let count = min(page, params.limit - sent)
        let events = count > 0 ? try await engine.events(params.id, afterSeq: afterSeq, limit: count) : []
        var bytes: [UInt8] = []
        for event in events {
            if sent > 0 { bytes.append(UInt8(ascii: ",")) }
            event.json.write(to: &bytes)
            sent += 1
            afterSeq = event.seq
        }
        if events.count < count || sent == params.limit {
            bytes.append(UInt8(ascii: "]"))
            // Present only when the page is full: the next page starts after its last event.
            if sent == params.limit {
                bytes.append(contentsOf: #","next_after_seq":"#.utf8)
                JSON.int(afterSeq).write(to: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
            done = true
        }
        if bytes.count < Self.partBytes / 4 {
            page = min(page * 2, 4096)
        } else if bytes.count > Self.partBytes * 2 {
            page = max(page / 2, 1)
        }
        return bytes
    }

    /// The whole job rendered in `format`, as `agentd transcript` renders it.
    private func render(_ format: TranscriptFormat) async throws(EngineError) -> String {
        var events: [JSON] = []
        var after = 0
        while true {
            let page = try await engine.events(params.id, afterSeq: after, limit: 4096)
            events += page.map(\.json)
            guard page.count == 4096, let last = page.last else { break }
            after = last.seq
        }
        let job = job.json
        return await Self.offLoop { [events] in TranscriptModel.render(job: job, events: events, format: format) }
    }

    /// Runs `work` on a global queue: rendering a large job is CPU work the loop must not do.
    static func offLoop<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withUnsafeContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }
}
