/// An append-only hash table from byte strings to dense indices (0, 1, 2, … in insertion order).
///
/// Token texts are compared as raw UTF-8 bytes, never as `String`s: Swift `String` equality is
/// canonical equivalence, so "é" and "e\u{301}" would collide although they are distinct tokens.
/// When the same bytes are added twice, lookups return the later index (as llama.cpp's
/// `token_to_id` map does).
struct ByteStringTable: Sendable {
    /// All keys, concatenated in index order.
    private(set) var bytes: [UInt8] = []
    /// `offsets[i] ..< offsets[i + 1]` is key `i` in `bytes`.
    private(set) var offsets: [Int] = [0]
    /// Open-addressing slots holding an index, or -1 when empty.
    private var slots: [Int32]
    private var mask: Int

    init(expectedCount: Int = 16, expectedBytes: Int = 0) {
        var capacity = 16
        while capacity < expectedCount * 2 { capacity <<= 1 }
        slots = [Int32](repeating: -1, count: capacity)
        mask = capacity - 1
        bytes.reserveCapacity(expectedBytes)
        offsets.reserveCapacity(expectedCount + 1)
    }

    /// Number of keys added.
    var count: Int { offsets.count - 1 }

    @inline(__always)
    static func hash(_ p: UnsafeRawBufferPointer) -> Int {
        // FNV-1a, then a final avalanche so the low bits used by the mask are well mixed.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        h ^= h >> 29; h = h &* 0xbf58_476d_1ce4_e5b9; h ^= h >> 32
        return Int(truncatingIfNeeded: h)
    }

    /// Adds `key` as a new entry and returns its index; the key now resolves to this index.
    @discardableResult
    mutating func add(_ key: UnsafeRawBufferPointer) -> Int32 {
        if (count + 1) * 2 > slots.count { grow() }
        let index = Int32(count)
        bytes.append(contentsOf: key)
        offsets.append(bytes.count)
        var slot = ByteStringTable.hash(key) & mask
        while true {
            let existing = slots[slot]
            if existing < 0 || keyEquals(Int(existing), key) {
                slots[slot] = index
                return index
            }
            slot = (slot + 1) & mask
        }
    }

    @discardableResult
    mutating func add<S: Sequence>(_ key: S) -> Int32 where S.Element == UInt8 {
        let array = Array(key)
        return array.withUnsafeBytes { add($0) }
    }

    /// Index of `key`, or -1 when absent.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer) -> Int32 {
        var slot = ByteStringTable.hash(key) & mask
        return slots.withUnsafeBufferPointer { s in
            while true {
                let existing = s[slot]
                if existing < 0 { return -1 }
                if keyEquals(Int(existing), key) { return existing }
                slot = (slot + 1) & mask
            }
        }
    }

    func find<S: Sequence>(_ key: S) -> Int32 where S.Element == UInt8 {
        let array = Array(key)
        return array.withUnsafeBytes { find($0) }
    }

    /// The bytes of entry `index`.
    @inline(__always)
    func key(_ index: Int) -> ArraySlice<UInt8> { bytes[offsets[index] ..< offsets[index + 1]] }

    @inline(__always)
    private func keyEquals(_ index: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let start = offsets[index], end = offsets[index + 1]
        if end - start != key.count { return false }
        return bytes.withUnsafeBytes { all in
            key.count == 0 || memcmpEqual(all.baseAddress! + start, key.baseAddress!, key.count)
        }
    }

    private mutating func grow() {
        let capacity = slots.count * 2
        var newSlots = [Int32](repeating: -1, count: capacity)
        let newMask = capacity - 1
        // Re-insert in index order so later duplicates keep winning.
        bytes.withUnsafeBytes { all in
            for i in 0 ..< count {
                let key = UnsafeRawBufferPointer(rebasing: all[offsets[i] ..< offsets[i + 1]])
                var slot = ByteStringTable.hash(key) & newMask
                while true {
                    let existing = newSlots[slot]
                    if existing < 0 { newSlots[slot] = Int32(i); break }
                    let es = offsets[Int(existing)], ee = offsets[Int(existing) + 1]
                    if ee - es == key.count && (key.count == 0 || memcmpEqual(all.baseAddress! + es, key.baseAddress!, key.count)) {
                        newSlots[slot] = Int32(i); break
                    }
                    slot = (slot + 1) & newMask
                }
            }
        }
        slots = newSlots
        mask = newMask
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}

/// A hash map from a pair of 32-bit symbol ids to a 32-bit rank and a 32-bit result id
/// (the BPE merge table). Open addressing, built once.
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private static let empty = UInt64.max

    init(expectedCount: Int) {
        var capacity = 16
        while capacity < expectedCount * 2 { capacity <<= 1 }
        keys = [UInt64](repeating: PairTable.empty, count: capacity)
        values = [UInt64](repeating: 0, count: capacity)
        mask = capacity - 1
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 31
        return Int(truncatingIfNeeded: h) & mask
    }

    /// Inserts unless present (the first merge listed for a pair has the best rank).
    mutating func insertIfAbsent(left: Int32, right: Int32, rank: Int32, result: Int32) {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        var s = PairTable.slot(key, mask)
        while keys[s] != PairTable.empty {
            if keys[s] == key { return }
            s = (s + 1) & mask
        }
        keys[s] = key
        values[s] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: result))
    }

    /// `(rank, result)` of merging `left` and `right`, or nil.
    @inline(__always)
    func find(left: Int32, right: Int32) -> (rank: Int32, result: Int32)? {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        var s = PairTable.slot(key, mask)
        return keys.withUnsafeBufferPointer { k in
            while true {
                let stored = k[s]
                if stored == key {
                    let v = values[s]
                    return (Int32(truncatingIfNeeded: v >> 32), Int32(truncatingIfNeeded: v))
                }
                if stored == PairTable.empty { return nil }
                s = (s + 1) & mask
            }
        }
    }
}
