import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one persistent compute thread pool used by Swiftlet's kernels.
///
/// `parallelFor(n) { i in … }` calls `body(i)` once for every `i` in `0..<n`, spread over
/// `threadCount` threads with the caller taking part as worker 0, and returns when all calls have
/// finished. `body` must not throw; it should not allocate in hot paths.
///
/// Design (see DESIGN.md, "Threading"): workers spin on an atomic ticket while work is likely to come
/// (a token's decode issues hundreds of dispatches), yield, and park on a condition variable only
/// after about a millisecond without work (waking a parked thread costs ~55 µs in a VM). A dispatch
/// publishes one 64-bit ticket (generation | next index); participants claim chunks of indices with
/// compare-and-swap, so a dispatch allocates nothing and a late worker can never run a stale job.
///
/// Nested or concurrent use never deadlocks: a `parallelFor` issued while the pool is busy (from
/// inside a body, or from another thread) runs serially on its caller.
public final class ComputePool: @unchecked Sendable {  // shared state lives in `PoolCore`, behind atomics
    /// The process-wide pool: physical cores unless ``setSharedThreadCount(_:)`` or
    /// `SWIFTLET_THREADS` says otherwise.
    public static let shared: ComputePool = {
        sharedCreated.store(true, ordering: .sequentiallyConsistent)
        return ComputePool(threadCount: ComputePool.defaultThreadCount)
    }()

    private static let sharedCreated = Atomic<Bool>(false)
    private static let requestedThreadCount = Atomic<Int>(0)

    /// Sets how many threads the shared pool runs (as a CLI's `-t`). Only possible before the shared
    /// pool is first used: its threads are started once.
    public static func setSharedThreadCount(_ count: Int) throws {
        guard count > 0, count <= 256 else {
            throw SwiftletError.invalidArgument("thread count \(count) must be between 1 and 256")
        }
        guard !sharedCreated.load(ordering: .sequentiallyConsistent) else {
            throw SwiftletError.invalidArgument("the shared compute pool is already running")
        }
        requestedThreadCount.store(count, ordering: .sequentiallyConsistent)
    }

    /// Number of threads taking part in `parallelFor`, caller included.
    public var threadCount: Int { core.threadCount }

    private let core: PoolCore

    /// Creates a pool with `threadCount − 1` worker threads (the caller is the last participant).
    /// The workers exit when the pool is released.
    public init(threadCount: Int) {
        core = PoolCore(threadCount: threadCount)
    }

    deinit { core.shutdown() }

    /// Runs `body(i)` for every `i` in `0..<count`, in parallel, and waits for all of them.
    @inline(__always)
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        core.parallelChunks(count, chunk: 0) { range, _ in
            for i in range { body(i) }
        }
    }

    /// Like `parallelFor`, also passing the index (0..<threadCount) of the thread running the call,
    /// for per-thread scratch buffers. The index is unique among the bodies of one dispatch; a nested
    /// dispatch (which runs serially) reports its enclosing thread's index.
    @inline(__always)
    public func parallelFor(_ count: Int, _ body: (_ index: Int, _ thread: Int) -> Void) {
        core.parallelChunks(count, chunk: 0) { range, thread in
            for i in range { body(i, thread) }
        }
    }

    /// Runs `body` over disjoint ranges covering `0..<count`, each at most `chunk` long
    /// (`chunk ≤ 0`: about four chunks per thread), with the running thread's index.
    /// The natural entry point for kernels that work on blocks of rows.
    @inline(__always)
    public func parallelChunks(_ count: Int, chunk: Int, _ body: (Range<Int>, _ thread: Int) -> Void) {
        core.parallelChunks(count, chunk: chunk, body)
    }

    /// Physical cores available to this process (``setSharedThreadCount(_:)``, then
    /// `SWIFTLET_THREADS`, override).
    public static var defaultThreadCount: Int {
        let requested = requestedThreadCount.load(ordering: .sequentiallyConsistent)
        if requested > 0 { return requested }
        if let value = ProcessInfo.processInfo.environment["SWIFTLET_THREADS"], let n = Int(value), n > 0 {
            return min(n, 256)
        }
        return SystemInfo.physicalCoreCount
    }
}

