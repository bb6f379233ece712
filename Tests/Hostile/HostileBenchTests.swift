import Foundation
import XCTest
@testable import SwiftletCLI
import SwiftletTestSupport

/// Absurd counts given to `swiftlet bench` and `swiftlet batched-bench`: each is an error before
/// anything sized by it is allocated, never an overflow trap or an unbounded run.
final class HostileBenchTests: XCTestCase {
    private let huge = "9223372036854775807"

    private func assertRefused(_ run: () throws -> Void, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let start = Date()
        XCTAssertThrowsError(try run(), what, file: file, line: line)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "\(what) took long", file: file, line: line)
    }

    func testBenchCountsBeyondContextOrOverflowAreErrors() throws {
        let model = try RealModel.smollm2.url().path
        let base = ["-m", model, "--no-extras", "-r", "1"]
        for extra in [["-p", "8", "-n", "4", "-d", huge], ["-p", "8", "-n", huge], ["-p", huge, "-n", "4"],
                      ["-pg", "\(huge),\(huge)"], ["-p", "8", "-n", "4", "-d", "100000"],
                      ["-p", "16777216", "-n", "16777216", "-d", "16777216"], ["-p", "8", "-r", huge]] {
            assertRefused({ try BenchCommand.parse(base + extra).run() }, "bench \(extra.joined(separator: " "))")
        }
    }

    func testBatchedBenchCountsBeyondContextOrMemoryAreErrors() throws {
        let model = try RealModel.smollm2.url().path
        for extra in [["-npp", huge, "-ntg", "4", "-npl", "2"], ["-npp", "8", "-ntg", huge, "-npl", "2"],
                      ["-npp", "8", "-ntg", "4", "-npl", "513"], ["-npp", "8", "-ntg", "4", "-npl", "0"],
                      // 512 sequences of 8,100 positions: ~96 GB of f16 KV caches, refused before any is made.
                      ["-npp", "8000", "-ntg", "100", "-npl", "512"]] {
            assertRefused({ try BatchedBenchCommand.parse(["-m", model] + extra).run() },
                          "batched-bench \(extra.joined(separator: " "))")
        }
    }
}
