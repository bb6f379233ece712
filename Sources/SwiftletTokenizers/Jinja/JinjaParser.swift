import SwiftletCore

/// An expression of the template language.
indirect enum JinjaExpression {
    case literal(JinjaValue)
    case name(String, JinjaLocation)
    case list([JinjaExpression])
    case dictionary([(JinjaExpression, JinjaExpression)])
    case attribute(JinjaExpression, String, JinjaLocation)
    case `subscript`(JinjaExpression, JinjaExpression, JinjaLocation)
    case slice(JinjaExpression, start: JinjaExpression?, stop: JinjaExpression?, step: JinjaExpression?, JinjaLocation)
    case call(JinjaExpression, JinjaCallArguments, JinjaLocation)
    case filter(JinjaExpression, String, JinjaCallArguments, JinjaLocation)
    case test(JinjaExpression, String, JinjaCallArguments, negated: Bool, JinjaLocation)
    case negate(JinjaExpression, JinjaLocation)
    case plus(JinjaExpression, JinjaLocation)
    case not(JinjaExpression)
    case and(JinjaExpression, JinjaExpression)
    case or(JinjaExpression, JinjaExpression)
    case binary(String, JinjaExpression, JinjaExpression, JinjaLocation)
    case compare(JinjaExpression, [(String, JinjaExpression)], JinjaLocation)
    case concat([JinjaExpression], JinjaLocation)
    case conditional(condition: JinjaExpression, then: JinjaExpression, otherwise: JinjaExpression?)
}

struct JinjaCallArguments {
    var positional: [JinjaExpression] = []
    var keyword: [(String, JinjaExpression)] = []
}

/// Where `set` and `for` store values.
enum JinjaTarget {
    case name(String)
    case tuple([String])
    /// `namespace.attribute`
    case attribute(String, String)
}

struct JinjaMacro {
    var name: String
    var parameters: [(String, JinjaExpression?)]
    var body: [JinjaNode]
}

/// A statement or piece of output.
indirect enum JinjaNode {
    case text(String)
    case output(JinjaExpression, JinjaLocation)
    case conditional([(JinjaExpression, [JinjaNode])], otherwise: [JinjaNode])
    case loop(target: JinjaTarget, iterable: JinjaExpression, condition: JinjaExpression?, body: [JinjaNode],
              otherwise: [JinjaNode], JinjaLocation)
    case set(JinjaTarget, JinjaExpression, JinjaLocation)
    case setBlock(JinjaTarget, filters: [(String, JinjaCallArguments, JinjaLocation)], body: [JinjaNode], JinjaLocation)
    case macro(JinjaMacro)
    case callBlock(call: JinjaExpression, callerParameters: [(String, JinjaExpression?)], body: [JinjaNode], JinjaLocation)
    case filterBlock(filters: [(String, JinjaCallArguments, JinjaLocation)], body: [JinjaNode], JinjaLocation)
    case breakLoop(JinjaLocation)
    case continueLoop(JinjaLocation)
}

/// Builds the syntax tree from tokens, with jinja2's operator precedence. Filter and test
/// names are checked here, as jinja2 does when it compiles a template.
struct JinjaParser {
    /// Deepest nesting of expressions and blocks accepted (keeps recursion bounded).
    static let maximumNesting = 200

    private let tokens: [JinjaToken]
    private var index = 0
    private var depth = 0
    /// Inside an `if` (jinja2's "soft" frame) an unknown filter or test only fails when it runs;
    /// elsewhere it fails compilation. Unknown names wait here until their statement is parsed.
    private var soft = false
    private var pendingUnknown: [(String, JinjaLocation)] = []

    init(tokens: [JinjaToken]) { self.tokens = tokens }

    static func parse(_ tokens: [JinjaToken]) throws -> [JinjaNode] {
        var parser = JinjaParser(tokens: tokens)
        let (body, end) = try parser.parseBody(until: [])
        if let end { throw parser.error("unexpected '\(end)'", at: parser.current.location) }
        return body
    }

    private var current: JinjaToken { index < tokens.count ? tokens[index] : JinjaToken(kind: .end, location: tokens.last?.location ?? JinjaLocation(line: 1, column: 1)) }

    private func error(_ message: String, at location: JinjaLocation? = nil) -> SwiftletError {
        let at = location ?? current.location
        return .template(kind: .syntax, message: message, line: at.line, column: at.column)
    }

