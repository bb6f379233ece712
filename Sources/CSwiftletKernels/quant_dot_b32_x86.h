// x86 kernels for the 32-weight block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) against
// Q8_0 / Q8_1 activations. Included by quant_dot_x86.h in each variant. Private to CSwiftletKernels.
//
// Every (row, token) output is computed in llama.cpp's order (ggml_vec_dot_*_q8_* and tinyBLAS
// agree), so results are bit-identical to it and to the generic C oracle: one 8-lane f32
// accumulator, per block acc = fma(d_w·d_a, float(lane sums of 4 products), acc) in block order,
// then ggml's hsum; Q4_1 / Q5_1 add Σ fma(m_w, s_a) after the hsum. Integer lane sums are exact
// however they are formed, and d_w·d_a is exact in f32 (two fp16 mantissas), so only the float
// accumulation order matters, and it is kept per (row, token) while many of them run at once.

/// Bytes of one weight block of each kind.
#define B32_WSIZE(kind) ((kind) == K_Q4_0 || (kind) == K_IQ4_NL ? 18 : (kind) == K_Q4_1 ? 20 : (kind) == K_Q5_0 ? 22 : (kind) == K_Q5_1 ? 24 : 34)
#define B32_WITH_MIN(kind) ((kind) == K_Q4_1 || (kind) == K_Q5_1)

#if QK_VNNI
// MARK: AVX-512 VNNI tile kernels
//
// Single tokens: tiles of 2P weight rows, each 512-bit accumulator holding two rows (lanes 0-7 and
// 8-15), so a weight block of two rows is unpacked once into one register and the activation
// block is broadcast to both halves. Batches: tiles of 3-4 rows × 2-8 tokens with 256-bit
// accumulators whose block scales come from memory (tile_b32_y), measured ~5-15% faster.
// vpdpbusd multiplies unsigned by signed bytes. Q4_1 / Q5_1 levels are unsigned and multiply the
// activations directly. The signed kinds instead take the activations + 128 (unsigned, prepared
// once per token group in the "pack" with the f32 activation scales) and start each lane sum from
// −128 · (sum of the 4 weights), formed once per weight block: Σ (a + 128) w − 128 Σ w = Σ a w.

/// Row pairs per tile (2 or 3: 16 or 24 of the 32 vector registers hold accumulators).
#ifndef B32_P
#define B32_P 2
#endif

/// 1 for the kinds with signed levels (all but Q4_1 / Q5_1).
#define B32_SIGNED(kind) (!B32_WITH_MIN(kind))

/// IQ4_NL's 16 levels as a 128-bit table.
#define B32_IQ4NL_TABLE _mm_loadu_si128((const __m128i *)kvalues_iq4)

/// Activation data of a group of tokens, per (block b, token t) at index b * stride + t.
typedef struct {
    const uint8_t *ax;    // 32 bytes each: the activations + 128 (signed weight kinds)
    const float *da;      // activation scale d
    const float *sa;      // Q8_1 s = d · Σq (Q4_1 / Q5_1)
    int stride;
} QK_FN(b32_pack);

/// The levels of one block of two rows (row 0 in bytes 0-31, row 1 in 32-63): signed bytes,
/// unsigned for Q4_1 / Q5_1.
QK_INLINE __m512i QK_FN(levels2_b32)(const int kind, const uint8_t *w0, const uint8_t *w1) {
    if (kind == K_Q8_0)
        return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w0 + 2))),
                                  _mm256_loadu_si256((const __m256i *)(w1 + 2)), 1);
    const int qs = kind == K_Q4_1 ? 4 : kind == K_Q5_0 ? 6 : kind == K_Q5_1 ? 8 : 2;
    // 128-bit lanes: [qs0, qs0, qs1, qs1], shifted by 0 / 4 to give low / high nibbles.
    const __m256i l0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(w0 + qs)));
    const __m256i l1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(w1 + qs)));
    __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(l0), l1, 1);
    const __m512i shifts = _mm512_set_epi64(4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL, 0, 0,
                                            4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL, 0, 0);
    x = _mm512_and_si512(_mm512_srlv_epi16(x, shifts), _mm512_set1_epi8(0x0F));
    switch (kind) {
    case K_Q4_0: return _mm512_sub_epi8(x, _mm512_set1_epi8(8));
    case K_Q5_0: {
        // Level − 16: the nibble where the high bit is set, nibble − 16 where it is not.
        uint32_t h0, h1; memcpy(&h0, w0 + 2, 4); memcpy(&h1, w1 + 2, 4);
        return _mm512_mask_sub_epi8(x, ~((__mmask64)h0 | ((__mmask64)h1 << 32)), x, _mm512_set1_epi8(16));
    }
    case K_Q5_1: {
        uint32_t h0, h1; memcpy(&h0, w0 + 4, 4); memcpy(&h1, w1 + 4, 4);
        return _mm512_mask_add_epi8(x, (__mmask64)h0 | ((__mmask64)h1 << 32), x, _mm512_set1_epi8(16));
    }
    case K_IQ4_NL: return _mm512_shuffle_epi8(_mm512_broadcast_i32x4(B32_IQ4NL_TABLE), x);
    default: return x;   // Q4_1
    }
}

