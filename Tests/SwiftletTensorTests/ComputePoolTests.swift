import XCTest
import Synchronization
import SwiftletTensor
import SwiftletTestSupport

final class ComputePoolTests: XCTestCase {
    func testEveryIndexRunsExactlyOnceOverManyDispatches() {
        let pool = ComputePool(threadCount: 3)
        for count in [0, 1, 2, 3, 7, 64, 1000] {
            for _ in 0..<200 {
                let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
                hits.initialize(repeating: 0, count: max(count, 1))
                pool.parallelFor(count) { i in hits[i] += 1 }
                for i in 0..<count where hits[i] != 1 {
                    XCTFail("index \(i) of \(count) ran \(hits[i]) times")
                    break
                }
                hits.deallocate()
            }
        }
    }

    func testThreadIndicesAreInRangeAndChunksCoverRange() {
        let pool = ComputePool(threadCount: 2)
        let total = Atomic<Int>(0)
        let badThread = Atomic<Bool>(false)
        pool.parallelChunks(10_001, chunk: 100) { range, thread in
            if thread < 0 || thread >= 2 { badThread.store(true, ordering: .relaxed) }
            total.add(range.reduce(0, +), ordering: .relaxed)
        }
        XCTAssertFalse(badThread.load(ordering: .relaxed))
        XCTAssertEqual(total.load(ordering: .relaxed), 10_000 * 10_001 / 2)
    }

    func testNestedDispatchDoesNotDeadlock() {
        let pool = ComputePool(threadCount: 2)
        let sum = Atomic<Int>(0)
        pool.parallelFor(8) { i in
            pool.parallelFor(8) { j in sum.add(i * 8 + j, ordering: .relaxed) }
        }
        XCTAssertEqual(sum.load(ordering: .relaxed), (0..<64).reduce(0, +))
    }

    func testConcurrentCallersDoNotDeadlock() {
        let pool = ComputePool(threadCount: 2)
        let sum = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for _ in 0..<200 {
                pool.parallelFor(16) { i in sum.add(i + caller, ordering: .relaxed) }
            }
        }
        let perDispatch = (0..<16).reduce(0, +)
        XCTAssertEqual(sum.load(ordering: .relaxed), 200 * (4 * perDispatch + 16 * (0 + 1 + 2 + 3)))
    }

    func testWorkersWakeAfterParking() {
        let pool = ComputePool(threadCount: 2)
        let sum = Atomic<Int>(0)
        pool.parallelFor(4) { i in sum.add(i, ordering: .relaxed) }
        usleep(5_000)  // longer than the ~1 ms idle period: the worker parks
        pool.parallelFor(4) { i in sum.add(i, ordering: .relaxed) }
        XCTAssertEqual(sum.load(ordering: .relaxed), 12)
    }

    func testMultiThreadedDispatchDoesNotAllocate() throws {
        guard AllocationCounter.available else { throw XCTSkip("runtime allocation hook unavailable") }
        let pool = ComputePool(threadCount: 2)
        let values = UnsafeMutablePointer<Int>.allocate(capacity: 256)
        defer { values.deallocate() }
        values.initialize(repeating: 0, count: 256)
        let offset = Int.random(in: 1...9)  // a captured value, so every body has a real context
        for _ in 0..<100 { pool.parallelFor(256) { i in values[i] += offset } }  // warm up
        let dispatches = 2_000
        let allocations = AllocationCounter.fewestAllocations {
            for _ in 0..<dispatches {
                pool.parallelFor(256) { i in values[i] += offset }
                pool.parallelFor(256) { i, thread in values[i] += thread < 2 ? 1 : 1_000 }
                pool.parallelChunks(256, chunk: 16) { range, _ in for i in range { values[i] -= offset + 1 } }
                pool.parallelFor(4) { _ in pool.parallelFor(8) { _ in } }  // nested: runs serially
            }
        }
        print("ALLOCATIONS \(allocations) in \(4 * dispatches) dispatches on a 2-thread pool (fewest of 3 rounds)")
        XCTAssertEqual(allocations, 0)
        XCTAssertEqual((0..<256).reduce(0) { $0 + values[$1] }, 256 * 100 * offset)  // every body ran
    }

    func testSharedPoolUsesConfiguredThreads() {
        XCTAssertGreaterThanOrEqual(ComputePool.shared.threadCount, 1)
        if let env = ProcessInfo.processInfo.environment["SWIFTLET_THREADS"], let n = Int(env), n > 0 {
            XCTAssertEqual(ComputePool.shared.threadCount, n)
        }
    }
}
