import Foundation
import XCTest

/// Shared by the test targets (`StoreTests`, `agentdTests`).
///
/// What a test may need from the machine beyond the build: where it is missing the test skips, unless
/// the machine promised it. `AGENTD_TEST_REQUIRE` (comma-separated names, as `.ci/run` sets it) lists
/// what the machine guarantees; a test that would skip for a capability listed there fails instead,
/// so a CI machine that lost `bwrap` or root cannot pass by skipping what it was meant to run.
public enum Capability: String, CaseIterable, Sendable {
    /// A `bwrap` that can create a sandbox (user and PID namespaces).
    case bwrap
    /// Running as root: a second Unix user, dropping to `nobody`.
    case root
    /// The right to mount a tmpfs (root or CAP_SYS_ADMIN), to fill a small file system.
    case tmpfs
    /// Headless Chromium, to load an HTML transcript.
    case chromium
    /// The `openssl` command, to make a test certificate.
    case openssl
    /// Root and the cgroup v1 memory and pids hierarchies, for job-wide limits.
    case cgroupV1 = "cgroup-v1"
    /// The local model (`scripts/model.sh setup`) and its server.
    case model

    /// The environment variable that lists the capabilities the machine guarantees.
    public static let requiredVariable = "AGENTD_TEST_REQUIRE"

    /// The capabilities `AGENTD_TEST_REQUIRE` lists (an unknown name is kept, so a misspelt one is
    /// reported rather than ignored: see `unknownRequired`).
    public static var required: Set<String> {
        let listed = ProcessInfo.processInfo.environment[requiredVariable] ?? ""
        return Set(listed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    /// Names in `AGENTD_TEST_REQUIRE` that are no capability.
    public static var unknownRequired: [String] {
        required.subtracting(allCases.map(\.rawValue)).sorted()
    }

    /// Whether the machine promised this capability.
    public var isRequired: Bool { Self.required.contains(rawValue) }

    /// The error a test throws when this capability is missing for `reason`: `XCTSkip`, or a failure
    /// when `AGENTD_TEST_REQUIRE` lists the capability.
    public func missing(_ reason: String) -> any Error {
        if isRequired { return CapabilityMissing(capability: self, reason: reason) }
        return XCTSkip("needs \(rawValue): \(reason)")
    }

    /// Throws `missing(reason)` unless `available`.
    public func require(_ available: Bool, _ reason: @autoclosure () -> String) throws {
        if !available { throw missing(reason()) }
    }
}

/// A capability the machine promised (`AGENTD_TEST_REQUIRE`) is missing: the test fails.
public struct CapabilityMissing: Error, CustomStringConvertible {
    public let capability: Capability
    public let reason: String

    public var description: String {
        "\(Capability.requiredVariable) lists '\(capability.rawValue)', but it is missing here: \(reason)"
    }
}
