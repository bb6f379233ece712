import XCTest
import Foundation
@testable import SwiftletModels
import SwiftletTestSupport

/// Temporary: dumps activations for comparison with llama.cpp (SWIFTLET_DUMP_DIR, SWIFTLET_DUMP_IDS).
final class ActivationDumpTests: XCTestCase {
    func testDump() throws {
        let env = ProcessInfo.processInfo.environment
        guard let dir = env["SWIFTLET_DUMP_DIR"], let idsText = env["SWIFTLET_DUMP_IDS"] else { throw XCTSkip("no dump requested") }
        let model: RealModel = env["SWIFTLET_DUMP_MODEL"] == "gemma3" ? .gemma3 : .smollm2
        let t = try Transformer.load(url: try model.url(), contextLength: 1024, cacheType: env["SWIFTLET_REF_KV"] == "f32" ? .f32 : .f16)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        t.activationTap = { name, buf in
            let data = Data(buffer: buf)
            try! data.write(to: URL(fileURLWithPath: dir + "/" + name + ".f32"))
        }
        let ids = idsText.split(separator: ",").map { Int($0)! }
        try ids.withUnsafeBufferPointer { ids in
            try t.evaluate(ids, at: 0, logits: .all) { i, logits in
                try! Data(buffer: logits).write(to: URL(fileURLWithPath: dir + "/result_output-\(i).f32"))
            }
        }
    }
}
