/// The one persistent compute thread pool used by Swiftlet's kernels.
///
/// CONTRACT (stub: runs serially; the tensor-core work replaces the body with spinning workers,
/// keeping this signature): `parallelFor(n) { i in … }` calls `body(i)` once for every `i` in
/// `0..<n`, spread over `threadCount` threads with the caller taking part as worker 0, and returns
/// when all calls have finished. `body` must not throw or allocate in hot paths.
public final class ComputePool: @unchecked Sendable {
    /// The process-wide pool (threads = physical cores unless `SWIFTLET_THREADS` says otherwise).
    public static let shared = ComputePool(threadCount: 1)

    /// Number of threads taking part in `parallelFor`, caller included.
    public let threadCount: Int

    public init(threadCount: Int) { self.threadCount = max(1, threadCount) }

    /// Runs `body(i)` for every `i` in `0..<count`, in parallel, and waits for all of them.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        for i in 0..<count { body(i) }
    }
}
