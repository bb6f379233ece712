import XCTest
import CSwiftletKernels
import SwiftletTensor

final class VectorOpsTests: XCTestCase {
    func testDotSumMax() {
        for n in awkwardSizes {
            let a = randomFloats(n, seed: 1), b = randomFloats(n, seed: 2)
            let d = VectorOps.dot(a, b, count: n)
            XCTAssertEqual(d, ScalarReference.dot(a, b), accuracy: 1e-4 * Float(n).squareRoot() + 1e-5, "n=\(n)")
            XCTAssertEqual(VectorOps.max(a, count: n), a.max()!, "n=\(n)")
            XCTAssertEqual(VectorOps.sum(a, count: n), a.reduce(0, +), accuracy: 1e-4 * Float(n), "n=\(n)")
        }
    }

    func testElementwise() {
        for n in awkwardSizes {
            let a = randomFloats(n, seed: 3), b = randomFloats(n, seed: 4)
            var out = [Float](repeating: .nan, count: n)
            VectorOps.add(a, b, out: &out, count: n)
            assertClose(out, zip(a, b).map(+), absolute: 0, "add n=\(n)")
            VectorOps.mul(a, b, out: &out, count: n)
            assertClose(out, zip(a, b).map(*), absolute: 0, "mul n=\(n)")
            var x = a
            VectorOps.scale(&x, by: 0.37, count: n)
            assertClose(x, a.map { $0 * 0.37 }, absolute: 0, "scale n=\(n)")
            var y = b
            VectorOps.axpy(-1.5, a, &y, count: n)
            assertClose(y, zip(a, b).map { -1.5 * $0 + $1 }, absolute: 1e-6, "axpy n=\(n)")
        }
    }

    func testNorms() {
        for n in awkwardSizes {
            let x = randomFloats(n, seed: 5).map { $0 * 3 + 0.5 }
            let w = randomFloats(n, seed: 6)
            let beta = randomFloats(n, seed: 7)
            var out = [Float](repeating: 0, count: n)
            VectorOps.rmsNorm(x, weight: w, count: n, eps: 1e-6, out: &out)
            assertClose(out, ScalarReference.rmsNorm(x, weight: w, eps: 1e-6), absolute: 1e-5, relative: 1e-5, "rms n=\(n)")
            VectorOps.rmsNorm(x, weight: w, count: n, eps: 1e-6, weightOffset: 1, out: &out)
            assertClose(out, ScalarReference.rmsNorm(x, weight: w, eps: 1e-6, weightOffset: 1), absolute: 1e-5,
                        relative: 1e-5, "rms+1 n=\(n)")
            VectorOps.layerNorm(x, gamma: w, beta: beta, count: n, eps: 1e-12, out: &out)
            // n == 1: the variance is 0 and (x − mean) is exactly 0, so the output is beta.
            assertClose(out, ScalarReference.layerNorm(x, gamma: w, beta: beta, eps: 1e-12), absolute: 2e-5,
                        relative: 1e-5, "layerNorm n=\(n)")
        }
    }

    func testSoftmax() {
        for n in awkwardSizes {
            var x = randomFloats(n, in: -30...30, seed: 8)
            let expected = ScalarReference.softmax(x)
            VectorOps.softmax(&x, count: n)
            assertClose(x, expected, absolute: 1e-7, relative: 1e-5, "softmax n=\(n)")
            XCTAssertEqual(x.reduce(0, +), 1, accuracy: 1e-5)
        }
        // Huge values must not overflow (max subtraction), masked entries (−∞) give 0.
        var y: [Float] = [1000, 999, -.infinity, 998]
        VectorOps.softmax(&y, count: 4)
        assertClose(y, ScalarReference.softmax([1000, 999, -.infinity, 998]), absolute: 1e-7, "softmax large")
        var masked: [Float] = [-.infinity, -.infinity, -.infinity]
        VectorOps.softmax(&masked, count: 3)
        XCTAssertEqual(masked, [0, 0, 0])
    }

    func testActivations() {
        for n in awkwardSizes {
            let x = randomFloats(n, in: -12...12, seed: 9)
            var s = x, gt = x, ge = x
            VectorOps.silu(&s, count: n)
            VectorOps.geluTanh(&gt, count: n)
            VectorOps.geluErf(&ge, count: n)
            assertClose(s, ScalarReference.silu(x), absolute: 2e-6, relative: 2e-6, "silu n=\(n)")
            assertClose(gt, ScalarReference.geluTanh(x), absolute: 2e-6, relative: 2e-6, "geluTanh n=\(n)")
            assertClose(ge, ScalarReference.geluErf(x), absolute: 2e-6, relative: 2e-6, "geluErf n=\(n)")
            let up = randomFloats(n, seed: 10)
            var out = [Float](repeating: 0, count: n)
            VectorOps.swiglu(gate: x, up: up, out: &out, count: n)
            assertClose(out, zip(ScalarReference.silu(x), up).map(*), absolute: 2e-6, relative: 2e-6, "swiglu n=\(n)")
        }
    }

