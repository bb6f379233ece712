import CSwiftletKernels
import XCTest
@testable import SwiftletQuant

/// The Swift traits table and the C kernels describe the same types: same ids, block sizes,
/// activation pairing and dispatch coverage.
final class GGMLTypeTraitsTests: XCTestCase {
    func testCKernelsAgreeWithTheTraitsTable() {
        for type in GGMLType.allCases {
            let id = Int32(type.rawValue)
            let cBytes = Int(swiftlet_qk_block_bytes(id))
            let cAct = swiftlet_qk_activation_type(id)
            if type.isQuantSupported {
                XCTAssertEqual(cBytes, type.traits.typeSize, "\(type): C block size")
                XCTAssertEqual(cAct, Int32(type.activationType.rawValue), "\(type): activation type")
            } else {
                XCTAssertEqual(cBytes, 0, "\(type): the C kernels know a type without a codec")
                XCTAssertEqual(cAct, -1, "\(type)")
            }
            XCTAssertEqual(swiftlet_qk_has_type(id) != 0, type.hasDotKernel, "\(type): dot dispatch")
        }
    }

    func testNamesRoundTripAndAreUnique() {
        let names = GGMLType.allCases.map(\.description)
        XCTAssertEqual(Set(names).count, names.count)
        for type in GGMLType.allCases {
            XCTAssertEqual(GGMLType(name: type.description.lowercased()), type)
        }
        XCTAssertNil(GGMLType(name: "Q4_9"))
    }

    func testActivationTypesHaveCodecsAndMatchBlockSizes() {
        for type in GGMLType.allCases where type.hasDotKernel && type.activationType != .f32 {
            let act = type.activationType
            XCTAssertTrue(act.isQuantSupported, "\(type) → \(act)")
            XCTAssertEqual(type.traits.blockSize % act.traits.blockSize, 0, "\(type): blocks of \(act) tile a block")
        }
    }
}
