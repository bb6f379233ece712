import Foundation
import SwiftletFormats

/// The `general.*` authorship keys llama.cpp's converter derives from a checkpoint folder: the
/// model card's YAML front matter (`README.md`), `config.json`'s `_name_or_path`, and the folder
/// name, with the same heuristics (name components, version, size label), so both converters
/// write the same keys and values.
struct HFAuthorshipMetadata {
    var name: String?
    var author: String?
    var version: String?
    var organization: String?
    var finetune: String?
    var basename: String?
    var description: String?
    var sizeLabel: String?
    var license: String?
    var licenseName: String?
    var licenseLink: String?
    var sourceURL: String?
    var sourceDOI: String?
    var sourceUUID: String?
    var sourceRepoURL: String?
    var baseModels: [[(String, String)]]?
    var datasets: [[(String, String)]]?
    var tags: [String]?
    var languages: [String]?

    /// Reads the folder's model card and config and applies the heuristics; `totalParameters`
    /// decides whether a size-like name part is a size label.
    init(directory: URL, config: HFJSON, totalParameters: Int) {
        let card = ModelCardFrontMatter.read(directory.appendingPathComponent("README.md"))
        func take(_ key: String, _ field: WritableKeyPath<HFAuthorshipMetadata, String?>) {
            if self[keyPath: field] == nil, let v = card[key] { self[keyPath: field] = v.scalarText }
        }
        if !card.isEmpty {
            for prefix in ["", "model_"] {
                take(prefix + "name", \.name); take(prefix + "author", \.author)
                take(prefix + "version", \.version); take(prefix + "organization", \.organization)
                take(prefix + "description", \.description); take(prefix + "finetune", \.finetune)
                take(prefix + "basename", \.basename); take(prefix + "size_label", \.sizeLabel)
                take(prefix + "url", \.sourceURL); take(prefix + "doi", \.sourceDOI)
                take(prefix + "uuid", \.sourceUUID); take(prefix + "repo_url", \.sourceRepoURL)
            }
            take("model_creator", \.author)
            take("model_type", \.basename)
            if let value = card["base_model"] ?? card["base_models"] ?? card["base_model_sources"] {
                baseModels = (baseModels ?? []) + value.items.map { Self.describe(id: $0, totalParameters: totalParameters) }
            }
            if let value = card["datasets"] ?? card["dataset"] ?? card["dataset_sources"] {
                datasets = (datasets ?? []) + value.items.map { Self.describe(id: $0, totalParameters: totalParameters) }
            }
            take("license", \.license); take("license_name", \.licenseName); take("license_link", \.licenseLink)
            for key in ["tags", "pipeline_tag"] { if let v = card[key] { tags = (tags ?? []) + v.items } }
            for key in ["languages", "language"] { if let v = card[key] { languages = (languages ?? []) + v.items } }
        }
        if let id = config["_name_or_path"]?.string, id.filter({ $0 == "/" }).count <= 1 {
            fill(from: Self.components(of: id, totalParameters: totalParameters))
        }
        fill(from: Self.components(of: directory.lastPathComponent, totalParameters: totalParameters))
        if name == nil { name = directory.lastPathComponent }
    }

    private mutating func fill(from c: NameComponents?) {
        guard let c else { return }
        if name == nil, let n = c.fullName { name = Self.title(n) }
        if organization == nil, let o = c.organization { organization = Self.title(o) }
        if basename == nil { basename = c.basename }
        if finetune == nil { finetune = c.finetune }
        if version == nil { version = c.version }
        if sizeLabel == nil { sizeLabel = c.sizeLabel }
    }

