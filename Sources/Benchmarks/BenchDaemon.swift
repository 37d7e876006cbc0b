import Foundation

/// An `agentd serve` a benchmark starts on a fresh directory (its socket and database inside), quiet
/// (warnings and above, to /dev/null), and stops (SIGTERM, then waits) when the benchmark is done.
final class BenchDaemon {
    let process = Process()
    let socket: String

    /// Empties `directory` and starts the daemon in it.
    init(agentd: String, directory: String) throws {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        socket = directory + "/agentd.sock"
        process.executableURL = URL(fileURLWithPath: agentd)
        process.arguments = ["serve", "--socket", socket, "--db", directory + "/agentd.db", "--log-level", "warning"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
    }

    /// Stops the daemon, if it still runs, and waits for it.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