/// ggml's hsum_float_8 of an 8-lane accumulator.
QK_INLINE float QK_FN(hsum256)(__m256 v) { return QK_FN(hsum)(v); }

/// One tile: rows w[0..2P) (row 2p+1 may repeat row 2p) × T tokens; out[r * T + t].
/// `prefetch` (or NULL): weights of a later tile, fetched a block's share per block — a tile reads
/// 2P short row streams at once, which the hardware prefetcher does not pick up in time.
QK_INLINE void QK_FN(tile_b32)(const int kind, const int P, const int T, const int nb,
                               const uint8_t *const *w, const uint8_t *a, size_t a_stride,
                               const QK_FN(b32_pack) *pk, const uint8_t *prefetch, float *out) {
    const int wsize = B32_WSIZE(kind), with_min = B32_WITH_MIN(kind), sgn = B32_SIGNED(kind);
    const int asize = with_min ? 36 : 34, aq = with_min ? 4 : 2;
    const int R = 2 * P, NS = (R * T + 15) / 16;   // summs vectors: lane l ↔ (t = l / R, r = l % R)
    __m512 acc[B32_P][8];
    __m512 summs[4];
    for (int p = 0; p < P; ++p)
        for (int t = 0; t < T; ++t) acc[p][t] = _mm512_setzero_ps();
    for (int s = 0; s < NS; ++s) summs[s] = _mm512_setzero_ps();
    // Permutations of the converted row scales: pair p → [d_2p ×8, d_2p+1 ×8]; min r → lane r % R.
    __m512i dperm[B32_P];
    for (int p = 0; p < P; ++p)
        dperm[p] = _mm512_set_epi32(4 * p + 2, 4 * p + 2, 4 * p + 2, 4 * p + 2, 4 * p + 2, 4 * p + 2, 4 * p + 2, 4 * p + 2,
                                    4 * p, 4 * p, 4 * p, 4 * p, 4 * p, 4 * p, 4 * p, 4 * p);
    // Summs lane 16s + l ↔ (t, r) = ((16s + l) / R, (16s + l) % R): m from the headers, s from the pack.
    __m512i mperm[4], sperm[4];
    if (with_min)
        for (int s = 0; s < NS; ++s) {
            int mi[16], si[16];
            for (int l = 0; l < 16; ++l) {
                const int g = 16 * s + l;
                mi[l] = 2 * (g % R) + 1;
                si[l] = g / R < T ? g / R : 0;
            }
            mperm[s] = _mm512_loadu_si512(mi);
            sperm[s] = _mm512_loadu_si512(si);
        }
    for (int b = 0; b < nb; ++b) {
        const size_t wo = (size_t)b * wsize;
        if (prefetch)
            for (int o = 0; o < R * wsize; o += 64) _mm_prefetch((const char *)prefetch + (size_t)b * R * wsize + o, _MM_HINT_T0);
        // Headers of the 2P rows: (d, m) pairs as fp16 → f32 lanes [d0 m0 d1 m1 ...].
        int32_t hv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int r = 0; r < R; ++r) memcpy(&hv[r], w[r] + wo, 4);
        const __m512 hf = R <= 4 ? _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_setr_epi32(hv[0], hv[1], hv[2], hv[3])))
                                 : _mm512_cvtph_ps(_mm256_setr_epi32(hv[0], hv[1], hv[2], hv[3], hv[4], hv[5], hv[6], hv[7]));
        __m512i q[B32_P], init[B32_P];
        __m512 dw[B32_P];
        for (int p = 0; p < P; ++p) {
            q[p] = QK_FN(levels2_b32)(kind, w[2 * p] + wo, w[2 * p + 1] + wo);
            init[p] = sgn ? _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), q[p]))
                          : _mm512_setzero_si512();
            dw[p] = _mm512_permutexvar_ps(dperm[p], hf);
        }
        const uint8_t *ax = pk->ax + 32 * (size_t)b * pk->stride;
        const float *da = pk->da + (size_t)b * pk->stride;
        for (int t = 0; t < T; ++t) {
            const uint8_t *ap = sgn ? ax + 32 * t : a + (size_t)t * a_stride + (size_t)b * asize + aq;
            const __m512i av = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)ap));
            const __m512 dat = _mm512_set1_ps(da[t]);
            for (int p = 0; p < P; ++p) {
                const __m512i lanes = sgn ? _mm512_dpbusd_epi32(init[p], av, q[p]) : _mm512_dpbusd_epi32(init[p], q[p], av);
                const __m512 d = _mm512_mul_ps(dw[p], dat);
                acc[p][t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(lanes), acc[p][t]);
            }
        }
        if (with_min) {
            const __m512 sv = _mm512_castps256_ps512(_mm256_loadu_ps(pk->sa + (size_t)b * pk->stride));
            for (int s = 0; s < NS; ++s)
                summs[s] = _mm512_fmadd_ps(_mm512_permutexvar_ps(mperm[s], hf), _mm512_permutexvar_ps(sperm[s], sv), summs[s]);
        }
    }
    float sm[64];
    if (with_min)
        for (int s = 0; s < NS; ++s) _mm512_storeu_ps(sm + 16 * s, summs[s]);
    for (int p = 0; p < P; ++p)
        for (int t = 0; t < T; ++t) {
            float s0 = QK_FN(hsum256)(_mm512_castps512_ps256(acc[p][t]));
            float s1 = QK_FN(hsum256)(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[p][t]), 1)));
            if (with_min) { s0 += sm[t * R + 2 * p]; s1 += sm[t * R + 2 * p + 1]; }
            out[(2 * p) * T + t] = s0;
            out[(2 * p + 1) * T + t] = s1;
        }
}

