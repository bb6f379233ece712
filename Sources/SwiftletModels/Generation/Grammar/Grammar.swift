import SwiftletTensor

/// One element of a compiled grammar rule, in llama.cpp's layout: a rule is a flat run of
/// elements whose alternatives are separated by `.alternative` and which ends with `.end`.
/// A character class is a `.char` / `.charNot` followed by `.rangeUpper` / `.charAlternative`
/// elements that extend it.
public struct GrammarElement: Sendable, Hashable {
    public enum Kind: UInt8, Sendable {
        /// End of the rule.
        case end
        /// Start of the next alternative of the rule.
        case alternative
        /// A reference to rule `value`.
        case ruleReference
        /// The code point `value` (also the first member of a character class).
        case char
        /// The first member of a negated class `[^…]`.
        case charNot
        /// Makes the preceding char an inclusive range up to `value`.
        case rangeUpper
        /// A further member of the class being built.
        case charAlternative
        /// `.`: any code point.
        case charAny
        /// `<[id]>`: exactly token `value`.
        case token
        /// `!<[id]>`: any token but `value`.
        case tokenNot
    }
    public var kind: Kind
    public var value: UInt32

    public init(_ kind: Kind, _ value: UInt32 = 0) { self.kind = kind; self.value = value }

    var isEndOfSequence: Bool { kind == .end || kind == .alternative }
    var isTokenElement: Bool { kind == .token || kind == .tokenNot }
}

/// A parsed GBNF grammar (llama.cpp's grammar syntax).
///
/// ```
/// root   ::= answer
/// answer ::= "yes" | "no" | [0-9]{1,3}    # comments run to the end of the line
/// ```
/// Supported: rules `name ::= …`, literals with `\x \u \U \t \r \n` escapes, character classes
/// `[a-z]` and `[^…]`, `.`, grouping `( … )`, alternation `|`, repetition `? * + {m} {m,} {m,n}`,
/// token references `<[id]>` / `!<[id]>`, and `<text>` / `!<text>` for the token whose text that is
/// (resolved by `tokenNamed`, as llama.cpp tokenizes it with special tokens parsed). Bad input throws `SwiftletError.invalidGrammar` with
/// the line and column; input that would expand beyond the bounds in ``Limits`` is refused the
/// same way, so a hostile grammar cannot exhaust memory or the stack.
public struct Grammar: Sendable, Equatable {
    /// Bounds that keep parsing and matching finite on hostile grammars.
    public struct Limits: Sendable, Equatable {
        /// Deepest nesting of parentheses.
        public var maxNesting = 128
        /// Most rules, including those generated for groups and repetitions.
        public var maxRules = 50_000
        /// Most elements over all rules.
        public var maxElements = 1_000_000
        /// llama.cpp's bound on a repetition count (and on repeated rules times the count).
        public var maxRepetition = 2000
        /// Most simultaneous parse stacks while matching (ambiguous grammars multiply them).
        public var maxStacks = 4096
        /// Deepest parse stack while matching.
        public var maxStackDepth = 4096
        public init() {}
    }

    /// All rules' elements back to back; rule `i` starts at `ruleStart[i]`.
    public let elements: [GrammarElement]
    public let ruleStart: [Int32]
    /// Rule names by id (generated rules get `name_N`, as llama.cpp names them).
    public let ruleNames: [String]
    public let rootRule: Int
    public let limits: Limits
    /// Start positions of each rule's alternatives (``alternativeStarts(_:)`` per rule), which
    /// the matcher looks up on every rule expansion.
    let alternativeStartsByRule: [[Int]]

