import Foundation
import Swiftlet

/// Resident-set figures of this process, read from `/proc/self/status` (Linux); `nil` elsewhere.
public enum ProcessMemory {
    /// Current resident set (`VmRSS`), file-backed mapped pages included.
    public static var residentBytes: Int? { statusField("VmRSS:") }
    /// Peak resident set since start or the last `resetPeak()` (`VmHWM`).
    public static var peakResidentBytes: Int? { statusField("VmHWM:") }

    /// Resets the peak to the current resident set (writing 5 to `/proc/self/clear_refs`);
    /// returns whether the kernel accepted it.
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    private static func statusField(_ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let digits = line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
            return digits.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }
}

/// Measures the memory bandwidth a decode step can hope for: `threads` threads streaming (reading
/// and summing) a buffer much larger than the caches, as the matvec kernels stream weights.
public enum MemoryBandwidth {
    /// Bytes per second of the fastest of `passes` full reads of a `bytes`-sized buffer.
    public static func measure(threads: Int = 2, bytes: Int = 256 << 20, passes: Int = 5) -> Double {
        let lanes = MemoryLayout<SIMD16<Float>>.stride
        let vectors = max(bytes / lanes, 1)
        let buffer = UnsafeMutablePointer<SIMD16<Float>>.allocate(capacity: vectors)
        defer { buffer.deallocate() }
        // Touch every page (and give the sum something to do) before timing.
        buffer.initialize(repeating: SIMD16<Float>(repeating: 1), count: vectors)
        let pool = ComputePool(threadCount: max(threads, 1))
        let chunks = pool.threadCount * 16
        let sinks = UnsafeMutablePointer<Float>.allocate(capacity: chunks * 16)
        defer { sinks.deallocate() }
        sinks.initialize(repeating: 0, count: chunks * 16)
        var best = Double.infinity
        for _ in 0..<max(passes, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            pool.parallelFor(chunks) { c in
                let lower = vectors * c / chunks, upper = vectors * (c + 1) / chunks
                sinks[c * 16] += streamSum(buffer + lower, count: upper - lower)
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start))
        }
        return Double(vectors * lanes) * 1e9 / best
    }

    /// Sum of `count` vectors with four independent accumulators (enough loads in flight to
    /// saturate memory, not the adder).
    @inline(never)
    static func streamSum(_ p: UnsafePointer<SIMD16<Float>>, count: Int) -> Float {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var i = 0
        while i + 4 <= count {
            a0 += p[i]; a1 += p[i + 1]; a2 += p[i + 2]; a3 += p[i + 3]
            i += 4
        }
        while i < count { a0 += p[i]; i += 1 }
        return ((a0 + a1) + (a2 + a3)).sum()
    }
}
