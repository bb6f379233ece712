#ifndef SWIFTLET_VECTOR_F32_H
#define SWIFTLET_VECTOR_F32_H
// f32 vector kernels with a transcendental inside (softmax, SiLU, GELU) and the dot product,
// run-time dispatched: AVX-512F, AVX2+FMA, or generic C with libm. Swift's SIMD types cannot
// reach FMA or a vector exp without per-lane loops, hence C. The Swift oracle is ScalarReference.
// All functions accept n == 0; in-place variants may alias.

#ifdef __cplusplus
extern "C" {
#endif

/// Σ a[i]·b[i].
float swiftlet_dot_f32(const float *a, const float *b, long n);

/// x ← exp(x − max x) / Σ. Entries equal to −∞ become 0; a row of only −∞ becomes all 0.
void swiftlet_softmax_f32(float *x, long n);

/// x ← x·sigmoid(x).
void swiftlet_silu_f32(float *x, long n);

/// out ← silu(gate)·up (out may alias gate or up).
void swiftlet_swiglu_f32(const float *gate, const float *up, float *out, long n);

/// x ← 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
void swiftlet_gelu_tanh_f32(float *x, long n);

/// x ← 0.5x(1 + erf(x/√2)).
void swiftlet_gelu_erf_f32(float *x, long n);

/// Forces a variant for tests/benchmarks: 0 = best available, 1 = generic C, 2 = AVX2+FMA,
/// 3 = AVX-512F (a variant the CPU lacks falls back to the best available). Process-wide.
void swiftlet_vector_f32_select(int variant);

/// Name of the variant in use: "avx512f", "avx2+fma" or "generic".
const char *swiftlet_vector_f32_kernel_name(void);

#ifdef __cplusplus
}
#endif
#endif
