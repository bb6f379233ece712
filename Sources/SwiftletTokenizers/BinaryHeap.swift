/// An element ordered by `precedes` (the element that should come out first precedes).
protocol HeapElement {
    static func precedes(_ a: Self, _ b: Self) -> Bool
}

/// A binary heap, reused across calls (`removeAll` keeps its storage).
struct BinaryHeap<Element: HeapElement> {
    private(set) var storage: [Element] = []

    var isEmpty: Bool { storage.isEmpty }

    mutating func removeAll() { storage.removeAll(keepingCapacity: true) }

    mutating func push(_ e: Element) {
        storage.append(e)
        var i = storage.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !Element.precedes(storage[i], storage[parent]) { break }
            storage.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard let top = storage.first else { return nil }
        let last = storage.removeLast()
        if storage.isEmpty { return top }
        storage[0] = last
        var i = 0
        let n = storage.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < n && Element.precedes(storage[l], storage[best]) { best = l }
            if r < n && Element.precedes(storage[r], storage[best]) { best = r }
            if best == i { break }
            storage.swapAt(i, best)
            i = best
        }
        return top
    }
}