    private mutating func next() -> JinjaToken {
        let t = current
        index += 1
        return t
    }

    private func isOp(_ op: String) -> Bool { current.kind == .op(op) }
    private func isName(_ name: String) -> Bool { current.kind == .name(name) }

    private mutating func expectOp(_ op: String) throws {
        guard isOp(op) else { throw error("expected '\(op)', found \(describe(current))") }
        index += 1
    }

    private mutating func expectName() throws -> String {
        guard case .name(let n) = current.kind else { throw error("expected a name, found \(describe(current))") }
        index += 1
        return n
    }

    private mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else { throw error("expected end of tag, found \(describe(current))") }
        index += 1
    }

    private func describe(_ token: JinjaToken) -> String {
        switch token.kind {
        case .text: return "text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .name(let n): return "'\(n)'"
        case .string(let s): return "string \(JinjaValue.pythonStringRepr(s))"
        case .integer(let i): return "\(i)"
        case .float(let d): return "\(d)"
        case .op(let o): return "'\(o)'"
        case .end: return "end of template"
        }
    }

    /// Resolves the unknown filter/test names seen since the last statement boundary.
    private mutating func settle() throws {
        defer { pendingUnknown.removeAll() }
        if !soft, let (name, location) = pendingUnknown.first { throw error("no filter or test named '\(name)'", at: location) }
    }

    private mutating func checkName(_ name: String, known: Set<String>, at location: JinjaLocation) {
        if !known.contains(name) { pendingUnknown.append((name, location)) }
    }

    /// Parses a body in a new (non-soft) frame: a loop, macro, call, filter or set block.
    private mutating func parseInnerBody(until terminators: Set<String>) throws -> ([JinjaNode], String?) {
        let outer = soft
        soft = false
        defer { soft = outer }
        return try parseBody(until: terminators)
    }

    private mutating func nest() throws {
        depth += 1
        if depth > JinjaParser.maximumNesting {
            throw SwiftletError.template(kind: .limit, message: "nesting deeper than \(JinjaParser.maximumNesting)",
                                         line: current.location.line, column: current.location.column)
        }
    }

    // MARK: Statements

    /// Parses nodes until a block tag whose keyword is in `terminators`; returns that keyword
    /// (the tag's `{%` and keyword consumed) or nil at the end of the template.
    private mutating func parseBody(until terminators: Set<String>) throws -> ([JinjaNode], String?) {
        try nest(); defer { depth -= 1 }
        var nodes: [JinjaNode] = []
        while true {
            let token = current
            switch token.kind {
            case .end:
                if !terminators.isEmpty {
                    throw error("unexpected end of template; expected one of: \(terminators.sorted().joined(separator: ", "))")
                }
                return (nodes, nil)
            case .text(let s):
                index += 1
                nodes.append(.text(s))
            case .variableBegin:
                index += 1
                let e = try parseExpression()
                guard current.kind == .variableEnd else { throw error("expected '}}', found \(describe(current))") }
                index += 1
                try settle()
                nodes.append(.output(e, token.location))
            case .blockBegin:
                index += 1
                guard case .name(let keyword) = current.kind else { throw error("expected a statement keyword") }
                if terminators.contains(keyword) {
                    index += 1
                    return (nodes, keyword)
                }
                nodes.append(try parseStatement(keyword, at: token.location))
            default:
                throw error("unexpected \(describe(token))")
            }
        }
    }

    private mutating func parseStatement(_ keyword: String, at location: JinjaLocation) throws -> JinjaNode {
        index += 1
        switch keyword {
        case "if": return try parseIf()
        case "for": return try parseFor(at: location)
        case "set": return try parseSet(at: location)
        case "macro": return try parseMacro()
        case "call": return try parseCallBlock(at: location)
        case "filter":
            let filters = try parseFilterChain()
            try settle()
            try expectBlockEnd()
            let (body, _) = try parseInnerBody(until: ["endfilter"])
            try expectBlockEnd()
            return .filterBlock(filters: filters, body: body, location)
        case "generation":
            // transformers' AssistantTracker tag: renders its body unchanged.
            try expectBlockEnd()
            let (body, _) = try parseInnerBody(until: ["endgeneration"])
            try expectBlockEnd()
            return .conditional([(.literal(.bool(true)), body)], otherwise: [])
        case "break":
            try expectBlockEnd()
            return .breakLoop(location)
        case "continue":
            try expectBlockEnd()
            return .continueLoop(location)
        default:
            throw error("unknown or unsupported statement '\(keyword)'", at: location)
        }
    }

    private mutating func parseIf() throws -> JinjaNode {
        let outer = soft
        soft = true
        defer { soft = outer }
        var branches: [(JinjaExpression, [JinjaNode])] = []
        var condition = try parseExpression()
        while true {
            try settle()
            try expectBlockEnd()
            let (body, end) = try parseBody(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseExpression()
            case "else":
                try expectBlockEnd()
                let (otherwise, _) = try parseBody(until: ["endif"])
                try expectBlockEnd()
                return .conditional(branches, otherwise: otherwise)
            default:
                try expectBlockEnd()
                return .conditional(branches, otherwise: [])
            }
        }
    }

    private mutating func parseTarget() throws -> JinjaTarget {
        let first = try expectName()
        if isOp(".") {
            index += 1
            return .attribute(first, try expectName())
        }
        guard isOp(",") else { return .name(first) }
        var names = [first]
        while isOp(",") {
            index += 1
            names.append(try expectName())
        }
        return .tuple(names)
    }

    private mutating func parseFor(at location: JinjaLocation) throws -> JinjaNode {
        let target: JinjaTarget
        if isOp("(") {
            index += 1
            target = try parseTarget()
            try expectOp(")")
        } else {
            target = try parseTarget()
        }
        if case .attribute = target { throw error("a loop cannot assign to an attribute") }
        guard isName("in") else { throw error("expected 'in' in for loop") }
        index += 1
        let iterable = try parseTernary(allowConditional: false)
        var condition: JinjaExpression?
        if isName("if") {
            index += 1
            condition = try parseExpression()
        }
        if isName("recursive") { throw error("recursive loops are not supported") }
        try settle()
        try expectBlockEnd()
        let (body, end) = try parseInnerBody(until: ["else", "endfor"])
        var otherwise: [JinjaNode] = []
        if end == "else" {
            try expectBlockEnd()
            (otherwise, _) = try parseBody(until: ["endfor"])
        }
        try expectBlockEnd()
        return .loop(target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise, location)
    }

    private mutating func parseSet(at location: JinjaLocation) throws -> JinjaNode {
        let target = try parseTarget()
        if isOp("=") {
            index += 1
            let value = try parseTupleOrExpression()
            try settle()
            try expectBlockEnd()
            return .set(target, value, location)
        }
        let filters = isOp("|") ? try parseFilterChain() : []
        try settle()
        try expectBlockEnd()
        let (body, _) = try parseInnerBody(until: ["endset"])
        try expectBlockEnd()
        return .setBlock(target, filters: filters, body: body, location)
    }

    /// `name(args)|name|…` after `{% filter` or `{% set x |`.
    private mutating func parseFilterChain() throws -> [(String, JinjaCallArguments, JinjaLocation)] {
        var filters: [(String, JinjaCallArguments, JinjaLocation)] = []
        if isOp("|") { index += 1 }
        repeat {
            if isOp("|") { index += 1 }
            let location = current.location
            let name = try expectName()
            checkName(name, known: JinjaBuiltins.filterNames, at: location)
            let args = isOp("(") ? try parseCallArguments() : JinjaCallArguments()
            filters.append((name, args, location))
        } while isOp("|")
        return filters
    }

    private mutating func parseParameters() throws -> [(String, JinjaExpression?)] {
        var parameters: [(String, JinjaExpression?)] = []
        try expectOp("(")
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let name = try expectName()
            var defaultValue: JinjaExpression?
            if isOp("=") {
                index += 1
                defaultValue = try parseExpression()
            }
            parameters.append((name, defaultValue))
        }
        index += 1
        return parameters
    }

    private mutating func parseMacro() throws -> JinjaNode {
        let name = try expectName()
        let parameters = try parseParameters()
        try settle()
        try expectBlockEnd()
        let (body, _) = try parseInnerBody(until: ["endmacro"])
        if case .name = current.kind { index += 1 }  // `{% endmacro name %}`
        try expectBlockEnd()
        return .macro(JinjaMacro(name: name, parameters: parameters, body: body))
    }

    private mutating func parseCallBlock(at location: JinjaLocation) throws -> JinjaNode {
        let callerParameters = isOp("(") ? try parseParameters() : []
        let call = try parseExpression()
        guard case .call = call else { throw error("expected a macro call after 'call'", at: location) }
        try settle()
        try expectBlockEnd()
        let (body, _) = try parseInnerBody(until: ["endcall"])
        try expectBlockEnd()
        return .callBlock(call: call, callerParameters: callerParameters, body: body, location)
    }

    // MARK: Expressions

    /// An expression, or an unparenthesized tuple `a, b` (as `set` accepts).
    private mutating func parseTupleOrExpression() throws -> JinjaExpression {
        let first = try parseExpression()
        guard isOp(",") else { return first }
        var items = [first]
        while isOp(",") {
            index += 1
            if current.kind == .blockEnd { break }
            items.append(try parseExpression())
        }
        return .list(items)
    }

    mutating func parseExpression() throws -> JinjaExpression {
        try parseTernary(allowConditional: true)
    }

    private mutating func parseTernary(allowConditional: Bool) throws -> JinjaExpression {
        try nest(); defer { depth -= 1 }
        let mark = pendingUnknown.count
        var expr = try parseOr()
        // Everything in a conditional expression is soft.
        let isConditional = allowConditional && isName("if")
        defer { if isConditional { pendingUnknown.removeSubrange(mark...) } }
        while allowConditional && isName("if") {
            index += 1
            let condition = try parseOr()
            var otherwise: JinjaExpression?
            if isName("else") {
                index += 1
                otherwise = try parseTernary(allowConditional: true)
            }
            expr = .conditional(condition: condition, then: expr, otherwise: otherwise)
        }
        return expr
    }

    private mutating func parseOr() throws -> JinjaExpression {
        var left = try parseAnd()
        while isName("or") {
            index += 1
            left = .or(left, try parseAnd())
        }
        return left
    }

    private mutating func parseAnd() throws -> JinjaExpression {
        var left = try parseNot()
        while isName("and") {
            index += 1
            left = .and(left, try parseNot())
        }
        return left
    }

    private mutating func parseNot() throws -> JinjaExpression {
        if isName("not") {
            index += 1
            try nest(); defer { depth -= 1 }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JinjaExpression {
        let location = current.location
        let left = try parseMath1()
        var operations: [(String, JinjaExpression)] = []
        while true {
            if case .op(let op) = current.kind, ["==", "!=", "<", ">", "<=", ">="].contains(op) {
                index += 1
                operations.append((op, try parseMath1()))
            } else if isName("in") {
                index += 1
                operations.append(("in", try parseMath1()))
            } else if isName("not"), index + 1 < tokens.count, tokens[index + 1].kind == .name("in") {
                index += 2
                operations.append(("not in", try parseMath1()))
            } else {
                break
            }
        }
        return operations.isEmpty ? left : .compare(left, operations, location)
    }

    private mutating func parseMath1() throws -> JinjaExpression {
        var left = try parseConcat()
        while case .op(let op) = current.kind, op == "+" || op == "-" {
            let location = current.location
            index += 1
            left = .binary(op, left, try parseConcat(), location)
        }
        return left
    }

    private mutating func parseConcat() throws -> JinjaExpression {
        let location = current.location
        var items = [try parseMath2()]
        while isOp("~") {
            index += 1
            items.append(try parseMath2())
        }
        return items.count == 1 ? items[0] : .concat(items, location)
    }

    private mutating func parseMath2() throws -> JinjaExpression {
        var left = try parsePow()
        while case .op(let op) = current.kind, ["*", "/", "//", "%"].contains(op) {
            let location = current.location
            index += 1
            left = .binary(op, left, try parsePow(), location)
        }
        return left
    }

    private mutating func parsePow() throws -> JinjaExpression {
        var left = try parseUnary(withFilter: true)
        while isOp("**") {
            let location = current.location
            index += 1
            left = .binary("**", left, try parseUnary(withFilter: true), location)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool) throws -> JinjaExpression {
        try nest(); defer { depth -= 1 }
        let location = current.location
        var node: JinjaExpression
        if isOp("-") {
            index += 1
            node = .negate(try parseUnary(withFilter: false), location)
        } else if isOp("+") {
            index += 1
            node = .plus(try parseUnary(withFilter: false), location)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node, from: location)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws -> JinjaExpression {
        let token = next()
        switch token.kind {
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n, token.location)
            }
        case .string(var s):
            // Adjacent literals concatenate, as in Python.
            while case .string(let more) = current.kind { s += more; index += 1 }
            return .literal(.string(s))
        case .integer(let i): return .literal(.int(i))
        case .float(let d): return .literal(.double(d))
        case .op("("):
            if isOp(")") { index += 1; return .list([]) }
            let first = try parseExpression()
            if isOp(")") { index += 1; return first }
            var items = [first]
            while isOp(",") {
                index += 1
                if isOp(")") { break }
                items.append(try parseExpression())
            }
            try expectOp(")")
            return .list(items)
        case .op("["):
            var items: [JinjaExpression] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            index += 1
            return .list(items)
        case .op("{"):
            var pairs: [(JinjaExpression, JinjaExpression)] = []
            while !isOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
            }
            index += 1
            return .dictionary(pairs)
        default:
            throw error("unexpected \(describe(token))", at: token.location)
        }
    }

    /// Attribute, subscript and call suffixes; a call is located at the start of its callee.
    private mutating func parsePostfix(_ base: JinjaExpression, from start: JinjaLocation) throws -> JinjaExpression {
        var node = base
        while true {
            let location = current.location
            if isOp(".") {
                index += 1
                switch next().kind {
                case .name(let n): node = .attribute(node, n, location)
                case .integer(let i): node = .subscript(node, .literal(.int(i)), location)
                default: throw error("expected an attribute name after '.'", at: location)
                }
            } else if isOp("[") {
                index += 1
                node = try parseSubscript(node, at: location)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments(), start)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ base: JinjaExpression, at location: JinjaLocation) throws -> JinjaExpression {
        var parts: [JinjaExpression?] = [nil]
        var sawColon = false
        while !isOp("]") {
            if isOp(":") {
                index += 1
                sawColon = true
                parts.append(nil)
                guard parts.count <= 3 else { throw error("too many ':' in slice") }
            } else {
                guard parts[parts.count - 1] == nil else { throw error("expected ']' or ':'") }
                parts[parts.count - 1] = try parseExpression()
            }
        }
        index += 1
        if !sawColon {
            guard let key = parts[0] else { throw error("empty subscript", at: location) }
            return .subscript(base, key, location)
        }
        while parts.count < 3 { parts.append(nil) }
        return .slice(base, start: parts[0], stop: parts[1], step: parts[2], location)
    }

    private mutating func parseCallArguments() throws -> JinjaCallArguments {
        try expectOp("(")
        var args = JinjaCallArguments()
        while !isOp(")") {
            if !args.positional.isEmpty || !args.keyword.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            if case .name(let n) = current.kind, index + 1 < tokens.count, tokens[index + 1].kind == .op("=") {
                index += 2
                args.keyword.append((n, try parseExpression()))
            } else {
                guard args.keyword.isEmpty else { throw error("positional argument after keyword argument") }
                args.positional.append(try parseExpression())
            }
        }
        index += 1
        return args
    }

    private mutating func parseFilterExpression(_ base: JinjaExpression) throws -> JinjaExpression {
        var node = base
        while true {
            let location = current.location
            if isOp("|") {
                index += 1
                let name = try expectName()
                checkName(name, known: JinjaBuiltins.filterNames, at: location)
                let args = isOp("(") ? try parseCallArguments() : JinjaCallArguments()
                node = .filter(node, name, args, location)
            } else if isName("is") {
                index += 1
                var negated = false
                if isName("not") { index += 1; negated = true }
                let name = try expectName()
                checkName(name, known: JinjaBuiltins.testNames, at: location)
                var args = JinjaCallArguments()
                if isOp("(") {
                    args = try parseCallArguments()
                } else if startsTestArgument() {
                    let argumentStart = current.location
                    var argument = try parsePrimary()
                    argument = try parsePostfix(argument, from: argumentStart)
                    args.positional = [argument]
                }
                node = .test(node, name, args, negated: negated, location)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments(), location)
            } else {
                return node
            }
        }
    }

    /// jinja2 lets a test take one argument without parentheses (`is equalto 3`).
    private func startsTestArgument() -> Bool {
        switch current.kind {
        case .name(let n): return !["else", "or", "and", "if", "is", "in", "not"].contains(n)
        case .string, .integer, .float: return true
        case .op(let o): return o == "[" || o == "{"
        default: return false
        }
    }
}
