import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's own files — its database with the WAL, shared memory, journal and lock beside it, and
/// its socket (`Bubblewrap.protectedPaths(database:socket:)`) — which no job may read, write, or
/// work among: through `read_file` a job would read every job's record, through `write_file` it
/// would corrupt the database.
///
/// A file is recognised by identity (device and inode), so another name for it — a hard link, a
/// path through a symlink or a bind mount — is caught as well as its own; and a workspace is
/// refused when it contains one of them (it is the file's directory or an ancestor of it). Each
/// check looks the files up again: SQLite creates and removes the WAL and the journal, so an
/// identity kept from an earlier look could be stale.
///
/// A value, safe anywhere; its checks block on the file system (the tools queue, never the loop).
struct DaemonFiles: Sendable, Equatable {
    /// Absolute paths; those that do not exist are skipped.
    let paths: [String]

    /// Which of the files `info` (an open file's `fstat`) is, if it is one of them.
    func path(matching info: stat) -> String? {
        for path in paths {
            var own = stat()
            if stat(path, &own) == 0, own.st_dev == info.st_dev, own.st_ino == info.st_ino { return path }
        }
        return nil
    }

    /// The first of the files that `workspace` (a real path) contains.
    func path(inside workspace: String) -> String? {
        let prefix = workspace.hasSuffix("/") ? workspace : workspace + "/"
        for path in paths {
            guard let directory = ToolBox.realPath((path as NSString).deletingLastPathComponent) else { continue }
            if directory == workspace || directory.hasPrefix(prefix) { return path }
        }
        return nil
    }

    /// Why a job may not work in `workspace` (a real path), when it contains one of the files.
    func refusal(workspace: String) -> String? {
        path(inside: workspace).map {
            "the workspace '\(workspace)' contains the daemon's own file '\($0)'; set the plan's workspace, or submit from a directory, that does not hold the daemon's database or socket (a plan without a workspace works in the directory it was submitted from)"
        }
    }
}
