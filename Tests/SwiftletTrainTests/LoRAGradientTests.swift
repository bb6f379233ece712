import XCTest
import Foundation
import SwiftletTensor
import SwiftletQuant
@testable import SwiftletTrain

/// The ops LoRA fine-tuning adds, against central finite differences (as GradientCheckTests), and
/// the frozen product's backward against the dense product of the dequantized weight.
final class LoRAGradientTests: XCTestCase {
    private func randomValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var s = NormalSampler(seed: seed)
        return (0..<count).map { _ in s.next() * scale }
    }

    private func variable(_ name: String, _ rows: Int, _ columns: Int, seed: UInt64, scale: Float = 1,
                          requiresGrad: Bool = true) throws -> Variable {
        let v = try Variable(name: name, rows: rows, columns: columns, requiresGrad: requiresGrad)
        try v.setValues(randomValues(rows * columns, seed: seed, scale: scale))
        return v
    }

    private func check(_ tape: Tape, output: Variable, inputs: [Variable], file: StaticString = #filePath, line: UInt = #line) throws {
        let projection = randomValues(output.count, seed: 99)
        func objective() -> Double {
            tape.forward()
            var sum = 0.0
            for i in 0..<output.count { sum += Double(projection[i]) * Double(output.value[i]) }
            return sum
        }
        _ = objective()
        for x in inputs { x.zeroGrad() }
        try tape.backward(from: output, outputGradient: projection)
        for x in inputs {
            let analytic = x.gradients
            var diff = 0.0, norm = 0.0
            for i in 0..<min(x.count, 64) {
                let saved = x.value[i]
                func central(_ h: Float) -> Double {
                    x.value[i] = saved + h; let plus = objective()
                    x.value[i] = saved - h; let minus = objective()
                    x.value[i] = saved
                    return (plus - minus) / Double(2 * h)
                }
                let numeric = (4 * central(5e-3) - central(1e-2)) / 3
                diff += (numeric - Double(analytic[i])) * (numeric - Double(analytic[i]))
                norm += numeric * numeric
            }
            let relative = (diff / max(norm, 1e-30)).squareRoot()
            XCTAssertLessThanOrEqual(relative, 1e-3, "\(x.name): relative error \(relative)", file: file, line: line)
            XCTAssertGreaterThan(norm, 0, "\(x.name): zero gradient", file: file, line: line)
        }
    }

    /// An F32 weight takes the f32 activations directly, so the forward is smooth in x.
    func testFrozenLinearWithLoRABranch() throws {
        let weights = randomValues(6 * 8, seed: 5)
        let data = weights.withUnsafeBytes { Data($0) }
        try data.withUnsafeBytes { raw in
            let w = try QuantizedMatrix(type: .f32, rows: 6, cols: 8, data: raw)
            let tape = Tape(), scratch = FrozenWeightScratch()
            let x = try variable("x", 5, 8, seed: 1)
            let a = try variable("lora_a", 2, 8, seed: 2), b = try variable("lora_b", 6, 2, seed: 3)
            let base = try tape.frozenLinear(x, weight: w, scratch: scratch)
            let inner = try tape.linear(x, weight: a)
            let delta = try tape.linear(inner, weight: b)
            let y = try tape.addScaled(base, delta, scale: 1.5)
            try check(tape, output: y, inputs: [x, a, b])
        }
    }

    /// Backward of a Q4_1 weight equals dy · W with W dequantized, over several row blocks.
    func testFrozenLinearBackwardOfQuantizedWeight() throws {
        let rows = 600, cols = 64, tokens = 3
        let values = randomValues(rows * cols, seed: 11)
        let bytes = GGMLType.q4_1.rowBytes(cols)! * rows
        var quantized = Data(count: bytes)
        try quantized.withUnsafeMutableBytes { out in
            try values.withUnsafeBufferPointer { try quantize(.q4_1, src: $0.baseAddress!, count: rows * cols, into: out) }
        }
        try quantized.withUnsafeBytes { raw in
            let w = try QuantizedMatrix(type: .q4_1, rows: rows, cols: cols, data: raw)
            let tape = Tape(), scratch = FrozenWeightScratch()
            let x = try variable("x", tokens, cols, seed: 12)
            let y = try tape.frozenLinear(x, weight: w, scratch: scratch)
            let dy = randomValues(tokens * rows, seed: 13)
            tape.forward()
            try tape.backward(from: y, outputGradient: dy)
            var row = [Float](repeating: 0, count: cols)
            var expected = [Double](repeating: 0, count: tokens * cols)
            for r in 0..<rows {
                row.withUnsafeMutableBufferPointer { w.dequantizeRow(r, into: $0.baseAddress!) }
                for t in 0..<tokens { for c in 0..<cols { expected[t * cols + c] += Double(dy[t * rows + r]) * Double(row[c]) } }
            }
            for (got, want) in zip(x.gradients, expected) { XCTAssertEqual(Double(got), want, accuracy: 1e-3 * max(1, abs(want))) }
        }
    }

    func testHeadRMSNorm() throws {
        let tape = Tape()
        let x = try variable("x", 3, 12, seed: 21)
        let w = try variable("w", 1, 4, seed: 22, requiresGrad: false)
        let y = try tape.headRMSNorm(x, weight: w, eps: 1e-6)
        try check(tape, output: y, inputs: [x])
    }

    func testGeGLU() throws {
        let tape = Tape()
        let g = try variable("gate", 4, 9, seed: 31), u = try variable("up", 4, 9, seed: 32)
        let y = try tape.geglu(gate: g, up: u)
        try check(tape, output: y, inputs: [g, u])
    }

    func testSoftcap() throws {
        let tape = Tape()
        let x = try variable("x", 3, 7, seed: 41, scale: 20)
        let y = try tape.softcap(x, cap: 30)
        try check(tape, output: y, inputs: [x])
    }

    /// Masked targets (negative ids) leave their rows out of the loss and its gradient.
    func testCrossEntropyIgnoresMaskedRows() throws {
        let tape = Tape()
        let logits = try variable("logits", 4, 6, seed: 51)
        let targets = try TokenBuffer(count: 4)
        try targets.set([2, -1, 5, -1])
        let loss = try tape.crossEntropy(logits, targets: targets)
        try check(tape, output: loss, inputs: [logits])
        tape.forward()
        var expected = 0.0
        for (t, target) in [(0, 2), (2, 5)] {
            let row = (0..<6).map { Double(logits.value[t * 6 + $0]) }
            let lse = log(row.map { exp($0) }.reduce(0, +))
            expected += lse - row[target]
        }
        XCTAssertEqual(Double(loss.value[0]), expected / 2, accuracy: 1e-5)
        logits.zeroGrad()
        tape.backward(from: loss)
        XCTAssertEqual(Array(logits.gradients[6..<12]), [Float](repeating: 0, count: 6))
    }
}