/// The levels of one block of one row (256-bit), signed as levels2_b32.
QK_INLINE __m256i QK_FN(levels1_b32)(const int kind, const uint8_t *wb) {
    if (kind == K_Q8_0) return _mm256_loadu_si256((const __m256i *)(wb + 2));
    const int qs = kind == K_Q4_1 ? 4 : kind == K_Q5_0 ? 6 : kind == K_Q5_1 ? 8 : 2;
    const __m256i l = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(wb + qs)));
    const __m256i x = _mm256_and_si256(_mm256_srlv_epi16(l, _mm256_setr_epi64x(0, 0, 4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL)),
                                       _mm256_set1_epi8(0x0F));
    switch (kind) {
    case K_Q4_0: return _mm256_sub_epi8(x, _mm256_set1_epi8(8));
    case K_Q5_0: {
        uint32_t h; memcpy(&h, wb + 2, 4);
        return _mm256_mask_sub_epi8(x, ~(__mmask32)h, x, _mm256_set1_epi8(16));
    }
    case K_Q5_1: {
        uint32_t h; memcpy(&h, wb + 4, 4);
        return _mm256_mask_add_epi8(x, (__mmask32)h, x, _mm256_set1_epi8(16));
    }
    case K_IQ4_NL: return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(B32_IQ4NL_TABLE), x);
    default: return x;   // Q4_1
    }
}

/// The block headers (d, m) of R ≤ 4 rows at byte offset wo, as f32 lanes [d0 m0 d1 m1 ...].
QK_INLINE __m512 QK_FN(headers_b32)(const int R, const uint8_t *const *w, size_t wo) {
    int32_t hv[4] = {0, 0, 0, 0};
    for (int r = 0; r < R; ++r) memcpy(&hv[r], w[r] + wo, 4);
    return _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_setr_epi32(hv[0], hv[1], hv[2], hv[3])));
}

