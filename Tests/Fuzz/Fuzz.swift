// agentd-fuzz: every parser that takes bytes from outside — socket frames, JSON-RPC requests, plan
// files, model replies, JSON, eval suites and eval state lines — fed one input at a time. The first byte of an input picks the parser;
// the rest is its input.
//
// One target, two builds:
//
//   scripts/fuzz.sh [SECONDS]   builds it with `-sanitize=fuzzer,address -D LIBFUZZER`: libFuzzer's
//                               coverage-guided engine calls `LLVMFuzzerTestOneInput`, starting from
//                               the seed corpus Tests/Fuzz/corpus (which it only reads)
//   agentd-fuzz FILE|DIR…       the normal build: replays each input once (the seed corpus, which keeps
//                               every crash found as a regression; the test suite's FuzzTests runs it)
import Agents
import CLibFuzzer
import Evaluation
import Foundation
import Orchestrator
import Runtime
import Store

/// One input, as libFuzzer calls it (and as the replay below does): must return 0 and never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    fuzzOne(UnsafeBufferPointer(start: data, count: size))
    return 0
}

func fuzzOne(_ data: UnsafeBufferPointer<UInt8>) {
    guard let selector = data.first else { return }
    let bytes = Array(data.dropFirst())
    switch selector % 4 {
    case 0: fuzzFrames(bytes)
    case 1: fuzzRequest(bytes)
    case 2: fuzzPlan(bytes)
    default: fuzzRepliesAndJSON(bytes)
    }
}

/// Frames, split into reads at places the input itself chooses: no frame over the limit or holding a
/// newline, and never more buffered than the limit.
func fuzzFrames(_ bytes: [UInt8]) {
    var decoder = FrameDecoder(limit: 64)
    var offset = 0
    while offset < bytes.count {
        let end = min(bytes.count, offset + Int(bytes[offset] % 23) + 1)
        for frame in decoder.feed(Array(bytes[offset..<end])) {
            if case .frame(let line) = frame {
                precondition(line.count <= 64 && !line.contains(0x0A), "a frame over the limit or with a newline")
            }
        }
        offset = end
        precondition(decoder.pending <= 65, "the decoder buffered more than the limit")
    }
}

/// JSON-RPC requests: a request or the error it deserves, never a crash; and the error reply the
/// server would send is one line of JSON that parses back to itself.
func fuzzRequest(_ bytes: [UInt8]) {
    let id: RequestID
    let error: RPCError
    switch RPCServer.decode(bytes) {
    case .success(let request):
        precondition(request.params.objectValue != nil, "params must be an object")
        (id, error) = (request.id ?? .null, .methodNotFound(request.method))
    case .failure(let rejection):
        (id, error) = (rejection.id ?? .null, rejection.error)
    }
    let reply = JSON.object([("jsonrpc", "2.0"), ("id", id.value), ("error", error.json)])
    let line = String(decoding: error.replyFrame(id: id), as: UTF8.self)
    precondition(!line.utf8.contains(0x0A), "a reply with a newline breaks the framing: \(line)")
    precondition((try? JSON.parse(line)) == reply, "a reply that does not parse back to itself: \(line)")
}

/// Plan files: a plan or an error naming file, line and field. A plan's snapshot (what a job stores,
/// and recovery loads) must load back to the same plan, as a document and as a plan file.
func fuzzPlan(_ bytes: [UInt8]) {
    let yaml = String(decoding: bytes, as: UTF8.self)
    guard let plan = try? PlanLoader.parse(yaml: yaml, file: "fuzz.yaml", baseDirectory: nil) else { return }
    let snapshot = plan.json
    do {
        let loaded = try Plan(json: snapshot)
        precondition(loaded == plan, "the snapshot loads as another plan: \(snapshot.encoded)")
        let reloaded = try PlanLoader.parse(yaml: snapshot.encoded, file: "<snapshot>", baseDirectory: nil)
        precondition(reloaded == plan, "the snapshot as a plan file is another plan: \(snapshot.encoded)")
    } catch {
        preconditionFailure("the snapshot of a valid plan does not load (\(error)): \(snapshot.encoded)")
    }
}

/// Model replies (text, and tool calls in JSON), eval suites and the eval's state lines, and JSON
/// itself: what parses must encode and parse back to the same value.
func fuzzRepliesAndJSON(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? EvalSuite.parse(text, file: "fuzz")
    for rules in [ReplyRules.shapeOnly, .strict(passScore: 0.5)] {
        // A strict reading only ever refuses more: what it accepts, the shape alone accepts too.
        if let strict = try? Verdict.parse(text, rules: rules), rules.isStrict {
            precondition((try? Verdict.parse(text, rules: .shapeOnly))?.outcome == strict.outcome, "strict accepted what shape refused")
        }
        _ = try? PlanReply.parse(text, rules: rules)
        _ = try? VerifierReply.parse(text, rules: rules)
    }
    _ = try? ActorReply.parse(text)
    if let value = try? JSON.parse(bytes) {
        if let calls = ToolCall.list(from: value) {
            // The assistant turn a later request carries holds the calls in OpenAI's shape.
            let again = ToolCall.list(from: .array(calls.map(\.json)))
            precondition(again == calls, "tool calls did not survive OpenAI's shape: \(value.encoded)")
        }
        if let result = try? EvalResult(json: value) {
            precondition((try? EvalResult(json: result.json)) == result, "an eval result did not survive its state line: \(value.encoded)")
        }
        let again = try? JSON.parse(value.encoded)
        precondition(again == value, "JSON did not survive encode and parse: \(value.encoded)")
    }
}

#if LIBFUZZER
    /// The libFuzzer build's entry point: libFuzzer reads its flags and inputs from the command line.
    /// libFuzzer's own `main` cannot take its place, since SwiftPM points an executable's `main` at the
    /// target's entry point (`--defsym main=agentd_fuzz_main`): this one hands over to
    /// `LLVMFuzzerRunDriver`.
    @main
    enum LibFuzzer {
        static func main() {
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv) { fuzzerTestOneInput($0, $1) })
        }
    }
#else
    /// The normal build's entry point: replays every file given (directories: their files, sorted),
    /// naming each on standard error before it runs, so a trap points at its input.
    @main
    enum Replay {
        static func main() {
            let arguments = CommandLine.arguments.dropFirst()
            guard !arguments.isEmpty else { fail("usage: agentd-fuzz FILE|DIR… (replays each input once)") }
            let inputs = arguments.flatMap(files)
            for path in inputs {
                guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
                FileHandle.standardError.write(Data("Running: \(path)\n".utf8))
                _ = Array(data).withUnsafeBufferPointer { fuzzerTestOneInput($0.baseAddress, $0.count) }
            }
            print("agentd-fuzz: \(inputs.count) inputs replayed, no crash")
        }

        /// `path` itself, or the files in the directory `path`, sorted.
        static func files(_ path: String) -> [String] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                fail("no such file or directory: \(path)")
            }
            guard isDirectory.boolValue else { return [path] }
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { fail("cannot list \(path)") }
            return names.sorted().map { path + "/" + $0 }
        }

        static func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data("agentd-fuzz: \(message)\n".utf8))
            exit(2)
        }
    }
#endif
