#ifndef SWIFTLET_GATE_REGION_H
#define SWIFTLET_GATE_REGION_H
// The measured region of a regression-gate workload. scripts/bench-gate.sh runs callgrind with
// --instr-atstart=no --collect-atstart=no --toggle-collect=swiftlet_gate_measured
// --dump-after=swiftlet_gate_measured: set-up runs uninstrumented (fast), and only the
// instructions executed inside `body` are counted, one profile dump per region.

/// Calls `body(context)` as the measured region (instrumentation on around it under callgrind;
/// outside valgrind the client requests are a few no-op instructions).
void swiftlet_gate_region(void (*body)(void *), void *context);

#endif
