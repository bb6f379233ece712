import Foundation
import Swiftlet

/// Everything one `swiftlet bench` run measured, printable in llama-bench's formats.
public struct BenchReport: Sendable {
    public var model: BenchModelInfo
    public var results: [BenchResult]
    /// Streaming-read bandwidth measured in the same run (bytes/s), if measured.
    public var memoryBandwidth: Double?
    /// Threads of the bandwidth measurement.
    public var bandwidthThreads: Int
    public var load: BenchLoadReport?

    public init(model: BenchModelInfo, results: [BenchResult], memoryBandwidth: Double? = nil,
                bandwidthThreads: Int = 2, load: BenchLoadReport? = nil) {
        self.model = model; self.results = results; self.memoryBandwidth = memoryBandwidth
        self.bandwidthThreads = bandwidthThreads; self.load = load
    }

    /// Output formats of llama-bench's `-o`.
    public enum Format: String, CaseIterable, Sendable {
        case md, json, jsonl, csv
    }

    public func render(_ format: Format) -> String {
        switch format {
        case .md: return markdown()
        case .json: return "[\n" + results.map { "  " + jsonObject($0, indent: "    ") }.joined(separator: ",\n") + "\n]\n"
        case .jsonl: return results.map { jsonObject($0, indent: nil) + "\n" }.joined()
        case .csv: return csv()
        }
    }

    /// Tokens/s the memory bandwidth allows when every decoded token streams the weights once.
    public var bandwidthBoundTokensPerSecond: Double? {
        memoryBandwidth.map { $0 / Double(model.decodeWeightBytes) }
    }

    /// Fraction of the bandwidth bound a generation result reaches.
    public func bandwidthFraction(_ r: BenchResult) -> Double? {
        guard r.test.prompt == 0, let bound = bandwidthBoundTokensPerSecond else { return nil }
        return r.averageTs / bound
    }

    // MARK: - Markdown (llama-bench's table, then Swiftlet's footer)

    public func markdown() -> String {
        // llama-bench shows a parameter's column when some test departs from its default.
        let optional: [(String, Int, (BenchTest) -> String, Bool)] = [
            ("n_batch", 7, { "\($0.batch)" }, results.contains { $0.test.batch != 2048 }),
            ("n_ubatch", 8, { "\($0.ubatch)" }, results.contains { $0.test.ubatch != 512 }),
            ("type_k", 6, { $0.typeK.rawValue }, results.contains { $0.test.typeK != .f16 }),
            ("type_v", 6, { $0.typeV.rawValue }, results.contains { $0.test.typeV != .f16 }),
            ("fa", 3, { "\($0.flashAttention)" }, results.contains { $0.test.flashAttention != -1 }),
        ].filter(\.3)
        let headers = ["model", "size", "params", "backend", "threads"] + optional.map(\.0) + ["test", "t/s"]
        let widths = [30, 10, 10, 10, 7] + optional.map(\.1) + [15, 20]
        let rightAligned = [false, true, true, false, true] + optional.map { _ in true } + [true, true]
        func row(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { i, c in
                rightAligned[i] ? String(repeating: " ", count: max(0, widths[i] - c.count)) + c
                                : c + String(repeating: " ", count: max(0, widths[i] - c.count))
            }.joined(separator: " | ") + " |"
        }
        var lines = [row(headers)]
        lines.append("|" + widths.enumerated().map { i, w in
            " " + String(repeating: "-", count: w - (rightAligned[i] ? 1 : 0)) + (rightAligned[i] ? ":" : "") + " "
        }.joined(separator: "|") + "|")
        for r in results {
            lines.append(row([model.type, Self.size(model.sizeBytes), Self.params(model.parameterCount), "CPU",
                              "\(r.test.threads)"] + optional.map { $0.2(r.test) } + [r.test.name,
                              String(format: "%.2f ± %.2f", r.averageTs, r.stddevTs)]))
        }
        lines.append("")
        lines.append(contentsOf: footer())
        return lines.joined(separator: "\n") + "\n"
    }

    /// The figures llama-bench does not print: bandwidth bound, load time, peak RSS.
    public func footer() -> [String] {
        var lines: [String] = []
        let weightMiB = Double(model.decodeWeightBytes) / 1048576
        if let bw = memoryBandwidth, let bound = bandwidthBoundTokensPerSecond {
            lines.append(String(format: "memory bandwidth: %.2f GB/s (streaming read, %d threads, 256 MiB); decode reads %.2f MiB of weights/token → bound %.1f t/s",
                                bw / 1e9, bandwidthThreads, weightMiB, bound))
            for r in results where r.test.prompt == 0 {
                if let f = bandwidthFraction(r) {
                    lines.append(String(format: "%@ @ %d threads: %.1f t/s = %.1f%% of the bandwidth bound (target ≥ 70%%)",
                                        r.test.name, r.test.threads, r.averageTs, f * 100))
                }
            }
        } else {
            lines.append(String(format: "decode reads %.2f MiB of weights/token", weightMiB))
        }
        if let l = load {
            lines.append(String(format: "load → first token: %.1f ms (load %.1f ms, prompt %d tokens; target < 200 ms)",
                                l.firstTokenSeconds * 1000, l.loadSeconds * 1000, l.promptTokens))
            if let peak = l.peakRSSBytes {
                let mib = { (b: Int) in Double(b) / 1048576 }
                lines.append(String(format: "peak RSS while generating %d tokens: %.1f MiB (bound: file %.1f + KV cache %.1f + 64 MiB = %.1f MiB) %@",
                                    l.generatedTokens, mib(peak), mib(l.fileBytes), mib(l.kvCacheBytes),
                                    mib(l.rssBoundBytes), peak <= l.rssBoundBytes ? "ok" : "OVER"))
            }
        }
        return lines
    }