/// The tile's block scales d_w[r] · d_a[t] at out[r * T + t], for the block at byte offset wo
/// (`da`: that block's activation scales); returns the converted headers.
QK_INLINE __m512 QK_FN(scales_b32)(const int R, const int NS, const uint8_t *const *w, size_t wo, const float *da,
                                   const __m512i *wperm, const __m512i *aperm, float *out) {
    const __m512 hf = QK_FN(headers_b32)(R, w, wo);
    const __m512 dav = _mm512_castps256_ps512(_mm256_loadu_ps(da));
    for (int s = 0; s < NS; ++s)
        _mm512_store_ps(out + 16 * s, _mm512_mul_ps(_mm512_permutexvar_ps(wperm[s], hf), _mm512_permutexvar_ps(aperm[s], dav)));
    return hf;
}

/// Batched tile of R ≤ 4 rows × T tokens (R · T ≤ 24) with one 256-bit accumulator per (row,
/// token). The tile's block scales d_w·d_a are formed by two 512-bit products per block and
/// stored, so each FMA takes its scale as a broadcast memory operand: one operation fewer per
/// accumulator than the paired 512-bit tile, which is kept for single tokens (memory-bound).
QK_INLINE void QK_FN(tile_b32_y)(const int kind, const int R, const int T, const int nb,
                                 const uint8_t *const *w, const uint8_t *a, size_t a_stride,
                                 const QK_FN(b32_pack) *pk, const uint8_t *prefetch, float *out) {
    const int wsize = B32_WSIZE(kind), with_min = B32_WITH_MIN(kind), sgn = B32_SIGNED(kind);
    const int asize = with_min ? 36 : 34, aq = with_min ? 4 : 2;
    const int NS = (R * T + 15) / 16;   // lane 16s + l ↔ (r, t) = ((16s + l) / T, (16s + l) % T)
    __m256 acc[4][8];
    __m512 summs[2];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    __m512i wperm[2], mperm[2], aperm[2];
    for (int s = 0; s < NS; ++s) {
        int wi[16], mi[16], ai[16];
        for (int l = 0; l < 16; ++l) {
            const int g = 16 * s + l, r = g / T < R ? g / T : 0;
            wi[l] = 2 * r; mi[l] = 2 * r + 1; ai[l] = g % T;
        }
        wperm[s] = _mm512_loadu_si512(wi); mperm[s] = _mm512_loadu_si512(mi); aperm[s] = _mm512_loadu_si512(ai);
        summs[s] = _mm512_setzero_ps();
    }
    // Block scales of the tile, one block ahead: the header gather → convert → permute → multiply
    // → store chain is long, so it runs while the previous block's products are accumulated.
    _Alignas(64) float dprod[2][32];
    __m512 hf = QK_FN(scales_b32)(R, NS, w, 0, pk->da, wperm, aperm, dprod[0]), hf_next = hf;
    for (int b = 0; b < nb; ++b) {
        const size_t wo = (size_t)b * wsize;
        if (prefetch)
            for (int o = 0; o < R * wsize; o += 64) _mm_prefetch((const char *)prefetch + (size_t)b * R * wsize + o, _MM_HINT_T0);
        if (b + 1 < nb) hf_next = QK_FN(scales_b32)(R, NS, w, wo + wsize, pk->da + (size_t)(b + 1) * pk->stride, wperm, aperm, dprod[(b + 1) & 1]);
        // Keep the products in memory: the FMAs below take them as broadcast memory operands
        // (the compiler would otherwise rebuild each broadcast with shuffles).
        __asm__ __volatile__("" : : "r"(dprod) : "memory");
        const float *dp = dprod[b & 1];
        __m256i q[4], init[4];
        for (int r = 0; r < R; ++r) {
            q[r] = QK_FN(levels1_b32)(kind, w[r] + wo);
            init[r] = sgn ? _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)0x80), q[r]))
                          : _mm256_setzero_si256();
        }
        const uint8_t *ax = pk->ax + 32 * (size_t)b * pk->stride;
        for (int t = 0; t < T; ++t) {
            const uint8_t *ap = sgn ? ax + 32 * t : a + (size_t)t * a_stride + (size_t)b * asize + aq;
            const __m256i av = _mm256_loadu_si256((const __m256i *)ap);
            for (int r = 0; r < R; ++r) {
                const __m256i lanes = sgn ? _mm256_dpbusd_epi32(init[r], av, q[r]) : _mm256_dpbusd_epi32(init[r], q[r], av);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_set1_ps(dp[r * T + t]), acc[r][t]);
            }
        }
        if (with_min) {
            const __m512 sv = _mm512_castps256_ps512(_mm256_loadu_ps(pk->sa + (size_t)b * pk->stride));
            for (int s = 0; s < NS; ++s)
                summs[s] = _mm512_fmadd_ps(_mm512_permutexvar_ps(mperm[s], hf), _mm512_permutexvar_ps(aperm[s], sv), summs[s]);
        }
        hf = hf_next;
    }
    float sm[32];
    if (with_min)
        for (int s = 0; s < NS; ++s) _mm512_storeu_ps(sm + 16 * s, summs[s]);
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) {
            const float v = QK_FN(hsum256)(acc[r][t]);
            out[r * T + t] = with_min ? v + sm[r * T + t] : v;
        }
}

