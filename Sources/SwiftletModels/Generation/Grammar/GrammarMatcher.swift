import SwiftletTensor

/// Where a grammar match stands: the set of pushdown stacks (interned ids, sorted) and the
/// partial UTF-8 sequence left by the last token. Equal states allow the same tokens, which is
/// what the token-mask cache keys on.
public struct GrammarState: Hashable, Sendable {
    var stacks: [Int32]
    var partial: PartialUTF8
}

/// Matches generated tokens against a ``Grammar`` with llama.cpp's semantics, fast.
///
/// Stacks are interned (a stack is a node: top element and the id of the stack below), so
/// the rule expansion after each character (`advance`) is computed once per stack and cached;
/// the tokens a state allows are found by one walk over the vocabulary sorted by bytes (shared
/// prefixes matched once, dead prefixes skipped) and cached per state, so a state seen again
/// costs a lookup. ``GrammarReference`` is the plain port this is tested against.
/// Not thread-safe: one matcher per generation.
public final class GrammarMatcher {
    public let grammar: Grammar
    public let vocabulary: GrammarVocabulary
    public private(set) var state = GrammarState(stacks: [], partial: PartialUTF8())

    static let emptyStack: Int32 = -1
    private var nodeElement: [Int32] = []
    private var nodeParent: [Int32] = []
    private var nodeDepth: [Int32] = []
    private var nodeIndex: [Int64: Int32] = [:]
    /// `advance`'s visited marks: node `i` was reached in the current walk when
    /// `nodeVisit[i] == visitEpoch` (no set to allocate and clear per walk).
    private var nodeVisit: [UInt32] = []
    private var visitEpoch: UInt32 = 0
    private var advanceWork: [Int32] = []
    private var advanced: [Int32: [Int32]] = [:]
    /// For a stack whose top is a character class: the stacks after that class matched.
    private var successorCache: [[Int32]?] = []
    private var maskCache: [GrammarState: [UInt64]] = [:]
    private var maskCacheBytes = 0
    private let hasTokenElements: Bool
    private var initialState = GrammarState(stacks: [], partial: PartialUTF8())
    /// Bytes of masks kept before the cache is emptied.
    public var maskCacheLimit = 64 << 20
    /// Most interned stacks before matching gives up on a grammar as too ambiguous.
    public var maxNodes = 2_000_000

    /// Mask lookups answered from the cache, and masks computed (for benchmarks and tests).
    public private(set) var maskCacheHits = 0
    public private(set) var masksComputed = 0

    public init(grammar: Grammar, vocabulary: GrammarVocabulary) throws {
        self.grammar = grammar
        self.vocabulary = vocabulary
        hasTokenElements = grammar.elements.contains { $0.isTokenElement }
        var stacks: [Int32] = []
        for start in grammar.alternativeStartsByRule[grammar.rootRule] {
            let s = grammar.elements[start].isEndOfSequence ? Self.emptyStack : try push(Self.emptyStack, Int32(start))
            try stacks.append(contentsOf: advance(s))
        }
        state = GrammarState(stacks: Self.normalized(stacks), partial: PartialUTF8())
        initialState = state
    }

    /// Back to the start of the grammar (caches are kept).
    public func reset() { state = initialState }

    /// Whether the text so far is a complete match (end-of-generation is allowed).
    public var canEnd: Bool { state.stacks.first == Self.emptyStack }

    /// Whether the grammar is complete and allows nothing but ending.
    public var mustEnd: Bool { state.stacks == [Self.emptyStack] }

    // MARK: Interned stacks

