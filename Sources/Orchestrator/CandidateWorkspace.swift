import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The private copies of a job's workspace that an attempt's candidates work in when the actor has
/// tools and `policy.samples` asks for more than one (`JobRunner+Samples`).
///
/// A job's copies live in one directory beside its workspace, `.<name>.agentd-<job id>` (on the same
/// filesystem, owned by the job), one per candidate, named after its place (`r0-s1-a2-k0`: re-plan,
/// step, attempt, sample). Each is a real copy: regular files with their contents and modes, directories,
/// symbolic links as links; as root, owners too. Sockets, devices and FIFOs are left out.
///
/// Every operation is idempotent and driven by the record, so a crash at any point is repaired by
/// doing it again: a copy is made under a `.partial` name and renamed when complete (a recovered job
/// finds a whole copy, with the work its candidate already did, or makes it anew); the chosen copy's
/// contents are synced into the workspace — which stays the same directory, at the same path, since
/// the submitter and the workspace claim know it — and only then is the copy renamed `.applied` and
/// removed, so a copy that still exists has not been applied for certain and is applied again.
///
/// Blocking file work: call on `ToolBox.files`, never on the loop.
enum CandidateWorkspace {
    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// The directory of `jobID`'s copies beside `workspace` (a real path).
    static func directory(beside workspace: String, jobID: String) -> String {
        let url = URL(fileURLWithPath: workspace)
        return url.deletingLastPathComponent().path + "/.\(url.lastPathComponent).agentd-\(jobID)"
    }

    /// The copy of candidate `sample` of `attempt` at step `step` (of re-plan `replan`).
    static func path(beside workspace: String, jobID: String, replan: Int, step: Int, attempt: Int, sample: Int) -> String {
        directory(beside: workspace, jobID: jobID) + "/r\(replan)-s\(step)-a\(attempt)-k\(sample)"
    }

    /// Makes `copy` a copy of `workspace` unless it exists already (a recovered candidate keeps what
    /// it did). A half-made copy from before a crash is removed and made again.
    static func prepare(_ copy: String, from workspace: String) throws(Problem) {
        if exists(copy) { return }
        let partial = copy + ".partial"
        try remove(partial)
        let parent = URL(fileURLWithPath: copy).deletingLastPathComponent().path
        // Searchable by others, not listable: a sandboxed command that runs as another user reaches
        // its copy through it, and each copy keeps the workspace's own mode.
        if mkdir(parent, 0o711) != 0, errno != EEXIST { throw failure("mkdir", parent) }
        try copyTree(workspace, to: partial)
        if rename(partial, copy) != 0 { throw failure("rename", partial) }
    }

    /// Makes `workspace`'s contents those of `copy`, then removes `copy` (and its job's directory when
    /// it is empty). Done again after a crash, it finishes the same: see the type's description.
    static func apply(_ copy: String, to workspace: String) throws(Problem) {
        let applied = copy + ".applied"
        if exists(copy) {
            try sync(copy, into: workspace)
            try remove(applied)
            if rename(copy, applied) != 0 { throw failure("rename", copy) }
        }
        try remove(applied)
        removeDirectoryIfEmpty(URL(fileURLWithPath: copy).deletingLastPathComponent().path)
    }

    /// Removes the copies in `copies`, and their job's directory once it is empty.
    static func discard(_ copies: [String]) throws(Problem) {
        for copy in copies {
            try remove(copy + ".partial")
            try remove(copy)
        }
        if let first = copies.first { removeDirectoryIfEmpty(URL(fileURLWithPath: first).deletingLastPathComponent().path) }
    }

    /// Removes the entries of `directory` (a job's copies) whose names do not start with `prefix`,
    /// and the directory once it is empty.
    static func discard(in directory: String, except prefix: String) throws(Problem) {
        guard exists(directory) else { return }
        for name in try names(directory) where !name.hasPrefix(prefix) { try remove(directory + "/" + name) }
        removeDirectoryIfEmpty(directory)
    }

    // MARK: The file work

