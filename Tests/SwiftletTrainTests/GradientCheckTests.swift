import XCTest
import SwiftletTensor
@testable import SwiftletTrain

/// Every op's backward against central finite differences (Richardson-extrapolated, F32 forward):
/// for a random projection R, L = Σ R ⊙ output, and dL/dx from the tape must match
/// (L(x + h) − L(x − h)) / 2h with norm-wise relative error ≤ 1e-3 over the checked entries.
final class GradientCheckTests: XCTestCase {
    private func randomValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var s = NormalSampler(seed: seed)
        return (0..<count).map { _ in s.next() * scale }
    }

    private func variable(_ name: String, _ rows: Int, _ columns: Int, seed: UInt64, scale: Float = 1) throws -> Variable {
        let v = try Variable(name: name, rows: rows, columns: columns)
        try v.setValues(randomValues(rows * columns, seed: seed, scale: scale))
        return v
    }

    /// Checks d(Σ R ⊙ output)/d(input) for every input.
    private func check(_ tape: Tape, output: Variable, inputs: [Variable], samples: Int = 48, step: Float = 1e-2,
                       file: StaticString = #filePath, line: UInt = #line) throws {
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
            var rng = SplitMix64(seed: 7)
            let indices = x.count <= samples ? Array(0..<x.count) : (0..<samples).map { _ in Int(rng.next() % UInt64(x.count)) }
            var diff = 0.0, norm = 0.0
            for i in indices {
                let saved = x.value[i]
                func central(_ h: Float) -> Double {
                    x.value[i] = saved + h
                    let plus = objective()
                    x.value[i] = saved - h
                    let minus = objective()
                    x.value[i] = saved
                    return (plus - minus) / Double(2 * h)
                }
                let h = step
                let numeric = (4 * central(h / 2) - central(h)) / 3
                diff += (numeric - Double(analytic[i])) * (numeric - Double(analytic[i]))
                norm += numeric * numeric
            }
            let relative = (diff / max(norm, 1e-30)).squareRoot()
            XCTAssertLessThanOrEqual(relative, 1e-3, "\(x.name): relative error \(relative)", file: file, line: line)
            XCTAssertGreaterThan(norm, 0, "\(x.name): gradient is zero, the check would be vacuous", file: file, line: line)
        }
    }

    func testMatMulAllTransposes() throws {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let tape = Tape()
            let a = try ta ? variable("a", 7, 5, seed: 1) : variable("a", 5, 7, seed: 1)
            let b = try tb ? variable("b", 6, 7, seed: 2) : variable("b", 7, 6, seed: 2)
            let c = try tape.matmul(a, b, transposeA: ta, transposeB: tb)
            XCTAssertEqual([c.rows, c.columns], [5, 6])
            try check(tape, output: c, inputs: [a, b])
        }
    }

    func testMatMulAgainstScalarProduct() throws {
        let tape = Tape()
        let a = try variable("a", 3, 4, seed: 3), b = try variable("b", 5, 4, seed: 4)
        let c = try tape.linear(a, weight: b)
        tape.forward()
        for i in 0..<3 {
            for j in 0..<5 {
                var s: Float = 0
                for p in 0..<4 { s += a.value[i * 4 + p] * b.value[j * 4 + p] }
                XCTAssertEqual(c.value[i * 5 + j], s, accuracy: 1e-5)
            }
        }
    }

    func testEmbedding() throws {
        let tape = Tape()
        let table = try variable("table", 6, 5, seed: 5)
        let tokens = try TokenBuffer(count: 7)
        try tokens.set([0, 3, 3, 5, 1, 0, 2])
        let out = try tape.embedding(table, tokens: tokens)
        try check(tape, output: out, inputs: [table])
    }

    func testRMSNorm() throws {
        let tape = Tape()
        let x = try variable("x", 11, 16, seed: 6), w = try variable("w", 1, 16, seed: 7)
        let out = try tape.rmsNorm(x, weight: w, eps: 1e-5)
        try check(tape, output: out, inputs: [x, w])
    }

    func testRoPEBothConventions() throws {
        for convention in RoPEConvention.allCases {
            let tape = Tape()
            let x = try variable("x", 6, 24, seed: 8)
            let out = try tape.rope(x, heads: 3, sequenceLength: 3, base: 10_000, convention: convention)
            try check(tape, output: out, inputs: [x])
        }
    }

    func testRoPEForwardIsTheInferenceRotation() throws {
        let tape = Tape()
        let x = try variable("x", 4, 16, seed: 9)
        let out = try tape.rope(x, heads: 2, sequenceLength: 4, base: 10_000)
        tape.forward()
        var expected = x.values
        expected.withUnsafeMutableBufferPointer { e in
            for t in 0..<4 {
                RoPE.apply(e.baseAddress! + t * 16, heads: 2, headDim: 8, ropeDim: 8, position: t, base: 10_000,
                           convention: .interleaved)
            }
        }
        XCTAssertEqual(out.values, expected)
    }

    func testGroupedQueryAttention() throws {
        let tape = Tape()
        // 2 sequences of 5, 4 query heads sharing 2 key/value heads of width 4.
        let q = try variable("q", 10, 16, seed: 10), k = try variable("k", 10, 8, seed: 11)
        let v = try variable("v", 10, 8, seed: 12)
        let out = try tape.attention(q: q, k: k, v: v, sequenceLength: 5, heads: 4, kvHeads: 2)
        try check(tape, output: out, inputs: [q, k, v])
    }

    func testAttentionIsCausal() throws {
        let tape = Tape()
        let q = try variable("q", 4, 8, seed: 13), k = try variable("k", 4, 8, seed: 14), v = try variable("v", 4, 8, seed: 15)
        let out = try tape.attention(q: q, k: k, v: v, sequenceLength: 4, heads: 2, kvHeads: 2)
        tape.forward()
        let before = out.values
        for i in 24..<32 { k.value[i] += 1; v.value[i] += 1 } // the last position's keys and values
        tape.forward()
        XCTAssertEqual(Array(out.values[0..<24]), Array(before[0..<24]))
        XCTAssertNotEqual(Array(out.values[24..<32]), Array(before[24..<32]))
    }

    func testSwiGLUAndSiLU() throws {
        let tape = Tape()
        let g = try variable("gate", 5, 9, seed: 16, scale: 2), u = try variable("up", 5, 9, seed: 17)
        let out = try tape.swiglu(gate: g, up: u)
        try check(tape, output: out, inputs: [g, u])
        let tape2 = Tape()
        let x = try variable("x", 4, 7, seed: 18, scale: 2)
        try check(tape2, output: try tape2.silu(x), inputs: [x])
    }

    func testResidualAdd() throws {
        let tape = Tape()
        let a = try variable("a", 3, 5, seed: 19), b = try variable("b", 3, 5, seed: 20)
        // a feeds the sum twice (directly and through a product) so gradients must accumulate.
        let w = try variable("w", 5, 5, seed: 21)
        let c = try tape.add(try tape.add(a, b), try tape.linear(a, weight: w))
        try check(tape, output: c, inputs: [a, b, w])
    }

    func testCrossEntropy() throws {
        let tape = Tape()
        let logits = try variable("logits", 6, 10, seed: 22, scale: 3)
        let targets = try TokenBuffer(count: 6)
        try targets.set([0, 9, 4, 4, 1, 7])
        let loss = try tape.crossEntropy(logits, targets: targets)
        try check(tape, output: loss, inputs: [logits])
        // The value: mean of −log softmax at the target.
        tape.forward()
        var expected = 0.0
        for t in 0..<6 {
            let row = (0..<10).map { Double(logits.value[t * 10 + $0]) }
            let lse = log(row.map { exp($0) }.reduce(0, +))
            expected += lse - row[Int(targets.ids[t])]
        }
        XCTAssertEqual(Double(loss.value[0]), expected / 6, accuracy: 1e-5)
    }

    func testWholeLlamaModel() throws {
        let shape = LlamaShape(vocabSize: 11, dim: 16, layerCount: 2, headCount: 4, kvHeadCount: 2, ffnDim: 24,
                               contextLength: 6)
        let model = try LlamaTrainingModel(shape: shape, batch: 2, sequenceLength: 6)
        model.initializeParameters(seed: 1)
        // Larger weights than the initialization, so every path carries a visible gradient (the
        // scalar loss limits the F32 difference quotient's precision, hence the larger step).
        for p in model.parameters.parameters where p.rows > 1 { for i in 0..<p.count { p.value[i] *= 15 } }
        var rng = SplitMix64(seed: 3)
        for i in 0..<12 {
            model.inputs.ids[i] = Int32(rng.next() % 11)
            model.targets.ids[i] = Int32(rng.next() % 11)
        }
        try check(model.tape, output: model.loss, inputs: model.parameters.parameters, samples: 12, step: 4e-2)
    }
}