/// The state shared by a pool's caller side and its worker threads (which keep it alive).
final class PoolCore: @unchecked Sendable {  // job fields are published and claimed through the `ticket` atomic
    /// Number of threads taking part in `parallelFor`, caller included.
    let threadCount: Int

    /// Ticket: generation in the high 32 bits, next unclaimed index in the low 32 bits.
    private let ticket = Atomic<UInt64>(0)
    private let completed = Atomic<Int>(0)
    private let jobCount = Atomic<Int>(0)
    private let jobChunk = Atomic<Int>(1)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    /// Workers currently between noticing a dispatch and leaving `work` (they may hold the job).
    private let activeWorkers = Atomic<Int>(0)
    private let shuttingDown = Atomic<Bool>(false)
    /// The current job's body (the caller's non-escaping closure, as its two machine words); written
    /// by the dispatching thread before the ticket is published.
    private var job = ErasedBody()
    private let parkMutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let parkCondition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    private static let closedIndex: UInt64 = 0xFFFF_FFFF
    private static let maxCount = 1 << 30

    /// Creates a pool with `threadCount − 1` worker threads (the caller is the last participant).
    init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        pthread_mutex_init(parkMutex, nil)
        pthread_cond_init(parkCondition, nil)
        ticket.store(Self.closedIndex, ordering: .relaxed)
        for worker in 1..<self.threadCount {
            let thread = Thread { self.workerLoop(worker) }
            thread.name = "swiftlet-compute-\(worker)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Asks the workers to exit; they drop their references to the core when they do.
    func shutdown() {
        shuttingDown.store(true, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(parkMutex)
        pthread_cond_broadcast(parkCondition)
        pthread_mutex_unlock(parkMutex)
    }

    deinit {
        pthread_cond_destroy(parkCondition)
        pthread_mutex_destroy(parkMutex)
        parkMutex.deallocate()
        parkCondition.deallocate()
    }

    /// Runs `body` over disjoint ranges covering `0..<count`, each at most `chunk` long
    /// (`chunk ≤ 0`: about four chunks per thread), with the running thread's index.
    /// The natural entry point for kernels that work on blocks of rows.
    func parallelChunks(_ count: Int, chunk: Int, _ body: (Range<Int>, _ thread: Int) -> Void) {
        guard count > 0 else { return }
        let chunkSize = chunk > 0 ? chunk : max(1, (count + 4 * threadCount - 1) / (4 * threadCount))
        let myIndex = Self.currentThreadIndex
        guard threadCount > 1, count > chunkSize, count < Self.maxCount,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else {
            var start = 0
            while start < count {
                let end = min(count, start + chunkSize)
                body(start..<end, myIndex)
                start = end
            }
            return
        }
        do {
            job = ErasedBody.erase(body)
            jobCount.store(count, ordering: .relaxed)
            jobChunk.store(chunkSize, ordering: .relaxed)
            completed.store(0, ordering: .relaxed)
            let generation = (ticket.load(ordering: .relaxed) >> 32) &+ 1
            ticket.store(generation << 32, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(parkMutex)
                pthread_cond_broadcast(parkCondition)
                pthread_mutex_unlock(parkMutex)
            }
            let previous = Self.currentThreadIndex
            Self.currentThreadIndex = 0
            work(generation: generation, thread: 0)
            Self.currentThreadIndex = previous
            var spins = 0
            while completed.load(ordering: .acquiring) < count {
                spins += 1
                if spins > 4096 { sched_yield() }
            }
            // Close the ticket so that no late worker claims anything of this generation, and wait
            // until no worker can still hold the closure: it lives on this thread's stack.
            ticket.store((generation << 32) | Self.closedIndex, ordering: .sequentiallyConsistent)
            spins = 0
            while activeWorkers.load(ordering: .sequentiallyConsistent) != 0 {
                spins += 1
                if spins > 4096 { sched_yield() }
            }
            job = ErasedBody()
        }
        busy.store(false, ordering: .releasing)
    }

    /// Claims and runs chunks of the job of `generation` until none is left.
    /// Never inlined: the closure copies it makes must be released before the caller's
    /// `activeWorkers` decrement.
    @inline(never)
    private func work(generation: UInt64, thread: Int) {
        let count = UInt64(jobCount.load(ordering: .relaxed))
        let chunk = UInt64(jobChunk.load(ordering: .relaxed))
        var current = ticket.load(ordering: .acquiring)
        while true {
            guard current >> 32 == generation else { return }
            let index = current & 0xFFFF_FFFF
            guard index < count else { return }
            let end = min(index + chunk, count)
            let (exchanged, original) = ticket.compareExchange(
                expected: current, desired: (generation << 32) | end, ordering: .acquiringAndReleasing)
            if !exchanged {
                current = original
                continue
            }
            ErasedBody.invoke(job, Int(index), Int(end), thread)
            completed.add(Int(end - index), ordering: .releasing)
            current = ticket.load(ordering: .acquiring)
        }
    }

    private func workerLoop(_ thread: Int) {
        Self.currentThreadIndex = thread
        var seen: UInt64 = ticket.load(ordering: .acquiring) >> 32
        while !shuttingDown.load(ordering: .relaxed) {
            if waitForGeneration(after: seen) {
                activeWorkers.add(1, ordering: .sequentiallyConsistent)
                let current = ticket.load(ordering: .sequentiallyConsistent)
                seen = current >> 32
                // The job's count/chunk are published before the ticket; `work` re-validates the
                // generation on every claim.
                if current & 0xFFFF_FFFF != Self.closedIndex {
                    work(generation: seen, thread: thread)
                }
                activeWorkers.subtract(1, ordering: .sequentiallyConsistent)
            }
        }
    }

    /// Spins, then yields, then parks until the ticket's generation differs from `seen`.
    /// Returns false when woken for shutdown.
    private func waitForGeneration(after seen: UInt64) -> Bool {
        @inline(__always) func changed() -> Bool { ticket.load(ordering: .acquiring) >> 32 != seen }
        for _ in 0..<20_000 {
            if changed() { return true }
        }
        let idleLimit = Self.nanoseconds() + 1_000_000
        while Self.nanoseconds() < idleLimit {
            for _ in 0..<200 {
                if changed() { return true }
            }
            sched_yield()
        }
        pthread_mutex_lock(parkMutex)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while !changed() && !shuttingDown.load(ordering: .sequentiallyConsistent) {
            pthread_cond_wait(parkCondition, parkMutex)
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(parkMutex)
        return changed()
    }

    private static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Index of the current thread within the pool running it (0 for any other thread).
    static var currentThreadIndex: Int {
        get { Int(bitPattern: pthread_getspecific(threadIndexKey)) }
        set { pthread_setspecific(threadIndexKey, UnsafeRawPointer(bitPattern: newValue)) }
    }

    private static let threadIndexKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
}

/// A non-escaping chunk body, `(Range<Int>, Int) -> Void`, reinterpreted as its two machine words
/// (function, context) so that worker threads can call it while the dispatching caller waits.
///
/// Why: handing the closure over as a closure value needs `withoutActuallyEscaping`, whose
/// escapable wrapper is a heap-allocated thunk — one allocation per dispatch. A non-escaping
/// closure is passed as exactly these two words (its context lives on the caller's stack and is
/// never retained), so reinterpreting a thin function's parameter between the two forms moves it
/// without any allocation, retain or copy. Valid only while the dispatching call is running.
struct ErasedBody {
    typealias Body = (Range<Int>, Int) -> Void

    var function: UnsafeRawPointer?
    var context: UnsafeRawPointer?

    /// The words of `body`; they must not be used after the call that received `body` returns.
    static let erase = unsafeBitCast(identity, to: (@convention(thin) (Body) -> ErasedBody).self)

    /// Calls the erased body on `lower..<upper` with the running thread's index.
    static let invoke = unsafeBitCast(call, to: (@convention(thin) (ErasedBody, Int, Int, Int) -> Void).self)

    // Closure literals rather than function references: Swift 6 infers references to functions as
    // `@Sendable`, and the compiler cannot yet convert those to `@convention(thin)`.
    private static let identity: @convention(thin) (ErasedBody) -> ErasedBody = { $0 }
    private static let call: @convention(thin) (Body, Int, Int, Int) -> Void = { body, lower, upper, thread in
        body(lower..<upper, thread)
    }
}
