// Fuzz targets `bpe`, `spm`, `wordpiece`: the three tokenizers, built from the real models'
// vocabularies, on arbitrary bytes read as text (invalid UTF-8 repaired as `String` does),
// with special-token parsing for inputs of odd length, without for even.
//
// Invariants beyond "no crash": every id is inside the vocabulary; byte-level BPE decodes back
// to text without control, format or unassigned characters exactly (those llama.cpp's BPE drops
// too, and Swiftlet matches it); WordPiece truncated to a length is a prefix of the whole.
import Foundation
import SwiftletFormats
import SwiftletTokenizers

final class TokenizerUnderTest {
    enum Kind {
        case gguf(any Tokenizer, lossless: Bool)
        case wordPiece(WordPieceTokenizer)
    }
    let kind: Kind

    init(_ target: FuzzTarget, models: URL) throws {
        switch target {
        case .bpe:
            let url = models.appendingPathComponent("smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf")
            kind = .gguf(try Tokenizers.load(gguf: GGUFFile(url: url)), lossless: true)
        case .spm:
            let url = models.appendingPathComponent("gemma-3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf")
            kind = .gguf(try Tokenizers.load(gguf: GGUFFile(url: url)), lossless: false)
        default:
            kind = .wordPiece(try WordPieceTokenizer(directory: models.appendingPathComponent("all-minilm-l6-v2")))
        }
    }

    func run(_ input: UnsafeRawBufferPointer) -> CInt {
        let text = String(decoding: input, as: UTF8.self)
        switch kind {
        case let .gguf(tokenizer, lossless):
            // One mode per input, picked by the length's parity (not by a byte, so special-token
            // markup at either end still meets both modes): each encode pass costs as much as the
            // rest of the execution, and libFuzzer explores both modes either way.
            let parseSpecial = input.count & 1 == 1
            let ids = tokenizer.encode(text, addSpecial: parseSpecial, parseSpecial: parseSpecial)
            for id in ids where id < 0 || Int(id) >= tokenizer.vocabularySize {
                fatalError("token id \(id) outside the vocabulary of \(tokenizer.vocabularySize)")
            }
            let decoded = tokenizer.decode(ids)
            if lossless && !parseSpecial && decoded != text && text.unicodeScalars.allSatisfy(isPrintable) {
                fatalError("byte-level BPE did not decode back to its input: \(Array(text.utf8)) -> \(ids)")
            }
        case let .wordPiece(tokenizer):
            let all = tokenizer.tokenize(text)
            for id in all where id < 0 || Int(id) >= tokenizer.vocabularySize {
                fatalError("token id \(id) outside the vocabulary of \(tokenizer.vocabularySize)")
            }
            let length = 2 + Int(input.first ?? 0) % 24
            let truncated = tokenizer.encode(text, maxLength: length)
            guard truncated == [tokenizer.clsID] + all.prefix(length - 2) + [tokenizer.sepID] else {
                fatalError("encode(maxLength: \(length)) is not the truncated tokenization of \(Array(text.utf8))")
            }
            _ = tokenizer.decode(all)
        }
        return 0
    }
}

/// Not a control, format, surrogate, private-use or unassigned character (tab, newline and
/// carriage return are printable here).
private func isPrintable(_ s: Unicode.Scalar) -> Bool {
    if s == "\t" || s == "\n" || s == "\r" { return true }
    switch s.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned: return false
    default: return true
    }
}
