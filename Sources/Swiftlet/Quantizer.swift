import Foundation
import Synchronization
import SwiftletTensor
import SwiftletQuant
import SwiftletFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Quantizes a GGUF model into another GGUF file exactly as llama-quantize does: the same
/// per-tensor types (`QuantizationPlan`), the same bytes for every tensor (with or without an
/// importance matrix), the same metadata and tensor order — the output file is byte-identical to
/// llama-quantize's.
///
/// ```swift
/// var options = Quantizer.Options(mix: .q4_K_M)
/// options.importanceMatrix = try ImportanceMatrix(contentsOf: imatrixURL)
/// let report = try Quantizer.quantize(input: f32URL, output: q4URL, options: options) { p in
///     print("\(p.tensorIndex + 1)/\(p.tensorCount) \(p.tensorName)")
/// }
/// ```
///
/// The output goes to a temporary file beside `output` and is renamed into place only when
/// complete: on any error no partial file is left behind.
public enum Quantizer {
    /// What to produce.
    public struct Options: Sendable {
        /// The llama-quantize type (`Q4_K_M`, `Q8_0`, `F16`, …).
        public var mix: QuantizationMix
        /// Worker threads (≤ 0: the physical cores).
        public var threads: Int = 0
        /// Allow a source whose tensors are already block-quantized (`--allow-requantize`).
        public var allowRequantize = false
        /// `--pure`, `--leave-output-tensor`, `--output-tensor-type`, `--token-embedding-type`.
        public var pure = false
        public var leaveOutputTensor = false
        public var outputTensorType: GGMLType?
        public var tokenEmbeddingType: GGMLType?
        /// Importance matrix (`--imatrix`); `importanceMatrixPath` is recorded in the metadata
        /// (`quantize.imatrix.file`) as llama-quantize records its argument.
        public var importanceMatrix: ImportanceMatrix?
        public var importanceMatrixPath: String = ""

        public init(mix: QuantizationMix) { self.mix = mix }

        var planOptions: QuantizationPlan.Options {
            QuantizationPlan.Options(pure: pure, leaveOutputTensor: leaveOutputTensor, outputTensorType: outputTensorType,
                                     tokenEmbeddingType: tokenEmbeddingType, hasImportanceMatrix: importanceMatrix != nil)
        }
    }

    /// Progress after each tensor.
    public struct Progress: Sendable {
        public var tensorIndex: Int
        public var tensorCount: Int
        public var tensorName: String
        /// Source bytes processed so far and in all.
        public var bytesDone: Int
        public var bytesTotal: Int
        /// Seconds since the start.
        public var elapsed: Double
    }

    /// The outcome.
    public struct Report: Sendable {
        public var plan: QuantizationPlan
        public var inputBytes: Int
        public var outputBytes: Int
        public var seconds: Double
    }

    /// The plan llama-quantize would follow for the model at `url`.
    ///
    /// - Throws: what `GGUFFile/init(url:)` throws; `SwiftletError/missingMetadata(_:)` when
    ///   the architecture or block count is absent.
    public static func plan(for url: URL, options: Options) throws -> QuantizationPlan {
        try plan(for: GGUFFile(url: url), options: options)
    }

    static func plan(for file: GGUFFile, options: Options) throws -> QuantizationPlan {
        let tensors = file.tensors.map { QuantizationPlan.Tensor(name: $0.name, shape: effectiveShape($0.shape), type: $0.type) }
        return try QuantizationPlan(tensors: tensors, mix: options.mix, model: modelShape(file), options: options.planOptions)
    }

    /// ggml counts dimensions up to the last one larger than 1 (`ggml_n_dims`).
    static func effectiveShape(_ shape: [Int]) -> [Int] {
        var s = shape
        while s.count > 1, s.last == 1 { s.removeLast() }
        return s
    }

