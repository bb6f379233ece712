import SwiftletCore
import SwiftletTensor

/// Quantizes `rows` rows of `columns` values from `src` into `dst` (rows of
/// `type.rowBytes(columns)` bytes) as ggml's `ggml_quantize_chunk` does: with `importance`
/// (`columns` weights, one per column) the importance-weighted algorithm of each type, without it
/// the reference one. Q8_0, F16, BF16 and F32 ignore `importance`, as in ggml.
///
/// - Throws: ``SwiftletError/unsupportedTensorType(_:)`` for a type SwiftletQuant cannot
///   quantize; ``SwiftletError/invalidArgument(_:)`` when `columns` is not a whole number of blocks.
public func quantizeRows(_ type: GGMLType, src: UnsafePointer<Float>, rows: Int, columns: Int,
                         into dst: UnsafeMutableRawPointer, importance: UnsafePointer<Float>?) throws {
    let rowBytes = try type.checkedBytes(columns, op: "quantize")
    guard rows > 0, columns > 0 else { return }
    guard let importance, type.usesImportance else {
        quantizeUnchecked(type, src, count: rows * columns, into: dst)
        return
    }
    for r in 0..<rows {
        quantizeWeightedRow(type, src + r * columns, columns: columns, into: dst + r * rowBytes, weights: importance)
    }
}

extension GGMLType {
    /// Whether ggml's quantizer for this type reads an importance matrix.
    public var usesImportance: Bool {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs: return true
        default: return false
        }
    }
}
