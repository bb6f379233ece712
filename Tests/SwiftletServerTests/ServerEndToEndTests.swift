import Foundation
import XCTest
import SwiftletTestSupport

/// `swiftlet serve` as a process with real third-party programs (scripts/server-e2e.py): headless
/// Chromium using the chat page, and nginx balancing two replicas. The script bounds every process
/// it starts (own process group, killed on exit, a deadline for the whole check); `timeout` bounds
/// the script itself, so a failure is a failure, never a hang.
final class ServerEndToEndTests: XCTestCase {
    private func runCheck(_ check: String, extra: [String] = []) throws {
        let binary = ServerClientsTests.productsDirectory.appendingPathComponent("swiftlet")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw Python.skipOrFail("the swiftlet executable is not built next to the tests: \(binary.path)")
        }
        let script = Fixtures.packageRoot.appendingPathComponent("scripts/server-e2e.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["-k", "10", "200", "python3", script, check, "--swiftlet", binary.path,
                             "--model", try RealModel.smollm2.url().path, "--deadline", "180"] + extra
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-e2e-\(check)-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close(); try? FileManager.default.removeItem(at: log) }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        print(output)
        if process.terminationStatus != 0, output.contains("is missing (scripts/install-deps.sh") {
            throw Python.skipOrFail(output)
        }
        XCTAssertEqual(process.terminationStatus, 0, output)
    }

    /// Chromium opens the chat page, sends a message and sees the reply stream into the DOM, equal
    /// to the API's greedy reply; a long reply is stopped with the Stop button.
    func testChatPageInHeadlessChromium() throws {
        let screenshot = ProcessInfo.processInfo.environment["SWIFTLET_SCREENSHOT"]
        try runCheck("browser", extra: screenshot.map { ["--screenshot", $0] } ?? [])
    }

    /// Two replicas behind nginx with docs/nginx/swiftlet.conf: requests spread over both, a stream
    /// passes unbuffered, and a killed replica is routed around.
    func testNginxSpreadsAndRoutesAroundAKilledReplica() throws {
        try runCheck("nginx")
    }
}