    static func modelShape(_ file: GGUFFile) throws -> QuantizationPlan.Model {
        let arch = try file.string("general.architecture")
        func firstInt(_ key: String) throws -> Int? {
            if let a = try? file.intArrayIfPresent(key) { return a.first }
            return try file.intIfPresent(key)
        }
        return QuantizationPlan.Model(architecture: arch,
                                      layerCount: try file.int("\(arch).block_count"),
                                      headCount: try firstInt("\(arch).attention.head_count") ?? 0,
                                      headCountKV: try firstInt("\(arch).attention.head_count_kv") ?? 0,
                                      expertCount: try file.intIfPresent("\(arch).expert_count") ?? 0)
    }

    /// Quantizes `input` into `output`.
    ///
    /// - Throws: `SwiftletError/invalidArgument(_:)` when input and output are the same file,
    ///   the source is already quantized without ``Options/allowRequantize``, or an importance
    ///   matrix entry does not fit its tensor; `SwiftletError/unsupportedTensorType(_:)` for a
    ///   type Swiftlet cannot quantize or dequantize; file errors from `GGUFFile/init(url:)`;
    ///   `SwiftletError/io(path:reason:)` when the output cannot be written.
    @discardableResult
    public static func quantize(input: URL, output: URL, options: Options,
                                progress: ((Progress) -> Void)? = nil) throws -> Report {
        let start = Date()
        if let a = try? FileManager.default.attributesOfItem(atPath: input.path)[.systemFileNumber] as? Int,
           let b = try? FileManager.default.attributesOfItem(atPath: output.path)[.systemFileNumber] as? Int, a == b {
            throw SwiftletError.invalidArgument("input and output files are the same: '\(input.path)'")
        }
        let file = try GGUFFile(url: input)
        let plan = try plan(for: file, options: options)
        let weights = try importanceWeights(plan: plan, options: options)

        for e in plan.entries where e.isConverted {
            if e.sourceType.isBlockQuantized && !options.allowRequantize {
                throw SwiftletError.invalidArgument("requantizing from type \(e.sourceType) is disabled (tensor \(e.name)); pass --allow-requantize to quantize an already quantized model")
            }
            guard e.sourceType.isQuantSupported else { throw SwiftletError.unsupportedTensorType("\(e.sourceType) (dequantize \(e.name))") }
            guard e.targetType.isQuantSupported, e.targetType != .q8_1, e.targetType != .q8_K else {
                throw SwiftletError.unsupportedTensorType("\(e.targetType) (quantize \(e.name))")
            }
        }

        var writer = GGUFWriter()
        writer.version = 3
        for key in file.metadataKeys where !Self.replacedKeys.contains(key) {
            writer.set(key, file.metadata[key]!)
        }
        writer.set("general.quantization_version", .uint32(2))
        writer.set("general.file_type", .uint32(options.mix.rawValue))
        if let m = options.importanceMatrix {
            writer.set("quantize.imatrix.file", .string(Self.truncated(options.importanceMatrixPath)))
            if let d = m.datasets.first { writer.set("quantize.imatrix.dataset", .string(Self.truncated(d))) }
            writer.set("quantize.imatrix.entries_count", .uint32(UInt32(truncatingIfNeeded: m.entries.count)))
            if m.chunkCount > 0 { writer.set("quantize.imatrix.chunks_count", .uint32(UInt32(truncatingIfNeeded: m.chunkCount))) }
        }

        var layout: [(name: String, type: GGMLType, shape: [Int], byteCount: Int)] = []
        for e in plan.entries {
            let info = file.tensor(named: e.name)!
            guard let rowBytes = e.targetType.rowBytes(info.rowLength) else {
                throw SwiftletError.invalidArgument("tensor \(e.name): row of \(info.rowLength) is not a whole number of \(e.targetType) blocks")
            }
            let (bytes, overflow) = rowBytes.multipliedReportingOverflow(by: info.rowCount)
            guard !overflow else { throw SwiftletError.invalidArgument("tensor \(e.name) is too large") }
            layout.append((e.name, e.targetType, info.shape, bytes))
        }
        let alignment = try writer.alignment()
        let header = try writer.headerBytes(tensorLayout: layout)

        let out = try OutputFile(destination: output)
        var completed = false
        defer { if !completed { out.discard() } }
        try out.write(header)

        let threads = options.threads > 0 ? options.threads : ComputePool.defaultThreadCount
        let pool = ComputePool(threadCount: threads)
        let totalBytes = plan.entries.reduce(0) { $0 + file.tensor(named: $1.name)!.byteCount }
        var doneBytes = 0
        var outputBytes = header.count
        var buffer = ByteBuffer()
        var floats = FloatBuffer()
        for (index, e) in plan.entries.enumerated() {
            let info = file.tensor(named: e.name)!
            let source = file.data(for: info)
            // Read the next tensor from disk while this one is converted.
            if index + 1 < plan.entries.count { advise(file.data(for: file.tensor(named: plan.entries[index + 1].name)!), MADV_WILLNEED) }
            let size = layout[index].byteCount
            if !e.isConverted {
                try out.write(source)
            } else {
                let dst = buffer.reserve(size)
                try convert(e, info: info, source: source, into: dst, floats: &floats,
                            importance: weights[e.name], pool: pool)
                try out.write(UnsafeRawBufferPointer(start: dst, count: size))
            }
            let padding = GGUFWriter.padded(size, to: alignment) - size
            if padding > 0 { try out.write(zeros: padding) }
            outputBytes += size + padding
            // Done with the source pages (as llama-quantize unmaps each tensor): less memory held.
            if file.url != nil { advise(source, MADV_DONTNEED) }
            doneBytes += info.byteCount
            progress?(Progress(tensorIndex: index, tensorCount: plan.entries.count, tensorName: e.name,
                               bytesDone: doneBytes, bytesTotal: totalBytes, elapsed: Date().timeIntervalSince(start)))
        }
        try out.commit()
        completed = true
        return Report(plan: plan, inputBytes: file.fileSize, outputBytes: outputBytes, seconds: Date().timeIntervalSince(start))
    }

