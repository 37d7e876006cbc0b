// agentd-fuzz: every parser that takes bytes from outside — socket frames, JSON-RPC requests, plan
// files, model replies — fed one input at a time. The first byte of an input picks the parser; the
// rest is its input.
//
//   agentd-fuzz FILE|DIR…                      replays each input once (the seed corpus and every
//                                               crash found are kept in Tests/Fuzz/corpus: regressions)
//   agentd-fuzz --fuzz SECONDS [--seed N] DIR   mutates the corpus's inputs (byte flips, inserts, deletes,
//                                               repeats, splices) for that long; an input that traps is
//                                               written to ./fuzz-crash-<n> before the process dies
//
// Build it with `swift build -c release --product agentd-fuzz`; a long run:
// `.build/release/agentd-fuzz --fuzz 600 Tests/Fuzz/corpus`.
import Agents
import Foundation
import Orchestrator
import Store

func fuzzOne(_ data: UnsafeBufferPointer<UInt8>) {
    guard let selector = data.first else { return }
    let bytes = Array(data.dropFirst())
    switch selector % 4 {
    case 0:
        // Frames, split into reads at places the input itself chooses.
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
    case 1:
        // JSON-RPC requests: a request or the error it deserves, never a crash.
        switch RPCServer.decode(bytes) {
        case .success(let request): precondition(request.params.objectValue != nil, "params must be an object")
        case .failure: break
        }
    case 2:
        // Plan files: a plan or an error naming file, line and field.
        _ = try? PlanLoader.parse(yaml: String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml", baseDirectory: nil)
    default:
        // Model replies, and JSON itself: what parses must encode and parse back to the same value.
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? Verdict.parse(text)
        _ = try? PlanReply.parse(text)
        _ = try? VerifierReply.parse(text)
        _ = try? ActorReply.parse(text)
        if let value = try? JSON.parse(bytes) {
            let again = try? JSON.parse(value.encoded)
            precondition(again == value, "JSON did not survive encode and parse: \(value.encoded)")
        }
    }
}

/// The input being run, kept where a signal handler can write it out if the run traps.
nonisolated(unsafe) var currentInput = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 1 << 20)
nonisolated(unsafe) var currentLength = 0

/// Writes the current input to ./fuzz-crash-<pid> (async-signal-safe calls only) and dies of the signal.
func installCrashWriter() {
    for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT] {
        signal(sig) { signal in
            var name: [CChar] = Array("fuzz-crash-input".utf8CString)
            let fd = open(&name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd >= 0 {
                _ = write(fd, currentInput.baseAddress, currentLength)
                close(fd)
            }
            Glibc.signal(signal, SIG_DFL)
            raise(signal)
        }
    }
}

/// A small deterministic generator (SplitMix64), so a run can be repeated with its seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func mutate(_ input: [UInt8], with corpus: [[UInt8]], _ rng: inout SplitMix) -> [UInt8] {
    var bytes = input
    for _ in 0..<Int.random(in: 1...6, using: &rng) {
        let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<7, using: &rng) {
        case 0 where !bytes.isEmpty: bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
        case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: at)
        case 2 where bytes.count > 1: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...16, using: &rng)))
        case 3 where !bytes.isEmpty:
            let end = min(bytes.count, at + Int.random(in: 1...32, using: &rng))
            bytes.insert(contentsOf: bytes[at..<end], at: at)
        case 4:
            let other = corpus[Int.random(in: 0..<corpus.count, using: &rng)]
            if !other.isEmpty {
                let from = Int.random(in: 0..<other.count, using: &rng)
                bytes.insert(contentsOf: other[from..<min(other.count, from + 64)], at: at)
            }
        case 5:
            let tokens: [String] = [
                "{", "}", "[", "]", "\"", "\\", ":", ",", "\n", "\r\n", "\\u", "1e999", "-", "null", "  - ", ": ", "&a", "*a", "!!int",
            ]
            bytes.insert(contentsOf: Array(tokens[Int.random(in: 0..<tokens.count, using: &rng)].utf8), at: at)
        default:
            if !bytes.isEmpty { bytes[0] = UInt8.random(in: 0...3, using: &rng) }  // another parser
        }
    }
    return Array(bytes.prefix(currentInput.count))
}

func run(_ bytes: [UInt8]) {
    currentLength = min(bytes.count, currentInput.count)
    _ = UnsafeMutableBufferPointer(rebasing: currentInput[0..<currentLength]).initialize(from: bytes.prefix(currentLength))
    fuzzOne(UnsafeBufferPointer(rebasing: currentInput[0..<currentLength]))
}

@main
struct FuzzMain {
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        var seconds: Double?
        var seed: UInt64 = 1
        if let i = arguments.firstIndex(of: "--fuzz"), i + 1 < arguments.count {
            seconds = Double(arguments[i + 1])
            arguments.removeSubrange(i...(i + 1))
        }
        if let i = arguments.firstIndex(of: "--seed"), i + 1 < arguments.count {
            seed = UInt64(arguments[i + 1]) ?? 1
            arguments.removeSubrange(i...(i + 1))
        }
        var inputs: [String] = []
        for argument in arguments {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("agentd-fuzz: no such file or directory: \(argument)\n".utf8))
                exit(2)
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: argument)) ?? []
                inputs += names.sorted().map { argument + "/" + $0 }
            } else {
                inputs.append(argument)
            }
        }
        installCrashWriter()
        let corpus = inputs.compactMap { FileManager.default.contents(atPath: $0).map { Array($0) } }
        for input in corpus { run(input) }
        guard let seconds else {
            print("agentd-fuzz: \(corpus.count) inputs replayed")
            return
        }
        guard !corpus.isEmpty else {
            FileHandle.standardError.write(Data("agentd-fuzz: --fuzz needs a corpus to start from\n".utf8))
            exit(2)
        }
        var rng = SplitMix(state: seed)
        let deadline = Date().addingTimeInterval(seconds)
        var executions = 0
        var pool = corpus
        while Date() < deadline {
            for _ in 0..<1000 {
                let input = mutate(pool[Int.random(in: 0..<pool.count, using: &rng)], with: corpus, &rng)
                run(input)
                executions += 1
                // Keep some mutants as parents, so changes accumulate (bounded pool).
                if executions % 97 == 0 {
                    if pool.count < 4096 { pool.append(input) } else { pool[Int.random(in: 0..<pool.count, using: &rng)] = input }
                }
            }
        }
        print("agentd-fuzz: \(executions) executions in \(Int(seconds)) s (seed \(seed)), no crash")
    }
}
