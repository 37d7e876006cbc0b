import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Wipes secret values from this process's own environment once they have been read.
///
/// The kernel shows a process's environment in `/proc/PID/environ` from the block the process was
/// started with, and any process of the same user can read that file — a `sandbox: false` command,
/// a model or verifier command, a debugger. `unsetenv` only drops a pointer from `environ` and leaves
/// the bytes where they were, so `scrub` overwrites each named variable's value with NUL bytes, in
/// place: in the strings `environ` points to and in the original block (`env_start`..`env_end` of
/// `/proc/self/stat`), where a value replaced by `setenv` still lies. The name stays, with an empty
/// value, so `getenv` says "" from then on.
///
/// Everything that needs a variable later must take it from a copy read before the scrub (the
/// daemon's captured environment, see `Engine.Configuration.environment`), never from `getenv` or
/// `ProcessInfo` again.
///
/// Any thread. It only writes bytes that already exist (no allocation, `environ` itself unchanged),
/// so a concurrent `getenv` of another variable is unaffected; call it before anything reads the
/// named variables concurrently — at start, and when a job names a new key.
enum ProcessEnvironment {
    /// Overwrites the values of the variables in `names` (see the type's description).
    static func scrub(_ names: some Sequence<String>) {
        let prefixes = Set(names.map { Array($0.utf8) + [UInt8(ascii: "=")] })
        guard !prefixes.isEmpty else { return }
        var entry: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        while let pointer = entry?.pointee {
            pointer.withMemoryRebound(to: UInt8.self, capacity: 1) { wipe($0, count: strlen(pointer), prefixes) }
            entry = entry?.successor()
        }
        if let (address, count) = originalBlock, let base = UnsafeMutablePointer<UInt8>(bitPattern: address) {
            // NAME=VALUE entries, each ended by a NUL; a wiped value leaves a run of NULs to skip.
            var offset = 0
            while offset < count {
                let start = base + offset
                let length = strnlen(UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self), count - offset)
                if length > 0 { wipe(start, count: length, prefixes) }
                offset += length + 1
            }
        }
    }

    /// Zeroes the value of the entry at `start` (`count` bytes) when its name is one of `prefixes`.
    private static func wipe(_ start: UnsafeMutablePointer<UInt8>, count: Int, _ prefixes: Set<[UInt8]>) {
        guard let equals = UnsafeMutableBufferPointer(start: start, count: count).firstIndex(of: UInt8(ascii: "=")),
            prefixes.contains(Array(UnsafeBufferPointer(start: start, count: equals + 1)))
        else { return }
        (start + equals + 1).update(repeating: 0, count: count - equals - 1)
    }

    /// The environment block the process was started with, read once from `/proc/self/stat` (fields
    /// 50 and 51, `env_start` and `env_end`); nil when that file does not say, or when no entry of
    /// `environ` lies inside the range (then it is not the block `environ` was built from, and no
    /// byte of it is touched).
    private static let originalBlock: (address: UInt, count: Int)? = {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = stat.lastIndex(of: ")")
        else { return nil }
        // Field 3 (the state) is the first after the command name's closing parenthesis.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 48, let start = UInt(fields[47]), let end = UInt(fields[48]), end > start else { return nil }
        var entry: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        var inside = false
        while let pointer = entry?.pointee, !inside {
            let address = UInt(bitPattern: pointer)
            inside = address >= start && address < end
            entry = entry?.successor()
        }
        return inside ? (start, Int(end - start)) : nil
    }()
}
