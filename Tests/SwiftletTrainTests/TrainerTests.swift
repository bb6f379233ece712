import XCTest
import SwiftletTensor
import SwiftletFormats
import SwiftletTestSupport
@testable import SwiftletTrain

final class TrainerTests: XCTestCase {
    static let corpus: String = {
        let url = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/train-corpus/Apache-2.0.txt")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    /// A model small enough for a unit test.
    static func smallConfiguration() -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.dim = 32; c.layerCount = 2; c.headCount = 4; c.kvHeadCount = 2; c.ffnDim = 64
        c.sequenceLength = 32; c.batchSize = 4; c.gradientAccumulation = 2
        c.maxSteps = 8; c.warmupSteps = 2; c.learningRate = 3e-3; c.evaluationInterval = 4; c.evaluationBatches = 2
        return c
    }

    private func temporaryURL(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-train-\(ProcessInfo.processInfo.processIdentifier)-\(name)")
    }

    func testCorpusIsThere() {
        XCTAssertEqual(Self.corpus.utf8.count, 11_358)
    }

    func testByteLevelVocabularyMapsEveryByteToItsToken() throws {
        let v = try TrainingVocabulary.byteLevel()
        XCTAssertEqual(v.size, 257)
        let text = "Hello, wörld!\n\t  x"
        XCTAssertEqual(v.encode(text), Array(text.utf8).map { Int32($0) })
        XCTAssertEqual(v.tokenizer.decode(v.encode(text)), text)
    }

    func testLossFallsAndValidationIsReported() throws {
        var c = Self.smallConfiguration()
        c.maxSteps = 100; c.evaluationInterval = 50; c.warmupSteps = 5
        let trainer = try Trainer(configuration: c, vocabulary: .byteLevel(), text: Self.corpus)
        let first = trainer.validationLoss()
        XCTAssertEqual(Double(first), log(257), accuracy: 0.1, "an untrained model is near uniform")
        var reports: [StepReport] = []
        for _ in 0..<c.maxSteps { reports.append(trainer.trainStep()) }
        let last = trainer.validationLoss()
        XCTAssertLessThan(Double(last), trainer.dataset.unigramEntropy + 0.3, "validation loss \(last)")
        print("validation loss \(first) -> \(last), unigram entropy \(trainer.dataset.unigramEntropy)")
        XCTAssertLessThan(reports.last!.loss, reports.first!.loss - 2)
        XCTAssertTrue(reports.allSatisfy { $0.tokensPerSecond > 0 && $0.gradientNorm.isFinite })
    }

