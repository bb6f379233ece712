import Foundation
import SwiftletTensor
import SwiftletFormats
import SwiftletTokenizers

/// The tokenizer of a Hugging Face checkpoint (`tokenizer.json`, `tokenizer_config.json`,
/// `config.json`) read into GGUF `tokenizer.*` metadata as llama.cpp's converter writes it.
struct HFVocabulary {
    /// Token texts by id and their `TokenKind` raw values.
    var tokens: [String] = []
    var tokenTypes: [Int32] = []
    /// BPE merges (`"a b"`), empty for WordPiece.
    var merges: [String] = []
    /// The `tokenizer.json` model type (`WordPiece`, `BPE`).
    let modelType: String
    private let tokenizerJSON: HFJSON
    private let tokenizerConfig: HFJSON?
    private let directory: URL

    /// Reads `tokenizer.json` (required) and `tokenizer_config.json` of `directory`, and lays
    /// out `vocabSize` tokens (ids the tokenizer lacks become `[PAD<id>]`, unused).
    init(directory: URL, vocabSize: Int?) throws {
        self.directory = directory
        let url = directory.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw SwiftletError.io(path: url.path, reason: "no tokenizer.json (the converter reads the Hugging Face fast-tokenizer file)")
        }
        tokenizerJSON = try HFJSON.load(url)
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        tokenizerConfig = FileManager.default.fileExists(atPath: configURL.path) ? try HFJSON.load(configURL) : nil
        guard let model = tokenizerJSON["model"], let type = model["type"]?.string, let vocab = model["vocab"]?.object else {
            throw SwiftletError.unsupportedTokenizer("\(url.path): no model.type / model.vocab")
        }
        modelType = type
        var byID: [Int: String] = [:]
        for (token, id) in vocab {
            guard let i = id.int, i >= 0, i < 1 << 24 else { throw SwiftletError.malformedFile(path: url.path, reason: "bad id for token \(token)") }
            byID[i] = token
        }
        var added: [Int: (content: String, special: Bool)] = [:]
        for entry in tokenizerJSON["added_tokens"]?.array ?? [] {
            guard let id = entry["id"]?.int, id >= 0, id < 1 << 24, let content = entry["content"]?.string else {
                throw SwiftletError.malformedFile(path: url.path, reason: "added token without id and content")
            }
            added[id] = (content, entry["special"]?.bool ?? false)
            byID[id] = content
        }
        let count = vocabSize ?? (byID.count)
        if let top = byID.keys.max(), top >= count {
            throw SwiftletError.malformedFile(path: url.path, reason: "token id \(top) is outside vocab_size \(count)")
        }
        let addedContents = Set(added.values.map(\.content))
        tokens.reserveCapacity(count)
        tokenTypes.reserveCapacity(count)
        for i in 0..<count {
            guard let token = byID[i] else {
                tokens.append("[PAD\(i)]"); tokenTypes.append(TokenKind.unused.rawValue)
                continue
            }
            if addedContents.contains(token) {
                if added[i]?.special == true || Self.looksSpecial(token) {
                    tokens.append(token); tokenTypes.append(TokenKind.control.rawValue)
                } else {
                    tokens.append(token.replacingOccurrences(of: "\u{2581}", with: " "))
                    tokenTypes.append(TokenKind.userDefined.rawValue)
                }
            } else {
                tokens.append(token); tokenTypes.append(TokenKind.normal.rawValue)
            }
        }
        if let list = model["merges"]?.array {
            merges = try list.map { entry in
                if let s = entry.string { return s }
                if let pair = entry.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                    // Spaces inside a pair are written as U+0120 + 256 offsets, as gguf-py does.
                    func encode(_ s: String) -> String {
                        String(String.UnicodeScalarView(s.unicodeScalars.map { $0 == " " ? Unicode.Scalar(0x20 + 256)! : $0 }))
                    }
                    return encode(a) + " " + encode(b)
                }
                throw SwiftletError.malformedFile(path: url.path, reason: "unknown merges format")
            }
        }
    }

    /// Added tokens that are control tokens by their look even when not marked special.
    private static func looksSpecial(_ token: String) -> Bool {
        let t = token.utf8
        func wraps(_ start: String, _ end: String) -> Bool { t.starts(with: start.utf8) && t.reversed().starts(with: end.utf8.reversed()) }
        return ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(token)
            || wraps("<|", "|>") || wraps("<\u{FF5C}", "\u{FF5C}>") || wraps("<unused", ">")
    }

    // MARK: - Pre-tokenizer fingerprint

    /// The text llama.cpp's converter tokenizes to recognise a pre-tokenizer.
    static let fingerprintText = "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u{200d}🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"

    /// Fingerprints (SHA-256 of the token ids of ``fingerprintText`` printed as a Python list)
    /// of the pre-tokenizers Swiftlet implements, with llama.cpp's name for each, from the
    /// table of its converter (a later entry wins, as there).
    static let knownFingerprints: [(hash: String, name: String)] = [
        ("0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5", "llama-bpe"),
        ("0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4", "gpt-2"),
        ("3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454", "gpt-2"),
        ("35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34", "starcoder"),
        ("e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea", "qwen2"),
        ("d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c", "qwen2"),
        ("855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249", "smollm"),
        ("0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f", "bert-bge"),
        ("8e62295832751ca1e8f92f2226f403dea30dc5165e448b5bfa05af5340c64ec7", "bert-bge-large"),
        ("c7699093ba4255a91e702aa38a596aa81669f3525dae06c2953267dde580f448", "jina-v1-en"),
        ("0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f", "jina-v2-en"),
    ]

    static func name(forFingerprint hash: String) -> String? {
        knownFingerprints.last { $0.hash == hash }?.name
    }

    static func fingerprint(_ ids: [TokenID]) -> String {
        SHA256.hex(Array(("[" + ids.map(String.init).joined(separator: ", ") + "]").utf8))
    }

    /// `tokenizer.ggml.pre`: the name whose fingerprint the tokenizer reproduces.
    ///
    /// WordPiece is tokenized with Swiftlet's WordPiece tokenizer; byte-level BPE with Swiftlet's
    /// BPE tokenizer under each candidate pre-tokenizer, keeping the one whose ids give that
    /// candidate's fingerprint. Throws `SwiftletError/unsupportedTokenizer(_:)` when none does.
    func preTokenizerName() throws -> String {
        let (prefix, suffix) = templateSpecialIDs()
        switch modelType {
        case "WordPiece":
            let wp = try WordPieceTokenizer(tokenizerJSON: directory.appendingPathComponent("tokenizer.json"))
            let hash = Self.fingerprint(prefix + wp.tokenize(Self.fingerprintText) + suffix)
            if let name = Self.name(forFingerprint: hash) { return name }
            throw SwiftletError.unsupportedTokenizer("WordPiece pre-tokenizer with fingerprint \(hash) is not one llama.cpp's converter knows")
        case "BPE":
            var tried: Set<String> = []
            for (hash, name) in Self.knownFingerprints.reversed() where !tried.contains(name) {
                tried.insert(name)
                let vocabulary = TokenizerVocabulary(model: "gpt2", pre: name, tokens: tokens, tokenTypes: tokenTypes, merges: merges)
                guard let bpe = try? BPETokenizer(vocabulary: vocabulary) else { continue }
                let ids = prefix + bpe.encode(Self.fingerprintText, addSpecial: false, parseSpecial: false) + suffix
                let h = Self.fingerprint(ids)
                if h == hash || Self.name(forFingerprint: h) == name { return name }
            }
            throw SwiftletError.unsupportedTokenizer("BPE pre-tokenizer of \(directory.path) matches none of \(tried.sorted())")
        default:
            throw SwiftletError.unsupportedTokenizer("tokenizer.json model \(modelType) (supported: WordPiece, BPE)")
        }
    }

    /// The special-token ids the post-processor puts around a single sequence.
    private func templateSpecialIDs() -> (prefix: [TokenID], suffix: [TokenID]) {
        guard let post = tokenizerJSON["post_processor"], !post.isNull else { return ([], []) }
        var prefix: [TokenID] = [], suffix: [TokenID] = []
        for processor in post["processors"]?.array ?? [post] {
            switch processor["type"]?.string {
            case "TemplateProcessing":
                let specials = processor["special_tokens"]?.object ?? [:]
                var seenSequence = false
                for item in processor["single"]?.array ?? [] {
                    if item["Sequence"] != nil { seenSequence = true; continue }
                    guard let id = item["SpecialToken"]?["id"]?.string,
                          let ids = specials[id]?["ids"]?.array?.compactMap({ $0.int.map(Int32.init) }) else { continue }
                    if seenSequence { suffix += ids } else { prefix += ids }
                }
            case "RobertaProcessing", "BertProcessing":
                if let cls = processor["cls"]?.array, cls.count == 2, let c = cls[1].int { prefix.append(Int32(c)) }
                if let sep = processor["sep"]?.array, sep.count == 2, let s = sep[1].int { suffix.append(Int32(s)) }
            default:
                continue
            }
        }
        return (prefix, suffix)
    }

    // MARK: - Special tokens

    /// Writes merges, special-token ids, `add_*_token` flags, the chat template and normalizer
    /// flags, in the order and with the rules of gguf-py's `SpecialVocab`.
    func writeSpecialVocabulary(to w: inout GGUFWriter, config: HFJSON, loadMerges: Bool,
                                tokenCount: Int?) throws {
        var types = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
        var ids: [(String, Int)] = []
        var addFlags: [(String, Bool)] = []
        var lowercase: Bool?, stripAccents: Bool?
        func setID(_ type: String, _ value: HFJSON?) throws {
            guard let id = value?.int else { return }
            guard id >= 0 else { throw SwiftletError.malformedFile(path: directory.path, reason: "invalid value for special token type \(type): \(id)") }
            if tokenCount == nil || id < tokenCount! {
                if !ids.contains(where: { $0.0 == type }) { ids.append((type, id)) }
            }
        }
        func setFlag(_ type: String, _ value: Bool, overwrite: Bool) {
            if let i = addFlags.firstIndex(where: { $0.0 == type }) {
                if overwrite { addFlags[i].1 = value }
            } else {
                addFlags.append((type, value))
            }
        }
        func parseNormalizer(_ n: HFJSON) {
            switch n["type"]?.string {
            case "Lowercase": lowercase = true
            case "StripAccents": stripAccents = true
            case "BertNormalizer":
                if let v = n["lowercase"] { lowercase = v.bool }
                if let v = n["strip_accents"] { stripAccents = v.bool }
            case "Sequence":
                for inner in n["normalizers"]?.array ?? [] { parseNormalizer(inner) }
            default: break
            }
        }
        if let n = tokenizerJSON["normalizer"], n.isTruthy { parseNormalizer(n) }
        let addedTokens = tokenizerJSON["added_tokens"]?.array ?? []

        var tc = tokenizerConfig?.object
        func tcString(_ key: String) -> String? {
            guard let v = tc?[key] else { return nil }
            return v.string ?? v["content"]?.string
        }
        // gguf-py reads these as raw values and tests their truth; a dict entry counts as set.
        func tcTruthy(_ key: String) -> Bool { tc?[key]?.isTruthy ?? false }
        var specialBOS = tcString("bos_token"), specialCLS = tcString("cls_token")
        var specialEOS = tcString("eos_token"), specialSEP = tcString("sep_token")
        let hasConfig = tc.map { !$0.isEmpty } ?? false
        if !tcTruthy("bos_token"), tcTruthy("cls_token"), hasConfig { let cls = tc?["cls_token"]; tc?["bos_token"] = cls; specialBOS = specialCLS }
        if !tcTruthy("eos_token"), tcTruthy("sep_token"), hasConfig { let sep = tc?["sep_token"]; tc?["eos_token"] = sep; specialEOS = specialSEP }
        if let post = tokenizerJSON["post_processor"], post.isTruthy {
            for processor in post["processors"]?.array ?? [post] {
                switch processor["type"]?.string {
                case "ByteLevel":
                    setFlag("bos", false, overwrite: false); setFlag("eos", false, overwrite: false)
                case "RobertaProcessing":
                    setFlag("bos", true, overwrite: true); setFlag("eos", true, overwrite: true); setFlag("sep", true, overwrite: true)
                    if specialCLS == nil, hasConfig {
                        specialCLS = processor["cls"]?.array?.first?.string ?? specialBOS
                        tc?["cls_token"] = specialCLS.map(HFJSON.string) ?? .null
                    }
                    if specialSEP == nil, hasConfig {
                        specialSEP = processor["sep"]?.array?.first?.string ?? specialEOS
                        tc?["sep_token"] = specialSEP.map(HFJSON.string) ?? .null
                    }
                case "TemplateProcessing":
                    let single = processor["single"]?.array ?? []
                    let pair = processor["pair"]?.array ?? []
                    var first: String?, last: String?
                    if single.count > 1 {
                        first = single[0]["SpecialToken"]?["id"]?.string
                        if let f = first, !f.isEmpty {
                            if !hasConfig {
                                specialBOS = f
                            } else if f != specialBOS && f != specialCLS {
                                if specialBOS == nil { specialBOS = f; tc?["bos_token"] = .string(f) }
                                if specialCLS == nil { specialCLS = f; tc?["cls_token"] = .string(f) }
                            }
                            setFlag("bos", f == specialBOS || f == specialCLS, overwrite: true)
                        }
                        last = single[single.count - 1]["SpecialToken"]?["id"]?.string
                        if let l = last, !l.isEmpty {
                            if !hasConfig {
                                specialEOS = l
                            } else if l != specialEOS {
                                if !types.contains("eot") {
                                    types.append("eot"); tc?["eot_token"] = specialEOS.map(HFJSON.string) ?? .null
                                } else if !types.contains("eom") {
                                    types.append("eom"); tc?["eom_token"] = specialEOS.map(HFJSON.string) ?? .null
                                }
                                specialEOS = l; tc?["eos_token"] = .string(l)
                            }
                            setFlag("eos", l == specialEOS, overwrite: true)
                        }
                    }
                    if !pair.isEmpty {
                        let start = (first.map { !$0.isEmpty } ?? false) && pair[0]["SpecialToken"]?["id"]?.string == first ? 1 : 0
                        let stop = (last.map { !$0.isEmpty } ?? false) && pair[pair.count - 1]["SpecialToken"]?["id"]?.string == last ? pair.count - 1 : pair.count
                        let middle = start < stop ? Array(pair[start..<stop]) : []
                        if !middle.isEmpty, middle[0]["Sequence"]?["id"]?.string == "A",
                           middle[middle.count - 1]["Sequence"]?["id"]?.string == "B", middle.count > 2 {
                            let inner = Array(middle[1..<(middle.count - 1)])
                            var addSEP = false
                            if let entry = inner[0]["SpecialToken"]?["id"]?.string, !entry.isEmpty {
                                if (entry == specialSEP || entry == specialEOS) && !(last.map { !$0.isEmpty } ?? false) { addSEP = true }
                            }
                            if inner.count == 2, let entry = inner[1]["SpecialToken"]?["id"]?.string, !entry.isEmpty,
                               entry == specialSEP || entry == specialEOS {
                                addSEP = true
                            }
                            setFlag("sep", addSEP, overwrite: true)
                            if addSEP, specialSEP == nil, hasConfig { tc?["sep_token"] = specialEOS.map(HFJSON.string) ?? .null }
                        }
                    }
                default:
                    break
                }
            }
        }
        var chatTemplate: String?
        if let tc, !tc.isEmpty {
            var alternative: String?
            let jinja = directory.appendingPathComponent("chat_template.jinja")
            let json = directory.appendingPathComponent("chat_template.json")
            if let data = FileManager.default.contents(atPath: jinja.path) {
                alternative = String(decoding: data, as: UTF8.self)
            } else if FileManager.default.fileExists(atPath: json.path) {
                alternative = try HFJSON.load(json)["chat_template"]?.string
            }
            chatTemplate = tc["chat_template"]?.string ?? alternative
            for type in types {
                if let flag = tc["add_\(type)_token"]?.bool { setFlag(type, flag, overwrite: false) }
                guard let entry = tc["\(type)_token"], let content = entry.string ?? entry["content"]?.string else { continue }
                let id = addedTokens.first { $0["content"]?.string == content }?["id"]
                try setID(type, id)
            }
        }
        for type in types {
            try setID(type, config["\(type)_token_id"] ?? config["text_config"]?["\(type)_token_id"])
        }

        if loadMerges && !merges.isEmpty { w.set("tokenizer.ggml.merges", .array(.string(merges))) }
        let idKeys = ["bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id", "sep": "seperator_token_id",
                      "pad": "padding_token_id", "mask": "mask_token_id", "eot": "eot_token_id", "eom": "eom_token_id"]
        for (type, id) in ids {
            guard let key = idKeys[type] else { continue }  // gguf-py has no cls key
            w.set("tokenizer.ggml.\(key)", .uint32(UInt32(id)))
        }
        for (type, value) in addFlags where ["bos", "eos", "sep"].contains(type) {
            w.set("tokenizer.ggml.add_\(type)_token", .bool(value))
        }
        if let chatTemplate { w.set("tokenizer.chat_template", .string(chatTemplate)) }
        if let lowercase { w.set("tokenizer.ggml.normalizer.lowercase", .bool(lowercase)) }
        if let stripAccents { w.set("tokenizer.ggml.normalizer.strip_accents", .bool(stripAccents)) }
    }

    /// `add_prefix_space` of `tokenizer_config.json`, when present.
    var addPrefixSpace: Bool? { tokenizerConfig?["add_prefix_space"]?.bool }
}
