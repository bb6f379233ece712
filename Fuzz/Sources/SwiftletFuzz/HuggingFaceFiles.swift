// Fuzz target `safetensors`: the files of a Hugging Face model folder. The first input byte
// picks the reader, the rest is the file: 0 a safetensors file (parsed in place, every float
// tensor converted), 1 a BERT `config.json` (decoded and validated), 2 a WordPiece
// `tokenizer.json` (loaded, then used once).
import Foundation
import SwiftletFormats
import SwiftletTensor
import SwiftletTokenizers

func fuzzHuggingFaceFiles(_ input: UnsafeRawBufferPointer) -> CInt {
    guard let selector = input.first else { return 0 }
    let file = UnsafeRawBufferPointer(rebasing: input.dropFirst())
    do {
        switch selector % 3 {
        case 0: try checkSafetensors(file)
        case 1:
            let config = try HFConfig.decode(BERTConfig.self, from: Data(file), path: "config.json")
            try config.validate()
            _ = try? HFConfig.decode(HFConfig.Header.self, from: Data(file), path: "config.json")
        default:
            let tokenizer = try WordPieceTokenizer(tokenizerJSON: Data(file), path: "tokenizer.json")
            for id in tokenizer.encode("hello [SEP] wörld 中文", maxLength: 16) where id < 0 || Int(id) >= tokenizer.vocabularySize {
                fatalError("token id \(id) outside the vocabulary of \(tokenizer.vocabularySize)")
            }
        }
    } catch is SwiftletError {
        return 0
    } catch {
        fatalError("untyped error: \(error)")
    }
    return 0
}

private func checkSafetensors(_ bytes: UnsafeRawBufferPointer) throws {
    let file = try SafetensorsFile(mapping: MappedFile(unsafeBorrowing: bytes), path: "model.safetensors")
    var previousEnd = 0
    for name in file.names {
        let info = try file.info(name)
        guard info.fileOffset >= previousEnd || info.byteCount == 0, info.fileOffset + info.byteCount <= bytes.count else {
            fatalError("tensor \(name) overlaps another or lies outside the file")
        }
        previousEnd = max(previousEnd, info.fileOffset + info.byteCount)
        let raw = try file.rawBytes(name)
        if let last = raw.last { keep(last) }
        if info.dtype.isFloatConvertible {
            let floats = try file.floats(name)
            guard floats.buffer.count == info.elementCount else { fatalError("tensor \(name): wrong element count") }
            if let last = floats.buffer.last { keep(UInt8(truncatingIfNeeded: last.bitPattern)) }
        }
    }
}
