import Foundation

/// One long-lived thread that runs a model's inference work in arrival order: the serial executor
/// of its ``InferenceEngine`` actor, and the place where loading happens.
///
/// Why a thread of its own: a prefill or a generation is seconds of blocking compute (it drives the
/// `ComputePool` spin workers), which must not occupy one of the cooperative pool's few threads.
final class InferenceThread: SerialExecutor, @unchecked Sendable {  // `queue` is guarded by `condition`
    private enum Work {
        case job(UnownedJob)
        case closure(() -> Void)
    }

    private let condition = NSCondition()
    private var queue: [Work] = []
    private var head = 0
    private var stopping = false

    init(name: String) {
        let thread = Thread { self.loop() }  // keeps the executor alive until `stop()`
        thread.name = name
        // The forward pass keeps per-layer scratch on the stack in places; 4 MiB as for a main thread.
        thread.stackSize = 1 << 22
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        push(.job(UnownedJob(job)))
    }

    /// Runs `body` on the thread after the work already queued.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            push(.closure { continuation.resume(with: Result { try body() }) })
        }
    }

    /// Ends the thread once the queued work is done.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func push(_ work: Work) {
        condition.lock()
        queue.append(work)
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while head == queue.count && !stopping { condition.wait() }
            if head == queue.count { condition.unlock(); return }
            let work = queue[head]
            head += 1
            if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0 }
            condition.unlock()
            switch work {
            case .job(let job): job.runSynchronously(on: asUnownedSerialExecutor())
            case .closure(let body): body()
            }
        }
    }
}