    func testCheckpointResumesBitIdentically() throws {
        let c = Self.smallConfiguration()
        let straight = try Trainer(configuration: c, vocabulary: .byteLevel(), text: Self.corpus)
        var straightLosses: [Float] = []
        for _ in 0..<c.maxSteps { straightLosses.append(straight.trainStep().loss) }

        let first = try Trainer(configuration: c, vocabulary: .byteLevel(), text: Self.corpus)
        var losses: [Float] = []
        for _ in 0..<5 { losses.append(first.trainStep().loss) }
        let url = temporaryURL("resume.gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try first.saveCheckpoint(to: url)

        var other = c
        other.seed = 2 // different initial weights and data order, all replaced by the checkpoint...
        XCTAssertThrowsError(try Trainer(configuration: other, vocabulary: .byteLevel(), text: Self.corpus)
            .restoreCheckpoint(from: url), "...but a checkpoint of another configuration is refused")
        let resumed = try Trainer(configuration: c, vocabulary: .byteLevel(), text: Self.corpus)
        try resumed.restoreCheckpoint(from: url)
        XCTAssertEqual(resumed.step, 5)
        while resumed.step < c.maxSteps { losses.append(resumed.trainStep().loss) }
        XCTAssertEqual(losses.map(\.bitPattern), straightLosses.map(\.bitPattern))
        for (a, b) in zip(straight.model.parameters.parameters, resumed.model.parameters.parameters) {
            XCTAssertEqual(a.values.map(\.bitPattern), b.values.map(\.bitPattern), a.name)
        }
    }

    func testStepAllocatesNothingAfterTheFirst() throws {
        let trainer = try Trainer(configuration: Self.smallConfiguration(), vocabulary: .byteLevel(), text: Self.corpus)
        trainer.trainStep()
        guard AllocationCounter.available else { throw XCTSkip("allocation hook unavailable") }
        let n = AllocationCounter.fewestAllocations { trainer.trainStep() }
        XCTAssertEqual(n, 0)
    }

    func testReportsStreamAndCancellation() async throws {
        var c = Self.smallConfiguration()
        c.maxSteps = 1000
        let trainer = try Trainer(configuration: c, vocabulary: .byteLevel(), text: Self.corpus)
        var seen = 0
        for try await report in trainer.reports() {
            seen += 1
            XCTAssertEqual(report.step, seen)
            if seen == 3 { break } // ends the stream: training stops
        }
        // The step in flight when the stream ended may still finish; then the count stays put
        // (a training loop that ignored cancellation would pass 10 steps within these waits).
        var stoppedAt = trainer.step
        for _ in 0..<20 {
            try await Task.sleep(nanoseconds: 300_000_000)
            if trainer.step == stoppedAt { break }
            stoppedAt = trainer.step
        }
        XCTAssertLessThan(stoppedAt, 10)
        XCTAssertEqual(trainer.step, stoppedAt)
    }

    func testBadInputIsRefusedBeforeTraining() throws {
        let v = try TrainingVocabulary.byteLevel()
        let c = Self.smallConfiguration()
        XCTAssertThrowsError(try Trainer(configuration: c, vocabulary: v, text: "")) {
            XCTAssertTrue("\($0)".contains("empty"), "\($0)")
        }
        XCTAssertThrowsError(try Trainer(configuration: c, vocabulary: v, text: String(repeating: "a", count: 40))) {
            XCTAssertTrue("\($0)".contains("too short"), "\($0)")
        }
        var heads = c
        heads.headCount = 5
        XCTAssertThrowsError(try Trainer(configuration: heads, vocabulary: v, text: Self.corpus)) {
            XCTAssertTrue("\($0)".contains("do not divide the width"), "\($0)")
        }
        var kv = c
        kv.kvHeadCount = 3
        XCTAssertThrowsError(try Trainer(configuration: kv, vocabulary: v, text: Self.corpus))
        let trainer = try Trainer(configuration: c, vocabulary: v, text: Self.corpus)
        XCTAssertThrowsError(try trainer.exportGGUF(to: URL(fileURLWithPath: "/nonexistent-dir/model.gguf")))
    }

    func testExportedGGUFRoundTrips() throws {
        let trainer = try Trainer(configuration: Self.smallConfiguration(), vocabulary: .byteLevel(), text: Self.corpus)
        trainer.trainStep()
        let url = temporaryURL("export.gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        for precision in ExportPrecision.allCases {
            try trainer.exportGGUF(to: url, precision: precision)
            let file = try GGUFFile(url: url)
            XCTAssertEqual(try LlamaGGUF.shape(of: file), trainer.shape)
            XCTAssertEqual(try file.string("tokenizer.ggml.model"), "gpt2")
            let loaded = try LlamaTrainingModel.makeParameters(trainer.shape)
            try LlamaGGUF.loadParameters(loaded, from: file)
            for (a, b) in zip(trainer.model.parameters.parameters, loaded.parameters) {
                if precision == .f32 || a.rows == 1 {
                    XCTAssertEqual(a.values, b.values, a.name)
                } else {
                    XCTAssertEqual(a.values.map { HalfPrecision.float(fromF16: HalfPrecision.f16(from: $0)) }, b.values, a.name)
                }
            }
        }
    }
}