/// The pack of tokens [0, T) into buffers of stride T.
QK_INLINE void QK_FN(make_pack_b32)(const int kind, int nb, int T, const uint8_t *a, size_t a_stride,
                                    uint8_t *ax, float *da, float *sa) {
    const int with_min = B32_WITH_MIN(kind), sgn = B32_SIGNED(kind);
    const int asize = with_min ? 36 : 34, aq = with_min ? 4 : 2;
    for (int b = 0; b < nb; ++b)
        for (int t = 0; t < T; ++t) {
            const uint8_t *ab = a + (size_t)t * a_stride + (size_t)b * asize;
            uint16_t h; memcpy(&h, ab, 2);
            da[b * T + t] = _cvtsh_ss(h);
            if (with_min) { memcpy(&h, ab + 2, 2); sa[b * T + t] = _cvtsh_ss(h); }
            if (sgn)
                _mm256_storeu_si256((__m256i *)(ax + 32 * ((size_t)b * T + t)),
                                    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(ab + aq)), _mm256_set1_epi8((char)0x80)));
        }
}

/// Rows [0, nrows) against the T tokens of a pack: tiles of 4 rows, then pairs (the last row of
/// an odd count is computed twice and stored once).
QK_INLINE void QK_FN(rows_pack_b32)(const int kind, const int T, int nb, const uint8_t *w, size_t w_stride, int nrows,
                                    const uint8_t *a, size_t a_stride, const QK_FN(b32_pack) *pk,
                                    float *y, size_t y_stride) {
    float out[2 * B32_P * 8];
    const uint8_t *rows[2 * B32_P];
    const int R = 2 * B32_P;
    int r = 0;
    if (T > 1) {
        const int RY = T <= 4 ? 4 : 3;
        for (; r + RY <= nrows; r += RY) {
            for (int i = 0; i < RY; ++i) rows[i] = w + (size_t)(r + i) * w_stride;
            const uint8_t *ahead = r + 3 * RY <= nrows ? w + (size_t)(r + 2 * RY) * w_stride : NULL;
            QK_FN(tile_b32_y)(kind, RY, T, nb, rows, a, a_stride, pk, ahead, out);
            for (int i = 0; i < RY; ++i)
                for (int t = 0; t < T; ++t) y[(size_t)t * y_stride + r + i] = out[i * T + t];
        }
    }
    for (; r + R <= nrows; r += R) {
        for (int i = 0; i < R; ++i) rows[i] = w + (size_t)(r + i) * w_stride;
        const uint8_t *ahead = r + 3 * R <= nrows ? w + (size_t)(r + 2 * R) * w_stride : NULL;   // two tiles ahead
        QK_FN(tile_b32)(kind, B32_P, T, nb, rows, a, a_stride, pk, ahead, out);
        for (int i = 0; i < R; ++i)
            for (int t = 0; t < T; ++t) y[(size_t)t * y_stride + r + i] = out[i * T + t];
    }
    for (; r < nrows; r += 2) {
        const int two = r + 1 < nrows;
        rows[0] = w + (size_t)r * w_stride;
        rows[1] = two ? rows[0] + w_stride : rows[0];
        QK_FN(tile_b32)(kind, 1, T, nb, rows, a, a_stride, pk, NULL, out);
        for (int i = 0; i < 1 + two; ++i)
            for (int t = 0; t < T; ++t) y[(size_t)t * y_stride + r + i] = out[i * T + t];
    }
}