    /// Parses `text`; `root` names the start rule. `tokenNamed` gives the id of the single token
    /// whose text is `<…>` (angle brackets included), or nil when the text is not exactly one
    /// token; without it `<text>` references are an error.
    public init(_ text: String, root: String = "root", limits: Limits = Limits(),
                tokenNamed: ((String) -> Int32?)? = nil) throws {
        var parser = GrammarParser(text: Array(text.utf8), limits: limits, tokenNamed: tokenNamed)
        do {
            try parser.parseAll()
        } catch let error as GrammarParser.Failure {
            let (line, column) = Self.lineAndColumn(of: error.offset, in: parser.text)
            throw SwiftletError.invalidGrammar(reason: error.reason, line: line, column: column)
        }
        guard let rootID = parser.symbolIDs[root] else {
            throw SwiftletError.invalidGrammar(reason: "grammar does not define the start rule '\(root)'", line: 1, column: 1)
        }
        var names = [String](repeating: "", count: parser.rules.count)
        for (name, id) in parser.symbolIDs where Int(id) < names.count { names[Int(id)] = name }
        var flat: [GrammarElement] = []
        var starts: [Int32] = []
        flat.reserveCapacity(parser.elementCount)
        for rule in parser.rules {
            starts.append(Int32(flat.count))
            flat.append(contentsOf: rule)
        }
        elements = flat; ruleStart = starts; ruleNames = names; rootRule = Int(rootID); self.limits = limits
        alternativeStartsByRule = starts.map { Self.alternativeStarts(from: Int($0), in: flat) }
        try checkLeftRecursion(definitions: parser.definitionOffsets, text: parser.text)
        try checkCanComplete(definitions: parser.definitionOffsets, text: parser.text)
    }

    /// Number of rules.
    public var ruleCount: Int { ruleStart.count }

    static func lineAndColumn(of offset: Int, in text: [UInt8]) -> (Int, Int) {
        var line = 1, column = 1
        for i in 0..<min(offset, text.count) {
            if text[i] == 0x0A { line += 1; column = 1 } else if text[i] & 0xC0 != 0x80 { column += 1 }
        }
        return (line, column)
    }

    /// llama.cpp refuses left-recursive grammars (the stack machine would loop); so do we.
    private func checkLeftRecursion(definitions: [Int], text: [UInt8]) throws {
        let n = ruleCount
        var visited = [Bool](repeating: false, count: n)
        var inProgress = [Bool](repeating: false, count: n)
        var mayBeEmpty = [Bool](repeating: false, count: n)
        // Empty-derivability first (a fixed point), so the walk below needs no recursion order.
        let alternativesByRule = (0..<n).map(alternatives(of:))
        var changed = true
        while changed {
            changed = false
            for r in 0..<n where !mayBeEmpty[r] && alternativesByRule[r].contains(where: { alt in
                alt.allSatisfy { elements[$0].kind == .ruleReference && mayBeEmpty[Int(elements[$0].value)] }
            }) { mayBeEmpty[r] = true; changed = true }
        }
        // Depth-first over "may start with" edges with an explicit stack.
        for start in 0..<n where !visited[start] {
            var stack: [(rule: Int, next: [Int], index: Int)] = [(start, leftReferences(alternativesByRule[start], mayBeEmpty), 0)]
            inProgress[start] = true
            while !stack.isEmpty {
                let top = stack.count - 1
                if stack[top].index == stack[top].next.count {
                    inProgress[stack[top].rule] = false; visited[stack[top].rule] = true
                    stack.removeLast(); continue
                }
                let child = stack[top].next[stack[top].index]
                stack[top].index += 1
                if inProgress[child] {
                    let (line, column) = Self.lineAndColumn(of: definitions[child], in: text)
                    throw SwiftletError.invalidGrammar(
                        reason: "left recursion in rule '\(ruleNames[child])' (unsupported, as in llama.cpp)", line: line, column: column)
                }
                if visited[child] { continue }
                inProgress[child] = true
                stack.append((child, leftReferences(alternativesByRule[child], mayBeEmpty), 0))
            }
        }
    }

    /// Element positions of each alternative of rule `r` (without the separators).
    func alternatives(of r: Int) -> [[Int]] {
        var result: [[Int]] = [], current: [Int] = []
        var i = Int(ruleStart[r])
        while true {
            let e = elements[i]
            if e.isEndOfSequence {
                result.append(current); current = []
                if e.kind == .end { break }
            } else {
                current.append(i)
            }
            i += 1
        }
        return result
    }

    /// Rules that can appear leftmost in one of a rule's `alternatives` (after rules that may be empty).
    private func leftReferences(_ alternatives: [[Int]], _ mayBeEmpty: [Bool]) -> [Int] {
        var refs: [Int] = []
        for alt in alternatives {
            for i in alt {
                guard elements[i].kind == .ruleReference else { break }
                let child = Int(elements[i].value)
                refs.append(child)
                if !mayBeEmpty[child] { break }
            }
        }
        return refs
    }

