import ArgumentParser
import Swiftlet

@main
struct SwiftletCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftlet",
        abstract: "On-device model inference: generate, embed, quantize, benchmark.",
        subcommands: [InfoCommand.self, TokenizeCommand.self, EmbedCommand.self, SimilarityCommand.self,
                      GenerateCommand.self, ChatCommand.self, PerplexityCommand.self, BenchCommand.self,
                      DumpActivationsCommand.self, QuantizeCommand.self, DequantizeCommand.self,
                      TrainCommand.self, ImatrixCommand.self, ConvertCommand.self, QuantReportCommand.self, ChatTemplateCommand.self,
                      FinetuneCommand.self, ExportLoRACommand.self, ServeCommand.self, BatchedBenchCommand.self]
    )
}