    /// `madvise` over the whole pages of `range` (a hint: failures are ignored).
    static func advise(_ range: UnsafeRawBufferPointer, _ advice: Int32) {
        guard let base = range.baseAddress, range.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) / page * page
        let end = Int(bitPattern: base) + range.count
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, advice)
    }

    /// llama-quantize keeps 127 bytes of a string it records.
    static func truncated(_ s: String) -> String { String(decoding: s.utf8.prefix(127), as: UTF8.self) }

    /// Keys llama-quantize drops from the copy (the split keys) or sets again at the end.
    static let replacedKeys: Set<String> = ["general.quantization_version", "general.file_type",
                                            "split.no", "split.count", "split.tensors.count"]

    /// The per-tensor importance weights llama-quantize would use, checked against the plan.
    static func importanceWeights(plan: QuantizationPlan, options: Options) throws -> [String: [Float]] {
        guard let m = options.importanceMatrix else { return [:] }
        var out: [String: [Float]] = [:]
        for e in plan.entries where e.isConverted {
            guard let w = m.weights(for: e.name) else { continue }
            guard w.allSatisfy({ $0.isFinite }) else {
                throw SwiftletError.invalidArgument("importance matrix has non-finite values for \(e.name)")
            }
            let columns = e.shape.first ?? 0
            let experts = e.shape.count > 2 ? e.shape[2] : 1
            guard w.count == columns * experts else {
                if e.name == "token_embd.weight" || e.name == "per_layer_token_embd.weight" { continue }
                throw SwiftletError.invalidArgument("imatrix size \(w.count) is different from tensor size \(columns * experts) for \(e.name)")
            }
            out[e.name] = w
        }
        return out
    }

    /// Rewrites one tensor: dequantize the source rows if needed, then quantize them in parallel
    /// in chunks of whole rows (each expert matrix with its own importance slice).
    static func convert(_ e: QuantizationPlan.Entry, info: GGUFTensorInfo, source: UnsafeRawBufferPointer,
                        into dst: UnsafeMutableRawPointer, floats: inout FloatBuffer,
                        importance: [Float]?, pool: ComputePool) throws {
        let columns = info.rowLength, rows = info.rowCount
        guard rows > 0, columns > 0 else { return }
        let count = rows * columns
        let src: UnsafePointer<Float>
        if e.sourceType == .f32 {
            src = source.baseAddress!.assumingMemoryBound(to: Float.self)
        } else {
            let f = floats.reserve(count)
            let inRowBytes = e.sourceType.rowBytes(columns)!
            let base = source.baseAddress!
            pool.parallelChunks(rows, chunk: Swift.max(1, 16384 / columns)) { range, _ in
                for r in range {
                    try? dequantize(e.sourceType, src: UnsafeRawBufferPointer(start: base + r * inRowBytes, count: inRowBytes),
                                    count: columns, into: f + r * columns)
                }
            }
            src = UnsafePointer(f)
        }
        let outRowBytes = e.targetType.rowBytes(columns)!
        let rowsPerExpert = info.shape.count > 1 ? info.shape[1] : 1
        let rowsPerChunk = Swift.max(1, 16384 / columns)
        let failure = FailureFlag()
        importanceBuffer(importance) { weights in
            pool.parallelChunks(rows, chunk: rowsPerChunk) { range, _ in
                var r = range.lowerBound
                while r < range.upperBound {
                    let expert = r / rowsPerExpert
                    let n = Swift.min(range.upperBound, (expert + 1) * rowsPerExpert) - r
                    do {
                        try quantizeRows(e.targetType, src: src + r * columns, rows: n, columns: columns,
                                         into: dst + r * outRowBytes, importance: weights.map { $0 + expert * columns })
                    } catch {
                        failure.set()
                    }
                    r += n
                }
            }
        }
        if failure.isSet { throw SwiftletError.unsupportedTensorType("\(e.targetType) (quantize \(e.name))") }
    }

    private static func importanceBuffer(_ w: [Float]?, _ body: (UnsafePointer<Float>?) -> Void) {
        guard let w else { return body(nil) }
        w.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}

