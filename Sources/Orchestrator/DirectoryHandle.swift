import CLinux

#if canImport(Glibc)
    import Glibc
#endif

/// Why a system call failed: what was being done, and the `errno` it gave.
struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    let operation: String
    let code: Int32

    /// The operating system's words for `code`.
    var reason: String { String(cString: strerror(code)) }
    var description: String { "\(operation): \(reason)" }
}

/// A directory held open, beneath which paths are resolved by the kernel in the same system call
/// that opens them: `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`. A `..`, an absolute
/// path or a symlink that would lead out of the directory fails with `EXDEV`, and a /proc magic link
/// with `ELOOP`, whatever another process renames or swaps while the path is walked — there is no
/// moment between a check and an open for it to use. This is how the file tools reach a job's
/// workspace (`ToolBox+Files.swift`).
///
/// Owns its descriptor (an `O_PATH` one) and closes it when it goes away; it cannot be copied. The
/// calls block on the file system: use it on the tools queue, never on the loop. The only file that
/// sees `CLinux`.
struct DirectoryHandle: ~Copyable {
    /// How often an open is tried again when the kernel answers `EAGAIN`: with `RESOLVE_BENEATH` it
    /// does so when a rename raced a `..` it was resolving and it could not prove the path stayed
    /// beneath, and asks the caller to try again.
    static let retries = 16

    private let fd: Int32

    /// Opens the directory at `path`, an absolute path already resolved (every symlink in it
    /// replaced). A symlink found in it now — swapped in since it was resolved — fails with `ELOOP`.
    init(realPath path: String) throws(SystemCallError) {
        fd = try Self.open(AT_FDCWD, path, flags: agentd_o_path() | O_DIRECTORY, mode: 0, resolve: agentd_resolve_no_symlinks())
    }

    private init(descriptor: Int32) {
        fd = descriptor
    }

    deinit { close(fd) }

    /// The directory `relative` names, resolved beneath this one.
    func directory(_ relative: String) throws(SystemCallError) -> DirectoryHandle {
        DirectoryHandle(
            descriptor: try Self.open(fd, relative, flags: agentd_o_path() | O_DIRECTORY, mode: 0, resolve: agentd_resolve_beneath()))
    }

    /// Opens what `relative` names, resolved beneath this directory, with `flags` (`O_CLOEXEC` is
    /// added) and, when `flags` create it, `mode`.
    func file(_ relative: String, flags: Int32, mode: mode_t = 0) throws(SystemCallError) -> OpenFile {
        OpenFile(descriptor: try Self.open(fd, relative, flags: flags, mode: mode, resolve: agentd_resolve_beneath()))
    }

    /// Creates the directory `name` — one path component, no `/` — in this directory.
    func makeDirectory(_ name: String, mode: mode_t = 0o755) throws(SystemCallError) {
        guard mkdirat(fd, name, mode) == 0 else { throw SystemCallError(operation: "mkdirat", code: errno) }
    }

    private static func open(_ directory: Int32, _ path: String, flags: Int32, mode: mode_t, resolve: UInt64) throws(SystemCallError)
        -> Int32
    {
        var again = 0
        while true {
            let fd = agentd_openat2(directory, path, flags | O_CLOEXEC, UInt32(mode), resolve)
            if fd >= 0 { return fd }
            let code = errno
            if code == EINTR || (code == EAGAIN && again < retries) {
                again += 1
                continue
            }
            throw SystemCallError(operation: "openat2", code: code)
        }
    }
}

/// A file opened through a `DirectoryHandle`, closed when it goes away; it cannot be copied. Its
/// calls block: the tools queue only.
struct OpenFile: ~Copyable {
    private let fd: Int32

    fileprivate init(descriptor: Int32) {
        fd = descriptor
    }

    deinit { close(fd) }

    /// What `fstat` says of the open file: its type, device and inode.
    func status() throws(SystemCallError) -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemCallError(operation: "fstat", code: errno) }
        return info
    }

    /// Empties the file. (Not `O_TRUNC` at the open: what was opened is checked first.)
    func truncate() throws(SystemCallError) {
        guard ftruncate(fd, 0) == 0 else { throw SystemCallError(operation: "ftruncate", code: errno) }
    }

    /// The file's bytes from the current offset, at most `cap` of them; `truncated` when there were more.
    func read(cap: Int) throws(SystemCallError) -> (bytes: [UInt8], truncated: Bool) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(operation: "read", code: errno)
            }
            if n == 0 { return (bytes, false) }
            let room = cap - bytes.count
            bytes.append(contentsOf: chunk[0..<min(n, room)])
            if n > room { return (bytes, true) }
        }
    }

    /// Writes all of `bytes` at the current offset.
    func write(_ bytes: [UInt8]) throws(SystemCallError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(operation: "write", code: errno)
            }
            offset += n
        }
    }
}
