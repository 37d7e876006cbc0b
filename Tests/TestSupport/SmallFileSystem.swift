import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Shared by the test targets (`StoreTests`, `agentdTests`).
///
/// A small tmpfs mounted for one test, to run out of space for real; needs the right to mount (root).
public final class SmallFileSystem {
    public let path: String
    private var ballast: [String] = []

    /// Mounts a tmpfs of `megabytes` at a new directory, or throws `Capability.tmpfs.missing` saying
    /// why it cannot (a skip, or a failure where `AGENTD_TEST_REQUIRE` lists `tmpfs`).
    public init(megabytes: Int) throws {
        path = NSTemporaryDirectory() + "agentd-small-fs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let (status, output) = Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)M", "tmpfs", path])
        if status != 0 {
            try? FileManager.default.removeItem(atPath: path)
            throw Capability.tmpfs.missing("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): \(output)")
        }
    }

    /// Writes ballast files until the file system has no block left (ENOSPC), then gives `leaving`
    /// bytes back.
    public func fill(leaving: Int = 0) throws {
        let file = path + "/ballast-\(ballast.count)"
        ballast.append(file)
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw NSError(domain: "ballast", code: Int(errno)) }
        defer { close(fd) }
        for size in [1 << 20, 4096, 1] {
            let chunk = [UInt8](repeating: 0xAB, count: size)
            while true {
                let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, size) }
                if n > 0 || (n < 0 && errno == EINTR) { continue }
                if n == 0 || errno == ENOSPC { break }
                throw NSError(domain: "ballast: \(String(cString: strerror(errno)))", code: Int(errno))
            }
        }
        if leaving > 0 { ftruncate(fd, max(0, lseek(fd, 0, SEEK_END) - off_t(leaving))) }
    }

    /// Removes the ballast: the space is back.
    public func drain() {
        for file in ballast { unlink(file) }
        ballast = []
    }

    public func unmount() {
        drain()
        if Self.run("/bin/umount", [path]).status != 0 { _ = Self.run("/bin/umount", ["-l", path]) }
        try? FileManager.default.removeItem(atPath: path)
    }

    private static func run(_ tool: String, _ arguments: [String]) -> (status: Int32, output: String) {
        do {
            let (status, output) = try runCapturingOutput(tool, arguments)
            return (status, output.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            return (-1, "\(tool): \(error)")
        }
    }
}
