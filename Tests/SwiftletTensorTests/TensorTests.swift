import XCTest
import SwiftletTensor

final class TensorTests: XCTestCase {
    func testViewsAreZeroCopyAndCorrect() throws {
        let values = (0..<24).map(Float.init)
        let t = try Tensor(shape: [2, 3, 4], values: values)
        let r = try t.reshaped([6, -1])
        XCTAssertEqual(r.shape, [6, 4])
        XCTAssertTrue(r.storage === t.storage)
        let tr = try t.transposed(0, 2)  // [4, 3, 2]
        XCTAssertEqual(tr.shape, [4, 3, 2])
        XCTAssertTrue(tr.storage === t.storage)
        XCTAssertEqual(try tr.value(at: [3, 2, 1]), values[1 * 12 + 2 * 4 + 3])
        let p = try t.permuted([1, 2, 0])  // [3, 4, 2]
        XCTAssertEqual(try p.value(at: [2, 1, 1]), values[1 * 12 + 2 * 4 + 1])
        let s = try t.sliced(dim: 2, 1..<3)  // [2, 3, 2]
        XCTAssertEqual(s.scalars(), [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22])
        XCTAssertFalse(s.isContiguous)
        XCTAssertThrowsError(try s.reshaped([12]))
        XCTAssertEqual(try s.contiguousF32().reshaped([12]).scalars(), s.scalars())
        XCTAssertEqual(tr.contiguousF32().scalars()[0..<4], [0, 12, 4, 16])
    }

