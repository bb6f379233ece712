import Foundation
import SwiftletTensor
import SwiftletFormats

/// The slow, obviously-correct BERT forward pass: one sequence, plain scalar loops in `Double`
/// accumulation, no BLAS, no threads. It is the test oracle for ``BERTEncoder``'s fast path and
/// is never used for serving.
public enum BERTReference {
    /// Final hidden states of one sequence of token ids, `[ids.count × hidden]` row-major.
    public static func hiddenStates(config c: BERTConfig, weights w: BERTWeights, ids: [Int32]) throws -> [Float] {
        let n = ids.count, h = c.hiddenSize, heads = c.numAttentionHeads, d = c.headDim, inter = c.intermediateSize
        guard n >= 1, n <= c.maxPositionEmbeddings else {
            throw SwiftletError.contextOverflow(requested: n, limit: c.maxPositionEmbeddings)
        }
        for id in ids where id < 0 || Int(id) >= c.vocabSize {
            throw SwiftletError.invalidArgument("token id \(id) outside the vocabulary (\(c.vocabSize))")
        }
        var x = [Float](repeating: 0, count: n * h)
        for t in 0..<n {
            for j in 0..<h {
                x[t * h + j] = w.wordEmbeddings.pointer[Int(ids[t]) * h + j] + w.positionEmbeddings.pointer[t * h + j]
                    + w.tokenTypeEmbeddings.pointer[j]
            }
        }
        x = layerNorm(x, rows: n, width: h, gamma: w.embeddingNormWeight, beta: w.embeddingNormBias, eps: c.layerNormEps)
        for layer in w.layers {
            let qkv = linear(x, rows: n, inWidth: h, outWidth: 3 * h, weight: layer.qkvWeight, bias: layer.qkvBias)
            var context = [Float](repeating: 0, count: n * h)
            let scale = 1 / Double(d).squareRoot()
            for head in 0..<heads {
                for i in 0..<n {
                    var scores = [Double](repeating: 0, count: n)
                    for j in 0..<n {
                        var s = 0.0
                        for e in 0..<d { s += Double(qkv[i * 3 * h + head * d + e]) * Double(qkv[j * 3 * h + h + head * d + e]) }
                        scores[j] = s * scale
                    }
                    let m = scores.max()!
                    var total = 0.0
                    for j in 0..<n { scores[j] = Foundation.exp(scores[j] - m); total += scores[j] }
                    for e in 0..<d {
                        var acc = 0.0
                        for j in 0..<n { acc += scores[j] / total * Double(qkv[j * 3 * h + 2 * h + head * d + e]) }
                        context[i * h + head * d + e] = Float(acc)
                    }
                }
            }
            var attended = linear(context, rows: n, inWidth: h, outWidth: h, weight: layer.attentionOutputWeight, bias: layer.attentionOutputBias)
            for k in 0..<(n * h) { attended[k] += x[k] }
            x = layerNorm(attended, rows: n, width: h, gamma: layer.attentionNormWeight, beta: layer.attentionNormBias, eps: c.layerNormEps)
            var up = linear(x, rows: n, inWidth: h, outWidth: inter, weight: layer.intermediateWeight, bias: layer.intermediateBias)
            for k in 0..<up.count {
                let v = Double(up[k])
                up[k] = Float(0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot())))
            }
            var down = linear(up, rows: n, inWidth: inter, outWidth: h, weight: layer.outputWeight, bias: layer.outputBias)
            for k in 0..<(n * h) { down[k] += x[k] }
            x = layerNorm(down, rows: n, width: h, gamma: layer.outputNormWeight, beta: layer.outputNormBias, eps: c.layerNormEps)
        }
        return x
    }

    static func linear(_ x: [Float], rows: Int, inWidth: Int, outWidth: Int, weight: WeightBuffer, bias: WeightBuffer) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outWidth)
        for r in 0..<rows {
            for o in 0..<outWidth {
                var s = Double(bias.pointer[o])
                for k in 0..<inWidth { s += Double(x[r * inWidth + k]) * Double(weight.pointer[o * inWidth + k]) }
                y[r * outWidth + o] = Float(s)
            }
        }
        return y
    }

    static func layerNorm(_ x: [Float], rows: Int, width: Int, gamma: WeightBuffer, beta: WeightBuffer, eps: Float) -> [Float] {
        var y = x
        for r in 0..<rows {
            var mean = 0.0
            for j in 0..<width { mean += Double(x[r * width + j]) }
            mean /= Double(width)
            var variance = 0.0
            for j in 0..<width { let dv = Double(x[r * width + j]) - mean; variance += dv * dv }
            variance /= Double(width)
            let inv = 1 / (variance + Double(eps)).squareRoot()
            for j in 0..<width {
                y[r * width + j] = Float((Double(x[r * width + j]) - mean) * inv) * gamma.pointer[j] + beta.pointer[j]
            }
        }
        return y
    }
}
