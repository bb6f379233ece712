import Foundation
import Swiftlet

// Usage: ChatSessions MODEL.gguf
// Two ChatSessions share one loaded model and answer from two tasks at once; each keeps its own
// conversation. A third session is cancelled in the middle of a long prompt.
guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: ChatSessions MODEL.gguf\n".utf8))
    exit(2)
}
let url = URL(fileURLWithPath: CommandLine.arguments[1])
let model = try await LanguageModel.load(url, contextLength: 1024) { progress in
    if progress.completedTensors == progress.totalTensors {
        FileHandle.standardError.write(Data("loaded \(progress.totalBytes / 1_000_000) MB\n".utf8))
    }
}

func converse(_ turns: [String]) async throws -> [String] {
    let session = ChatSession(model, instructions: "Answer in one short sentence.")
    session.parameters.sampling = .greedy
    session.parameters.maxTokens = 32
    var replies: [String] = []
    for turn in turns { replies.append(try await session.respond(to: turn)) }
    return replies
}

async let geography = converse(["What is the capital of France?", "Which river runs through it?"])
async let numbers = converse(["Name a prime number.", "Is it even?"])
for (name, replies) in try await [("geography", geography), ("numbers", numbers)] {
    for reply in replies { print("\(name): \(reply)") }
}

let clock = ContinuousClock()
let long = ChatSession(model)
let task = Task { try await long.respond(to: String(repeating: "All work and no play. ", count: 150)) }
try await Task.sleep(for: .milliseconds(100))
let cancelledAt = clock.now
task.cancel()
_ = await task.result
print("cancelled mid-prompt, returned after \(clock.now - cancelledAt)")