    /// A base model or data set entry: a URL, or a Hugging Face id split into its parts.
    private static func describe(id: String, totalParameters: Int) -> [(String, String)] {
        var entry: [(String, String)] = []
        if id.hasPrefix("http://") || id.hasPrefix("https://") || id.hasPrefix("ssh://") {
            entry.append(("repo_url", id))
            if id.contains("huggingface.co"), let m = id.firstMatch(of: #/^https?://huggingface.co/([^/]+/[^/]+)$/#),
               let c = components(of: String(m.1), totalParameters: totalParameters) {
                if let n = c.fullName { entry.append(("name", title(n))) }
                if let o = c.organization { entry.append(("organization", title(o))) }
                if let v = c.version { entry.append(("version", v)) }
            }
        } else if let c = components(of: id, totalParameters: totalParameters) {
            if let n = c.fullName { entry.append(("name", title(n))) }
            if let o = c.organization { entry.append(("organization", title(o))) }
            if let v = c.version { entry.append(("version", v)) }
            if let o = c.organization, let n = c.fullName { entry.append(("repo_url", "https://huggingface.co/\(o)/\(n)")) }
        }
        return entry
    }

    /// Writes the keys in the order llama.cpp's converter does.
    func write(to w: inout GGUFWriter) {
        func put(_ key: String, _ value: String?) { if let value { w.set(key, .string(value)) } }
        put("general.name", name)
        put("general.author", author); put("general.version", version); put("general.organization", organization)
        put("general.finetune", finetune); put("general.basename", basename)
        put("general.description", description)
        put("general.size_label", sizeLabel)
        put("general.license", license); put("general.license.name", licenseName); put("general.license.link", licenseLink)
        put("general.source.url", sourceURL); put("general.source.doi", sourceDOI)
        put("general.source.uuid", sourceUUID); put("general.source.repo_url", sourceRepoURL)
        let fieldOrder = ["name", "author", "version", "organization", "description", "url", "doi", "uuid", "repo_url"]
        for (group, entries) in [("base_model", baseModels), ("dataset", datasets)] {
            guard let entries else { continue }
            w.set("general.\(group).count", .uint32(UInt32(entries.count)))
            for (i, entry) in entries.enumerated() {
                for field in fieldOrder {
                    if let value = entry.first(where: { $0.0 == field })?.1 { w.set("general.\(group).\(i).\(field)", .string(value)) }
                }
            }
        }
        if let tags { w.set("general.tags", .array(.string(tags))) }
        if let languages { w.set("general.languages", .array(.string(languages))) }
    }

    // MARK: - Name heuristics

    struct NameComponents {
        var fullName: String?
        var organization: String?
        var basename: String?
        var finetune: String?
        var version: String?
        var sizeLabel: String?
    }

    /// Splits a model id (`org/Name-7B-Instruct-v0.2`) into name, organization, base name,
    /// fine-tune, version and size label.
    static func components(of id: String, totalParameters: Int) -> NameComponents? {
        if id.contains(" ") { return NameComponents(fullName: id) }
        var org: String?
        var full = id
        if let slash = id.firstIndex(of: "/") {
            org = String(id[..<slash]); full = String(id[id.index(after: slash)...])
        }
        if let o = org, o.hasPrefix(".") { org = nil }
        var parts = full.split(separator: "-", omittingEmptySubsequences: true).map(String.init)
        var kinds = [Set<String>](repeating: [], count: parts.count)
        for (i, part) in parts.enumerated() {
            if part.wholeMatch(of: #/(?i)(v|iter)?\d+([.]\d+)*/#) != nil {
                kinds[i].insert("version")
            } else if part.wholeMatch(of: #/(?i)i?q\d(_\w)*|b?fp?(16|32)/#) != nil {
                kinds[i].insert("type")
                parts[i] = part.uppercased()
            } else if i > 0, part.wholeMatch(of: #/(?i)(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)/#) != nil {
                var p = Array(part.replacingOccurrences(of: "_", with: "."))
                if let last = p.last, last.isASCII, last.isNumber, p.count >= 2 {
                    p = Array(p[..<(p.count - 2)]) + ["."] + [p[p.count - 1], p[p.count - 2]]
                }
                if p.count > 1, p[p.count - 2].isASCII, p[p.count - 2].isNumber, "kmbt".contains(p[p.count - 1]) {
                    p[p.count - 1] = Character(p[p.count - 1].uppercased())
                }
                if totalParameters != 0, let scale = " KMBT".firstIndex(of: p.last!),
                   let number = Double(String(p.dropLast())) {
                    let label = number * pow(1000, Double(" KMBT".distance(from: " KMBT".startIndex, to: scale)))
                    let total = Double(totalParameters)
                    if (totalParameters < 0 && label < Double(abs(totalParameters) / 8))
                        || (totalParameters > 0 && abs(label - total) > Double(7 * totalParameters / 8)) {
                        kinds[i].insert("finetune")
                        p[p.count - 1] = Character(p[p.count - 1].lowercased())
                    }
                }
                if kinds[i].isEmpty { kinds[i].insert("size_label") }
                parts[i] = String(p)
            } else if i > 0, part.wholeMatch(of: #/(?i)chat|instruct|vision|lora/#) != nil {
                kinds[i].insert(totalParameters < 0 && part.lowercased() == "lora" ? "type" : "finetune")
            }
        }
        let hasNumericSize = zip(parts, kinds).contains { $1.contains("size_label") && $0.contains { $0.isASCII && $0.isNumber } }
        if hasNumericSize {
            for i in parts.indices where kinds[i].contains("size_label") && parts[i].allSatisfy(\.isLetter) {
                kinds[i].remove("size_label")
            }
        }
        var atStart = true
        for i in parts.indices {
            if atStart && ((kinds[i].isEmpty && parts[i].first!.isLetter) || kinds[i].contains("version")) {
                kinds[i].insert("basename")
            } else {
                atStart = false
                if kinds[i].isEmpty { kinds[i].insert("finetune") }
            }
        }
        for i in parts.indices.reversed() {
            if kinds[i].contains("basename") && kinds[i].count > 1 { kinds[i].remove("basename") } else { break }
        }
        func joined(_ kind: String, excluding: String? = nil) -> String? {
            var seen: [String] = []
            for i in parts.indices where kinds[i].contains(kind) && !(excluding.map { kinds[i].contains($0) } ?? false) {
                if kind == "size_label" && seen.contains(parts[i]) { continue }
                seen.append(parts[i])
            }
            return seen.isEmpty ? nil : seen.joined(separator: "-")
        }
        var c = NameComponents(fullName: full, organization: org)
        c.basename = joined("basename")
        c.sizeLabel = joined("size_label")
        c.finetune = joined("finetune")
        c.version = joined("version", excluding: "basename")
        if c.sizeLabel == nil && c.finetune == nil && c.version == nil { c.basename = nil }
        return c
    }

    /// `Mistral-7B-instruct` → `Mistral 7B Instruct`: lower-case words title-cased, except
    /// versions and words starting with a digit.
    static func title(_ s: String) -> String {
        s.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "-", with: " ")
            .split(whereSeparator: { $0.isWhitespace }).map { word -> String in
                let w = String(word)
                let keep = w.wholeMatch(of: #/v\d+(?:\.\d+)*|\d.*/#) != nil
                return isLowercased(w) && !keep ? pythonTitle(w) : w
            }.joined(separator: " ")
    }

    /// Python's `str.islower()`: some cased letter, and none upper-case.
    private static func isLowercased(_ s: String) -> Bool {
        var cased = false
        for ch in s where ch.isCased {
            if ch.isUppercase { return false }
            cased = true
        }
        return cased
    }

    /// Python's `str.title()`: a letter after a non-letter is upper-cased, others lower-cased.
    private static func pythonTitle(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for ch in s {
            if ch.isCased {
                out += previousCased ? ch.lowercased() : ch.uppercased()
                previousCased = true
            } else {
                out.append(ch)
                previousCased = false
            }
        }
        return out
    }

    /// `gguf.size_label`: the parameter count in K/M/B/T with at least two significant digits.
    static func sizeLabel(parameters: Int) -> String {
        let n = Double(parameters)
        let (scaled, suffix): (Double, String) = n > 1e12 ? (n * 1e-12, "T") : n > 1e9 ? (n * 1e-9, "B")
            : n > 1e6 ? (n * 1e-6, "M") : (n * 1e-3, "K")
        var digits = String(Int(scaled.rounded(.toNearestOrEven)))
        while digits.hasPrefix("0") { digits.removeFirst() }
        let decimals = max(2 - digits.count, 0)
        return String(format: "%.\(decimals)f", scaled) + suffix
    }
}

/// The part of a model card's YAML front matter the converter reads: top-level keys whose values
/// are scalars or lists of scalars (block `- item` or flow `[a, b]`). Nested mappings are skipped.
struct ModelCardFrontMatter {
    enum Value {
        case scalar(String?)
        case list([String])

