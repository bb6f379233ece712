import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet similarity`: cosine similarity of two texts' embeddings.
struct SimilarityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similarity",
        abstract: "Print the cosine similarity of two texts under a sentence-embedding model.")

    @Option(name: .shortAndLong, help: "Model directory (config.json, model.safetensors, tokenizer).")
    var model: String
    @OptionGroup var threads: ThreadOptions

    @Argument(help: "The first text.")
    var first: String

    @Argument(help: "The second text.")
    var second: String

    func run() throws {
        let embedder = try EmbeddingModel(directory: URL(fileURLWithPath: model))
        let vectors = try embedder.embeddings(for: [first, second])
        print(EmbeddingModel.cosineSimilarity(vectors[0], vectors[1]))
    }
}
