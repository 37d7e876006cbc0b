import Foundation
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// `read_file` and `write_file`: every path is opened beneath a handle of the workspace
/// (`DirectoryHandle`, openat2 with `RESOLVE_BENEATH`), so the kernel refuses a `..` or a symlink
/// that leads out in the same call that opens the file — no path is checked first and opened
/// after, which a job sharing the workspace could race by swapping a folder for a symlink. What is
/// opened must then be a regular file (a FIFO or a device is refused before it can block) and none of
/// the daemon's own files (`DaemonFiles`, by device and inode), checked on the open descriptor;
/// `write_file` empties the file only after those checks.
///
/// All of it runs on the tools queue (`ToolBox.files`), never on the loop. Every failure is a
/// `ToolResult` the model can act on, never a thrown error.
extension ToolBox {
    /// Creates the workspace if needed; returns its real path. A workspace that contains the
    /// daemon's own files is refused (a job recovered from before that rule, say).
    static func create(_ path: String, daemonFiles: DaemonFiles) -> Result<String, ToolProblem> {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            return .failure(ToolProblem("cannot create the workspace '\(path)': \(error.localizedDescription)"))
        }
        guard let real = realPath(path) else {
            return .failure(ToolProblem("cannot resolve the workspace '\(path)': \(String(cString: strerror(errno)))"))
        }
        if let refusal = daemonFiles.refusal(workspace: real) { return .failure(ToolProblem(refusal)) }
        return .success(real)
    }

    /// Reads at most `cap` bytes of the file, then keeps what fits `cap` once JSON-encoded (`limit`
    /// names the budget that cut it, in the `truncation` note).
    static func read(
        _ relative: String, root: String, cap: Int, limit: String = "policy.tool_output_cap", daemonFiles: DaemonFiles
    ) -> ToolResult {
        do throws(ToolProblem) {
            let workspace = try handle(root, relative)
            // O_NONBLOCK: a FIFO without a writer must not hold the tools queue; it is refused below.
            let file = try open(relative, in: workspace, flags: O_RDONLY | O_NOCTTY | O_NONBLOCK, doing: "read")
            try check(file, relative, daemonFiles: daemonFiles)
            let (bytes, truncated) = try attempt("read", relative) { () throws(SystemCallError) in try file.read(cap: cap) }
            let allowance = ToolAllowance(bytes: cap, limit: limit)
            let content = allowance.fit(bytes)
            var members: [(String, JSON)] = [
                ("path", .string(relative)), ("content", .string(content.text)), ("truncated", .bool(truncated || !content.complete)),
            ]
            if truncated || !content.complete {
                let size = max((try? file.status()).map { Int($0.st_size) } ?? bytes.count, bytes.count)
                members.append(("truncation", .string(allowance.truncation([("content", size, content.text.utf8.count)]))))
            }
            return ToolResult(ok: true, json: .object(members))
        } catch {
            return .problem(error)
        }
    }

    static func write(_ relative: String, content: String, root: String, daemonFiles: DaemonFiles) -> ToolResult {
        do throws(ToolProblem) {
            let workspace = try handle(root, relative)
            // O_NOFOLLOW: a final symlink is not followed, even to a file inside the workspace.
            // O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of holding the tools queue.
            // No O_TRUNC: the file is emptied once it is known to be one the tool may write.
            let file = try create(relative, in: workspace, flags: O_WRONLY | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK)
            try check(file, relative, daemonFiles: daemonFiles)
            let bytes = Array(content.utf8)
            try attempt("write", relative) { () throws(SystemCallError) in
                try file.truncate()
                try file.write(bytes)
            }
            return ToolResult(ok: true, json: .object([("path", .string(relative)), ("bytes_written", .int(bytes.count))]))
        } catch {
            return .problem(error)
        }
    }

    /// `path` with every symlink, `.` and `..` resolved; nil when it does not exist (see `errno`).
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    // MARK: Helpers

    /// A handle of the workspace `root` (a real path), once `relative` is known to be a path relative to it.
    private static func handle(_ root: String, _ relative: String) throws(ToolProblem) -> DirectoryHandle {
        guard !relative.isEmpty else { throw ToolProblem("the path is empty") }
        guard !relative.hasPrefix("/") else { throw ToolProblem("'\(relative)' is absolute; give a path relative to the workspace") }
        do throws(SystemCallError) {
            return try DirectoryHandle(realPath: root)
        } catch {
            // A kernel without openat2 is named as such: no file can be opened safely there.
            guard error.code != ENOSYS else { throw problem(error, relative, doing: "open") }
            throw ToolProblem("cannot open the workspace '\(root)': \(error.reason)")
        }
    }

    private static func open(
        _ relative: String, in workspace: borrowing DirectoryHandle, flags: Int32, mode: mode_t = 0, doing verb: String
    ) throws(ToolProblem) -> OpenFile {
        do throws(SystemCallError) {
            return try workspace.file(relative, flags: flags, mode: mode)
        } catch {
            throw problem(error, relative, doing: verb)
        }
    }

    /// Opens `relative` for writing with `flags` (which create it), making its missing directories.
    private static func create(_ relative: String, in workspace: borrowing DirectoryHandle, flags: Int32) throws(ToolProblem) -> OpenFile {
        do throws(SystemCallError) {
            return try workspace.file(relative, flags: flags, mode: 0o644)
        } catch  where error.code == ENOENT {
            // A directory on the way is missing: made below, then the file is opened again.
        } catch {
            throw problem(error, relative, doing: "write")
        }
        try makeParents(of: relative, in: workspace)
        return try open(relative, in: workspace, flags: flags, mode: 0o644, doing: "write")
    }

    /// Creates the missing directories of `relative`'s parent, each with `mkdirat` in a directory
    /// opened beneath the workspace, so none lands outside it whatever is swapped meanwhile.
    private static func makeParents(of relative: String, in workspace: borrowing DirectoryHandle) throws(ToolProblem) {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: true).dropLast().map(String.init)
        for (index, part) in parts.enumerated() {
            let path = parts[...index].joined(separator: "/")
            do throws(SystemCallError) {
                _ = try workspace.directory(path)
                continue
            } catch  where error.code == ENOENT {
                // Missing: made below, in its parent.
            } catch {
                throw problem(error, path, doing: "create the directory")
            }
            do throws(SystemCallError) {
                let parent = try workspace.directory(index == 0 ? "." : parts[..<index].joined(separator: "/"))
                try parent.makeDirectory(part)
            } catch  where error.code == EEXIST {
                // Made meanwhile (by another call, say): what it is, the next step or the open finds out.
            } catch {
                throw problem(error, path, doing: "create the directory")
            }
        }
    }

    /// Refuses what is no file to read or write — a directory, a FIFO, a device, a socket — and the
    /// daemon's own files, whatever the name they were reached by.
    private static func check(_ file: borrowing OpenFile, _ relative: String, daemonFiles: DaemonFiles) throws(ToolProblem) {
        let info = try attempt("inspect", relative) { () throws(SystemCallError) in try file.status() }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw ToolProblem("'\(relative)' is a directory")
        default: throw ToolProblem("'\(relative)' is not a regular file (a FIFO, a device or a socket)")
        }
        if let own = daemonFiles.path(matching: info) {
            throw ToolProblem("'\(relative)' is the daemon's own file '\(own)' (the same file by device and inode); no tool may touch it")
        }
    }

    /// Runs `body`, making a failed call the tool's problem.
    private static func attempt<T>(_ verb: String, _ relative: String, _ body: () throws(SystemCallError) -> T) throws(ToolProblem) -> T {
        do throws(SystemCallError) {
            return try body()
        } catch {
            throw ToolProblem("cannot \(verb) '\(relative)': \(error.reason)")
        }
    }

    /// What an openat2 failure means for the model.
    private static func problem(_ error: SystemCallError, _ relative: String, doing verb: String) -> ToolProblem {
        switch error.code {
        case EXDEV:
            return ToolProblem(
                "'\(relative)' is outside the workspace: '..' or a symlink leads out of it (a symlink to an absolute path does, even to one inside)"
            )
        case ELOOP where verb == "write":
            return ToolProblem("cannot write '\(relative)': it is a symlink, which write_file does not follow, or its path loops")
        case ELOOP:
            return ToolProblem("cannot \(verb) '\(relative)': its path loops or goes through a /proc magic link")
        case EISDIR:
            return ToolProblem("'\(relative)' is a directory")
        case ENOTDIR:
            return ToolProblem("cannot \(verb) '\(relative)': a part of its path is not a directory")
        case ENXIO:
            return ToolProblem("'\(relative)' is not a regular file (a FIFO, a device or a socket)")
        case EAGAIN:
            return ToolProblem("cannot \(verb) '\(relative)': the workspace kept changing while the path was resolved; try again")
        case ENOSYS:
            return ToolProblem(
                "cannot \(verb) '\(relative)': this kernel has no openat2 (Linux 5.6 or later), without which the file tools open nothing")
        default:
            return ToolProblem("cannot \(verb) '\(relative)': \(error.reason)")
        }
    }
}
