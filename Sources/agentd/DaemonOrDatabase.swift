import Foundation
import Orchestrator
import Store

/// How a command that works with or without the daemon (`prune`, `audit verify`, `audit search`,
/// `stats`, `backup`, `transcript`) gets its answer: from the daemon over the protocol when one
/// answers on the socket, else from the database file opened here. Both ways produce the same wire
/// result (`RecordQueries` is the one implementation), which the command then prints, so the output
/// is the same whichever way it came.
///
/// Which daemon: the one on `--socket` (or the default socket). When only `--db` was given, the daemon
/// on the default socket is asked only if it serves that very file; otherwise the file is opened here.
struct DaemonOrDatabase {
    let socket: SocketOption
    let database: DatabaseOption

    /// The daemon to ask, or nil when none answers (or it serves another database than `--db`).
    func daemon() throws -> RPCClient? {
        let client: RPCClient
        do {
            client = try RPCClient(socketPath: socket.path)
        } catch {
            if error.kind == .notRunning { return nil }
            let message = error.message
            return try failing { throw CLIFailure(message) }
        }
        if socket.socket == nil, database.db != nil {
            let status = try failing { try client.call(.status) }
            guard let served = status["store"]?["path"]?.stringValue, Self.sameFile(served, database.path) else { return nil }
        }
        return client
    }

    /// `call`'s result from the daemon, or `direct`'s from the database at `--db` when no daemon
    /// answers. A refusal either way is one `CLIFailure` with the daemon's message; `notFoundExit` is
    /// the exit status for "no such job" (-32002).
    func answer(_ call: MethodCall, notFoundExit: Int32 = 1, direct: (String) throws -> JSON) throws -> JSON {
        if let client = try daemon() {
            let result = Self.ask(client, call, notFoundExit: notFoundExit)
            return try failing { try result.get() }
        }
        let path = database.path
        return try failing { () throws -> JSON in
            do {
                return try direct(path)
            } catch let error as EngineError {
                throw Self.failure(RPCError(error), notFoundExit: notFoundExit)
            }
        }
    }

    private static func ask(_ client: RPCClient, _ call: MethodCall, notFoundExit: Int32) -> Result<JSON, CLIFailure> {
        let reply: JSON
        do {
            reply = try client.call(call)
        } catch {
            guard let rpc = error.rpc else { return .failure(CLIFailure(error.message)) }
            return .failure(failure(rpc, notFoundExit: notFoundExit))
        }
        return .success(reply)
    }

    private static func failure(_ error: RPCError, notFoundExit: Int32) -> CLIFailure {
        CLIFailure(error.message, code: error.code == RPCError.Code.jobNotFound.rawValue ? notFoundExit : 1)
    }

    private static func sameFile(_ a: String, _ b: String) -> Bool {
        URL(fileURLWithPath: a).resolvingSymlinksInPath().path == URL(fileURLWithPath: b).resolvingSymlinksInPath().path
    }

    /// Opens the database at `path` for reading; it must exist (`missingExit`: the exit status if not).
    static func openReadOnly(_ path: String, missingExit: Int32 = 1) throws -> Database {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIFailure("no database at \(path) (use --db or AGENTD_DB)", code: missingExit)
        }
        do {
            let db = try Database(path: path, readOnly: true)
            try db.execute("PRAGMA query_only=ON")
            return db
        } catch {
            throw CLIFailure("cannot open the database \(path): \(error.message)", code: missingExit)
        }
    }
}