/// Stack budget of the pack (bytes): 32 activation bytes + 2 floats per (block, token). Groups of 8
/// tokens for rows up to 4896 weights, fewer tokens per group for longer rows; rows longer than
/// 39296 weights go to the generic kernel.
#define B32_PACK_BYTES 49152

#include "quant_dot_b32_lanes_x86.h"

/// Tokens from which the 16-row lane tiles take the whole rows (below, the unpack costs more than it saves).
#define B32_LANES_MIN_TOKENS 8

QK_INLINE int QK_FN(gemm_b32_kind)(const int kind, int n, const uint8_t *w, size_t w_stride, int nrows,
                                   const uint8_t *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    if (ntok >= B32_LANES_MIN_TOKENS) {
        const int done = QK_FN(gemm_b32_lanes)(kind, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
        w += (size_t)done * w_stride; y += done; nrows -= done;
        if (nrows == 0) return 0;
    }
    const int nb = n / QK, with_min = B32_WITH_MIN(kind);
    const size_t asize = with_min ? 36 : 34;
    (void)asize;
    int group = 8;
    while (group > 1 && (size_t)nb * group * 40 > B32_PACK_BYTES) group /= 2;
    if ((size_t)nb * group * 40 > B32_PACK_BYTES) return -1;
    // +8 floats of slack: the Q8_1 s loads read 8 floats at a time.
    _Alignas(64) uint8_t ax[B32_PACK_BYTES / 40 * 32];
    _Alignas(64) float da[B32_PACK_BYTES / 40 + 8], sa[B32_PACK_BYTES / 40 + 8];
    for (int t0 = 0; t0 < ntok; t0 += group) {
        const int g = ntok - t0 < group ? ntok - t0 : group;
        const uint8_t *at = a + (size_t)t0 * a_stride;
        float *yt = y + (size_t)t0 * y_stride;
        QK_FN(make_pack_b32)(kind, nb, g, at, a_stride, ax, da, sa);
        // Sub-groups of 8 / 4 / 2 / 1 tokens over the same pack (stride g).
        for (int t1 = 0; t1 < g;) {
            const int left = g - t1, T = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
            const QK_FN(b32_pack) pk = {ax + 32 * t1, da + t1, sa + t1, g};
            const uint8_t *as = at + (size_t)t1 * a_stride;
            float *ys = yt + (size_t)t1 * y_stride;
            switch (T) {
            case 8: QK_FN(rows_pack_b32)(kind, 8, nb, w, w_stride, nrows, as, a_stride, &pk, ys, y_stride); break;
            case 4: QK_FN(rows_pack_b32)(kind, 4, nb, w, w_stride, nrows, as, a_stride, &pk, ys, y_stride); break;
            case 2: QK_FN(rows_pack_b32)(kind, 2, nb, w, w_stride, nrows, as, a_stride, &pk, ys, y_stride); break;
            default: QK_FN(rows_pack_b32)(kind, 1, nb, w, w_stride, nrows, as, a_stride, &pk, ys, y_stride); break;
            }
            t1 += T;
        }
    }
    return 0;
}

#else
// MARK: AVX2 kernel: one weight row × up to 4 tokens, 256-bit

/// The weight block's 32 levels as bytes: signed for the symmetric kinds, unsigned (0..31) for
/// Q4_1 / Q5_1 whose min is applied separately.
QK_INLINE __m256i QK_FN(levels_b32)(const int kind, const uint8_t *wb, __m128i table) {
    switch (kind) {
    case K_Q4_0: return _mm256_sub_epi8(QK_FN(nibbles)(wb + 2), _mm256_set1_epi8(8));
    case K_Q5_0: return _mm256_sub_epi8(_mm256_or_si256(QK_FN(nibbles)(wb + 6), QK_FN(bit4_from_bits)(wb + 2)), _mm256_set1_epi8(16));
    case K_Q4_1: return QK_FN(nibbles)(wb + 4);
    case K_Q5_1: return _mm256_or_si256(QK_FN(nibbles)(wb + 8), QK_FN(bit4_from_bits)(wb + 4));
    case K_Q8_0: return _mm256_loadu_si256((const __m256i *)(wb + 2));
    default: return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(table), QK_FN(nibbles)(wb + 2));
    }
}

