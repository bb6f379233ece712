// Fuzz target `gguf`: the GGUF reader (and, on inputs that parse, the writer). The input is
// parsed in place (no copy), so the parser sees exactly libFuzzer's heap buffer and
// AddressSanitizer turns any read outside it into a crash.
//
// Invariants checked beyond "no crash": every error is a SwiftletError; a file that parses has
// every tensor inside it; writing a parsed file and parsing that again gives the same tables,
// and writing is idempotent.
import Foundation
import SwiftletFormats
import SwiftletQuant
import SwiftletTensor

func fuzzGGUF(_ input: UnsafeRawBufferPointer) -> CInt {
    let size = input.count
    let file: GGUFFile
    do {
        file = try GGUFFile(storage: MappedFile(unsafeBorrowing: input))
    } catch is SwiftletError {
        return 0
    } catch {
        fatalError("untyped error from the GGUF reader: \(error)")
    }

    var tensorBytes = 0
    for t in file.tensors {
        let view = file.data(for: t)
        guard view.count == t.byteCount, t.offset >= file.dataOffset, t.offset + t.byteCount <= size else {
            fatalError("tensor \(t.name) outside the file")
        }
        if let first = view.first, let last = view.last { keep(first ^ last) }
        tensorBytes += t.byteCount
    }
    for key in file.metadataKeys {
        _ = try? file.intIfPresent(key)
        _ = try? file.floatIfPresent(key)
        _ = try? file.stringArrayIfPresent(key)
        _ = try? file.intArrayIfPresent(key)
    }

    // Round trip, unless tensors overlap so much that rewriting would balloon.
    guard tensorBytes <= 4 * size + 4096 else { return 0 }
    do {
        let written = try GGUFWriter(copying: file).serialized()
        let reread = try GGUFFile(bytes: written)
        guard reread.metadataKeys == file.metadataKeys,
              reread.tensors.map(\.name) == file.tensors.map(\.name),
              reread.tensors.map(\.shape) == file.tensors.map(\.shape),
              reread.tensors.map(\.type) == file.tensors.map(\.type)
        else { fatalError("written file reads back differently") }
        for (a, b) in zip(file.tensors, reread.tensors) where !file.data(for: a).elementsEqual(reread.data(for: b)) {
            fatalError("tensor \(a.name) changed in the round trip")
        }
        guard try GGUFWriter(copying: reread).serialized() == written else { fatalError("writing is not idempotent") }
    } catch is SwiftletError {
        // The writer is stricter than the reader (tensor names longer than ggml accepts).
    } catch {
        fatalError("untyped error from the GGUF writer: \(error)")
    }
    return 0
}

/// Synthetic seed files (every value type and every tensor type, which the real models lack).
func writeGGUFSeeds(to base: URL) throws {
    try syntheticSeed(version: 3, alignment: nil).write(to: base.appendingPathComponent("synthetic-all-types.gguf"))
    try syntheticSeed(version: 2, alignment: 8).write(to: base.appendingPathComponent("synthetic-v2-align8.gguf"))
    var empty = GGUFWriter()
    empty.set("general.architecture", .string("none"))
    try empty.write(to: base.appendingPathComponent("synthetic-no-tensors.gguf"))
}

/// A small file with every metadata value type (nested and empty arrays included) and one
/// small tensor of every GGML type.
func syntheticSeed(version: UInt32, alignment: UInt32?) throws -> GGUFWriter {
    var w = GGUFWriter()
    w.version = version
    w.set("general.architecture", .string("llama"))
    if let alignment { w.set("general.alignment", .uint32(alignment)) }
    w.set("llama.block_count", .uint32(2))
    w.set("u8", .uint8(1)); w.set("i8", .int8(-1)); w.set("u16", .uint16(2)); w.set("i16", .int16(-2))
    w.set("i32", .int32(-3)); w.set("u64", .uint64(4)); w.set("i64", .int64(-4))
    w.set("f32", .float32(0.5)); w.set("f64", .float64(0.25)); w.set("b", .bool(true))
    w.set("tokenizer.ggml.tokens", .array(.string(["<s>", "</s>", "a", "b", "ab"])))
    w.set("tokenizer.ggml.scores", .array(.float32([0, 0, -1, -2, -3])))
    w.set("tokenizer.ggml.token_type", .array(.int32([3, 3, 1, 1, 1])))
    w.set("nested", .array(.array([.uint8([1]), .string(["x"]), .array([.bool([false])]), .int64([])])))
    w.set("u8s", .array(.uint8([1, 2]))); w.set("f64s", .array(.float64([1])))
    for type in GGMLType.allCases {
        let traits = type.traits
        let bytes = Data((0 ..< traits.typeSize * 2).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        try w.addTensor(name: "t.\(type)", type: type, shape: [traits.blockSize, 2], data: bytes)
    }
    return w
}
