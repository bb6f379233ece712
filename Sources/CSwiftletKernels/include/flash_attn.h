#ifndef SWIFTLET_FLASH_ATTN_H
#define SWIFTLET_FLASH_ATTN_H
// Flash attention in the float order of llama.cpp's CPU kernel (ggml_compute_forward_flash_attn_ext,
// F32 precision), over KV rows stored as ggml stores them: f16 or a quantized block type.
//
// llama.cpp takes one of three orders, and so do these functions:
// - tiled (swiftlet_fa_tiled): batches of >= 64 query rows over f16 K and V. Q stays f32, K and V
//   are widened to f32 in 64-position tiles; each score is one fma chain over the head dimension,
//   each tile gets one online-softmax step (ggml's vectorised expf, sums in double), and V is
//   accumulated as one fma chain over positions.
// - one chunk (swiftlet_fa_attend): fewer rows, or quantized K/V. Q is converted to K's dot type
//   (f16; Q8_1, which carries the block sum, for Q4_1 / Q5_1; Q8_0 for the other block types),
//   each score is ggml's vec_dot, the softmax is updated position by position with libm's expf,
//   and V is accumulated in f16 (f16 V) or f32 (quantized V, widened first). With AVX-512, one
//   query over Q8_0 / Q4_0 / Q5_0 keys (or f16 keys and values of head size 64) takes 64
//   positions at a time: all scores, then the softmax weights (glibc's expf, vectorised), then
//   the V accumulation, each head's operations in the same order.
// - split KV (swiftlet_fa_attend with partials, then swiftlet_fa_reduce): one query row over
//   >= 512 cached positions of f16 K and V: the positions are cut into one chunk per thread, each
//   chunk attended as above, then the chunks are merged.
// Every function has a portable scalar path that follows the same order (the oracle); the
// AVX-512 paths equal it bit for bit. `swiftlet_gc_select(1)` forces the scalar path.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// KV element types, by their GGML type ids.
enum {
    SWIFTLET_FA_F16 = 1,
    SWIFTLET_FA_Q4_0 = 2,
    SWIFTLET_FA_Q4_1 = 3,
    SWIFTLET_FA_Q5_0 = 6,
    SWIFTLET_FA_Q5_1 = 7,
    SWIFTLET_FA_Q8_0 = 8,
    SWIFTLET_FA_IQ4_NL = 20,
};

/// Bytes of one row of `n` values of `type`, or -1 for a type these kernels do not handle or an
/// `n` that is not a whole number of blocks.
long swiftlet_fa_row_bytes(int type, long n);

/// Scratch floats swiftlet_fa_attend needs for `rows` query rows (tokens × heads) of `head_dim`.
long swiftlet_fa_attend_scratch(int rows, int head_dim);

/// Scratch floats swiftlet_fa_tiled needs for `rows` query rows (tokens × heads) of `head_dim`.
long swiftlet_fa_tiled_scratch(int rows, int head_dim);

/// One-chunk flash attention of `tokens` × `heads` query rows over positions
/// `kv_begin ..< kv_end` of one KV head.
///
/// - Query (t, g) is `head_dim` floats at `q + t * q_stride + g * head_dim`; it sits at position
///   `first_pos + t` and sees positions `max(0, pos − window + 1) … pos` (window 0: unlimited).
///   The heads of a group share every K and V row read.
/// - keys / values: position p's row at `keys + p * k_row_bytes` (`k_type`) and
///   `values + p * v_row_bytes` (`v_type`).
/// - scale multiplies the scores.
/// - With `partials` NULL, writes the normalised output of (t, g) to
///   `out + t * out_stride + g * head_dim`; otherwise writes `M, S, VKQ[head_dim]` (running max,
///   sum and unnormalised accumulator, f32) to `partials + (t * heads + g) * (head_dim + 2)`.
/// - scratch: swiftlet_fa_attend_scratch(tokens * heads, head_dim) floats.
void swiftlet_fa_attend(const float *q, long q_stride, int tokens, int heads, int first_pos, int head_dim,
                        int k_type, const void *keys, long k_row_bytes,
                        int v_type, const void *values, long v_row_bytes,
                        int window, float scale, long kv_begin, long kv_end,
                        float *scratch, float *out, long out_stride, float *partials);

/// Merges `chunks` partials (each `M, S, VKQ[head_dim]`, `chunk_stride` floats apart, in chunk
/// order) of one query row into its normalised output, as llama.cpp's split-KV reduction.
void swiftlet_fa_reduce(const float *partials, long chunk_stride, int chunks, int head_dim, float *out);

/// Tiled flash attention of `tokens` × `heads` query rows (laid out as in swiftlet_fa_attend)
/// over f16 keys and values stored as rows of `head_dim` halves, position 0 first. Tiles are the
/// 64-position blocks from position 0. keys and values must be readable (finite) up to the next
/// multiple of 64 positions past `first_pos + tokens`. scratch: swiftlet_fa_tiled_scratch floats.
void swiftlet_fa_tiled(const float *q, long q_stride, int tokens, int heads, int first_pos, int head_dim,
                       const uint16_t *keys, const uint16_t *values, int window, float scale,
                       float *scratch, float *out, long out_stride);

/// For tests: how many floats x in [lo, hi] (lo ≤ hi ≤ 0, every one) get a different expf from
/// the one-query quantized path's vectorised copy of glibc's expf than from libm; -1 where that
/// path does not run (no AVX-512 BW, or a libm it does not match, so libm is called instead).
long swiftlet_fa_expf_mismatches(float lo, float hi);

#ifdef __cplusplus
}
#endif
#endif
