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
    SWIFTLET_QK_NEON = 3,        // ARM64 Advanced SIMD (every ARMv8-A core)
    SWIFTLET_QK_DOTPROD = 4,     // ARM64 + ARMv8.2 dot product (sdot)
    SWIFTLET_QK_I8MM = 5,        // ARM64 + dot product + int8 matrix multiply (smmla)
};

/// The best variant this CPU supports (decided once: __builtin_cpu_supports on x86; on ARM64
/// getauxval(AT_HWCAP / AT_HWCAP2) on Linux and Android, sysctlbyname FEAT_DotProd / FEAT_I8MM on Apple).
int swiftlet_qk_best_variant(void);
/// 1 when `variant` can run on this CPU.
int swiftlet_qk_variant_supported(int variant);

/// Name of a variant: "generic", "avx2", "avx512vnni", "neon", "neon+dotprod", "neon+dotprod+i8mm".
const char *swiftlet_qk_variant_name(int variant);

/// 1 when swiftlet_qk_gemm handles weights of GGML type `type` (its numeric GGUF id).
int swiftlet_qk_has_type(int type);

/// Quantizes `n` floats (a multiple of the block size) to activation type `act_type`
/// (8 = Q8_0, 9 = Q8_1, 15 = Q8_K), rounding to nearest (ties to even). Returns 0, or -1 for an
/// unknown type.
int swiftlet_qk_quantize_act(int variant, int act_type, const float *x, void *out, int n);

/// Prepares activation row `token` (of `ntok` rows multiplied together) for weights of GGML type
/// `weight_type`, as llama.cpp's CPU backend does: F32 copy for float weights, else the paired
/// Q8 type; for Q4_K (repacked by llama.cpp on x86), rows in whole groups of 4 take the sign rule
/// of its 4-row quantizer quantize_mat_q8_K (differs from quantize_row_q8_K only in blocks holding
/// both +max and -max). Returns 0, or -1 for an unhandled type or variant.
int swiftlet_qk_quantize_row(int variant, int weight_type, const float *x, void *out, int n, int token, int ntok);

/// y[t * y_stride + r] = dot(row r of w, activation row t) for r < nrows, t < ntok, where rows
/// of `w` (type `type`, `n` weights each) are `w_stride` bytes apart and activation rows (the
/// paired type) are `a_stride` bytes apart. Weight blocks are read once per group of up to
/// 4 tokens. Q4_K and Q6_K reproduce llama.cpp's x86 float operation order bit for bit; for Q4_K
/// tokens in whole groups of 4 (t < ntok - ntok % 4) take its gemm order, the rest its gemv order;
/// for Q6_K, ntok >= 8 takes its tiled-matmul order, fewer its vec_dot order. So call with all
/// tokens of the product at once. Returns 0, or -1 when the type or variant is
/// not handled.
int swiftlet_qk_gemm(int variant, int type, int n,
                     const void *w, size_t w_stride, int nrows,
                     const void *a, size_t a_stride, int ntok,
                     float *y, size_t y_stride);

#endif