    static func size(_ bytes: Int) -> String {
        bytes < 1 << 30 ? String(format: "%.2f MiB", Double(bytes) / 1048576) : String(format: "%.2f GiB", Double(bytes) / 1073741824)
    }

    static func params(_ n: Int) -> String {
        n < 1_000_000_000 ? String(format: "%.2f M", Double(n) / 1e6) : String(format: "%.2f B", Double(n) / 1e9)
    }

    // MARK: - JSON / CSV (llama-bench's record fields, Swiftlet's extra fields at the end)

    /// One value of a record.
    enum Field {
        case string(String), int(Int), double(Double), bool(Bool), ints([UInt64]), doubles([Double])

        var json: String {
            switch self {
            case .string(let s): return JSONText.quoted(s)
            case .int(let i): return String(i)
            case .double(let d): return d.isFinite ? String(format: "%.6f", d) : "null"
            case .bool(let b): return b ? "true" : "false"
            case .ints(let v): return "[ " + v.map(String.init).joined(separator: ", ") + " ]"
            case .doubles(let v): return "[ " + v.map { String(format: "%.6f", $0) }.joined(separator: ", ") + " ]"
            }
        }

        var csv: String {
            switch self {
            case .string(let s): return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            case .int(let i): return String(i)
            case .double(let d): return String(format: "%.6f", d)
            case .bool(let b): return b ? "1" : "0"
            case .ints(let v): return "\"" + v.map(String.init).joined(separator: ";") + "\""
            case .doubles(let v): return "\"" + v.map { String(format: "%.6f", $0) }.joined(separator: ";") + "\""
            }
        }
    }

    func fields(_ r: BenchResult) -> [(String, Field)] {
        var f: [(String, Field)] = [
            ("build_commit", .string("swiftlet")), ("build_number", .int(0)),
            ("cpu_info", .string(SystemInfo.cpuModel ?? "unknown")), ("gpu_info", .string("")),
            ("backends", .string("CPU")),
            ("model_filename", .string(model.filename)), ("model_type", .string(model.type)),
            ("model_size", .int(model.sizeBytes)), ("model_n_params", .int(model.parameterCount)),
            ("n_batch", .int(r.test.batch)), ("n_ubatch", .int(r.test.ubatch)), ("n_threads", .int(r.test.threads)),
            ("cpu_mask", .string("0x0")), ("cpu_strict", .bool(false)), ("poll", .int(0)),
            ("type_k", .string(r.test.typeK.rawValue)), ("type_v", .string(r.test.typeV.rawValue)), ("n_gpu_layers", .int(0)),
            ("n_cpu_moe", .int(0)), ("split_mode", .string("layer")), ("main_gpu", .int(0)),
            ("no_kv_offload", .bool(false)), ("flash_attn", .int(r.test.flashAttention)), ("devices", .string("auto")),
            ("tensor_split", .string("0.00")), ("tensor_buft_overrides", .string("none")),
            ("load_mode", .string("mmap")), ("lazy_mode", .string("auto")), ("embeddings", .bool(false)),
            ("no_op_offload", .int(0)), ("no_host", .bool(false)), ("repack", .bool(false)),
            ("fit_target", .int(0)), ("fit_min_ctx", .int(0)),
            ("n_prompt", .int(r.test.prompt)), ("n_gen", .int(r.test.generate)), ("n_depth", .int(r.test.depth)),
            ("test_time", .string(r.testTime)),
            ("avg_ns", .int(Int(r.averageNs.rounded()))), ("stddev_ns", .int(Int(r.stddevNs.rounded()))),
            ("avg_ts", .double(r.averageTs)), ("stddev_ts", .double(r.stddevTs)),
            ("samples_ns", .ints(r.samplesNs)), ("samples_ts", .doubles(r.samplesTs)),
            ("weight_bytes_per_token", .int(model.decodeWeightBytes)),
        ]
        if let bw = memoryBandwidth { f.append(("memory_bandwidth_bps", .double(bw))) }
        if let frac = bandwidthFraction(r) { f.append(("bandwidth_bound_fraction", .double(frac))) }
        if let l = load {
            f.append(("load_to_first_token_ms", .double(l.firstTokenSeconds * 1000)))
            if let peak = l.peakRSSBytes {
                f.append(("peak_rss_bytes", .int(peak)))
                f.append(("peak_rss_bound_bytes", .int(l.rssBoundBytes)))
            }
        }
        return f
    }

    func jsonObject(_ r: BenchResult, indent: String?) -> String {
        let items = fields(r).map { JSONText.quoted($0.0) + ": " + $0.1.json }
        guard let indent else { return "{" + items.joined(separator: ", ") + "}" }
        let closing = String(indent.dropLast(2))
        return "{\n" + items.map { indent + $0 }.joined(separator: ",\n") + "\n" + closing + "}"
    }

    func csv() -> String {
        guard let first = results.first else { return "" }
        var lines = [fields(first).map(\.0).joined(separator: ",")]
        // Every record has the same keys when the optional measurements apply to all; pad otherwise.
        let keys = results.reduce(into: [String]()) { keys, r in
            for (k, _) in fields(r) where !keys.contains(k) { keys.append(k) }
        }
        lines[0] = keys.joined(separator: ",")
        for r in results {
            let values = Dictionary(fields(r), uniquingKeysWith: { a, _ in a })
            lines.append(keys.map { values[$0]?.csv ?? "" }.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

}
