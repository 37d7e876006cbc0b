import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The files one command call reads its inputs from: a command critic's `step-output` (the output it
/// judges) or a command verifier's `step-outputs.json` (every step's final output).
///
/// Each call gets a fresh directory made by `mkdtemp` in the daemon's temporary directory (`TMPDIR`,
/// else `/tmp`), named `agentd-call-PID-XXXXXX` after the daemon's pid, mode 0700, its files 0600: no
/// other user, no other job and no other call sees them.
/// A confined command gets the directory bound read-only at the same path (`Bubblewrap.Layout.inputs`);
/// an unconfined one reads it directly. The directory is removed when the call ends, however it ends;
/// what a daemon killed during a call left behind is removed by the next daemon's `sweep`.
///
/// Made and removed on the tools queue (`ToolBox.onFiles`), never on the loop.
struct CallInputs: Sendable {
    /// The directory, an absolute real path.
    let directory: String

    /// Makes the directory and writes `files` (name, contents) into it.
    ///
    /// - Returns: a failure with the reason when the directory or a file cannot be made (nothing is left
    ///   behind).
    static func make(_ files: [(name: String, contents: String)]) async -> Result<CallInputs, ToolProblem> {
        await ToolBox.onFiles {
            let base = Self.base
            var template = Array((base + "/" + Self.prefix + "\(getpid())-XXXXXX").utf8CString)
            guard mkdtemp(&template) != nil else {
                return .failure(
                    ToolProblem("cannot make a directory for the call's inputs in \(base): \(String(cString: strerror(errno)))"))
            }
            let made = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let inputs = CallInputs(directory: ToolBox.realPath(made) ?? made)
            for file in files {
                let path = inputs.path(file.name)
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
                var written = fd >= 0
                if written {
                    let bytes = Array(file.contents.utf8)
                    var offset = 0
                    while offset < bytes.count {
                        let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                        if n < 0, errno == EINTR { continue }
                        guard n > 0 else {
                            written = false
                            break
                        }
                        offset += n
                    }
                    close(fd)
                }
                if !written {
                    let reason = String(cString: strerror(errno))
                    inputs.removeNow()
                    return .failure(ToolProblem("cannot write the call's input \(path): \(reason)"))
                }
            }
            return .success(inputs)
        }
    }

    private static let prefix = "agentd-call-"

    /// Where the directories are made: `TMPDIR` when it is absolute, else `/tmp`, without a trailing `/`
    /// (read once: the environment does not change under the daemon).
    static let base: String = {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        return base.count > 1 && base.hasSuffix("/") ? String(base.dropLast()) : base
    }()

    /// Removes the call directories in `base` that daemons no longer running left behind (killed
    /// during a call). A running daemon's are left alone: its calls may be using them. Blocking; at
    /// start, before the loop serves.
    static func sweep(in base: String = base) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where name.hasPrefix(prefix) {
            let fields = name.dropFirst(prefix.count).split(separator: "-")
            guard fields.count == 2, let pid = pid_t(fields[0]), pid != getpid(), !ProcessState.isRunning(pid) else { continue }
            try? FileManager.default.removeItem(atPath: base + "/" + name)
        }
    }

    /// The path of the file `name` in the directory.
    func path(_ name: String) -> String { directory + "/" + name }

    /// Removes the directory and what it holds (on the tools queue).
    func remove() async {
        let inputs = self
        await ToolBox.onFiles { inputs.removeNow() }
    }

    private func removeNow() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
