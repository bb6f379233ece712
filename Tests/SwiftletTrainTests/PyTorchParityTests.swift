import XCTest
import SwiftletFormats
import SwiftletTestSupport
@testable import SwiftletTrain

/// The same tiny Llama, same initial weights (written by Swiftlet), same batch: loss and every
/// parameter gradient equal PyTorch's (Tests/Fixtures/train-pytorch/README.md says how the
/// fixture was made).
final class PyTorchParityTests: XCTestCase {
    func testLossAndGradientsMatchPyTorch() throws {
        let dir = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/train-pytorch")
        let initial = try GGUFFile(url: dir.appendingPathComponent("init.gguf"))
        let expected = try GGUFFile(url: dir.appendingPathComponent("expected.gguf"))
        let shape = try LlamaGGUF.shape(of: initial)
        let model = try LlamaTrainingModel(shape: shape, batch: try expected.int("swiftlet.test.batch"),
                                           sequenceLength: try expected.int("swiftlet.test.sequence_length"))
        try LlamaGGUF.loadParameters(model.parameters, from: initial)
        try model.inputs.set(try expected.int32Array("swiftlet.test.inputs"))
        try model.targets.set(try expected.int32Array("swiftlet.test.targets"))

        let loss = model.forward()
        model.backward()
        let torchLoss = try expected.float("swiftlet.test.loss")
        let lossError = abs(Double(loss) - Double(torchLoss)) / Double(torchLoss)
        XCTAssertLessThanOrEqual(lossError, 1e-5, "loss \(loss) vs PyTorch \(torchLoss)")

        var worst = (name: "", error: 0.0)
        for p in model.parameters.parameters {
            let reference = try Variable(name: "grad." + p.name, rows: p.rows, columns: p.columns, requiresGrad: false)
            try LlamaGGUF.load(reference, from: expected)
            let r = reference.values, g = p.gradients
            let scale = r.map { Double(abs($0)) }.max() ?? 0
            XCTAssertGreaterThan(scale, 0, "\(p.name): PyTorch gradient is zero")
            let maxDiff = zip(g, r).map { Double(abs($0 - $1)) }.max() ?? 0
            let error = maxDiff / scale
            if error > worst.error { worst = (p.name, error) }
            XCTAssertLessThanOrEqual(error, 1e-4, "\(p.name): max |Δ| / max |g| = \(error)")
        }
        print(String(format: "PyTorch parity: loss relative error %.2e, worst gradient %@ %.2e", lossError, worst.name, worst.error))
    }
}