    private func push(_ parent: Int32, _ element: Int32) throws -> Int32 {
        let key = Int64(element) << 32 | Int64(UInt32(bitPattern: parent))
        if let id = nodeIndex[key] { return id }
        let depth = parent < 0 ? 1 : nodeDepth[Int(parent)] + 1
        guard Int(depth) <= grammar.limits.maxStackDepth else {
            throw SwiftletError.invalidGrammar(reason: "parse stack deeper than \(grammar.limits.maxStackDepth) (grammar nests too deeply)",
                                               line: 1, column: 1)
        }
        guard nodeElement.count < maxNodes else {
            throw SwiftletError.invalidGrammar(reason: "grammar is too ambiguous: more than \(maxNodes) parse stacks", line: 1, column: 1)
        }
        let id = Int32(nodeElement.count)
        nodeElement.append(element); nodeParent.append(parent); nodeDepth.append(depth); successorCache.append(nil)
        nodeVisit.append(0)
        nodeIndex[key] = id
        return id
    }

    private func parent(_ s: Int32) -> Int32 { nodeParent[Int(s)] }
    private func top(_ s: Int32) -> Int { Int(nodeElement[Int(s)]) }

    /// Expands rule references on top of `stack` until every resulting stack has a terminal on
    /// top or is empty (llama.cpp's `llama_grammar_advance_stack`).
    func advance(_ stack: Int32) throws -> [Int32] {
        if let cached = advanced[stack] { return cached }
        var result: [Int32] = []
        var todo: [Int32] = []
        swap(&todo, &advanceWork)
        defer { swap(&todo, &advanceWork) }
        todo.removeAll(keepingCapacity: true)
        todo.append(stack)
        visitEpoch &+= 1
        if visitEpoch == 0 { for i in nodeVisit.indices { nodeVisit[i] = 0 }; visitEpoch = 1 }
        var reachedEmpty = false
        while let current = todo.popLast() {
            // Each stack is expanded once, so `result` holds no repeats.
            if current == Self.emptyStack {
                if !reachedEmpty { reachedEmpty = true; result.append(current) }
                continue
            }
            guard nodeVisit[Int(current)] != visitEpoch else { continue }
            nodeVisit[Int(current)] = visitEpoch
            let pos = top(current)
            let e = grammar.elements[pos]
            if e.kind == .ruleReference {
                for sub in grammar.alternativeStartsByRule[Int(e.value)] {
                    var next = parent(current)
                    if !grammar.elements[pos + 1].isEndOfSequence { next = try push(next, Int32(pos + 1)) }
                    if !grammar.elements[sub].isEndOfSequence { next = try push(next, Int32(sub)) }
                    todo.append(next)
                }
            } else {
                result.append(current)
            }
            if result.count > grammar.limits.maxStacks {
                throw SwiftletError.invalidGrammar(reason: "grammar is too ambiguous: more than \(grammar.limits.maxStacks) parse stacks",
                                                   line: 1, column: 1)
            }
        }
        advanced[stack] = result
        return result
    }

    /// Stacks after the character class on top of `stack` matched a character.
    private func successors(_ stack: Int32) throws -> [Int32] {
        if let cached = successorCache[Int(stack)] { return cached }
        var after = top(stack) + 1
        while grammar.elements[after].kind == .charAlternative || grammar.elements[after].kind == .rangeUpper { after += 1 }
        var base = parent(stack)
        if !grammar.elements[after].isEndOfSequence { base = try push(base, Int32(after)) }
        let result = try advance(base)
        successorCache[Int(stack)] = result
        return result
    }

    private static func normalized(_ stacks: [Int32]) -> [Int32] {
        var s = stacks
        s.sort()
        var out: [Int32] = []
        out.reserveCapacity(s.count)
        for x in s where out.last != x { out.append(x) }
        return out
    }

    // MARK: Single tokens

    /// Whether `token` may come next.
    public func allows(_ id: TokenID) throws -> Bool {
        let token = Int(id)
        guard token >= 0 && token < vocabulary.count else { return false }
        if vocabulary.endOfGeneration[token] { return canEnd }
        let piece = Array(vocabulary.piece(token))
        if piece.isEmpty || piece[0] == 0 { return false }
        let (points, after) = Grammar.decodeUTF8(piece, after: state.partial)
        let terminated = points + [0]
        for s in state.stacks where try stackAccepts(s, terminated, 0, after, id) { return true }
        return false
    }

