#ifndef SWIFTLET_QUANT_DOT_H
#define SWIFTLET_QUANT_DOT_H
// Quantized dot-product kernels (weights in ggml block formats × activations quantized to the
// paired Q8 type), with run-time CPU dispatch. Swift twins: SwiftletQuant/DotReference.swift.
#include <stddef.h>
#include <stdint.h>

/// Kernel variants, best last. GENERIC is plain C and always available.
enum {
    SWIFTLET_QK_GENERIC = 0,
    SWIFTLET_QK_AVX2 = 1,        // x86-64 AVX2 + FMA (+ F16C)
    SWIFTLET_QK_AVX512VNNI = 2,  // x86-64 AVX-512 F/BW/VL + VNNI
};

/// The best variant this CPU supports (decided once, with __builtin_cpu_supports).
int swiftlet_qk_best_variant(void);
/// 1 when `variant` can run on this CPU.
int swiftlet_qk_variant_supported(int variant);

/// 1 when swiftlet_qk_gemm handles weights of GGML type `type` (its numeric GGUF id).
int swiftlet_qk_has_type(int type);

/// Quantizes `n` floats (a multiple of the block size) to activation type `act_type`
/// (8 = Q8_0, 9 = Q8_1, 15 = Q8_K), rounding to nearest (ties to even). Returns 0, or -1 for an
/// unknown type.
int swiftlet_qk_quantize_act(int variant, int act_type, const float *x, void *out, int n);

/// y[t * y_stride + r] = dot(row r of w, activation row t) for r < nrows, t < ntok, where rows
/// of `w` (type `type`, `n` weights each) are `w_stride` bytes apart and activation rows (the
/// paired type) are `a_stride` bytes apart. Weight blocks are read once per group of up to
/// 4 tokens. Returns 0, or -1 when the type or variant is not handled.
int swiftlet_qk_gemm(int variant, int type, int n,
                     const void *w, size_t w_stride, int nrows,
                     const void *a, size_t a_stride, int ntok,
                     float *y, size_t y_stride);

#endif
