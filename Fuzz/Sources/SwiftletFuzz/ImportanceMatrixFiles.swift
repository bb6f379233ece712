// Fuzz target `imatrix`: llama-imatrix's files as llama-quantize reads them, GGUF (when the input
// starts with the GGUF magic) or the legacy `.dat` layout; a file that reads is written back in
// the legacy format and must read back with the same entries.
import Foundation
import SwiftletFormats
import SwiftletQuant
import SwiftletTensor

func fuzzImportanceMatrix(_ input: UnsafeRawBufferPointer) -> CInt {
    do {
        let storage = MappedFile(unsafeBorrowing: input)
        let matrix: ImportanceMatrix
        let isGGUF = input.count >= 4 && input.loadUnaligned(as: UInt32.self) == UInt32(littleEndian: 0x4655_4747)
        if isGGUF {
            matrix = try ImportanceMatrix(gguf: GGUFFile(storage: storage))
        } else {
            matrix = try ImportanceMatrix(legacyBytes: input, path: "imatrix.dat")
        }
        if !isGGUF {
            let written = matrix.legacyBytes()
            let reread = try written.withUnsafeBytes { try ImportanceMatrix(legacyBytes: $0, path: "rewritten.dat") }
            // Entries that saw no call are not written (as llama-imatrix).
            let kept = matrix.entries.filter { $0.value.counts.contains { $0 != 0 } }
            guard reread.entries.keys.sorted() == kept.keys.sorted() else { fatalError("legacy imatrix round trip lost entries") }
        }
    } catch is SwiftletError {
        return 0
    } catch {
        fatalError("untyped error: \(error)")
    }
    return 0
}