    private func stackAccepts(_ s: Int32, _ points: [UInt32], _ i: Int, _ partial: PartialUTF8, _ token: Int32) throws -> Bool {
        if s == Self.emptyStack { return points[i] == 0 && partial.remaining == 0 }
        let pos = top(s)
        let e = grammar.elements[pos]
        if e.isTokenElement {
            if points[i] == 0 { return partial.remaining == 0 }
            return (e.kind == .token) == (e.value == UInt32(bitPattern: token))
        }
        if points[i] == 0 { return partial.remaining == 0 || grammar.matchPartialChar(pos, partial) }
        guard grammar.matchChar(pos, points[i]).0 else { return false }
        for next in try successors(s) where try stackAccepts(next, points, i + 1, partial, token) { return true }
        return false
    }

    /// Advances past `token`. Throws when the token is not allowed (callers check first).
    public func accept(_ id: TokenID) throws {
        let token = Int(id)
        guard token >= 0 && token < vocabulary.count else {
            throw SwiftletError.invalidArgument("token \(token) is outside the vocabulary")
        }
        if vocabulary.endOfGeneration[token] {
            guard canEnd else { throw SwiftletError.invalidArgument("end of generation before the grammar is complete") }
            return
        }
        let (points, after) = Grammar.decodeUTF8(Array(vocabulary.piece(token)), after: state.partial)
        var newStacks: [Int32] = []
        for s in state.stacks where s != Self.emptyStack {
            let pos = top(s)
            let e = grammar.elements[pos]
            if e.isTokenElement {
                if (e.kind == .token) == (e.value == UInt32(token)) {
                    var next = parent(s)
                    if !grammar.elements[pos + 1].isEndOfSequence { next = try push(next, Int32(pos + 1)) }
                    newStacks += try advance(next)
                }
                continue
            }
            var current = [s]
            for chr in after.remaining < 0 ? [] : points {
                var next: [Int32] = []
                for c in current where c != Self.emptyStack && !grammar.elements[top(c)].isTokenElement
                    && grammar.matchChar(top(c), chr).0 {
                    next += try successors(c)
                }
                current = Self.normalized(next)
                if current.isEmpty { break }
            }
            newStacks += current
        }
        let normalized = Self.normalized(newStacks)
        guard !normalized.isEmpty else {
            throw SwiftletError.invalidArgument("token \(token) does not continue the grammar")
        }
        state = GrammarState(stacks: normalized, partial: after)
    }

    // MARK: Token masks

    /// The allowed tokens of the current state as a bitset (bit `t` of word `t / 64`).
    public func allowedTokens() throws -> [UInt64] {
        if let cached = maskCache[state] { maskCacheHits += 1; return cached }
        let mask = hasTokenElements ? try scanMask() : try walkMask()
        masksComputed += 1
        if maskCacheBytes + mask.count * 8 > maskCacheLimit { maskCache.removeAll(); maskCacheBytes = 0 }
        maskCache[state] = mask
        maskCacheBytes += mask.count * 8
        return mask
    }

    /// Every token checked one by one (grammars with token references).
    private func scanMask() throws -> [UInt64] {
        var mask = [UInt64](repeating: 0, count: (vocabulary.count + 63) / 64)
        for t in 0..<vocabulary.count where try allows(TokenID(t)) { mask[t >> 6] |= 1 << UInt64(t & 63) }
        return mask
    }

    /// One pass over the byte-sorted vocabulary: the stacks after each prefix are kept per
    /// depth and reused by the next token that shares the prefix; a prefix no stack survives
    /// rejects every token that starts with it without looking at their bytes.
    private func walkMask() throws -> [UInt64] {
        let vocab = vocabulary
        var mask = [UInt64](repeating: 0, count: (vocab.count + 63) / 64)
        if canEnd {
            for t in 0..<vocab.count where vocab.endOfGeneration[t] { mask[t >> 6] |= 1 << UInt64(t & 63) }
        }
        // Per depth d (bytes consumed): the stacks after the last complete code point, stored in
        // `storage[frameStart[d]..<frameEnd[d]]`, and the UTF-8 decoder state.
        var storage: [Int32] = state.stacks
        var frameStart: [Int] = [0], frameEnd: [Int] = [storage.count]
        var frameValue: [UInt32] = [state.partial.value]
        var frameRemaining: [Int8] = [state.partial.remaining]
        var frameCarried: [Bool] = [state.partial.remaining > 0]
        var scratch: [Int32] = []
        let sorted = vocab.sortedTokens, shared = vocab.sharedPrefix, lengths = vocab.sortedLength
        let bytes = vocab.bytes, offsets = vocab.offsets
        let lookup: [Int8] = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4]
        let elements = grammar.elements

