import Foundation
import XCTest
import Swiftlet
import SwiftletTestSupport

/// `HFConverter` against llama.cpp's `convert_hf_to_gguf.py` (SHA-256 of the files it wrote from
/// the same folders, `Tests/Fixtures/convert/SOURCE.md`), and the converted MiniLM against
/// sentence-transformers' embeddings.
final class HFConverterTests: XCTestCase {
    /// SHA-256 of llama.cpp's converter output, by model and `--outtype`.
    private func expectedDigests(_ model: String) throws -> [String: String] {
        let url = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/convert/expected.json")
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        return try XCTUnwrap(root[model] as? [String: String])
    }

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-convert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func assertSameAsLlamaCpp(_ directory: URL, model: String) throws {
        let expected = try expectedDigests(model)
        let converter = try HFConverter(directory: directory)
        for type in HFConverter.OutputType.allCases {
            let bytes = try converter.makeWriter(outputType: type).serialized()
            XCTAssertEqual(SHA256.hex(bytes), expected[type.rawValue], "\(model) --outtype \(type.rawValue): not byte-identical to convert_hf_to_gguf.py")
        }
    }

    func testMiniLMIsByteIdenticalToLlamaCppConverter() throws {
        let directory = try RealModel.minilm.url()
        let converter = try HFConverter(directory: directory)
        XCTAssertEqual(converter.architecture, .bert)
        try assertSameAsLlamaCpp(directory, model: "all-minilm-l6-v2")
    }

    func testTinyLlamaIsByteIdenticalToLlamaCppConverter() throws {
        let smol = try GGUFFile(url: RealModel.smollm2.url())
        let parent = try ProcessInfo.processInfo.environment["SWIFTLET_CONVERT_FIXTURE_DIR"].map(URL.init(fileURLWithPath:))
            ?? temporaryDirectory()
        let directory = parent.appendingPathComponent("smollm2-tiny-random")
        try TinyLlamaCheckpoint.write(to: directory, smolLM2: smol)
        let converter = try HFConverter(directory: directory)
        XCTAssertEqual(converter.architecture, .llama)
        try assertSameAsLlamaCpp(directory, model: "smollm2-tiny-random")

        // Q and K rows are interleaved per head for ggml's RoPE; V is not touched.
        let output = parent.appendingPathComponent("tiny.f32.gguf")
        try converter.convert(to: output, outputType: .f32)
        let file = try GGUFFile(url: output)
        let source = try SafetensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        func rows(_ gguf: String) throws -> [Float] {
            let info = try XCTUnwrap(file.tensor(named: gguf))
            return Array(file.data(for: info).bindMemory(to: Float.self))
        }
        let headDim = TinyLlamaCheckpoint.hidden / TinyLlamaCheckpoint.heads, width = TinyLlamaCheckpoint.hidden
        let k = try source.floats("model.layers.1.self_attn.k_proj.weight").values, kGGUF = try rows("blk.1.attn_k.weight")
        for head in 0..<TinyLlamaCheckpoint.kvHeads {
            for i in 0..<headDim / 2 {
                for j in 0..<2 {
                    let from = (head * headDim + j * headDim / 2 + i) * width, to = (head * headDim + 2 * i + j) * width
                    XCTAssertEqual(Array(kGGUF[to..<to + width]), Array(k[from..<from + width]))
                }
            }
        }
        XCTAssertEqual(try rows("blk.0.attn_v.weight"), try source.floats("model.layers.0.self_attn.v_proj.weight").values)

    }

