/// The wire protocol's version, reported by `daemon.status` as `protocol_version`.
///
/// One integer, raised by one whenever a change could break a client written against the previous
/// version: a method, param, result member or error code removed or renamed, a type or meaning
/// changed, a default changed, or members reordered. Additions a client may ignore (a new method, an
/// optional param, a new result member appended, a new error code) keep it. docs/protocol.md states
/// the same rule. Pure value; any thread.
public enum WireProtocol {
    public static let version = 1
}
