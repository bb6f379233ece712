import Foundation
import Synchronization
import Swiftlet

/// A generation that may be told to stop (client gone, server shutting down); the loop that
/// consumes its stream checks ``isStopped`` after every token.
final class GenerationTicket: Sendable {
    private let stopped = Atomic<Bool>(false)
    func stop() { stopped.store(true, ordering: .relaxed) }
    var isStopped: Bool { stopped.load(ordering: .relaxed) }
}

/// N generation slots over one model, each a ``PromptSession`` with its own KV cache, and a
/// bounded first-come-first-served queue in front of them.
///
/// A request takes the free slot whose cache shares the longest prefix with its prompt (a
/// conversation that comes back finds its history cached); when none is free it waits in the
/// queue, and when the queue is full it is refused at once (429). A released slot goes to the
/// request that has waited longest.
actor SlotScheduler {
    let slots: [PromptSession]
    let queueLimit: Int
    private var free: [Int]
    /// Last use of each slot, to break ties towards the least recently used.
    private var lastUse: [Int]
    private var clock = 0
    private var waiters: [(id: Int, continuation: CheckedContinuation<Int, Error>)] = []
    private var nextWaiterID = 0
    private var draining = false
    private var active: [ObjectIdentifier: GenerationTicket] = [:]

    init(model: LanguageModel, slotCount: Int, queueLimit: Int) {
        slots = (0..<slotCount).map { _ in PromptSession(model) }
        self.queueLimit = queueLimit
        free = Array(0..<slotCount)
        lastUse = Array(repeating: 0, count: slotCount)
    }

    var queueDepth: Int { waiters.count }
    var busySlots: Int { slots.count - free.count }

    /// A slot for `prompt`: at once when one is free, else after waiting in line. Throws
    /// ``APIError/queueFull(retryAfter:)`` when the line is full, ``APIError/shuttingDown`` while
    /// draining, `CancellationError` when the caller gives up while waiting.
    func acquire(for prompt: [TokenID], ticket: GenerationTicket) async throws -> Int {
        if draining { throw APIError.shuttingDown }
        if !free.isEmpty {
            let slot = bestFreeSlot(for: prompt)
            take(slot, ticket: ticket)
            return slot
        }
        guard waiters.count < queueLimit else {
            throw APIError.queueFull(retryAfter: max(1, (waiters.count + 1) / max(slots.count, 1)))
        }
        let id = nextWaiterID
        nextWaiterID += 1
        let slot = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, Error>) in
                if Task.isCancelled { continuation.resume(throwing: CancellationError()); return }
                waiters.append((id, continuation))
            }
        } onCancel: {
            Task { await self.abandon(waiter: id) }
        }
        active[ObjectIdentifier(ticket)] = ticket
        if draining { ticket.stop() }
        return slot
    }

    /// Gives `slot` back: to the longest-waiting request, or to the free list.
    func release(_ slot: Int, ticket: GenerationTicket) {
        active[ObjectIdentifier(ticket)] = nil
        clock += 1
        lastUse[slot] = clock
        if !waiters.isEmpty {
            let next = waiters.removeFirst()
            next.continuation.resume(returning: slot)
        } else {
            free.append(slot)
        }
    }

    /// Stops admitting requests (503), refuses those in line, and after `grace` stops the
    /// generations still running. Returns once every slot is free again (or after `grace` plus a
    /// second when a generation does not notice).
    func drain(grace: Duration) async {
        draining = true
        let line = waiters
        waiters.removeAll()
        for waiter in line { waiter.continuation.resume(throwing: APIError.shuttingDown) }
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        while busySlots > 0 && clock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        for ticket in active.values { ticket.stop() }
        let hardDeadline = clock.now + .seconds(1)
        while busySlots > 0 && clock.now < hardDeadline { try? await Task.sleep(for: .milliseconds(20)) }
    }

    var isDraining: Bool { draining }

    private func abandon(waiter id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }

    private func take(_ slot: Int, ticket: GenerationTicket) {
        free.removeAll { $0 == slot }
        active[ObjectIdentifier(ticket)] = ticket
    }

    private func bestFreeSlot(for prompt: [TokenID]) -> Int {
        var best = free[0]
        var bestShared = -1
        for slot in free {
            let shared = slots[slot].sharedPrefixLength(prompt)
            if shared > bestShared || (shared == bestShared && lastUse[slot] < lastUse[best]) {
                best = slot; bestShared = shared
            }
        }
        return best
    }
}