    func testEveryCPUVariantMatchesReference() {
        // 1 = generic C, 2 = AVX2+FMA, 3 = AVX-512 (unsupported ones fall back to the best available).
        defer { swiftlet_vector_f32_select(0) }
        for variant in Int32(1)...3 {
            swiftlet_vector_f32_select(variant)
            let name = String(cString: swiftlet_vector_f32_kernel_name())
            for n in awkwardSizes {
                let a = randomFloats(n, in: -12...12, seed: 30), b = randomFloats(n, seed: 31)
                XCTAssertEqual(VectorOps.dot(a, b, count: n), ScalarReference.dot(a, b),
                               accuracy: 1e-3 * Float(n).squareRoot() + 1e-5, "\(name) dot n=\(n)")
                var s = a, gt = a, ge = a, sm = a
                VectorOps.silu(&s, count: n)
                VectorOps.geluTanh(&gt, count: n)
                VectorOps.geluErf(&ge, count: n)
                VectorOps.softmax(&sm, count: n)
                assertClose(s, ScalarReference.silu(a), absolute: 2e-6, relative: 2e-6, "\(name) silu n=\(n)")
                assertClose(gt, ScalarReference.geluTanh(a), absolute: 2e-6, relative: 2e-6, "\(name) geluTanh n=\(n)")
                assertClose(ge, ScalarReference.geluErf(a), absolute: 2e-6, relative: 2e-6, "\(name) geluErf n=\(n)")
                assertClose(sm, ScalarReference.softmax(a), absolute: 1e-7, relative: 1e-5, "\(name) softmax n=\(n)")
            }
            // Extremes: exp under/overflow inside the activations, NaN propagation, masked softmax.
            var extremes: [Float] = [-200, -100, -88, -87, 87, 88, 89, 100, 200]
            let expected = ScalarReference.silu(extremes)
            VectorOps.silu(&extremes, count: extremes.count)
            assertClose(extremes, expected, absolute: 1e-6, relative: 1e-6, "\(name) silu extremes")
            var withNaN: [Float] = [1, .nan, 2]
            VectorOps.silu(&withNaN, count: 3)
            XCTAssertTrue(withNaN[1].isNaN, "\(name) NaN must propagate")
            var masked: [Float] = [0, -.infinity, 1, -.infinity]
            VectorOps.softmax(&masked, count: 4)
            assertClose(masked, ScalarReference.softmax([0, -.infinity, 1, -.infinity]), absolute: 1e-7, "\(name) masked")
            var huge = [Float](repeating: 0, count: 40)
            huge[7] = 1e30
            VectorOps.softmax(&huge, count: 40)
            XCTAssertEqual(huge[7], 1, "\(name) softmax of a huge value")
        }
    }

    func testRoPEBothConventions() {
        for convention in RoPEConvention.allCases {
            for (heads, headDim, ropeDim) in [(1, 2, 2), (3, 64, 64), (2, 34, 34), (4, 128, 64), (2, 256, 256)] {
                for position in [0, 1, 17, 1000] {
                    let x = randomFloats(heads * headDim, seed: UInt64(position + headDim))
                    var y = x
                    RoPE.apply(&y, heads: heads, headDim: headDim, ropeDim: ropeDim, position: position, base: 10000,
                               convention: convention)
                    let expected = ScalarReference.rope(x, heads: heads, headDim: headDim, ropeDim: ropeDim,
                                                        position: position, base: 10000, convention: convention)
                    // Float angles at position 1000 differ from Double ones by ~1e-4 rad.
                    assertClose(y, expected, absolute: position >= 1000 ? 1e-3 : 2e-5,
                                "\(convention) heads=\(heads) dim=\(headDim)/\(ropeDim) pos=\(position)")
                    let table = try! RoPE.Table(ropeDim: ropeDim, base: 10000, maxPositions: 64)
                    var z = x
                    table.apply(&z, heads: heads, headDim: headDim, position: position, convention: convention)
                    XCTAssertEqual(z, y, "table \(convention) pos=\(position)")
                }
            }
        }
        XCTAssertThrowsError(try RoPE.Table(ropeDim: 3, base: 10000, maxPositions: 4))
    }

    func testRoPEConventionsDiffer() {
        // Interleaved rotates (0,1); NeoX rotates (0, d/2): known values for a unit vector.
        var a: [Float] = [1, 0, 0, 0], b: [Float] = [1, 0, 0, 0]
        RoPE.apply(&a, heads: 1, headDim: 4, ropeDim: 4, position: 1, base: 10000, convention: .interleaved)
        RoPE.apply(&b, heads: 1, headDim: 4, ropeDim: 4, position: 1, base: 10000, convention: .neox)
        assertClose(a, [cos(1), sin(1), 0, 0], absolute: 1e-6, "interleaved")
        assertClose(b, [cos(1), 0, sin(1), 0], absolute: 1e-6, "neox")
    }
}
