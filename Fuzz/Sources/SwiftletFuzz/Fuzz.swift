// libFuzzer entry points. One binary fuzzes one target per run, named by SWIFTLET_FUZZ_TARGET
// (see `FuzzTarget`); scripts/fuzz.sh runs each in turn. libFuzzer supplies `main`.
//
// Environment:
//   SWIFTLET_FUZZ_TARGET  gguf | safetensors | imatrix | bpe | spm | wordpiece
//   SWIFTLET_MODELS_DIR   the real models (tokenizer targets build their tokenizer from them)
//   SWIFTLET_FUZZ_SEEDS   if set, synthetic seeds of the target are written there at start-up
import Foundation
import SwiftletFormats
import SwiftletTokenizers

enum FuzzTarget: String, CaseIterable {
    case gguf, safetensors, imatrix, bpe, spm, wordpiece
}

/// What the process fuzzes, fixed in `LLVMFuzzerInitialize` before the first input.
final class FuzzState: @unchecked Sendable {
    var target = FuzzTarget.gguf
    var tokenizer: TokenizerUnderTest?
    var sink: UInt8 = 0
}
nonisolated(unsafe) let state = FuzzState()

/// Keeps the optimizer from dropping reads whose result is otherwise unused.
@inline(never)
func keep(_ byte: UInt8) { state.sink ^= byte }

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?,
                           _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    let environment = ProcessInfo.processInfo.environment
    let name = environment["SWIFTLET_FUZZ_TARGET"] ?? "gguf"
    guard let target = FuzzTarget(rawValue: name) else {
        fatalError("SWIFTLET_FUZZ_TARGET=\(name): expected one of \(FuzzTarget.allCases.map(\.rawValue))")
    }
    state.target = target
    let models = URL(fileURLWithPath: environment["SWIFTLET_MODELS_DIR"] ?? "Models/cache")
    do {
        switch target {
        case .gguf, .safetensors, .imatrix: break
        case .bpe, .spm, .wordpiece: state.tokenizer = try TokenizerUnderTest(target, models: models)
        }
        if let dir = environment["SWIFTLET_FUZZ_SEEDS"] {
            let base = URL(fileURLWithPath: dir)
            try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
            if target == .gguf { try writeGGUFSeeds(to: base) }
        }
    } catch {
        fatalError("fuzz set-up for \(name) failed: \(error)")
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    switch state.target {
    case .gguf: return fuzzGGUF(input)
    case .safetensors: return fuzzHuggingFaceFiles(input)
    case .imatrix: return fuzzImportanceMatrix(input)
    case .bpe, .spm, .wordpiece: return state.tokenizer!.run(input)
    }
}