    func testConvertedTinyLlamaRunsInSwiftlet() async throws {
        let smol = try GGUFFile(url: RealModel.smollm2.url())
        let directory = try temporaryDirectory().appendingPathComponent("smollm2-tiny-random")
        try TinyLlamaCheckpoint.write(to: directory, smolLM2: smol)
        for type in [HFConverter.OutputType.f16, .q8_0] {
            let url = directory.deletingLastPathComponent().appendingPathComponent("tiny.\(type.rawValue).gguf")
            try HFConverter(directory: directory).convert(to: url, outputType: type)
            let model = try LanguageModel(url: url, contextLength: 64)
            XCTAssertEqual(model.tokenize("Hello world"), try Tokenizers.load(gguf: smol).encode("Hello world"))
            var parameters = GenerationParameters(maxTokens: 4)
            parameters.sampling = .greedy
            parameters.stopAtEndOfGeneration = false
            var generated = 0
            for try await chunk in model.generate(prompt: "Hello world", parameters: parameters) { generated += chunk.tokenIDs.count }
            XCTAssertEqual(generated, 4, type.rawValue)
        }
    }

    func testConvertedMiniLMEmbedsLikeSentenceTransformers() throws {
        let directory = try RealModel.minilm.url()
        let converter = try HFConverter(directory: directory)
        let items = try MiniLMItem.load("minilm.json")
        let out = try temporaryDirectory()
        for (type, bar) in [(HFConverter.OutputType.f16, 0.9999), (.q8_0, 0.999)] {
            let url = out.appendingPathComponent("minilm.\(type.rawValue).gguf")
            try converter.convert(to: url, outputType: type)
            let model = try EmbeddingModel(url: url)
            var worst = 1.0
            let vectors = try model.embeddings(for: items.map(\.text))
            for (item, vector) in zip(items, vectors) {
                XCTAssertEqual(try model.tokenize(item.text), item.ids, "ids of \(item.text.prefix(40))")
                let c = cosine(vector, item.embedding)
                worst = min(worst, c)
                XCTAssertGreaterThanOrEqual(c, bar, "\(type.rawValue): \(item.text.prefix(40))")
            }
            print("converted MiniLM \(type.rawValue): worst cosine to sentence-transformers over \(items.count) texts: \(worst)")
        }
    }

    func testErrorsAreTypedAndLeaveNoPartialOutput() throws {
        let empty = try temporaryDirectory()
        XCTAssertThrowsError(try HFConverter(directory: empty)) { error in
            guard case .io = error as? SwiftletError else { return XCTFail("\(error)") }
        }
        try Data(#"{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}"#.utf8).write(to: empty.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try HFConverter(directory: empty)) { error in
            guard case .unsupportedArchitecture = error as? SwiftletError else { return XCTFail("\(error)") }
        }

        // A checkpoint lacking a tensor its config needs.
        let minilm = try RealModel.minilm.url()
        let partial = try temporaryDirectory().appendingPathComponent("all-minilm-l6-v2")
        try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: minilm.appendingPathComponent(name), to: partial.appendingPathComponent(name))
        }
        let source = try SafetensorsFile(path: minilm.appendingPathComponent("model.safetensors").path)
        let kept = try source.tensors.keys.sorted().filter { $0 != "encoder.layer.3.output.dense.weight" }.map { name in
            let info = try source.info(name)
            return SafetensorsWriter.Tensor(name: name, dtype: info.dtype, shape: info.shape, bytes: Array(try source.rawBytes(name)))
        }
        try SafetensorsWriter.write(kept, to: partial.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try HFConverter(directory: partial).makeWriter(outputType: .f16)) { error in
            XCTAssertEqual(error as? SwiftletError, .missingTensor("blk.3.ffn_down.weight (from all-minilm-l6-v2)"))
        }

        // Unwritable outputs: a folder that does not exist, and a path that is a folder.
        let converter = try HFConverter(directory: minilm)
        let out = try temporaryDirectory()
        let blocked = out.appendingPathComponent("taken.gguf")
        try FileManager.default.createDirectory(at: blocked, withIntermediateDirectories: true)
        for target in [out.appendingPathComponent("missing/model.gguf"), blocked] {
            XCTAssertThrowsError(try converter.convert(to: target, outputType: .q8_0)) { error in
                guard case .io = error as? SwiftletError else { return XCTFail("\(error)") }
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), ["taken.gguf"], "no partial file left")
    }
}
