import SwiftletTensor

/// A partly decoded UTF-8 sequence carried from one token to the next: the bits so far and how
/// many continuation bytes are still due (`-1`: the bytes were not valid UTF-8).
public struct PartialUTF8: Hashable, Sendable {
    public var value: UInt32 = 0
    public var remaining: Int8 = 0
    public init(value: UInt32 = 0, remaining: Int8 = 0) { self.value = value; self.remaining = remaining }
}

extension Grammar {
    /// Whether code point `chr` satisfies the class starting at `pos`, and the position after the class.
    @inline(__always)
    func matchChar(_ pos: Int, _ chr: UInt32) -> (Bool, Int) {
        var p = pos
        var found = false
        let positive = elements[p].kind == .char || elements[p].kind == .charAny
        repeat {
            let e = elements[p]
            if elements[p + 1].kind == .rangeUpper {
                found = found || (e.value <= chr && chr <= elements[p + 1].value)
                p += 2
            } else if e.kind == .charAny {
                found = true
                p += 1
            } else {
                found = found || e.value == chr
                p += 1
            }
        } while elements[p].kind == .charAlternative
        return (found == positive, p)
    }

    /// Whether some completion of `partial` could satisfy the class at `pos` (llama.cpp's test,
    /// including its treatment of negated classes: any overlap with an excluded range fails).
    func matchPartialChar(_ pos: Int, _ partial: PartialUTF8) -> Bool {
        var p = pos
        let positive = elements[p].kind == .char || elements[p].kind == .charAny
        let n = Int(partial.remaining)
        if n < 0 || (n == 1 && partial.value < 2) { return false }
        var low = partial.value << UInt32(n * 6)
        let high = low | ((1 << UInt32(n * 6)) - 1)
        if low == 0 {
            if n == 2 { low = 1 << 11 } else if n == 3 { low = 1 << 16 }
        }
        repeat {
            let e = elements[p]
            if elements[p + 1].kind == .rangeUpper {
                if e.value <= high && low <= elements[p + 1].value { return positive }
                p += 2
            } else if e.kind == .charAny {
                return true
            } else {
                if low <= e.value && e.value <= high { return positive }
                p += 1
            }
        } while elements[p].kind == .charAlternative
        return !positive
    }

    /// Start positions of the alternatives of rule `rule`.
    func alternativeStarts(_ rule: Int) -> [Int] {
        Self.alternativeStarts(from: Int(ruleStart[rule]), in: elements)
    }

    /// Start positions of the alternatives of the rule whose elements begin at `start`.
    static func alternativeStarts(from start: Int, in elements: [GrammarElement]) -> [Int] {
        var starts: [Int] = []
        var p = start
        while true {
            starts.append(p)
            while !elements[p].isEndOfSequence { p += 1 }
            if elements[p].kind == .alternative { p += 1 } else { return starts }
        }
    }

    /// The grammar's code points of `bytes` decoded after `partial`, as llama.cpp's `decode_utf8`
    /// does: continuation bytes of a carried sequence are checked, later ones are not; a NUL
    /// byte ends the text; an invalid sequence yields `[0]` and remaining −1.
    static func decodeUTF8(_ bytes: [UInt8], after partial: PartialUTF8) -> ([UInt32], PartialUTF8) {
        let lookup: [Int] = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4]
        var points: [UInt32] = []
        var i = 0
        var value = partial.value
        var remaining = Int(partial.remaining)
        while i < bytes.count && bytes[i] != 0 && remaining > 0 {
            if bytes[i] >> 6 != 2 { return ([0], PartialUTF8(value: 0, remaining: -1)) }
            value = value << 6 + UInt32(bytes[i] & 0x3F)
            i += 1; remaining -= 1
        }
        if partial.remaining > 0 && remaining == 0 { points.append(value) }
        while i < bytes.count && bytes[i] != 0 {
            remaining = lookup[Int(bytes[i] >> 4)] - 1
            if remaining < 0 { return ([0], PartialUTF8(value: 0, remaining: -1)) }
            value = UInt32(bytes[i]) & UInt32((1 << (7 - remaining)) - 1)
            i += 1
            while i < bytes.count && bytes[i] != 0 && remaining > 0 {
                value = value << 6 + UInt32(bytes[i] & 0x3F)
                i += 1; remaining -= 1
            }
            if remaining == 0 { points.append(value) }
        }
        return (points, PartialUTF8(value: value, remaining: Int8(remaining)))
    }
}