        var i = 0
        while i < sorted.count {
            let token = Int(sorted[i])
            let length = Int(lengths[i])
            let base = Int(offsets[token])
            var depth = min(Int(shared[i]), frameStart.count - 1)
            // Drop frames deeper than the shared prefix.
            if frameStart.count > depth + 1 {
                frameStart.removeSubrange((depth + 1)...); frameEnd.removeSubrange((depth + 1)...)
                frameValue.removeSubrange((depth + 1)...); frameRemaining.removeSubrange((depth + 1)...)
                frameCarried.removeSubrange((depth + 1)...)
                storage.removeSubrange(frameEnd[depth]...)
            }
            var dead = false
            while depth < length {
                let byte = bytes[base + depth]
                var value = frameValue[depth], remaining = frameRemaining[depth], carried = frameCarried[depth]
                var complete = false
                if remaining > 0 {
                    if carried && byte >> 6 != 2 { dead = true; break }
                    value = value << 6 + UInt32(byte & 0x3F)
                    remaining -= 1
                    complete = remaining == 0
                    if complete { carried = false }
                } else {
                    let n = Int(lookup[Int(byte >> 4)]) - 1
                    if n < 0 { dead = true; break }
                    value = UInt32(byte) & UInt32((1 << (7 - n)) - 1)
                    remaining = Int8(n)
                    complete = n == 0
                }
                let start = storage.count
                if complete {
                    if value == 0 { dead = true; break }  // llama.cpp would end the text here
                    scratch.removeAll(keepingCapacity: true)
                    for k in frameStart[depth]..<frameEnd[depth] {
                        let s = storage[k]
                        if s == Self.emptyStack { continue }
                        let pos = Int(nodeElement[Int(s)])
                        if grammar.matchChar(pos, value).0 {
                            if let next = successorCache[Int(s)] { scratch += next } else { scratch += try successors(s) }
                        }
                    }
                    if scratch.isEmpty { dead = true; break }
                    if scratch.count > 1 { scratch.sort() }
                    var last: Int32 = .min
                    for s in scratch where s != last { storage.append(s); last = s }
                }
                // Mid-character: the stacks are those of the previous depth (shared range).
                frameStart.append(complete ? start : frameStart[depth]); frameEnd.append(complete ? storage.count : frameEnd[depth])
                frameValue.append(value); frameRemaining.append(remaining); frameCarried.append(carried)
                depth += 1
            }
            if dead {
                // Every following token sharing the first depth+1 bytes is rejected as well.
                i += 1
                while i < sorted.count && Int(shared[i]) > depth { i += 1 }
                continue
            }
            // The token's bytes are consumed; it is allowed if it ends on a whole character, or
            // its trailing partial character could still satisfy some stack.
            let remaining = frameRemaining[length]
            var allowed = remaining == 0
            if !allowed {
                let partial = PartialUTF8(value: frameValue[length], remaining: remaining)
                for k in frameStart[length]..<frameEnd[length] {
                    let s = storage[k]
                    if s != Self.emptyStack && !elements[Int(nodeElement[Int(s)])].isTokenElement
                        && grammar.matchPartialChar(Int(nodeElement[Int(s)]), partial) { allowed = true; break }
                }
            }
            if allowed { mask[token >> 6] |= 1 << UInt64(token & 63) }
            i += 1
        }
        return mask
    }
}