QK_INLINE void QK_FN(rows_b32)(const int kind, const int NT, int n, const uint8_t *w,
                               const uint8_t *a, size_t a_stride, float *out) {
    const int wsize = B32_WSIZE(kind), with_min = B32_WITH_MIN(kind);
    const int asize = with_min ? 36 : 34, aq = with_min ? 4 : 2;
    const __m128i table = _mm_loadu_si128((const __m128i *)kvalues_iq4);
    __m256 acc[4];
    float summs[4] = {0, 0, 0, 0};
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < n / QK; ++b) {
        const uint8_t *wb = w + (size_t)b * wsize;
        const __m256i q = QK_FN(levels_b32)(kind, wb, table);
        // Unsigned levels multiply directly; signed ones as |w| · sign(a, w).
        const __m256i u = with_min ? q : _mm256_sign_epi8(q, q);
        uint16_t h; memcpy(&h, wb, 2);
        const float dw = QK_FN(half)(h);
        float mw = 0;
        if (with_min) { memcpy(&h, wb + 2, 2); mw = QK_FN(half)(h); }
        for (int t = 0; t < NT; ++t) {
            const uint8_t *ab = a + (size_t)t * a_stride + (size_t)b * asize;
            const __m256i av = _mm256_loadu_si256((const __m256i *)(ab + aq));
            const __m256i lanes = QK_FN(dot_us)(u, with_min ? av : _mm256_sign_epi8(av, q));
            memcpy(&h, ab, 2);
            const float d = dw * QK_FN(half)(h);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc[t]);
            if (with_min) { memcpy(&h, ab + 2, 2); summs[t] = fmaf(mw, QK_FN(half)(h), summs[t]); }
        }
    }
    for (int t = 0; t < NT; ++t) {
        const float s = QK_FN(hsum)(acc[t]);
        out[t] = with_min ? s + summs[t] : s;
    }
}

QK_INLINE int QK_FN(gemm_b32_kind)(const int kind, int n, const uint8_t *w, size_t w_stride, int nrows,
                                   const uint8_t *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    float out[4];
    for (int t0 = 0; t0 < ntok; t0 += 4) {
        const int nt = ntok - t0 < 4 ? ntok - t0 : 4;
        const uint8_t *at = a + (size_t)t0 * a_stride;
        float *yt = y + (size_t)t0 * y_stride;
        for (int r = 0; r < nrows; ++r) {
            const uint8_t *wr = w + (size_t)r * w_stride;
            switch (nt) {
            case 1: QK_FN(rows_b32)(kind, 1, n, wr, at, a_stride, out); break;
            case 2: QK_FN(rows_b32)(kind, 2, n, wr, at, a_stride, out); break;
            case 3: QK_FN(rows_b32)(kind, 3, n, wr, at, a_stride, out); break;
            default: QK_FN(rows_b32)(kind, 4, n, wr, at, a_stride, out); break;
            }
            for (int t = 0; t < nt; ++t) yt[(size_t)t * y_stride + r] = out[t];
        }
    }
    return 0;
}
#endif

/// swiftlet_qk_gemm for a 32-weight block kind; -1 when it is left to the generic kernel.
static QK_TARGET int QK_FN(gemm_b32)(const int kind, int n, const void *w, size_t w_stride, int nrows,
                                     const void *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    switch (kind) {
#define B32_CASE(K) case K: return QK_FN(gemm_b32_kind)(K, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
    B32_CASE(K_Q4_0) B32_CASE(K_Q4_1) B32_CASE(K_Q5_0) B32_CASE(K_Q5_1) B32_CASE(K_Q8_0) B32_CASE(K_IQ4_NL)
#undef B32_CASE
    default: return -1;
    }
}

#undef B32_WSIZE
#undef B32_WITH_MIN
#undef B32_SIGNED
#undef B32_IQ4NL_TABLE
#undef B32_PACK_BYTES
#undef B32_LANES_MIN_TOKENS
