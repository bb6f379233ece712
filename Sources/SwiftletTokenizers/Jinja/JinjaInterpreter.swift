import Foundation
import SwiftletCore

/// A parsed Jinja template, ready to render many times.
///
/// ```swift
/// let template = try JinjaTemplate("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}")
/// let text = try template.render(["messages": [["role": "user", "content": "Hi"]]])
/// ```
/// The language is the subset of jinja2 Hugging Face chat templates use, evaluated with
/// Python's semantics and the environment transformers' `apply_chat_template` sets up
/// (sandboxed and immutable, `trim_blocks`, `lstrip_blocks`, loop controls, its `tojson`,
/// `raise_exception` and `strftime_now`). Every failure is a ``SwiftletError/template(kind:message:line:column:)``.
public struct JinjaTemplate: @unchecked Sendable {
    // @unchecked: the syntax tree is immutable after parsing; literal values in it are plain data.
    let nodes: [JinjaNode]
    /// The bounds a render runs under.
    public var limits: JinjaLimits

    /// Parses `source`; syntax errors (including unknown filters and tests) are thrown here.
    public init(_ source: String, whitespace: JinjaWhitespace = JinjaWhitespace(), limits: JinjaLimits = JinjaLimits()) throws {
        nodes = try JinjaParser.parse(JinjaLexer.tokenize(source, whitespace: whitespace))
        self.limits = limits
    }

    /// Renders with `context` as the template's variables (besides the globals `range`,
    /// `namespace`, `dict`, `raise_exception`, `strftime_now`).
    public func render(_ context: [String: JinjaValue], date: JinjaDate? = nil) throws -> String {
        let interpreter = JinjaInterpreter(limits: limits, date: date)
        return try interpreter.render(nodes, context: context)
    }
}

/// Bounds that keep a hostile template from hanging or exhausting memory.
public struct JinjaLimits: Sendable, Equatable {
    /// Largest output (and largest string built along the way), in UTF-8 bytes.
    public var maximumOutputBytes: Int
    /// Total loop iterations over the whole render.
    public var maximumLoopIterations: Int
    /// Deepest nesting of macro calls.
    public var maximumCallDepth: Int
    /// Total UTF-8 bytes of all the strings a render builds (concatenations, repetitions, filter
    /// results), so that rebuilding a long string in a loop cannot take quadratic time.
    public var maximumBytesBuilt: Int
    /// Longest a render may run, checked at every loop iteration and macro call (a bound on work
    /// the other limits do not count, such as scanning a long string in every iteration).
    public var maximumRenderSeconds: Double

    public init(maximumOutputBytes: Int = 16 << 20, maximumLoopIterations: Int = 200_000, maximumCallDepth: Int = 100,
                maximumBytesBuilt: Int = 256 << 20, maximumRenderSeconds: Double = 10) {
        self.maximumOutputBytes = maximumOutputBytes
        self.maximumLoopIterations = maximumLoopIterations
        self.maximumCallDepth = maximumCallDepth
        self.maximumBytesBuilt = maximumBytesBuilt
        self.maximumRenderSeconds = maximumRenderSeconds
    }
}

/// The date `strftime_now` formats (fixed for reproducible renders; nil means the local time now).
public struct JinjaDate: Sendable, Equatable {
    public var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        self.year = year; self.month = month; self.day = day; self.hour = hour; self.minute = minute; self.second = second
    }
}

/// Variables visible at one level: the template, a loop iteration, a macro call.
final class JinjaScope {
    var variables: [String: JinjaValue] = [:]
    let parent: JinjaScope?
    init(parent: JinjaScope?) { self.parent = parent }

    func lookup(_ name: String) -> JinjaValue? {
        var scope: JinjaScope? = self
        while let s = scope {
            if let v = s.variables[name] { return v }
            scope = s.parent
        }
        return nil
    }
}

/// How a statement list ended.
enum JinjaFlow { case normal, breakLoop, continueLoop }

/// Evaluates a syntax tree. One instance per render, used by one thread.
final class JinjaInterpreter {
    let limits: JinjaLimits
    let date: JinjaDate?
    private var loopIterations = 0
    fileprivate(set) var callDepth = 0
    private var bytesBuilt = 0
    private let deadline: ContinuousClock.Instant
    let globals: JinjaScope