        /// The text of a scalar (nil for a YAML null).
        var scalarText: String? {
            switch self {
            case let .scalar(s): return s
            case let .list(l): return l.joined(separator: ",")
            }
        }

        /// A scalar as a one-element list, or the list.
        var items: [String] {
            switch self {
            case let .scalar(s): return s.map { [$0] } ?? []
            case let .list(l): return l
            }
        }
    }

    private var values: [String: Value] = [:]
    var isEmpty: Bool { values.isEmpty }
    subscript(key: String) -> Value? { values[key] }

    static func read(_ url: URL) -> ModelCardFrontMatter {
        var card = ModelCardFrontMatter()
        guard let data = FileManager.default.contents(atPath: url.path) else { return card }
        let lines = String(decoding: data, as: UTF8.self).split(omittingEmptySubsequences: false,
                                                               whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        guard lines.first.map(String.init) == "---" else { return card }
        var key: String?
        var list: [String]?
        func flush() {
            if let k = key, let l = list { card.values[k] = l.isEmpty ? .scalar(nil) : .list(l) }
            key = nil; list = nil
        }
        for raw in lines.dropFirst() {
            let line = String(raw).replacingOccurrences(of: "\t", with: "  ")
            if line == "---" { break }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if trimmed.hasPrefix("- ") || trimmed == "-" {
                if key != nil, list != nil, !line.hasPrefix("    ") { list!.append(unquote(String(trimmed.dropFirst(1)))) }
                continue
            }
            if line.first == " " { continue }  // inside a nested mapping
            flush()
            guard let colon = line.firstIndex(of: ":") else { continue }
            let k = String(line[..<colon]).trimmingCharacters(in: .whitespaces)
            let rest = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            if rest.isEmpty {
                key = k; list = []
            } else if rest.hasPrefix("[") && rest.hasSuffix("]") {
                let inner = rest.dropFirst().dropLast()
                card.values[k] = .list(inner.split(separator: ",").map { unquote(String($0)) }.filter { !$0.isEmpty })
            } else {
                let v = unquote(rest)
                card.values[k] = .scalar(v == "null" || v == "~" ? nil : v)
            }
        }
        flush()
        return card
    }

    private static func unquote(_ s: String) -> String {
        let t = s.trimmingCharacters(in: .whitespaces)
        if t.count >= 2, let f = t.first, f == "\"" || f == "'", t.last == f { return String(t.dropFirst().dropLast()) }
        return t
    }
}
