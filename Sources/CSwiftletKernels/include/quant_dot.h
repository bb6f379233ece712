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

/// Bytes of one block (one element for float types) of GGML type `type` as the C kernels lay it
/// out, or 0 for a type they do not know. Checked against GGMLType's traits table in the tests.
int swiftlet_qk_block_bytes(int type);

/// The activation type (8 = Q8_0, 9 = Q8_1, 15 = Q8_K, 0 = f32) the C kernels pair with weights of
/// `type`, or -1 for a type they do not know.
int swiftlet_qk_activation_type(int type);

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

/// CPU classes for swiftlet_qk_llama_repacks.
enum {
    SWIFTLET_REPACK_CPU_RUNNING = 0,   // the CPU this runs on
    SWIFTLET_REPACK_CPU_AVX2 = 1,      // an x86-64 with AVX2 + FMA + F16C, without AVX-512
    SWIFTLET_REPACK_CPU_AVX512 = 2,    // an x86-64 with AVX-512
    SWIFTLET_REPACK_CPU_OTHER = 3,     // any other CPU (no x86 repacking)
};

/// 1 when llama.cpp's CPU backend repacks a MUL_MAT weight of GGML type `type` with `nrows` rows
/// at load (ggml-cpu's "repack" extra buffer type) on a CPU of class `cpu`, and so sums its
/// products in its repacked kernels' order: on x86, Q4_0, IQ4_NL and Q4_K with AVX2, Q2_K with
/// AVX-512, when nrows is a multiple of 8. Otherwise 0. (ARM repacks too, in other orders that
/// the ARM kernels here do not follow.) For the running CPU, the environment variable
/// SWIFTLET_NO_REPACK=1 answers 0, as llama.cpp with --no-repack (-nr).
int swiftlet_qk_llama_repacks(int type, int64_t nrows, int cpu);

/// swiftlet_qk_quantize_row for weights that llama.cpp repacked (`repacked` 1, see
/// swiftlet_qk_llama_repacks) or not (0): a repacked Q2_K, like Q4_K, takes the 4-row quantizer's
/// sign rule for tokens in whole groups of 4.
int swiftlet_qk_quantize_row_layout(int variant, int weight_type, int repacked, const float *x, void *out,
                                    int n, int token, int ntok);

/// swiftlet_qk_gemm for weights that llama.cpp repacked (`repacked` 1) or not (0). Repacked
/// Q4_0 / IQ4_NL: one f32 chain per output, y = fma(float(S_b), d_w·d_a, y) per block, for any
/// token count. Repacked Q2_K: two chains (scales, mins) per super-block, and for tokens in whole
/// groups of 4 (its gemm) per 128-weight half. Q4_K takes its repacked order either way.
int swiftlet_qk_gemm_layout(int variant, int type, int repacked, int n,
                            const void *w, size_t w_stride, int nrows,
                            const void *a, size_t a_stride, int ntok,
                            float *y, size_t y_stride);

#endif
