import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Counts Swift heap allocations (class instances, array and string buffers, closure contexts,
/// boxes) by hooking the runtime's `_swift_allocObject` entry point, which the Swift runtime
/// exports as a replaceable function pointer for exactly this kind of instrumentation.
/// Allocations on every thread are counted, so it also covers a pool's worker threads.
public enum AllocationCounter {
    typealias AllocObject = @convention(c) (UnsafeRawPointer?, Int, Int) -> UnsafeMutableRawPointer?
    /// The runtime's own allocator; set before the hook is installed and never cleared, so a hook
    /// call that races with uninstalling still forwards correctly. Behind a pointer rather than in a
    /// `static var` because the hook must not run dynamic exclusivity checks: it can be called on a
    /// thread that is tearing down its thread-local storage (that crashed the test process).
    // nonisolated(unsafe): written only by `allocations`, which tests call from one thread at a time.
    nonisolated(unsafe) static let original: UnsafeMutablePointer<AllocObject?> = {
        let storage = UnsafeMutablePointer<AllocObject?>.allocate(capacity: 1)
        storage.initialize(to: nil)
        return storage
    }()
    static let count = Atomic<Int>(0)
    nonisolated(unsafe) static let slot: UnsafeMutablePointer<AllocObject?>? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "_swift_allocObject") else { return nil }
        return symbol.assumingMemoryBound(to: AllocObject?.self)
    }()

    /// The runtime's switch that routes every allocation, retain and release through its
    /// replaceable entry points. The runtime turns it on (for good) the first time it sees a
    /// replaced `_swift_allocObject`, and in that mode retains go through adapters that crashed
    /// later, unrelated code (XCTest, Foundation); so it is switched back off with the hook.
    nonisolated(unsafe) static let swizzlingEnabled: UnsafeMutablePointer<Bool>? = {
        guard let handle = dlopen(nil, RTLD_NOW),
              let symbol = dlsym(handle, "_swift_enableSwizzlingOfAllocationAndRefCountingFunctions_forInstrumentsOnly")
        else { return nil }
        return symbol.assumingMemoryBound(to: Bool.self)
    }()

    /// Whether the runtime exposes the hook (and the switch that must be reset after it).
    public static var available: Bool { slot?.pointee != nil && swizzlingEnabled != nil }

    /// Swift heap allocations made (on any thread) while running `body`, or −1 when the hook is
    /// unavailable; the hook is installed only for the duration of the call.
    public static func allocations(_ body: () throws -> Void) rethrows -> Int {
        guard let slot, let saved = slot.pointee, let swizzlingEnabled else { return -1 }
        let wasSwizzling = swizzlingEnabled.pointee
        original.pointee = saved
        _ = count.load(ordering: .sequentiallyConsistent)  // initialise the counter before hooking
        count.store(0, ordering: .sequentiallyConsistent)
        slot.pointee = { metadata, size, alignMask in
            AllocationCounter.count.add(1, ordering: .relaxed)
            return AllocationCounter.original.pointee.unsafelyUnwrapped(metadata, size, alignMask)
        }
        defer {
            slot.pointee = saved
            swizzlingEnabled.pointee = wasSwizzling
        }
        try body()
        return count.load(ordering: .sequentiallyConsistent)
    }

    /// The fewest allocations counted over `rounds` runs of `body`. The hook counts every thread's
    /// allocations, including rare ones by unrelated threads (XCTest, libdispatch); taking the
    /// minimum keeps that noise out while an allocation made on every run still shows.
    public static func fewestAllocations(rounds: Int = 3, _ body: () throws -> Void) rethrows -> Int {
        var fewest = Int.max
        for _ in 0..<max(1, rounds) { fewest = min(fewest, try allocations(body)) }
        return fewest
    }
}