    init(limits: JinjaLimits, date: JinjaDate?) {
        self.limits = limits
        self.date = date
        let seconds = limits.maximumRenderSeconds
        deadline = .now + .seconds(seconds.isNaN ? 0 : min(max(seconds, 0), 1e9))
        globals = JinjaScope(parent: nil)
        JinjaBuiltins.installGlobals(in: globals)
    }

    func render(_ nodes: [JinjaNode], context: [String: JinjaValue]) throws -> String {
        let scope = JinjaScope(parent: globals)
        scope.variables = context
        var out = ""
        _ = try execute(nodes, scope: scope, into: &out)
        return out
    }

    func enterCall() throws {
        callDepth += 1
        if callDepth > limits.maximumCallDepth {
            callDepth -= 1
            throw SwiftletError.template(kind: .limit, message: "macro calls nested deeper than \(limits.maximumCallDepth)",
                                         line: 0, column: 0)
        }
        do { try checkTime(at: nil) } catch { callDepth -= 1; throw error }
    }

    func checkTime(at location: JinjaLocation?) throws {
        if ContinuousClock.now > deadline {
            throw error(.limit, "render took longer than \(limits.maximumRenderSeconds) s", at: location)
        }
    }

    // MARK: Errors

    func error(_ kind: TemplateErrorKind, _ message: String, at location: JinjaLocation?) -> SwiftletError {
        .template(kind: kind, message: message, line: location?.line ?? 0, column: location?.column ?? 0)
    }

    /// Gives an error thrown by a builtin (without a position) the position of the expression.
    func located<T>(_ location: JinjaLocation, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch SwiftletError.template(let kind, let message, 0, 0) {
            throw error(kind, message, at: location)
        }
    }

    /// Checks a string about to be built against the output bound and, when `charged`, counts
    /// its bytes against the render's budget of bytes built.
    func checkSize(_ bytes: Int, at location: JinjaLocation?, charged: Bool = true) throws {
        if bytes > limits.maximumOutputBytes {
            throw error(.limit, "output larger than \(limits.maximumOutputBytes) bytes", at: location)
        }
        guard charged else { return }
        bytesBuilt += bytes
        if bytesBuilt > limits.maximumBytesBuilt {
            throw error(.limit, "more than \(limits.maximumBytesBuilt) bytes of text built", at: location)
        }
    }

    /// Counts a list of `count` values being built against the budget of bytes built.
    func chargeElements(_ count: Int) throws {
        bytesBuilt += count * MemoryLayout<JinjaValue>.stride
        if bytesBuilt > limits.maximumBytesBuilt {
            throw error(.limit, "more than \(limits.maximumBytesBuilt) bytes of text built", at: nil)
        }
    }

    private func append(_ text: String, to out: inout String, at location: JinjaLocation?) throws {
        try checkSize(out.utf8.count + text.utf8.count, at: location, charged: false)
        out += text
    }

    /// A value as printed, refusing lists and dictionaries whose text would exceed the output
    /// bound before building it (a list can repeat one long string many times).
    func text(of value: JinjaValue, at location: JinjaLocation?) throws -> String {
        switch value {
        case .array, .object, .namespace:
            try checkSize(JinjaBuiltins.printedSize(value, limit: limits.maximumOutputBytes), at: location, charged: false)
        default: break
        }
        return value.pythonString
    }

    // MARK: Statements