    /// A grammar whose start rule derives no finite text would generate until the token limit;
    /// it is refused up front instead.
    private func checkCanComplete(definitions: [Int], text: [UInt8]) throws {
        var productive = [Bool](repeating: false, count: ruleCount)
        let alternativesByRule = (0..<ruleCount).map(alternatives(of:))
        var changed = true
        while changed {
            changed = false
            for r in 0..<ruleCount where !productive[r] && alternativesByRule[r].contains(where: { alt in
                alt.allSatisfy { elements[$0].kind != .ruleReference || productive[Int(elements[$0].value)] }
            }) { productive[r] = true; changed = true }
        }
        if !productive[rootRule] {
            let (line, column) = Self.lineAndColumn(of: definitions[rootRule], in: text)
            throw SwiftletError.invalidGrammar(
                reason: "rule '\(ruleNames[rootRule])' can never complete (every alternative recurses forever)", line: line, column: column)
        }
    }
}

/// A recursive-descent parser following llama.cpp's `llama_grammar_parser` rule for rule, so
/// every grammar it accepts means the same here.
struct GrammarParser {
    struct Failure: Error { var reason: String; var offset: Int }

    let text: [UInt8]
    let limits: Grammar.Limits
    var symbolIDs: [String: UInt32] = [:]
    var rules: [[GrammarElement]] = []
    /// Byte offset where each rule was first named (for messages).
    var definitionOffsets: [Int] = []
    var elementCount = 0
    private var nesting = 0

    let tokenNamed: ((String) -> Int32?)?

    init(text: [UInt8], limits: Grammar.Limits, tokenNamed: ((String) -> Int32?)? = nil) {
        self.text = text; self.limits = limits; self.tokenNamed = tokenNamed
    }

    /// The byte at `i`, or 0 past the end (llama.cpp reads a NUL-terminated string).
    @inline(__always) private func at(_ i: Int) -> UInt8 { i < text.count ? text[i] : 0 }

    private func fail(_ reason: String, _ offset: Int) -> Failure { Failure(reason: reason, offset: offset) }

    mutating func parseAll() throws {
        var pos = parseSpace(0, newlineOK: true)
        while at(pos) != 0 { pos = try parseRule(pos) }
        for (id, rule) in rules.enumerated() where rule.isEmpty {
            let name = symbolIDs.first { $0.value == UInt32(id) }?.key ?? "#\(id)"
            throw fail("undefined rule '\(name)'", id < definitionOffsets.count ? definitionOffsets[id] : 0)
        }
        if rules.isEmpty { throw fail("grammar has no rules", 0) }
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    private static func isWordChar(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || c == 0x2D || isDigit(c)
    }

    private func parseSpace(_ start: Int, newlineOK: Bool) -> Int {
        var pos = start
        while true {
            let c = at(pos)
            if c == 0x23 {  // '#': comment to end of line
                while at(pos) != 0 && at(pos) != 0x0D && at(pos) != 0x0A { pos += 1 }
            } else if c == 0x20 || c == 0x09 || (newlineOK && (c == 0x0D || c == 0x0A)) {
                pos += 1
            } else {
                return pos
            }
        }
    }

    private func parseName(_ start: Int) throws -> Int {
        var pos = start
        while Self.isWordChar(at(pos)) { pos += 1 }
        if pos == start { throw fail("expecting a rule name", start) }
        return pos
    }

    private func parseInt(_ start: Int) throws -> (UInt64, Int) {
        var pos = start
        var value: UInt64 = 0
        var overflow = false
        while Self.isDigit(at(pos)) {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(at(pos) - 0x30))
            overflow = overflow || o1 || o2
            value = a; pos += 1
        }
        if pos == start { throw fail("expecting an integer", start) }
        return (overflow ? .max : value, pos)
    }

