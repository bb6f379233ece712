import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet info FILE`: a GGUF file's metadata and tensor table (like gguf-py's `gguf-dump`), or
/// a safetensors checkpoint's tensor table; `swiftlet info --system`: what this machine and
/// build offer (``SystemInfo/report()``).
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print a model file's metadata and tensor table, or this system's capabilities."
    )

    @Argument(help: "A GGUF file, a .safetensors file, or a directory holding model.safetensors.")
    var file: String?

    @Flag(help: "Print the system report (CPU features, threads, BLAS) instead of a file.")
    var system = false

    @Option(help: "Array elements shown per metadata value (0 shows all).")
    var arrayElements = 6

    @Flag(help: "Omit the tensor table.")
    var noTensors = false

    func validate() throws {
        if !system && file == nil { throw ValidationError("give a FILE or --system") }
    }

    func run() throws {
        if system {
            print(SystemInfo.report())
            return
        }
        guard let file else { return }
        let url = URL(fileURLWithPath: file)
        var isDirectory: ObjCBool = false
        if url.pathExtension == "safetensors" || (FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) && isDirectory.boolValue) {
            let checkpoint = try isDirectory.boolValue ? SafetensorsCheckpoint(directory: url) : SafetensorsCheckpoint(file: url)
            print(SafetensorsInfoFormatter(checkpoint: checkpoint, path: file).text())
            return
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let gguf = try GGUFFile(url: url)
        let parseMs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        print(GGUFInfoFormatter(file: gguf, arrayElements: arrayElements).text(tensors: !noTensors))
        print(String(format: "opened and parsed in %.2f ms", parseMs))
    }
}

/// The text of `swiftlet info FILE`.
struct GGUFInfoFormatter {
    let file: GGUFFile
    let arrayElements: Int

    func text(tensors showTensors: Bool) -> String {
        var lines = [String]()
        let mb = Double(file.fileSize) / 1_000_000
        lines.append("\(file.url?.path ?? "<memory>"): GGUF v\(file.version), \(String(format: "%.1f", mb)) MB, "
            + "\(file.metadataKeys.count) metadata keys, \(file.tensors.count) tensors, "
            + "alignment \(file.alignment), data section at byte \(file.dataOffset)")
        lines.append("")
        lines.append("Metadata:")
        for (i, key) in file.metadataKeys.enumerated() {
            guard let value = file.metadata[key] else { continue }
            let type: String, count: Int
            if case let .array(a) = value {
                type = "[\(a.elementType)]"; count = a.count
            } else {
                type = value.type.description; count = 1
            }
            lines.append("\(pad(i + 1, 5)): \(type.padding(toLength: 10, withPad: " ", startingAt: 0)) | \(pad(count, 8)) | \(key) = \(format(value))")
        }
        guard showTensors else { return lines.joined(separator: "\n") }

        lines.append("")
        lines.append("Tensors:")
        let nameWidth = min(48, file.tensors.map(\.name.count).max() ?? 4)
        lines.append("    #  \("name".padding(toLength: nameWidth, withPad: " ", startingAt: 0))  type     shape (ne0 first)         elements        bytes    bpw")
        var totalBytes = 0, totalElements = 0
        var byType = [GGMLType: (count: Int, elements: Int, bytes: Int)]()
        for (i, t) in file.tensors.enumerated() {
            let shape = t.shape.map(String.init).joined(separator: " x ")
            lines.append("\(pad(i + 1, 5))  \(t.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  "
                + "\(t.type.description.padding(toLength: 7, withPad: " ", startingAt: 0))  \(shape.padding(toLength: 24, withPad: " ", startingAt: 0))"
                + "\(pad(t.elementCount, 10)) \(pad(t.byteCount, 12)) \(String(format: "%6.2f", t.bitsPerWeight))")
            totalBytes += t.byteCount
            totalElements += t.elementCount
            let s = byType[t.type, default: (0, 0, 0)]
            byType[t.type] = (s.count + 1, s.elements + t.elementCount, s.bytes + t.byteCount)
        }
        lines.append("")
        for (type, s) in byType.sorted(by: { $0.value.bytes > $1.value.bytes }) {
            let bpw = s.elements == 0 ? 0 : Double(s.bytes) * 8 / Double(s.elements)
            lines.append("  \(type.description.padding(toLength: 7, withPad: " ", startingAt: 0)) \(pad(s.count, 4)) tensors \(pad(s.elements, 12)) elements \(pad(s.bytes, 12)) bytes \(String(format: "%6.2f", bpw)) bpw")
        }
        let bpw = totalElements == 0 ? 0 : Double(totalBytes) * 8 / Double(totalElements)
        lines.append("  total   \(pad(file.tensors.count, 4)) tensors \(pad(totalElements, 12)) elements \(pad(totalBytes, 12)) bytes \(String(format: "%6.2f", bpw)) bpw")
        return lines.joined(separator: "\n")
    }

    private func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    /// A value as gguf-dump shows it: strings quoted and shortened, arrays abbreviated.
    func format(_ value: GGUFValue) -> String {
        switch value {
        case let .string(s): return quote(s)
        case let .array(a): return format(a)
        case let .bool(b): return b ? "True" : "False"
        case let .float32(f): return "\(f)"
        case let .float64(f): return "\(f)"
        default: return value.intValue.map(String.init) ?? "\(value)"
        }
    }

    private func format(_ array: GGUFArray) -> String {
        let shown = arrayElements <= 0 ? array.count : min(array.count, arrayElements)
        var parts = (0 ..< shown).compactMap { array.element(at: $0).map(format) }
        if shown < array.count { parts.append("...") }
        return "[" + parts.joined(separator: ", ") + "]"
    }

    private func quote(_ s: String) -> String {
        let limit = 60
        var escaped = s.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "\n", with: "\\n")
            .replacingOccurrences(of: "'", with: "\\'")
        if escaped.count > limit { escaped = String(escaped.prefix(limit)) + "..." }
        return "'\(escaped)'"
    }
}

/// The text of `swiftlet info` for a safetensors checkpoint: its tensor table.
struct SafetensorsInfoFormatter {
    let checkpoint: SafetensorsCheckpoint
    let path: String

    func text() -> String {
        var infos = [SafetensorsTensorInfo]()
        for file in checkpoint.files { infos += file.names.compactMap { file.tensors[$0] } }
        var lines = ["\(path): safetensors, \(checkpoint.files.count) file(s), \(infos.count) tensors", ""]
        for file in checkpoint.files where !file.metadata.isEmpty {
            for (key, value) in file.metadata.sorted(by: { $0.key < $1.key }) { lines.append("  \(key) = \(value)") }
        }
        let nameWidth = min(56, infos.map(\.name.count).max() ?? 4)
        lines.append("    #  \("name".padding(toLength: nameWidth, withPad: " ", startingAt: 0))  dtype  shape                       bytes")
        var total = 0
        for (i, t) in infos.enumerated() {
            let shape = t.shape.map(String.init).joined(separator: " x ")
            lines.append(String(format: "%5d  ", i + 1) + t.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                + "  \(t.dtype.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0))  \(shape.padding(toLength: 24, withPad: " ", startingAt: 0))"
                + String(format: "%12d", t.byteCount))
            total += t.byteCount
        }
        lines.append("  total \(infos.count) tensors, \(total) bytes")
        return lines.joined(separator: "\n")
    }
}
