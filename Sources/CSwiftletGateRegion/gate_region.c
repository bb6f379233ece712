#include "gate_region.h"
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
// Without the header the whole run is instrumented (slower); counting still works by name.
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

/// The function callgrind counts (by name: --toggle-collect); never inlined.
__attribute__((noinline)) void swiftlet_gate_measured(void (*body)(void *), void *context) {
    body(context);
    // Keeps the call from becoming a tail call, which would leave the function before `body` runs.
    __asm__ volatile("" ::: "memory");
}

void swiftlet_gate_region(void (*body)(void *), void *context) {
    CALLGRIND_START_INSTRUMENTATION;
    swiftlet_gate_measured(body, context);
    CALLGRIND_STOP_INSTRUMENTATION;
}