    private func parseHex(_ start: Int, _ size: Int) throws -> (UInt32, Int) {
        var value: UInt32 = 0
        for i in 0..<size {
            let c = at(start + i)
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            default: throw fail("expecting \(size) hex digits", start)
            }
            value = value << 4 | digit
        }
        return (value, start + size)
    }

    /// One character of a literal or class: an escape or a UTF-8 sequence.
    private func parseChar(_ pos: Int) throws -> (UInt32, Int) {
        let c = at(pos)
        if c == 0x5C {  // backslash
            switch at(pos + 1) {
            case UInt8(ascii: "x"): return try parseHex(pos + 2, 2)
            case UInt8(ascii: "u"): return try parseHex(pos + 2, 4)
            case UInt8(ascii: "U"): return try parseHex(pos + 2, 8)
            case UInt8(ascii: "t"): return (0x09, pos + 2)
            case UInt8(ascii: "r"): return (0x0D, pos + 2)
            case UInt8(ascii: "n"): return (0x0A, pos + 2)
            case 0x5C, 0x22, 0x5B, 0x5D, 0x2D: return (UInt32(at(pos + 1)), pos + 2)
            default: throw fail("unknown escape", pos)
            }
        }
        if c == 0 { throw fail("unexpected end of input", pos) }
        // The text came from a Swift String, so it is valid UTF-8.
        let length = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4
        var value = UInt32(c) & (length == 1 ? 0x7F : UInt32((1 << (7 - length)) - 1))
        var i = pos + 1
        while i < pos + length && at(i) != 0 { value = value << 6 | UInt32(at(i) & 0x3F); i += 1 }
        return (value, i)
    }

    private mutating func symbolID(_ name: String, at offset: Int) throws -> UInt32 {
        if let id = symbolIDs[name] { return id }
        return try newSymbol(name, at: offset)
    }

    private mutating func newSymbol(_ name: String, at offset: Int) throws -> UInt32 {
        guard symbolIDs.count < limits.maxRules else { throw fail("more than \(limits.maxRules) rules", offset) }
        let id = UInt32(symbolIDs.count)
        symbolIDs[name] = id
        if rules.count <= Int(id) { rules.append(contentsOf: repeatElement([], count: Int(id) + 1 - rules.count)) }
        definitionOffsets.append(offset)
        return id
    }

    private mutating func generateSymbol(_ base: String, at offset: Int) throws -> UInt32 {
        try newSymbol(base + "_" + String(symbolIDs.count), at: offset)
    }

    private mutating func addRule(_ id: UInt32, _ rule: [GrammarElement], at offset: Int) throws {
        elementCount += rule.count - rules[Int(id)].count
        guard elementCount <= limits.maxElements else { throw fail("grammar expands to more than \(limits.maxElements) elements", offset) }
        rules[Int(id)] = rule
    }

    private mutating func parseRule(_ start: Int) throws -> Int {
        let nameEnd = try parseName(start)
        var pos = parseSpace(nameEnd, newlineOK: false)
        let name = String(decoding: text[start..<nameEnd], as: UTF8.self)
        let id = try symbolID(name, at: start)
        guard at(pos) == 0x3A, at(pos + 1) == 0x3A, at(pos + 2) == 0x3D else { throw fail("expecting ::=", pos) }
        pos = parseSpace(pos + 3, newlineOK: true)
        pos = try parseAlternates(pos, ruleName: name, ruleID: id, nested: false)
        if at(pos) == 0x0D {
            pos += at(pos + 1) == 0x0A ? 2 : 1
        } else if at(pos) == 0x0A {
            pos += 1
        } else if at(pos) != 0 {
            throw fail("expecting newline or end", pos)
        }
        return parseSpace(pos, newlineOK: true)
    }

    private mutating func parseAlternates(_ start: Int, ruleName: String, ruleID: UInt32, nested: Bool) throws -> Int {
        nesting += 1
        defer { nesting -= 1 }
        guard nesting <= limits.maxNesting else { throw fail("groups nested deeper than \(limits.maxNesting)", start) }
        var rule: [GrammarElement] = []
        var pos = try parseSequence(start, ruleName: ruleName, rule: &rule, nested: nested)
        while at(pos) == 0x7C {  // '|'
            rule.append(GrammarElement(.alternative))
            pos = parseSpace(pos + 1, newlineOK: true)
            pos = try parseSequence(pos, ruleName: ruleName, rule: &rule, nested: nested)
        }
        rule.append(GrammarElement(.end))
        try addRule(ruleID, rule, at: start)
        return pos
    }

    private mutating func parseSequence(_ start: Int, ruleName: String, rule: inout [GrammarElement], nested: Bool) throws -> Int {
        var lastSymbolStart = rule.count
        var pos = start
        var previousRules: UInt64 = 1

        /// llama.cpp's rewrite: S{m,n} → S…S (m times) then n−m nested optional rules
        /// (S' ::= S S'' | …); an unbounded tail becomes S' ::= S S' | .
        func repeatLast(_ minTimes: UInt64, _ maxTimes: UInt64?, at offset: Int, parser: inout GrammarParser) throws {
            if lastSymbolStart == rule.count { throw parser.fail("expecting an item before */+/?/{", offset) }
            let previous = Array(rule[lastSymbolStart...])
            var totalRules: UInt64 = 1
            if let maxTimes, maxTimes > 0 { totalRules = maxTimes } else if minTimes > 0 { totalRules = minTimes }
            let (product, overflow) = previousRules.multipliedReportingOverflow(by: totalRules)
            if overflow || product > UInt64(parser.limits.maxRepetition) {
                throw parser.fail("repetition expands to more than \(parser.limits.maxRepetition) copies", offset)
            }
            if minTimes == 0 {
                rule.removeSubrange(lastSymbolStart...)
            } else if minTimes > 1 {
                let added = previous.count * Int(minTimes - 1)
                guard parser.elementCount + rule.count + added <= parser.limits.maxElements else {
                    throw parser.fail("grammar expands to more than \(parser.limits.maxElements) elements", offset)
                }
                for _ in 1..<minTimes { rule.append(contentsOf: previous) }
            }
            var lastRecursiveID: UInt32 = 0
            let optionalCount = maxTimes.map { $0 - minTimes } ?? 1
            for i in 0..<optionalCount {
                var recursive = previous
                let id = try parser.generateSymbol(ruleName, at: offset)
                if i > 0 || maxTimes == nil {
                    recursive.append(GrammarElement(.ruleReference, maxTimes == nil ? id : lastRecursiveID))
                }
                recursive.append(GrammarElement(.alternative))
                recursive.append(GrammarElement(.end))
                try parser.addRule(id, recursive, at: offset)
                lastRecursiveID = id
            }
            if optionalCount > 0 { rule.append(GrammarElement(.ruleReference, lastRecursiveID)) }
            previousRules = product
        }

        while at(pos) != 0 {
            let c = at(pos)
            if c == 0x22 {  // literal
                pos += 1
                lastSymbolStart = rule.count
                previousRules = 1
                while at(pos) != 0x22 {
                    if at(pos) == 0 { throw fail("unterminated string literal", start) }
                    let (ch, next) = try parseChar(pos)
                    pos = next
                    rule.append(GrammarElement(.char, ch))
                }
                pos = parseSpace(pos + 1, newlineOK: nested)
            } else if c == 0x5B {  // character class
                let classStart = pos
                pos += 1
                var startKind = GrammarElement.Kind.char
                if at(pos) == 0x5E { pos += 1; startKind = .charNot }
                lastSymbolStart = rule.count
                previousRules = 1
                while at(pos) != 0x5D {
                    if at(pos) == 0 { throw fail("unterminated character class", classStart) }
                    let (ch, next) = try parseChar(pos)
                    pos = next
                    rule.append(GrammarElement(lastSymbolStart < rule.count ? .charAlternative : startKind, ch))
                    if at(pos) == 0x2D && at(pos + 1) != 0x5D {
                        if at(pos + 1) == 0 { throw fail("unterminated character class", classStart) }
                        let (upper, next) = try parseChar(pos + 1)
                        pos = next
                        rule.append(GrammarElement(.rangeUpper, upper))
                    }
                }
                pos = parseSpace(pos + 1, newlineOK: nested)
            } else if c == 0x3C || c == 0x21 {  // <[id]> or !<[id]>
                var kind = GrammarElement.Kind.token
                if c == 0x21 { kind = .tokenNot; pos += 1 }
                guard at(pos) == 0x3C else { throw fail("expecting '<'", pos) }
                guard at(pos + 1) == 0x5B else {
                    guard let tokenNamed else { throw fail("token references by text (<name>) need a vocabulary; write <[id]>", pos) }
                    var end = pos + 1
                    while at(end) != 0 && at(end) != 0x3E { end += 1 }
                    guard at(end) == 0x3E else { throw fail("expecting '>'", end) }
                    let name = String(decoding: text[pos ... end], as: UTF8.self)
                    guard let id = tokenNamed(name) else { throw fail("\(name) is not a single token of the vocabulary", pos) }
                    lastSymbolStart = rule.count
                    previousRules = 1
                    rule.append(GrammarElement(kind, UInt32(bitPattern: id)))
                    pos = parseSpace(end + 1, newlineOK: nested)
                    continue
                }
                let (id, intEnd) = try parseInt(pos + 2)
                guard id <= UInt64(UInt32.max) else { throw fail("token id is too big", pos + 2) }
                guard at(intEnd) == 0x5D else { throw fail("expecting ']'", intEnd) }
                guard at(intEnd + 1) == 0x3E else { throw fail("expecting '>'", intEnd + 1) }
                lastSymbolStart = rule.count
                previousRules = 1
                rule.append(GrammarElement(kind, UInt32(id)))
                pos = parseSpace(intEnd + 2, newlineOK: nested)
            } else if Self.isWordChar(c) {  // rule reference
                let nameEnd = try parseName(pos)
                let id = try symbolID(String(decoding: text[pos..<nameEnd], as: UTF8.self), at: pos)
                pos = parseSpace(nameEnd, newlineOK: nested)
                lastSymbolStart = rule.count
                previousRules = 1
                rule.append(GrammarElement(.ruleReference, id))
            } else if c == 0x28 {  // group
                let groupStart = pos
                pos = parseSpace(pos + 1, newlineOK: true)
                let rulesBefore = symbolIDs.count
                let subID = try generateSymbol(ruleName, at: groupStart)
                pos = try parseAlternates(pos, ruleName: ruleName, ruleID: subID, nested: true)
                previousRules = UInt64(max(1, symbolIDs.count - rulesBefore))
                lastSymbolStart = rule.count
                rule.append(GrammarElement(.ruleReference, subID))
                guard at(pos) == 0x29 else { throw fail("expecting ')' to close the group opened here", groupStart) }
                pos = parseSpace(pos + 1, newlineOK: nested)
            } else if c == 0x2E {  // any char
                lastSymbolStart = rule.count
                previousRules = 1
                rule.append(GrammarElement(.charAny))
                pos = parseSpace(pos + 1, newlineOK: nested)
            } else if c == 0x2A || c == 0x2B || c == 0x3F {  // * + ?
                let opAt = pos
                pos = parseSpace(pos + 1, newlineOK: nested)
                switch c {
                case 0x2A: try repeatLast(0, nil, at: opAt, parser: &self)
                case 0x2B: try repeatLast(1, nil, at: opAt, parser: &self)
                default: try repeatLast(0, 1, at: opAt, parser: &self)
                }
            } else if c == 0x7B {  // {m}, {m,}, {m,n}
                let opAt = pos
                pos = parseSpace(pos + 1, newlineOK: nested)
                guard Self.isDigit(at(pos)) else { throw fail("expecting an integer", pos) }
                let (minTimes, minEnd) = try parseInt(pos)
                pos = parseSpace(minEnd, newlineOK: nested)
                var maxTimes: UInt64? = nil
                if at(pos) == 0x7D {
                    maxTimes = minTimes
                    pos = parseSpace(pos + 1, newlineOK: nested)
                } else if at(pos) == 0x2C {
                    pos = parseSpace(pos + 1, newlineOK: nested)
                    if Self.isDigit(at(pos)) {
                        let (m, end) = try parseInt(pos)
                        maxTimes = m
                        pos = parseSpace(end, newlineOK: nested)
                    }
                    guard at(pos) == 0x7D else { throw fail("expecting '}'", pos) }
                    pos = parseSpace(pos + 1, newlineOK: nested)
                } else {
                    throw fail("expecting ',' or '}'", pos)
                }
                if minTimes > UInt64(limits.maxRepetition) {
                    throw fail("repetition count \(minTimes) exceeds \(limits.maxRepetition)", opAt)
                }
                if let m = maxTimes, m < minTimes { throw fail("repetition maximum \(m) is below the minimum \(minTimes)", opAt) }
                // llama.cpp treats a maximum beyond its bound as unbounded.
                if let m = maxTimes, m > UInt64(limits.maxRepetition) { maxTimes = nil }
                try repeatLast(minTimes, maxTimes, at: opAt, parser: &self)
            } else {
                break
            }
        }
        return pos
    }
}
