// libFuzzer entry points. One binary fuzzes one target per run, named by SWIFTLET_FUZZ_TARGET
// (see `FuzzTarget`); scripts/fuzz.sh runs each in turn. libFuzzer supplies `main`.
//
// Environment:
//   SWIFTLET_FUZZ_TARGET  gguf | safetensors | imatrix | bpe | spm | wordpiece | jinja | grammar | server
//   SWIFTLET_MODELS_DIR   the real models (tokenizer targets build their tokenizer from them)
//   SWIFTLET_FIXTURES_DIR Tests/Fixtures (the jinja and grammar targets' seeds come from there)
//   SWIFTLET_FUZZ_SEEDS   if set, synthetic seeds of the target are written there at start-up
import Foundation
import SwiftletFormats
import SwiftletTokenizers

enum FuzzTarget: String, CaseIterable {
    case gguf, safetensors, imatrix, bpe, spm, wordpiece, jinja, grammar, server
}

/// What the process fuzzes, fixed in `LLVMFuzzerInitialize` before the first input.
final class FuzzState: @unchecked Sendable {
    var target = FuzzTarget.gguf
    var tokenizer: TokenizerUnderTest?
    var chatTemplate: ChatTemplateUnderTest?
    var grammar: GrammarUnderTest?
    var requests: RequestsUnderTest?
    var sink: UInt8 = 0

    func release() {
        tokenizer = nil; chatTemplate = nil; grammar = nil; requests = nil
    }
}
let state = FuzzState()

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
        case .jinja: state.chatTemplate = try ChatTemplateUnderTest()
        case .grammar: state.grammar = GrammarUnderTest()
        case .server: state.requests = try RequestsUnderTest(models: models)
        }
        if let dir = environment["SWIFTLET_FUZZ_SEEDS"] {
            let base = URL(fileURLWithPath: dir)
            try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
            let fixtures = URL(fileURLWithPath: environment["SWIFTLET_FIXTURES_DIR"] ?? "Tests/Fixtures")
            switch target {
            case .gguf: try writeGGUFSeeds(to: base)
            case .jinja: try ChatTemplateUnderTest.writeSeeds(fixtures: fixtures, to: base)
            case .grammar: try GrammarUnderTest.writeSeeds(fixtures: fixtures, to: base)
            default: break
            }
        }
    } catch {
        fatalError("fuzz set-up for \(name) failed: \(error)")
    }
    // Frees what the target built before LeakSanitizer's check at exit (which runs after this,
    // being registered before it): Swift keeps tag bits in the spare high bits of enum payload
    // pointers, which LeakSanitizer cannot follow, so a parsed template alive at exit would be
    // reported as leaked. Real leaks (cycles) stay unfreed and are still reported.
    atexit { state.release() }
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
    case .jinja: return state.chatTemplate!.run(input)
    case .grammar: return state.grammar!.run(input)
    case .server: return state.requests!.run(input)
    }
}