/// A flag set from worker threads.
private final class FailureFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// A growable scratch buffer of bytes, allocated once per size step.
struct ByteBuffer: ~Copyable {
    private var pointer: UnsafeMutableRawPointer?
    private var capacity = 0
    mutating func reserve(_ n: Int) -> UnsafeMutableRawPointer {
        if n > capacity || pointer == nil {
            pointer?.deallocate()
            pointer = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(n, 1), alignment: 64)
            capacity = n
        }
        return pointer!
    }
    deinit { pointer?.deallocate() }
}

/// A growable scratch buffer of floats.
struct FloatBuffer: ~Copyable {
    private var pointer: UnsafeMutablePointer<Float>?
    private var capacity = 0
    mutating func reserve(_ n: Int) -> UnsafeMutablePointer<Float> {
        if n > capacity || pointer == nil {
            pointer?.deallocate()
            pointer = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(n, 1))
            capacity = n
        }
        return pointer!
    }
    deinit { pointer?.deallocate() }
}

/// The output written to a temporary file beside the destination, renamed into place by
/// ``commit()`` and removed by ``discard()``.
final class OutputFile {
    let destination: URL
    let temporary: URL
    private var fd: Int32

    init(destination: URL) throws {
        self.destination = destination
        let dir = destination.deletingLastPathComponent()
        temporary = dir.appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString).partial")
        fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw SwiftletError.io(path: destination.path, reason: "cannot create output in \(dir.path): \(String(cString: strerror(errno)))")
        }
    }

    func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc_write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw SwiftletError.io(path: destination.path, reason: "write failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    func write(zeros count: Int) throws {
        let z = [UInt8](repeating: 0, count: count)
        try z.withUnsafeBytes { try write($0) }
    }

    func commit() throws {
        guard close(fd) == 0 else {
            fd = -1
            throw SwiftletError.io(path: destination.path, reason: "close failed: \(String(cString: strerror(errno)))")
        }
        fd = -1
        guard rename(temporary.path, destination.path) == 0 else {
            throw SwiftletError.io(path: destination.path, reason: "cannot move the output into place: \(String(cString: strerror(errno)))")
        }
    }

    func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporary.path)
    }
}

@inline(__always)
private func Glibc_write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}
