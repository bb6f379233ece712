import Foundation
import XCTest
import SwiftletFormats
import SwiftletTestSupport

/// Open + parse time of the real GGUFs, printed (never asserted). Runs only with
/// `SWIFTLET_BENCH=1`, so the regular suite stays fast.
final class GGUFParseTiming: XCTestCase {
    func testOpenAndParseTime() throws {
        guard ProcessInfo.processInfo.environment["SWIFTLET_BENCH"] == "1" else { throw XCTSkip("set SWIFTLET_BENCH=1") }
        for model in [RealModel.smollm2, .gemma3] {
            let url = try model.url()
            _ = try GGUFFile(url: url) // warm the page cache
            var times = [Double]()
            for _ in 0 ..< 20 {
                let start = DispatchTime.now().uptimeNanoseconds
                let file = try GGUFFile(url: url)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                XCTAssertFalse(file.tensors.isEmpty)
            }
            times.sort()
            print(String(format: "GGUF open+parse %@: min %.2f ms, median %.2f ms (20 runs)", url.lastPathComponent, times[0], times[10]))
        }
    }
}
