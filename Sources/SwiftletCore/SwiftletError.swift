/// The one error type of every public Swiftlet entry point.
///
/// Each case carries enough context to say what was wrong without a debugger:
/// the file, the tensor, the shapes involved. Swiftlet never traps on bad input.
public enum SwiftletError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Shapes of the operands do not fit the operation (`op` names it).
    case shapeMismatch(op: String, detail: String)
    /// A shape or argument is invalid on its own (negative size, zero dims where not allowed, …).
    case invalidArgument(String)
    /// A file ended before a structure it declares (`what`) was complete.
    case truncatedFile(path: String, what: String)
    /// A file's contents are inconsistent (bad magic, out-of-range offset, overflow, …).
    case malformedFile(path: String, reason: String)
    /// A tensor element / block type this build does not know.
    case unsupportedTensorType(String)
    /// A model file lacks a tensor its architecture needs.
    case missingTensor(String)
    /// A model file has a tensor the architecture does not use (strict weight mapping).
    case unexpectedTensor(String)
    /// A metadata key the architecture needs is absent or has the wrong type.
    case missingMetadata(String)
    /// The architecture named by the file is not implemented.
    case unsupportedArchitecture(String, supported: [String])
    /// A tokenizer configuration (model type, pre-tokenizer, chat template) is not supported.
    case unsupportedTokenizer(String)
    /// The prompt plus requested tokens would not fit in the context window.
    case contextOverflow(requested: Int, limit: Int)
    /// An I/O failure (open, mmap, read, write) with the system's reason.
    case io(path: String, reason: String)
    /// A run-time backend (BLAS library, CPU feature) is unavailable.
    case backendUnavailable(String)
    /// A GBNF grammar (or a regex turned into one) is malformed or exceeds a safety bound;
    /// `line` and `column` (1-based, in characters) locate the problem in its text.
    case invalidGrammar(reason: String, line: Int, column: Int)
    /// A JSON Schema cannot be turned into a grammar; `path` is the JSON pointer of the offending part.
    case invalidSchema(reason: String, path: String)
    /// The work was cancelled (task cancellation, or the consumer of a stream went away).
    case cancelled
    /// A metadata key (or value) the model sets that the runtime does not implement: refused
    /// rather than ignored, since ignoring it would compute different logits.
    case unsupportedMetadata(key: String, value: String)
    /// A Jinja template (a chat template) failed to parse or render; `line` and `column` are
    /// 1-based positions in the template source.
    case template(kind: TemplateErrorKind, message: String, line: Int, column: Int)
    /// A KV cache (`what` names who asks for it) would take the KV caches of the process past
    /// their memory limit: `needed` bytes (`Int.max` when the size overflows) beside `held` bytes
    /// held already, against `limit` (see `KVCacheBudget`). Nothing was allocated.
    case kvCacheLimit(what: String, needed: Int, held: Int, limit: Int)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, detail): return "shape mismatch in \(op): \(detail)"
        case let .invalidArgument(s): return "invalid argument: \(s)"
        case let .truncatedFile(path, what): return "\(path): file is truncated (while reading \(what))"
        case let .malformedFile(path, reason): return "\(path): malformed file: \(reason)"
        case let .unsupportedTensorType(t): return "unsupported tensor type: \(t)"
        case let .missingTensor(n): return "missing tensor: \(n)"
        case let .unexpectedTensor(n): return "unexpected tensor: \(n)"
        case let .missingMetadata(k): return "missing or mistyped metadata key: \(k)"
        case let .unsupportedArchitecture(a, supported):
            return "unsupported architecture '\(a)' (supported: \(supported.joined(separator: ", ")))"
        case let .unsupportedTokenizer(s): return "unsupported tokenizer: \(s)"
        case let .contextOverflow(requested, limit): return "context overflow: \(requested) tokens requested, context holds \(limit)"
        case let .io(path, reason): return "\(path): \(reason)"
        case let .backendUnavailable(s): return "backend unavailable: \(s)"
        case let .invalidGrammar(reason, line, column): return "grammar error at line \(line), column \(column): \(reason)"
        case let .invalidSchema(reason, path): return "JSON schema error at \(path.isEmpty ? "/" : path): \(reason)"
        case .cancelled: return "cancelled"
        case let .unsupportedMetadata(key, value): return "unsupported model metadata: \(key) = \(value) is not implemented"
        case let .template(kind, message, line, column): return "template \(kind.rawValue) error at \(line):\(column): \(message)"
        case let .kvCacheLimit(what, needed, held, limit):
            func size(_ bytes: Int) -> String {
                let (unit, name) = bytes >= 1 << 30 ? (Double(1 << 30), "GiB") : (Double(1 << 20), "MiB")
                return bytes == .max ? "more than 8 EiB" : "\((Double(bytes) / unit * 10).rounded() / 10) \(name)"
            }
            return "KV cache limit: \(size(needed)) of KV cache asked for \(what)"
                + (held > 0 ? ", beside the \(size(held)) held already" : "")
                + ", over the limit of \(size(limit)) (by default 3/4 of physical memory minus the loaded weights); "
                + "raise it with --kv-cache-limit or SWIFTLET_KV_CACHE_LIMIT (KVCacheBudget in code), "
                + "or use a shorter context, a quantized cache or fewer sessions"
        }
    }
}

/// What went wrong in a template (see ``SwiftletError/template(kind:message:line:column:)``).
public enum TemplateErrorKind: String, Sendable, Equatable {
    /// The source is not valid template syntax (or names an unknown filter or test).
    case syntax
    /// An operation got a value of the wrong type (`'a' + 1`, calling a string, …).
    case type
    /// An attribute or variable of an undefined value was used.
    case undefined
    /// The template called `raise_exception(message)`.
    case raised
    /// A bound was hit: recursion depth, output size or loop iterations.
    case limit
    /// The template used an operation the sandbox forbids (mutating a list or dict).
    case security
}
