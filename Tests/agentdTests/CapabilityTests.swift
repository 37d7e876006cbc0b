import Foundation
import TestSupport
import XCTest

/// `AGENTD_TEST_REQUIRE` names only capabilities the tests know: a misspelt one would promise
/// nothing and let the skip it meant to forbid pass unseen.
final class CapabilityTests: XCTestCase {
    func testEveryRequiredCapabilityIsKnown() {
        XCTAssertEqual(
            Capability.unknownRequired, [],
            "\(Capability.requiredVariable) names unknown capabilities; known: \(Capability.allCases.map(\.rawValue).joined(separator: ","))"
        )
    }
}
