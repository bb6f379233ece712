import Foundation
import XCTest
import Swiftlet
import SwiftletBench
import SwiftletTestSupport

/// `swiftlet bench` must read like llama-bench: same statistics, table, JSON keys, model figures.
/// The expected strings and numbers below were printed by llama.cpp's llama-bench (build 0c1e570)
/// on the same files. Speed itself is never asserted here.
final class BenchReportTests: XCTestCase {
    func testStatisticsAreMeanAndBesselCorrectedStddev() {
        XCTAssertEqual(BenchStatistics.mean([10, 12, 14]), 12, accuracy: 1e-12)
        // ((−2)² + 0² + 2²) / (3 − 1) = 4 → 2
        XCTAssertEqual(BenchStatistics.sampleStddev([10, 12, 14]), 2, accuracy: 1e-12)
        XCTAssertEqual(BenchStatistics.sampleStddev([7]), 0)
        let r = BenchResult(test: BenchTest(generate: 128, threads: 2), samplesNs: [1_000_000_000, 2_000_000_000], testTime: "")
        XCTAssertEqual(r.samplesTs, [128, 64])
        XCTAssertEqual(r.averageTs, 96, accuracy: 1e-9)   // mean of the rates, as llama-bench
        XCTAssertEqual(r.averageNs, 1.5e9, accuracy: 1)
    }

    func testGridFollowsLlamaBenchOrderAndNames() {
        let tests = BenchTest.grid(prompts: [512, 0], generates: [128], threads: [1, 2])
        XCTAssertEqual(tests.map(\.name), ["pp512", "tg128", "pp512", "tg128"])
        XCTAssertEqual(tests.map(\.threads), [1, 1, 2, 2])
    }

    func testMarkdownTableHasLlamaBenchColumns() throws {
        let report = BenchReport(model: try smolInfo(), results: [
            BenchResult(test: BenchTest(prompt: 64, threads: 2), samplesNs: [1_000_000_000, 1_000_000_000], testTime: ""),
        ])
        let lines = report.markdown().split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "| model                          |       size |     params | backend    | threads |            test |                  t/s |")
        XCTAssertEqual(lines[1], "| ------------------------------ | ---------: | ---------: | ---------- | ------: | --------------: | -------------------: |")
        XCTAssertTrue(lines[2].contains("|  92.10 MiB |   134.52 M | CPU        |       2 |            pp64 |         64.00 ± 0.00 |"), lines[2])
    }

    func testJSONRecordsCarryLlamaBenchKeys() throws {
        let report = BenchReport(model: try smolInfo(), results: [
            BenchResult(test: BenchTest(generate: 16, threads: 2), samplesNs: [500_000_000, 1_000_000_000], testTime: "t"),
        ], memoryBandwidth: 1e10)
        let parsed = try JSONSerialization.jsonObject(with: Data(report.render(.json).utf8)) as? [[String: Any]]
        let record = try XCTUnwrap(parsed?.first)
        let llamaBenchKeys = ["build_commit", "build_number", "cpu_info", "gpu_info", "backends", "model_filename",
                              "model_type", "model_size", "model_n_params", "n_batch", "n_ubatch", "n_threads",
                              "cpu_mask", "cpu_strict", "poll", "type_k", "type_v", "n_gpu_layers", "split_mode",
                              "main_gpu", "no_kv_offload", "flash_attn", "tensor_split", "embeddings", "n_prompt",
                              "n_gen", "n_depth", "test_time", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts",
                              "samples_ns", "samples_ts"]
        XCTAssertEqual(llamaBenchKeys.filter { record[$0] == nil }, [])
        XCTAssertEqual(record["n_gen"] as? Int, 16)
        XCTAssertEqual(record["avg_ts"] as? Double ?? 0, 24, accuracy: 1e-6)   // (32 + 16) / 2
        XCTAssertNotNil(record["bandwidth_bound_fraction"])
        let csv = report.render(.csv).split(separator: "\n")
        XCTAssertEqual(csv.count, 2)
        XCTAssertTrue(csv[0].hasPrefix("build_commit,build_number,cpu_info"))
    }

    /// `model_size` and `model_n_params` as llama-bench reports them for SmolLM2-135M Q4_1.
    private func smolInfo() throws -> BenchModelInfo {
        let url = try RealModel.smollm2.url()
        let bench = try LlamaBench(url: url, contextLength: 1)
        XCTAssertEqual(bench.model.sizeBytes, 96_576_768)
        XCTAssertEqual(bench.model.parameterCount, 134_515_008)
        XCTAssertEqual(bench.model.filename, "SmolLM2-135M-Instruct.Q4_1.gguf")
        return bench.model
    }
}
