import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet chat-template`: renders a conversation with a model's (or a file's) chat template
/// and prints the prompt exactly, so templates can be checked from the shell.
struct ChatTemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-template",
        abstract: "Render a conversation with a chat template and print the prompt exactly.",
        discussion: """
            MESSAGES is a JSON array of {"role", "content", …} objects; TOOLS a JSON array of tool \
            definitions ({"type": "function", "function": {name, description, parameters}}). With -m the \
            template, BOS and EOS come from the GGUF file (a file without a template uses its architecture's \
            default). Nothing is added to the output: no trailing newline.
            """)

    @Option(name: [.short, .customLong("model")], help: "GGUF model file whose tokenizer.chat_template to use.")
    var m: String?
    @Option(name: .customLong("template"), help: "Jinja template file.")
    var template: String?
    @Option(name: .customLong("messages"), help: "JSON file with the messages.")
    var messages: String
    @Option(name: .customLong("tools"), help: "JSON file with the tool definitions.")
    var tools: String?
    @Option(name: .customLong("context"), help: "JSON file with an object of extra template variables.")
    var context: String?
    @Flag(name: .customLong("add-generation-prompt"), help: "End with the opening of the assistant's turn.")
    var addGenerationPrompt = false
    @Option(name: .customLong("bos"), help: "Text of bos_token (default: the model's, or empty).")
    var bos: String?
    @Option(name: .customLong("eos"), help: "Text of eos_token (default: the model's, or empty).")
    var eos: String?
    @Option(name: .customLong("date"), help: "Date strftime_now formats, YYYY-MM-DD (default: now).")
    var date: String?

    func validate() throws {
        guard (m == nil) != (template == nil) else { throw ValidationError("give exactly one of -m MODEL.gguf or --template FILE.jinja") }
    }

    func run() throws {
        var bosText = "", eosText = ""
        let chatTemplate: ChatTemplate
        if let m {
            let file = try GGUFFile(url: URL(fileURLWithPath: m))
            chatTemplate = try ChatTemplate(gguf: file)
            let tokenizer = try Tokenizers.load(gguf: file)
            bosText = tokenizer.bosID.map { tokenizer.piece($0) } ?? ""
            eosText = tokenizer.eosID.map { tokenizer.piece($0) } ?? ""
        } else {
            chatTemplate = try ChatTemplate(template: try readText(template!))
        }
        var variables: [String: JinjaValue] = [:]
        if let context {
            guard case .object(let o) = try JinjaJSON.parse(try readText(context)) else {
                throw SwiftletError.invalidArgument("--context: expected a JSON object")
            }
            for (k, v) in o { variables[k] = v }
        }
        let text = try chatTemplate.render(
            messages: try JinjaJSON.parse(try readText(messages)),
            tools: try tools.map { try JinjaJSON.parse(try readText($0)) },
            addGenerationPrompt: addGenerationPrompt, bosToken: bos ?? bosText, eosToken: eos ?? eosText,
            context: variables, date: try date.map(parseDate))
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    private func parseDate(_ text: String) throws -> JinjaDate {
        let parts = text.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { throw ValidationError("--date: expected YYYY-MM-DD, got '\(text)'") }
        return JinjaDate(year: parts[0], month: parts[1], day: parts[2])
    }
}

func readText(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else { throw SwiftletError.io(path: path, reason: "cannot read") }
    return String(decoding: data, as: UTF8.self)
}