    func execute(_ nodes: [JinjaNode], scope: JinjaScope, into out: inout String) throws -> JinjaFlow {
        for node in nodes {
            switch node {
            case .text(let s):
                try append(s, to: &out, at: nil)
            case .output(let e, let location):
                try refuseGenerator(e, "printed", at: location)
                let value = try evaluate(e, scope: scope)
                try append(text(of: value, at: location), to: &out, at: location)
            case .conditional(let branches, let otherwise):
                var taken: [JinjaNode] = otherwise
                for (condition, body) in branches {
                    if try evaluate(condition, scope: scope).isTruthy { taken = body; break }
                }
                let flow = try execute(taken, scope: scope, into: &out)
                if flow != .normal { return flow }
            case let .loop(target, iterable, condition, body, otherwise, location):
                try executeLoop(target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise,
                                scope: scope, into: &out, at: location)
            case let .set(target, expression, location):
                try assign(try evaluate(expression, scope: scope), to: target, scope: scope, at: location)
            case let .setBlock(target, filters, body, location):
                var captured = ""
                _ = try execute(body, scope: JinjaScope(parent: scope), into: &captured)
                var value = JinjaValue.string(captured)
                for (name, args, filterLocation) in filters {
                    value = try applyFilter(name, to: value, arguments: evaluateArguments(args, scope: scope), at: filterLocation)
                }
                try assign(value, to: target, scope: scope, at: location)
            case .macro(let macro):
                scope.variables[macro.name] = .callable(makeMacro(macro, scope: scope))
            case let .callBlock(call, callerParameters, body, location):
                guard case let .call(callee, args, callLocation) = call else { break }
                let caller = makeMacro(JinjaMacro(name: "caller", parameters: callerParameters, body: body), scope: scope)
                var arguments = try evaluateArguments(args, scope: scope)
                arguments.keyword.append(("caller", .callable(caller)))
                let function = try evaluate(callee, scope: scope)
                let value = try callValue(function, arguments, at: callLocation)
                try append(text(of: value, at: location), to: &out, at: location)
            case let .filterBlock(filters, body, location):
                var captured = ""
                _ = try execute(body, scope: scope, into: &captured)
                var value = JinjaValue.string(captured)
                for (name, args, filterLocation) in filters {
                    value = try applyFilter(name, to: value, arguments: evaluateArguments(args, scope: scope), at: filterLocation)
                }
                try append(text(of: value, at: location), to: &out, at: location)
            case .breakLoop: return .breakLoop
            case .continueLoop: return .continueLoop
            }
        }
        return .normal
    }

    private func assign(_ value: JinjaValue, to target: JinjaTarget, scope: JinjaScope, at location: JinjaLocation) throws {
        switch target {
        case .name(let n):
            scope.variables[n] = value
        case .tuple(let names):
            let items = try iterate(value, at: location)
            guard items.count == names.count else {
                throw error(.type, "cannot unpack \(items.count) values into \(names.count) names", at: location)
            }
            for (n, v) in zip(names, items) { scope.variables[n] = v }
        case .attribute(let n, let attribute):
            guard case .namespace(let ns) = scope.lookup(n) ?? .undefined(n) else {
                throw error(.type, "cannot assign attribute on non-namespace object '\(n)'", at: location)
            }
            guard !attribute.hasPrefix("_") else {
                throw error(.security, "namespace attributes cannot start with an underscore: '\(attribute)'", at: location)
            }
            try value.checkStorable(in: ns) { try checkTime(at: location) }
            ns.attributes[attribute] = value
        }
    }

    private func executeLoop(target: JinjaTarget, iterable: JinjaExpression, condition: JinjaExpression?, body: [JinjaNode],
                             otherwise: [JinjaNode], scope: JinjaScope, into out: inout String, at location: JinjaLocation) throws {
        var items = try iterate(try evaluate(iterable, scope: scope), at: location)
        if let condition {
            items = try items.filter { item in
                let s = JinjaScope(parent: scope)
                try assign(item, to: target, scope: s, at: location)
                return try evaluate(condition, scope: s).isTruthy
            }
        }
        if items.isEmpty {
            _ = try execute(otherwise, scope: scope, into: &out)
            return
        }
        let count = items.count
        for (i, item) in items.enumerated() {
            loopIterations += 1
            if loopIterations > limits.maximumLoopIterations {
                throw error(.limit, "more than \(limits.maximumLoopIterations) loop iterations", at: location)
            }
            try checkTime(at: location)
            let s = JinjaScope(parent: scope)
            var loop = JinjaObject()
            loop["index"] = .int(i + 1)
            loop["index0"] = .int(i)
            loop["revindex"] = .int(count - i)
            loop["revindex0"] = .int(count - i - 1)
            loop["first"] = .bool(i == 0)
            loop["last"] = .bool(i == count - 1)
            loop["length"] = .int(count)
            loop["depth"] = .int(1)
            loop["depth0"] = .int(0)
            loop["previtem"] = i > 0 ? items[i - 1] : .undefined("loop.previtem")
            loop["nextitem"] = i + 1 < count ? items[i + 1] : .undefined("loop.nextitem")
            loop["cycle"] = .callable(JinjaCallable(name: "loop.cycle") { args, _ in
                guard !args.positional.isEmpty else {
                    throw SwiftletError.template(kind: .type, message: "no items for cycling given", line: 0, column: 0)
                }
                return args.positional[i % args.positional.count]
            })
            s.variables["loop"] = .object(loop)
            try assign(item, to: target, scope: s, at: location)
            let flow = try execute(body, scope: s, into: &out)
            if flow == .breakLoop { break }
        }
    }

