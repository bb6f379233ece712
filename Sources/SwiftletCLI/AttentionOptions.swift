import ArgumentParser
import Foundation
import Swiftlet

/// llama.cpp's `-fa, --flash-attn on|off|auto`.
enum FlashAttentionMode: String, ExpressibleByArgument, CaseIterable {
    case on, off, auto

    init?(argument: String) {
        switch argument.lowercased() {
        case "on", "1", "true", "enabled": self = .on
        case "off", "0", "false", "disabled": self = .off
        case "auto", "-1": self = .auto
        default: return nil
        }
    }

    /// As llama.cpp on a CPU: `auto` turns flash attention on.
    var enabled: Bool { self != .off }
}

/// llama.cpp's KV-cache and attention options: `-ctk/--cache-type-k`, `-ctv/--cache-type-v`,
/// `-fa/--flash-attn`, shared by the commands that run a model.
struct AttentionOptions: ParsableArguments {
    @Option(name: [.customLong("ctk", withSingleDash: true), .customLong("cache-type-k")],
            help: "KV cache type for K: \(KVCacheType.names) (default f16).")
    var cacheTypeK: String = "f16"
    @Option(name: [.customLong("ctv", withSingleDash: true), .customLong("cache-type-v")],
            help: "KV cache type for V: \(KVCacheType.names) (default f16; quantized types need flash attention).")
    var cacheTypeV: String = "f16"
    @Option(name: [.customLong("fa", withSingleDash: true), .customLong("flash-attn")],
            help: "Flash attention: on, off or auto (default auto: on, as llama.cpp on a CPU).")
    var flashAttn: FlashAttentionMode = .auto
    @OptionGroup var cacheLimit: KVCacheLimitOptions

    /// The parsed types and attention kind.
    func resolved() throws -> (key: KVCacheType, value: KVCacheType, flashAttention: Bool) {
        (try Self.type(cacheTypeK, flag: "--cache-type-k"), try Self.type(cacheTypeV, flag: "--cache-type-v"), flashAttn.enabled)
    }

    static func type(_ name: String, flag: String) throws -> KVCacheType {
        guard let type = KVCacheType(rawValue: name.lowercased()) else {
            throw ValidationError("\(flag): unsupported cache type '\(name)' (use \(KVCacheType.names))")
        }
        return type
    }
}

/// `--kv-cache-limit SIZE`: the memory all KV caches of the process may take together
/// (`KVCacheBudget.shared`), for the commands that run a model.
struct KVCacheLimitOptions: ParsableArguments {
    @Option(name: .customLong("kv-cache-limit"),
            help: "Most memory the KV caches may take together: bytes, or K, M, G, T (binary) (default: 3/4 of physical memory minus the weights; env SWIFTLET_KV_CACHE_LIMIT).")
    var kvCacheLimit: String?

    func validate() throws {
        guard let kvCacheLimit else { return }
        guard let bytes = KVCacheBudget.parseSize(kvCacheLimit) else {
            throw ValidationError("--kv-cache-limit: '\(kvCacheLimit)' is not a size (bytes, or a number with K, M, G or T)")
        }
        KVCacheBudget.shared.setLimit(bytes: bytes)
    }
}