    private static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    private static func failure(_ operation: String, _ path: String) -> Problem {
        Problem(description: "\(operation) '\(path)' failed: \(String(cString: strerror(errno)))")
    }

    private static func isDirectory(_ st: stat) -> Bool { st.st_mode & S_IFMT == S_IFDIR }
    private static func isLink(_ st: stat) -> Bool { st.st_mode & S_IFMT == S_IFLNK }
    private static func isRegular(_ st: stat) -> Bool { st.st_mode & S_IFMT == S_IFREG }

    /// The names in `directory`, sorted, without `.` and `..`.
    private static func names(_ directory: String) throws(Problem) -> [String] {
        guard let dir = opendir(directory) else { throw failure("opendir", directory) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Copies the tree at `source` (a directory) to `target`, which must not exist.
    private static func copyTree(_ source: String, to target: String) throws(Problem) {
        var st = stat()
        guard lstat(source, &st) == 0 else { throw failure("lstat", source) }
        try copyEntry(source, st, to: target)
    }

    private static func copyEntry(_ source: String, _ st: stat, to target: String) throws(Problem) {
        if isDirectory(st) {
            if mkdir(target, 0o700) != 0 { throw failure("mkdir", target) }
            for name in try names(source) {
                var child = stat()
                guard lstat(source + "/" + name, &child) == 0 else { throw failure("lstat", source + "/" + name) }
                try copyEntry(source + "/" + name, child, to: target + "/" + name)
            }
        } else if isLink(st) {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(source, &buffer, buffer.count - 1)
            guard count >= 0 else { throw failure("readlink", source) }
            buffer[count] = 0
            if symlink(buffer, target) != 0 { throw failure("symlink", target) }
            keepOwner(target, st)
            return
        } else if isRegular(st) {
            try copyFile(source, to: target)
        } else {
            return  // a socket, device or FIFO: not something a candidate's work needs
        }
        keepOwner(target, st)
        if chmod(target, st.st_mode & 0o7777) != 0 { throw failure("chmod", target) }
    }

    /// As root, the copy keeps the owner (a submitter's workspace stays theirs in the copy).
    private static func keepOwner(_ path: String, _ st: stat) {
        if geteuid() == 0 { _ = lchown(path, st.st_uid, st.st_gid) }
    }

    private static func copyFile(_ source: String, to target: String) throws(Problem) {
        let input = open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard input >= 0 else { throw failure("open", source) }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard output >= 0 else { throw failure("create", target) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("read", source)
            }
            if count == 0 { return }
            var written = 0
            while written < count {
                let n = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, count - written) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("write", target)
                }
                written += n
            }
        }
    }

    /// Makes the directory `target` hold what the directory `source` holds: entries `source` lacks are
    /// removed, the others copied again (a directory is synced in place, keeping it).
    private static func sync(_ source: String, into target: String) throws(Problem) {
        let wanted = try names(source)
        for name in try names(target) where !wanted.contains(name) { try remove(target + "/" + name) }
        for name in wanted {
            let (from, to) = (source + "/" + name, target + "/" + name)
            var st = stat()
            guard lstat(from, &st) == 0 else { throw failure("lstat", from) }
            var current = stat()
            let present = lstat(to, &current) == 0
            if present, isDirectory(st), isDirectory(current) {
                try sync(from, into: to)
                keepOwner(to, st)
                if chmod(to, st.st_mode & 0o7777) != 0 { throw failure("chmod", to) }
                continue
            }
            if present { try remove(to) }
            try copyEntry(from, st, to: to)
        }
    }

    /// Removes `path` and everything under it, if it exists; a symbolic link is removed, not followed.
    static func remove(_ path: String) throws(Problem) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if isDirectory(st) {
            // A read-only directory's entries cannot be removed until it is writable again.
            _ = chmod(path, 0o700)
            for name in try names(path) { try remove(path + "/" + name) }
            if rmdir(path) != 0 { throw failure("rmdir", path) }
        } else if unlink(path) != 0 {
            throw failure("unlink", path)
        }
    }

    private static func removeDirectoryIfEmpty(_ path: String) {
        _ = rmdir(path)
    }
}