    private func makeMacro(_ macro: JinjaMacro, scope definitionScope: JinjaScope) -> JinjaCallable {
        // The scope is held weakly: it holds the macro, and renders must not leak the cycle.
        JinjaCallable(name: macro.name) { [weak definitionScope] args, interpreter in
            try interpreter.enterCall()
            defer { interpreter.callDepth -= 1 }
            guard let definitionScope else {
                throw SwiftletError.template(kind: .type, message: "macro '\(macro.name)' called outside its scope", line: 0, column: 0)
            }
            for value in args.positional { try value.checkStorable(in: nil) { try interpreter.checkTime(at: nil) } }
            for (_, value) in args.keyword { try value.checkStorable(in: nil) { try interpreter.checkTime(at: nil) } }
            let s = JinjaScope(parent: definitionScope)
            var extra: [JinjaValue] = []
            for (i, value) in args.positional.enumerated() {
                if i < macro.parameters.count { s.variables[macro.parameters[i].0] = value } else { extra.append(value) }
            }
            var extraKeywords = JinjaObject()
            for (name, value) in args.keyword {
                if macro.parameters.contains(where: { $0.0 == name }) || name == "caller" {
                    s.variables[name] = value
                } else {
                    extraKeywords[name] = value
                }
            }
            for (name, defaultValue) in macro.parameters where s.variables[name] == nil {
                s.variables[name] = try defaultValue.map { try interpreter.evaluate($0, scope: s) } ?? .undefined(name)
            }
            s.variables["varargs"] = .array(extra)
            s.variables["kwargs"] = .object(extraKeywords)
            var out = ""
            _ = try interpreter.execute(macro.body, scope: s, into: &out)
            return .string(out)
        }
    }

    // MARK: Expressions

    func evaluateArguments(_ args: JinjaCallArguments, scope: JinjaScope) throws -> JinjaArguments {
        JinjaArguments(positional: try args.positional.map { try evaluate($0, scope: scope) },
                       keyword: try args.keyword.map { ($0.0, try evaluate($0.1, scope: scope)) })
    }