    func testBadShapesThrowTypedErrors() throws {
        let a = try Tensor(zeros: [2, 3])
        func assertSwiftletError(_ body: @autoclosure () throws -> Any, _ line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { XCTAssertTrue($0 is SwiftletError, "\($0)", line: line) }
        }
        assertSwiftletError(try Tensor(zeros: [-1, 2]))
        assertSwiftletError(try Tensor(zeros: [1 << 40, 1 << 30]))
        assertSwiftletError(try Tensor(zeros: [Int.max, 2]))
        assertSwiftletError(try Tensor(shape: [2, 2], values: [1, 2, 3]))
        assertSwiftletError(try a.reshaped([4, 2]))
        assertSwiftletError(try a.reshaped([-1, -1]))
        assertSwiftletError(try a.sliced(dim: 1, 2..<4))
        assertSwiftletError(try a.sliced(dim: 2, 0..<1))
        assertSwiftletError(try a.transposed(0, 5))
        assertSwiftletError(try a.permuted([0, 0]))
        assertSwiftletError(try a.adding(try Tensor(zeros: [4])))
        assertSwiftletError(try a.broadcast(to: [-1, 2, 3]))
        assertSwiftletError(try a.broadcast(to: [3]))
        assertSwiftletError(try a.matmul(try Tensor(zeros: [2, 3])))
        assertSwiftletError(try a.matvec(try Tensor(zeros: [2])))
        assertSwiftletError(try a.rmsNorm(weight: try Tensor(zeros: [2]), eps: 1e-6))
        assertSwiftletError(try a.embedding([0, 2]))
        assertSwiftletError(try a.value(at: [2, 0]))
        assertSwiftletError(try Tensor(zeros: [1, 2, 4]).rope(positions: [0], ropeDim: 3, base: 1e4, convention: .neox))
        assertSwiftletError(try Tensor(zeros: [4]).softmax(mask: .causal))
        assertSwiftletError(try Tensor(zeros: [2, 2]).softmax(mask: .slidingWindow(0)))
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: 10, alignment: 16)
        defer { bytes.deallocate() }
        assertSwiftletError(try Tensor(borrowing: bytes, byteCount: 10, dtype: .f32, shape: [3], owner: nil))
        XCTAssertEqual(try Tensor(borrowing: bytes, byteCount: 10, dtype: .f16, shape: [5], owner: nil).shape, [5])
    }

    func testBroadcastingAddMul() throws {
        let (m, n) = (17, 33)
        let a = randomFloats(m * n, seed: 20), bias = randomFloats(n, seed: 21), col = randomFloats(m, seed: 22)
        let ta = try Tensor(shape: [m, n], values: a)
        let sum = try ta.adding(try Tensor(shape: [n], values: bias)).scalars()
        XCTAssertEqual(sum, (0..<(m * n)).map { a[$0] + bias[$0 % n] })
        let prod = try ta.multiplying(try Tensor(shape: [m, 1], values: col)).scalars()
        XCTAssertEqual(prod, (0..<(m * n)).map { a[$0] * col[$0 / n] })
        // Strided (transposed) operand takes the general path.
        let tt = try Tensor(shape: [n, m], values: a).transposed(0, 1)  // [m, n], element (i,j) = a[j*m+i]
        let mixed = try ta.adding(tt).scalars()
        XCTAssertEqual(mixed, (0..<(m * n)).map { a[$0] + a[($0 % n) * m + $0 / n] })
        // Outer broadcast [m,1] + [1,n] → [m,n].
        let outer = try Tensor(shape: [m, 1], values: col).adding(try Tensor(shape: [1, n], values: bias))
        XCTAssertEqual(outer.shape, [m, n])
        XCTAssertEqual(outer.scalars(), (0..<(m * n)).map { col[$0 / n] + bias[$0 % n] })
    }

    func testUnaryAndNormOpsMatchReference() throws {
        for n in [1, 3, 17, 1000] {
            let x = randomFloats(2 * n, seed: 23)
            let t = try Tensor(shape: [2, n], values: x)
            assertClose(t.silu().scalars(), ScalarReference.silu(x), absolute: 2e-6, relative: 2e-6)
            assertClose(t.geluTanh().scalars(), ScalarReference.geluTanh(x), absolute: 2e-6, relative: 2e-6)
            assertClose(t.geluErf().scalars(), ScalarReference.geluErf(x), absolute: 2e-6, relative: 2e-6)
            assertClose(t.scaled(by: -3).scalars(), x.map { $0 * -3 }, absolute: 0)
            let w = randomFloats(n, seed: 24), b = randomFloats(n, seed: 25)
            let rms = try t.rmsNorm(weight: try Tensor(shape: [n], values: w), eps: 1e-5, weightOffset: 1).scalars()
            let ln = try t.layerNorm(gamma: try Tensor(shape: [n], values: w), beta: try Tensor(shape: [n], values: b),
                                     eps: 1e-5).scalars()
            for r in 0..<2 {
                let row = Array(x[(r * n)..<((r + 1) * n)])
                assertClose(Array(rms[(r * n)..<((r + 1) * n)]), ScalarReference.rmsNorm(row, weight: w, eps: 1e-5, weightOffset: 1),
                            absolute: 1e-5, relative: 1e-5)
                assertClose(Array(ln[(r * n)..<((r + 1) * n)]), ScalarReference.layerNorm(row, gamma: w, beta: b, eps: 1e-5),
                            absolute: 2e-5, relative: 1e-5)
            }
        }
    }

    func testMaskedSoftmax() throws {
        let (queries, keys) = (3, 5)
        let x = randomFloats(2 * queries * keys, seed: 26)
        let t = try Tensor(shape: [2, queries, keys], values: x)
        for (mask, visible) in [(SoftmaxMask.none, { (_: Int, _: Int) in true }),
                                (.causal, { (p: Int, j: Int) in j <= p }),
                                (.slidingWindow(2), { (p: Int, j: Int) in j <= p && j > p - 2 })] {
            let y = try t.softmax(mask: mask).scalars()
            for r in 0..<(2 * queries) {
                let position = r % queries + keys - queries
                let row = (0..<keys).map { visible(position, $0) ? x[r * keys + $0] : -Float.infinity }
                assertClose(Array(y[(r * keys)..<((r + 1) * keys)]), ScalarReference.softmax(row), absolute: 1e-6,
                            "\(mask) row \(r)")
            }
        }
    }

    func testRoPEEmbeddingMatmulMatvec() throws {
        let (tokens, heads, headDim) = (3, 2, 8)
        let x = randomFloats(tokens * heads * headDim, seed: 27)
        let rotated = try Tensor(shape: [tokens, heads, headDim], values: x)
            .rope(positions: [5, 6, 9], ropeDim: 6, base: 10000, convention: .neox).scalars()
        for (t, pos) in [5, 6, 9].enumerated() {
            let slice = Array(x[(t * heads * headDim)..<((t + 1) * heads * headDim)])
            let expected = ScalarReference.rope(slice, heads: heads, headDim: headDim, ropeDim: 6, position: pos, base: 10000,
                                                convention: .neox)
            assertClose(Array(rotated[(t * heads * headDim)..<((t + 1) * heads * headDim)]), expected, absolute: 1e-5)
        }

        let table = try Tensor(shape: [5, 3], values: (0..<15).map(Float.init), dtype: .bf16)
        XCTAssertEqual(try table.embedding([4, 0, 4]).scalars(), [12, 13, 14, 0, 1, 2, 12, 13, 14])

        let (m, k, n) = (17, 33, 20)
        let a = randomFloats(m * k, seed: 28), w = randomFloats(n * k, seed: 29)
        var expected = [Float](repeating: 0, count: m * n)
        ScalarReference.gemm(transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: w, ldb: k,
                             beta: 0, c: &expected, ldc: n)
        try forEachBackend { backend in
            let product = try Tensor(shape: [1, m, k], values: a).matmul(try Tensor(shape: [n, k], values: w),
                                                                        transposeOther: true)
            XCTAssertEqual(product.shape, [1, m, n])
            assertClose(product.scalars(), expected, absolute: 1e-4, "matmul \(backend)")
            let v = try Tensor(shape: [n, k], values: w).matvec(try Tensor(shape: [k], values: Array(a[0..<k])))
            assertClose(v.scalars(), Array(expected[0..<n]), absolute: 1e-4, "matvec \(backend)")
            // Transposed view as the right operand goes through a contiguous copy.
            let wt = try Tensor(shape: [n, k], values: w).transposed(0, 1)
            let viaView = try Tensor(shape: [m, k], values: a).matmul(wt)
            assertClose(viaView.scalars(), expected, absolute: 1e-4, "matmul view \(backend)")
        }
    }

    func testHalfPrecisionConversions() throws {
        // Known bit patterns (IEEE 754 binary16 / bfloat16 tables).
        let f16Cases: [(Float, UInt16)] = [(0, 0x0000), (-0.0, 0x8000), (1, 0x3C00), (-2, 0xC000), (65504, 0x7BFF),
                                           (0.333251953125, 0x3555), (5.960464477539063e-08, 0x0001),
                                           (6.103515625e-05, 0x0400), (.infinity, 0x7C00), (1e6, 0x7C00),
                                           (1.0009765625, 0x3C01), (1.00048828125, 0x3C00) /* tie → even */]
        for (f, bits) in f16Cases {
            XCTAssertEqual(HalfPrecision.f16(from: f), bits, "f16(\(f))")
            if f.magnitude <= 65504 { XCTAssertEqual(HalfPrecision.float(fromF16: bits), f == 1.00048828125 ? 1 : f) }
        }
        XCTAssertTrue(HalfPrecision.float(fromF16: HalfPrecision.f16(from: .nan)).isNaN)
        let bf16Cases: [(Float, UInt16)] = [(1, 0x3F80), (-2, 0xC000), (3.140625, 0x4049), (1.00390625, 0x3F80) /* tie */,
                                            (1.01171875, 0x3F82) /* tie → even up */]
        for (f, bits) in bf16Cases { XCTAssertEqual(HalfPrecision.bf16(from: f), bits, "bf16(\(f))") }
        XCTAssertTrue(HalfPrecision.float(fromBF16: HalfPrecision.bf16(from: .nan)).isNaN)
        // Every half value round-trips through Float.
        for bits in UInt16.min...UInt16.max where (bits & 0x7C00) != 0x7C00 {
            XCTAssertEqual(HalfPrecision.f16(from: HalfPrecision.float(fromF16: bits)), bits)
        }
        let t = try Tensor(shape: [3], values: [1, 0.1, -7.5], dtype: .f16)
        XCTAssertEqual(t.scalars(), [1, 0.0999755859375, -7.5])
        XCTAssertEqual(t.converted(to: .bf16).scalars(), [1, 0.10009765625, -7.5])
    }
}
