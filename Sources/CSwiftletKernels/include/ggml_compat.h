#ifndef SWIFTLET_GGML_COMPAT_H
#define SWIFTLET_GGML_COMPAT_H
// Operations that reproduce llama.cpp's CPU results bit for bit (ggml built with GCC, -O3
// -march=native on an AVX-512 x86-64). A quantized model is chaotic at the ulp level: one flipped
// int8 rounding of an activation moves every later tensor by ~1e-3, so matching llama.cpp's
// logits needs the same float operations in the same order, not just "close" arithmetic.
// Every function here has a portable scalar path that follows the same order (the oracle); the
// AVX-512 paths must equal it bit for bit (tests check both).
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// out = x · (1/√(mean(x²) + eps)) · w, with ggml's order: Σ (float)(x·x) summed in double,
/// mean rounded to float, scale = 1/sqrtf(mean + eps), out = (x·scale)·w.
/// `rows` rows of `n`, rows `n` apart; in place allowed.
void swiftlet_gc_rms_norm(const float *x, const float *w, long n, long rows, float eps, float *out);

/// ggml's vectorised expf (a degree-5 polynomial after a 2^n range reduction, ~1.5 ulp),
/// as compiled for AVX-512.
float swiftlet_gc_expf(float x);

/// out = silu(gate) · up with silu(x) = x / (1 + expf(−x)) using swiftlet_gc_expf on whole
/// 16-lane chunks and libm expf on the tail, as ggml_vec_swiglu_f32. out may alias.
void swiftlet_gc_swiglu(const float *gate, const float *up, float *out, long n);

/// out = gelu(gate) · up with ggml's GELU_FP16 table: gelu(x) = f16(gelu_tanh(f16(x))) for
/// −10 < x < 10, 0 below, x above (ggml_vec_geglu_f32). out may alias.
void swiftlet_gc_geglu(const float *gate, const float *up, float *out, long n);

/// Multiplies each of the `count / n` consecutive rows of `n` values (n a power of two) in place
/// by the orthonormal Walsh–Hadamard matrix, as ggml's fast transform for a MUL_MAT with the
/// Hadamard hint: x·(1/sqrtf(n)) first, then butterflies (u + v, u − v) of span 1, 2, 4, …
void swiftlet_gc_hadamard(float *x, long count, long n);

/// Rotates `pairs` pairs of one head in place, as ggml's RoPE (rotate_pairs, compiled by GCC
/// with the x0 products fused): x0' = fma(x0, c, −x1·s), x1' = fma(x0, s, x1·c). Pair i is
/// (x[2i], x[2i+1]) when `neox` is 0 and (x[i], x[i + pairs]) when it is 1; cos/sin per pair.
void swiftlet_gc_rope(float *x, long pairs, const float *cos_theta, const float *sin_theta, int neox);

/// Rounds n floats to the nearest f16 and back (round to nearest even), in place.
void swiftlet_gc_round_f16(float *x, long n);

/// Causal attention of one query head over an f16 cache, as llama.cpp computes it without flash
/// attention: scores = (K·q) · scale with q rounded to f16, ggml's soft_max (ggml expf, sum in
/// double over 16-wide chunks), weights rounded to f16, out = Vᵀ·p. `batched` selects the
/// float order: llama.cpp runs batches of ≥ 2 tokens through llamafile's tinyBLAS (one 16-lane
/// accumulator per product, lanes indexed by absolute position) and single tokens through
/// ggml_vec_dot_f16 (four 16-lane accumulators over 64-element steps).
///
/// - q: `rows` query rows, `q_stride` floats apart (rounded to f16 in place).
/// - keys: this head's keys, `head_dim` halves per position, position 0 first.
/// - values_t: this head's values transposed: row d holds position p at `d * vt_stride + p`.
/// - Query row r sits at position `first_pos + r` and sees positions
///   `max(0, pos − window + 1) … pos` (window 0 = unlimited).
/// - keys and values_t must be readable (finite, e.g. zero) up to the next multiple of 64
///   positions past `first_pos + rows`: whole chunks are read and weighted by 0.
/// - scratch: `rows * (first_pos + rows + 64)` floats.
/// - out: row r at `out + r * out_stride`, `head_dim` floats.
void swiftlet_gc_attention_f16(float *q, long q_stride, int rows, int first_pos, int head_dim,
                               const uint16_t *keys, const uint16_t *values_t, long vt_stride,
                               int window, float scale, int batched, float *scratch,
                               float *out, long out_stride);

/// swiftlet_gc_attention_f16 over keys of a block type (`k_type`, a GGML type id: Q8_0, Q4_0,
/// Q5_0, Q4_1, Q5_1 or IQ4_NL; rows `k_row_bytes` apart), as llama.cpp without flash attention
/// over a quantized K cache and an f16 V cache: q is converted in place to the keys' dot type
/// (Q8_0, or Q8_1 for Q4_1 / Q5_1) and each score is ggml's vec_dot, or with `batched` tinyBLAS's
/// order (the same but for IQ4_NL). Softmax and values as in swiftlet_gc_attention_f16.
void swiftlet_gc_attention_quant_k(float *q, long q_stride, int rows, int first_pos, int head_dim,
                                   int k_type, const void *keys, long k_row_bytes,
                                   const uint16_t *values_t, long vt_stride,
                                   int window, float scale, int batched, float *scratch,
                                   float *out, long out_stride);

/// y[t·y_stride + r] = Σ_i w[r][i]·x[t][i] for rows row_begin..<row_end of a `rows` × `k` weight
/// in F32 (f16 = 0) or F16 (f16 = 1), `ntok` rows of x `k` apart, in the float order of llama.cpp's
/// CPU mul_mat: llamafile's tinyBLAS (one 16-lane accumulator) for ≥ 2 tokens when k % 16 == 0
/// and rows % 4 == 0, else ggml_vec_dot_f32 / ggml_vec_dot_f16. For F16 weights x must hold
/// values already rounded to f16 (ggml converts the activations first).
void swiftlet_gc_mul_mat_float(int f16, const void *w, long k, long rows, long row_begin, long row_end,
                               const float *x, long ntok, float *y, long y_stride);

/// out[i] = out[i] + delta[i]·scale, the product rounded first (ggml_scale then ggml_add).
void swiftlet_gc_add_scaled(float *out, const float *delta, float scale, long n);

/// Forces the portable path (1) or the best available (0), process-wide, for tests.
void swiftlet_gc_select(int portable);

#ifdef __cplusplus
}
#endif
#endif