    func evaluate(_ expression: JinjaExpression, scope: JinjaScope) throws -> JinjaValue {
        switch expression {
        case .literal(let v):
            return v
        case .name(let n, _):
            return scope.lookup(n) ?? .undefined(n)
        case .list(let items):
            return .array(try items.map { try evaluate($0, scope: scope) })
        case .dictionary(let pairs):
            var o = JinjaObject()
            for (k, v) in pairs {
                let key = try evaluate(k, scope: scope)
                o[key: key] = try evaluate(v, scope: scope)
            }
            return .object(o)
        case let .attribute(base, name, location):
            let value = try evaluate(base, scope: scope)
            return try located(location) { try JinjaBuiltins.attribute(of: value, name, interpreter: self) }
        case let .subscript(base, key, location):
            let value = try evaluate(base, scope: scope)
            let k = try evaluate(key, scope: scope)
            return try located(location) { try JinjaBuiltins.item(of: value, k, interpreter: self) }
        case let .slice(base, start, stop, step, location):
            let value = try evaluate(base, scope: scope)
            let bounds = try [start, stop, step].map { try $0.map { try evaluate($0, scope: scope) } }
            return try located(location) { try JinjaBuiltins.slice(value, bounds[0], bounds[1], bounds[2]) }
        case let .call(callee, args, location):
            let function = try evaluate(callee, scope: scope)
            return try callValue(function, try evaluateArguments(args, scope: scope), at: location)
        case let .filter(base, name, args, location):
            if name == "tojson" { try refuseGenerator(base, "JSON serializable", at: location) }
            let value = try evaluate(base, scope: scope)
            return try applyFilter(name, to: value, arguments: try evaluateArguments(args, scope: scope), at: location)
        case let .test(base, name, args, negated, location):
            let value = try evaluate(base, scope: scope)
            let result = try located(location) {
                try JinjaBuiltins.test(name, value, try evaluateArguments(args, scope: scope), interpreter: self)
            }
            return .bool(result != negated)
        case let .negate(e, location):
            let v = try evaluate(e, scope: scope)
            switch v {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            case .bool(let b): return .int(b ? -1 : 0)
            default: throw error(v.isUndefined ? .undefined : .type, "bad operand type for unary -: '\(v.typeName)'", at: location)
            }
        case let .plus(e, location):
            let v = try evaluate(e, scope: scope)
            guard let n = v.numericValue else { throw error(.type, "bad operand type for unary +: '\(v.typeName)'", at: location) }
            return n
        case .not(let e):
            return .bool(!(try evaluate(e, scope: scope).isTruthy))
        case let .and(a, b):
            let left = try evaluate(a, scope: scope)
            return left.isTruthy ? try evaluate(b, scope: scope) : left
        case let .or(a, b):
            let left = try evaluate(a, scope: scope)
            return left.isTruthy ? left : try evaluate(b, scope: scope)
        case let .binary(op, a, b, location):
            var left = try evaluate(a, scope: scope)
            var right = try evaluate(b, scope: scope)
            if op == "+" {
                // markupsafe: adding a plain string to Markup (`'x'|safe + s`) HTML-escapes the string.
                let (markupLeft, markupRight) = (isMarkup(a), isMarkup(b))
                if markupLeft && !markupRight, case .string(let t) = right { right = .string(JinjaBuiltins.escapeHTML(t)) }
                if markupRight && !markupLeft, case .string(let t) = left { left = .string(JinjaBuiltins.escapeHTML(t)) }
            }
            return try located(location) { try JinjaBuiltins.binary(op, left, right, interpreter: self) }
        case let .compare(first, operations, location):
            var left = try evaluate(first, scope: scope)
            for (op, e) in operations {
                let right = try evaluate(e, scope: scope)
                let holds = try located(location) { try JinjaBuiltins.compare(op, left, right) }
                if !holds { return .bool(false) }
                left = right
            }
            return .bool(true)
        case let .concat(items, location):
            var s = ""
            for item in items {
                s += try text(of: evaluate(item, scope: scope), at: location)
                try checkSize(s.utf8.count, at: location, charged: false)
            }
            try checkSize(s.utf8.count, at: location)
            return .string(s)
        case let .conditional(condition, then, otherwise):
            if try evaluate(condition, scope: scope).isTruthy { return try evaluate(then, scope: scope) }
            return try otherwise.map { try evaluate($0, scope: scope) } ?? .undefined("conditional expression")
        }
    }

    /// Whether jinja2 would produce a `Markup` string here: the result of `safe`/`escape`, or a
    /// sum involving one. (Tracked by expression shape: a Markup stored in a variable is plain.)
    private func isMarkup(_ e: JinjaExpression) -> Bool {
        switch e {
        case .filter(_, let name, _, _): return ["safe", "escape", "e", "forceescape"].contains(name)
        case .binary("+", let a, let b, _): return isMarkup(a) || isMarkup(b)
        default: return false
        }
    }

    /// jinja2's `map`, `select`, … return generators, which `tojson` rejects and printing shows
    /// as `<generator object …>`; both are errors here.
    private func refuseGenerator(_ e: JinjaExpression, _ what: String, at location: JinjaLocation) throws {
        if case .filter(_, let name, _, _) = e, JinjaBuiltins.generatorFilters.contains(name) {
            throw error(.type, "the result of '\(name)' is a generator: not \(what)", at: location)
        }
    }

    func callValue(_ function: JinjaValue, _ arguments: JinjaArguments, at location: JinjaLocation) throws -> JinjaValue {
        guard case .callable(let c) = function else {
            if case .undefined(let name) = function {
                throw error(.undefined, "'\(name)' is undefined", at: location)
            }
            throw error(.type, "'\(function.typeName)' object is not callable", at: location)
        }
        return try located(location) { try c.body(arguments, self) }
    }

    func applyFilter(_ name: String, to value: JinjaValue, arguments: JinjaArguments, at location: JinjaLocation) throws -> JinjaValue {
        try located(location) { try JinjaBuiltins.filter(name, value, arguments, interpreter: self) }
    }

    /// The elements of a value iterated by a loop or a filter: list items, dictionary keys,
    /// string characters; undefined iterates as empty.
    func iterate(_ value: JinjaValue, at location: JinjaLocation?) throws -> [JinjaValue] {
        switch value {
        case .array(let a): return a
        case .object(let o): return o.keyValues
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw error(.type, "'\(value.typeName)' object is not iterable", at: location)
        }
    }
}
