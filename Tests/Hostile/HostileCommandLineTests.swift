import Foundation
import XCTest
@testable import SwiftletCLI

/// Command-line options as llama.cpp's tools accept them, and clear errors for values that make
/// no sense.
final class HostileCommandLineTests: XCTestCase {
    private let model = ["-m", "model.gguf", "-p", "Hi"]

    func testNegativeTokenCountIsAValue() throws {
        XCTAssertEqual(try GenerateCommand.parse(model + ["-n", "-1"]).sampling.n, -1)
        XCTAssertEqual(try GenerateCommand.parse(model + ["-n=-1"]).sampling.n, -1)
        XCTAssertEqual(try GenerateCommand.parse(model + ["-n", "-2"]).sampling.parameters.maxTokens, -2)
        XCTAssertEqual(try GenerateCommand.parse(model + ["-n", "9223372036854775807"]).sampling.n, .max)
        XCTAssertThrowsError(try GenerateCommand.parse(model + ["-n", "9223372036854775808"]))
        XCTAssertEqual(try GenerateCommand.parse(model + ["--repeat-last-n", "-1"]).sampling.samplingParameters.penaltyWindow, -1)
        XCTAssertThrowsError(try GenerateCommand.parse(model + ["--repeat-last-n", "-2"]))
    }

    func testSamplingOptionsAreValidated() {
        for (option, value, named) in [("--temp", "nan", "temperature"), ("--top-p", "2", "top-p"), ("--min-p", "nan", "min-p"),
                                       ("--repeat-penalty", "0", "repeat penalty"), ("--presence-penalty", "inf", "presence penalty")] {
            XCTAssertThrowsError(try GenerateCommand.parse(model + [option, value]), option) { error in
                let message = GenerateCommand.message(for: error)
                XCTAssertTrue(message.hasPrefix(named), "\(option) \(value): \(message)")
            }
        }
        XCTAssertNoThrow(try GenerateCommand.parse(model + ["--temp", "0", "--top-p", "1", "--min-p", "0", "--top-k", "0"]))
    }

    func testAbsurdFineTuneSettingsAreRefused() {
        let base = ["-m", "model.gguf", "--data", "data.txt", "--lora-out", "out.gguf"]
        for extra in [["--seq", "9223372036854775807"], ["--seq", "65537"], ["--seq", "1"], ["--lr", "inf"], ["--lr", "nan"],
                      ["--lr", "0"], ["--batch", "0"], ["--max-steps", "0"], ["-t", "100000"]] {
            XCTAssertThrowsError(try FinetuneCommand.parse(base + extra), extra.joined(separator: " "))
        }
        XCTAssertNoThrow(try FinetuneCommand.parse(base + ["--seq", "65536", "--lr", "1e-4"]))
    }
}