/// A line-for-line port of llama.cpp's grammar stacks (`llama_grammar_advance_stack`,
/// `llama_grammar_accept_token`, `llama_grammar_reject_candidates_for_stack`): stacks as plain
/// arrays of element positions, no sharing, no caching. It is the oracle the fast
/// ``GrammarMatcher`` is tested against; generation does not use it.
struct GrammarReference {
    typealias Stack = [Int]
    let grammar: Grammar
    private(set) var stacks: [Stack] = []
    private(set) var partial = PartialUTF8()

    init(_ grammar: Grammar) {
        self.grammar = grammar
        for start in grammar.alternativeStarts(grammar.rootRule) {
            advance(grammar.elements[start].isEndOfSequence ? [] : [start], into: &stacks)
        }
    }

    var canEnd: Bool { stacks.contains { $0.isEmpty } }

    func advance(_ stack: Stack, into result: inout [Stack]) {
        var todo: [Stack] = [stack]
        var seen = Set<Stack>()
        while let current = todo.popLast() {
            guard seen.insert(current).inserted else { continue }
            guard let top = current.last else {
                if !result.contains(current) { result.append(current) }
                continue
            }
            let e = grammar.elements[top]
            if e.kind == .ruleReference {
                for sub in grammar.alternativeStarts(Int(e.value)) {
                    var next = Array(current.dropLast())
                    if !grammar.elements[top + 1].isEndOfSequence { next.append(top + 1) }
                    if !grammar.elements[sub].isEndOfSequence { next.append(sub) }
                    todo.append(next)
                }
            } else {
                if !result.contains(current) { result.append(current) }
            }
        }
    }

    private func acceptChar(_ stack: Stack, _ chr: UInt32, into result: inout [Stack]) {
        guard let top = stack.last, !grammar.elements[top].isTokenElement else { return }
        let (ok, after) = grammar.matchChar(top, chr)
        if ok {
            var next = Array(stack.dropLast())
            if !grammar.elements[after].isEndOfSequence { next.append(after) }
            advance(next, into: &result)
        }
    }

    /// Whether the token may come next (llama.cpp's `llama_grammar_apply_impl` for one candidate).
    func allows(bytes: [UInt8], token: Int32, isEndOfGeneration: Bool) -> Bool {
        if isEndOfGeneration { return canEnd }
        if bytes.isEmpty || bytes[0] == 0 { return false }
        let (points, after) = Grammar.decodeUTF8(bytes, after: partial)
        let terminated = points + [0]
        return stacks.contains { stackAccepts($0, terminated, 0, after, token) }
    }

    private func stackAccepts(_ stack: Stack, _ points: [UInt32], _ i: Int, _ partial: PartialUTF8, _ token: Int32) -> Bool {
        guard let top = stack.last else { return points[i] == 0 && partial.remaining == 0 }
        let e = grammar.elements[top]
        if e.isTokenElement {
            if points[i] == 0 { return partial.remaining == 0 }
            return (e.kind == .token) == (e.value == UInt32(bitPattern: token))
        }
        if points[i] == 0 { return partial.remaining == 0 || grammar.matchPartialChar(top, partial) }
        let (ok, after) = grammar.matchChar(top, points[i])
        guard ok else { return false }
        var next = Array(stack.dropLast())
        if !grammar.elements[after].isEndOfSequence { next.append(after) }
        var nextStacks: [Stack] = []
        advance(next, into: &nextStacks)
        return nextStacks.contains { stackAccepts($0, points, i + 1, partial, token) }
    }

    /// Advances past an accepted token (llama.cpp's `llama_grammar_accept_impl`).
    mutating func accept(bytes: [UInt8], token: Int32, isEndOfGeneration: Bool) {
        if isEndOfGeneration { return }
        let (points, after) = Grammar.decodeUTF8(bytes, after: partial)
        var newStacks: [Stack] = []
        for stack in stacks {
            guard let top = stack.last else { continue }
            let e = grammar.elements[top]
            if e.isTokenElement {
                if (e.kind == .token) == (e.value == UInt32(bitPattern: token)) {
                    var next = Array(stack.dropLast())
                    if !grammar.elements[top + 1].isEndOfSequence { next.append(top + 1) }
                    advance(next, into: &newStacks)
                }
                continue
            }
            var current = [stack]
            for chr in after.remaining < 0 ? [] : points {
                var next: [Stack] = []
                for s in current { acceptChar(s, chr, into: &next) }
                current = next
                if current.isEmpty { break }
            }
            for s in current where !newStacks.contains(s) { newStacks.append(s) }
        }
        stacks = newStacks
        partial = after
    }
}
