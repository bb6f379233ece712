#ifndef SWIFTLET_GEMM_F32_H
#define SWIFTLET_GEMM_F32_H
// Portable single-threaded f32 GEMM (the fallback when no BLAS library is loaded).
// Packed Goto/BLIS-style blocking with a register-tiled micro-kernel, picked once at run time:
// AVX-512F (8x32 tile), AVX2+FMA (6x16), NEON on ARM64 (8x12), or generic C (4x8,
// auto-vectorised for the baseline ISA).
// Multi-threading is done by the caller (Swift's ComputePool) by splitting the output columns/rows.
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Row-major C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C.
/// op(A) = A (lda >= k) or A^T stored k x m (lda >= m); same for B. beta == 0 ignores C's contents.
/// Packing buffers are per thread and reused (grown on demand, freed when the thread exits).
void swiftlet_sgemm_f32(int trans_a, int trans_b, long m, long n, long k, float alpha,
                        const float *a, long lda, const float *b, long ldb, float beta,
                        float *c, long ldc);

/// Same computation forced onto a given variant: 0 = best available, 1 = generic C,
/// 2 = AVX2+FMA, 3 = AVX-512F (on ARM64 the best is NEON). A variant the CPU lacks falls back to
/// the best available one.
void swiftlet_sgemm_f32_variant(int variant, int trans_a, int trans_b, long m, long n, long k,
                                float alpha, const float *a, long lda, const float *b, long ldb,
                                float beta, float *c, long ldc);

/// Name of the variant swiftlet_sgemm_f32 uses on this CPU: "avx512f", "avx2+fma", "neon" or "generic".
const char *swiftlet_sgemm_f32_kernel_name(void);

/// Micro-tile (rows, columns) of the chosen variant; callers split work in multiples of these.
int swiftlet_sgemm_f32_tile_rows(void);
int swiftlet_sgemm_f32_tile_cols(void);

#ifdef __cplusplus
}
#endif
#endif
