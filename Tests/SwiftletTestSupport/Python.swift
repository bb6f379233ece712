import Foundation
import XCTest
import SwiftletTensor

/// python3 for tests that compare with gguf-py or run a repository script.
public enum Python {
    /// Makes sure python3 can import gguf-py (installed by `make test`'s set-up,
    /// scripts/install-deps.sh). Without it the test is skipped, unless `SWIFTLET_REQUIRE_MODELS=1`
    /// (CI), where it fails.
    public static func requireGGUFPy() throws {
        if (try? run(["-c", "import gguf"]))?.0 == 0 { return }
        throw skipOrFail("python3 with gguf-py unavailable (pip install gguf)")
    }

    public static func skipOrFail(_ message: String) -> Error {
        if ProcessInfo.processInfo.environment["SWIFTLET_REQUIRE_MODELS"] == "1" {
            return SwiftletError.backendUnavailable(message)
        }
        return XCTSkip(message)
    }

    /// Runs `python3 ARGS`, returning status, stdout and stderr.
    public static func run(_ arguments: [String]) throws -> (Int32, Data, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Drain stderr concurrently and stdout here: a large dump would otherwise fill a pipe and block.
        nonisolated(unsafe) var errData = Data()
        let errDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); errDone.signal() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        errDone.wait()
        process.waitUntilExit()
        return (process.terminationStatus, outData, String(decoding: errData, as: UTF8.self))
    }
}
