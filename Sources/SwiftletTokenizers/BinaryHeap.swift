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
        storage.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            let item = h[i]
            while i > 0 {
                let parent = (i - 1) / 2
                if !Element.precedes(item, h[parent]) { break }
                h[i] = h[parent]
                i = parent
            }
            h[i] = item
        }
    }

    mutating func pop() -> Element? {
        guard let top = storage.first else { return nil }
        let last = storage.removeLast()
        if storage.isEmpty { return top }
        storage.withUnsafeMutableBufferPointer { h in
            // Sift the last element down from the root, moving the better child up each level.
            let n = h.count
            var i = 0
            while true {
                let l = 2 * i + 1
                if l >= n { break }
                var best = l
                if l + 1 < n && Element.precedes(h[l + 1], h[l]) { best = l + 1 }
                if !Element.precedes(h[best], last) { break }
                h[i] = h[best]
                i = best
            }
            h[i] = last
        }
        return top
    }
}
