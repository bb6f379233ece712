import Foundation
import SwiftletFormats
import SwiftletQuant
import SwiftletTensor
import SwiftletTestSupport
import XCTest

/// Every tensor of the real GGUFs dequantizes to gguf-py's figures
/// (Tests/Fixtures/reference/{smollm2,gemma3}-tensor-stats.json): sum and sum of squares within
/// 1e-6 relative, sampled values within 1 ulp.
final class RealModelTensorStatsTests: XCTestCase {
    func testSmolLM2TensorsDequantizeToReference() throws {
        try check(.smollm2, stats: "smollm2-tensor-stats.json")
    }

    func testGemma3TensorsDequantizeToReference() throws {
        try check(.gemma3, stats: "gemma3-tensor-stats.json")
    }

    private struct Partial { var sum = 0.0, sumsq = 0.0 }

    private func check(_ model: RealModel, stats: String) throws {
        let gguf = try GGUFFile(url: try model.url())
        let json = try XCTUnwrap(try Fixtures.referenceJSON(stats) as? [String: Any])
        let entries = try XCTUnwrap(json["tensors"] as? [[String: Any]])
        XCTAssertEqual(entries.count, gguf.tensors.count)
        let pool = ComputePool.shared
        for entry in entries {
            let name = try XCTUnwrap(entry["name"] as? String)
            let info = try XCTUnwrap(gguf.tensor(named: name), name)
            XCTAssertEqual(info.type.description, entry["type"] as? String, name)
            XCTAssertEqual(info.shape, entry["shape"] as? [Int], name)
            let data = gguf.data(for: info)
            let rowLength = info.rowLength, rowBytes = try XCTUnwrap(info.type.rowBytes(rowLength))
            let rows = info.rowCount

            // Rows in chunks over the pool; each chunk dequantizes into its own buffer.
            let chunkRows = max(1, 65536 / rowLength)
            let chunks = (rows + chunkRows - 1) / chunkRows
            var partials = [Partial](repeating: Partial(), count: chunks)
            var failure: Error?
            let lock = NSLock()
            partials.withUnsafeMutableBufferPointer { parts in
                pool.parallelFor(chunks) { c in
                    let r0 = c * chunkRows, r1 = min(rows, r0 + chunkRows)
                    let count = (r1 - r0) * rowLength
                    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
                    defer { buffer.deallocate() }
                    do {
                        try dequantize(info.type, src: UnsafeRawBufferPointer(rebasing: data[(r0 * rowBytes)..<(r1 * rowBytes)]),
                                       count: count, into: buffer)
                    } catch {
                        lock.lock(); failure = error; lock.unlock(); return
                    }
                    var p = Partial()
                    for i in 0..<count { let v = Double(buffer[i]); p.sum += v; p.sumsq += v * v }
                    parts[c] = p
                }
            }
            if let failure { throw failure }
            let sum = partials.reduce(0) { $0 + $1.sum }, sumsq = partials.reduce(0) { $0 + $1.sumsq }
            let refSum = try XCTUnwrap(entry["sum"] as? Double), refSumsq = try XCTUnwrap(entry["sumsq"] as? Double)
            XCTAssertLessThanOrEqual(abs(sum - refSum), 1e-6 * max(abs(refSum), 1e-30), "\(name) sum \(sum) vs \(refSum)")
            XCTAssertLessThanOrEqual(abs(sumsq - refSumsq), 1e-6 * refSumsq, "\(name) sumsq \(sumsq) vs \(refSumsq)")

            let samples = try XCTUnwrap(entry["samples"] as? [String: Double])
            var row = [Float](repeating: 0, count: rowLength)
            for (key, value) in samples {
                let flat = try XCTUnwrap(Int(key))
                let r = flat / rowLength
                try dequantize(info.type, src: UnsafeRawBufferPointer(rebasing: data[(r * rowBytes)..<((r + 1) * rowBytes)]),
                               count: rowLength, into: &row)
                let got = row[flat % rowLength]
                XCTAssertLessThanOrEqual(ulpDistance(got, Float(value)), 1, "\(name)[\(flat)] = \(got), reference \(value)")
            }
        }
    }
}
