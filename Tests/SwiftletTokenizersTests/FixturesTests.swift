import XCTest
import SwiftletTestSupport

final class SwiftletTokenizersTestsPlaceholder: XCTestCase {
    func testFixturesPresent() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: Fixtures.reference("public_texts.json").path))
    }
}
