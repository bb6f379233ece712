// x86 SIMD kernels, included twice by quant_dot.c: once with QK_TARGET = AVX2+FMA (VNNI 0) and
// once with AVX-512 VNNI (VNNI 1). 256-bit vectors: one 32-weight block per register.
// Each kernel computes one weight row against NT ≤ 4 activation rows so a weight block is loaded
// and unpacked once per group of tokens; the 32-weight block formats have their own tiled
// kernels (quant_dot_b32_x86.h). Private to CSwiftletKernels.

#define QK_CAT2(a, b) a##_##b
#define QK_CAT(a, b) QK_CAT2(a, b)
#define QK_FN(name) QK_CAT(name, QK_VARIANT)
#define QK_INLINE static inline QK_TARGET __attribute__((always_inline))

/// 8 int32 sums of 4 products u·s (u unsigned bytes, s signed bytes).
QK_INLINE __m256i QK_FN(dot_us)(__m256i u, __m256i s) {
#if QK_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/// Signed × signed bytes (|w| fits in 7 bits): |w| · sign(a, w).
QK_INLINE __m256i QK_FN(dot_ss)(__m256i w, __m256i a) {
    return QK_FN(dot_us)(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
}

/// 32 nibbles of 16 bytes: low nibbles in bytes 0-15, high nibbles in bytes 16-31.
QK_INLINE __m256i QK_FN(nibbles)(const uint8_t *p) {
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/// 0x10 in byte j where bit j of the 32-bit mask is set.
QK_INLINE __m256i QK_FN(bit4_from_bits)(const uint8_t *p) {
    uint32_t bits; memcpy(&bits, p, 4);
#if QK_VNNI
    return _mm256_maskz_mov_epi8((__mmask32)bits, _mm256_set1_epi8(0x10));
#else
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_and_si256(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
#endif
}

QK_INLINE float QK_FN(hsum)(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

QK_INLINE float QK_FN(half)(uint16_t h) { return _cvtsh_ss(h); }

// MARK: 32-weight blocks against Q8_0 / Q8_1

#include "quant_dot_b32_x86.h"

// MARK: k-quants against Q8_K

#include "quant_dot_kquants_x86.h"

// Adds one 128-weight half (`h`) of Q2_K super-block `b` against NT tokens to isum[t], per lane:
// the integer part shared by the plain and the repacked order.
QK_INLINE void QK_FN(q2_K_half_isums)(const int NT, const blk_q2_K *wb, int b, int h, const uint8_t *a,
                                      size_t a_stride, __m256i *isum) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i qs = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * h));
    for (int c = 0; c < 4; ++c) {
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * c), m3);
        const uint8_t *sc = wb->scales + 8 * h + 2 * c;
        const __m256i sv = _mm256_set_m128i(_mm_set1_epi16(sc[1] & 0xF), _mm_set1_epi16(sc[0] & 0xF));
        for (int t = 0; t < NT; ++t) {
            const int8_t *aq = ((const blk_q8_K *)(a + (size_t)t * a_stride))[b].qs + 128 * h + 32 * c;
            isum[t] = _mm256_add_epi32(isum[t], QK_FN(dot_scaled)(q, _mm256_loadu_si256((const __m256i *)aq), sv));
        }
    }
}

// Q2_K, Q3_K, IQ4_XS rows against NT tokens: with `tiled` (8 or more tokens), llama.cpp's tiled
// k-quant matmul order (kq_tiled_add); otherwise lanes of 8 summed at the end.
QK_INLINE void QK_FN(rows_q2_K)(const int NT, const int tiled, int n, const uint8_t *w,
                                const uint8_t *a, size_t a_stride, float *out) {
    __m256 acc[4];
    float msum[4] = {0, 0, 0, 0}, y[4] = {0, 0, 0, 0};
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q2_K *wb = (const blk_q2_K *)w + b;
        const float d = QK_FN(half)(wb->d), dmin = QK_FN(half)(wb->dmin);
        __m256i isum[4];
        for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) QK_FN(q2_K_half_isums)(NT, wb, b, h, a, a_stride, isum);
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            int mins = 0;
            for (int j = 0; j < 16; ++j) mins += (wb->scales[j] >> 4) * ab->bsums[j];
            if (tiled) {
                y[t] = kq_tiled_add(y[t], ab->d, d, dmin, QK_FN(hsum_i32x8)(isum[t]), mins);
                continue;
            }
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * ab->d), acc[t]);
            msum[t] -= dmin * ab->d * (float)mins;
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = tiled ? y[t] : QK_FN(hsum)(acc[t]) + msum[t];
}

QK_INLINE void QK_FN(rows_q3_K)(const int NT, const int tiled, int n, const uint8_t *w,
                                const uint8_t *a, size_t a_stride, float *out) {
    __m256 acc[4];
    float y[4] = {0, 0, 0, 0};
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q3_K *wb = (const blk_q3_K *)w + b;
        const float d = QK_FN(half)(wb->d);
        int8_t sc[16];
        q3k_scales(wb->scales, sc);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)wb->hmask);
        __m256i isum[4];
        int offs[4];
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            int o = 0;
            for (int j = 0; j < 16; ++j) o += sc[j] * ab->bsums[j];
            offs[t] = o;
            isum[t] = _mm256_setzero_si256();
        }
        for (int h = 0; h < 2; ++h) {
            const __m256i qs = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * h));
            for (int c = 0; c < 4; ++c) {
                // Level + 4 (0..7): the low 2 bits, plus 4 where the high-bit mask is set.
                const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + c)));
                const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), four);
                const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qs, 2 * c), m3), high);
                const int8_t *s = sc + 8 * h + 2 * c;
                const __m256i sv = _mm256_set_m128i(_mm_set1_epi16(s[1]), _mm_set1_epi16(s[0]));
                for (int t = 0; t < NT; ++t) {
                    const int8_t *aq = ((const blk_q8_K *)(a + (size_t)t * a_stride))[b].qs + 128 * h + 32 * c;
                    isum[t] = _mm256_add_epi32(isum[t], QK_FN(dot_scaled)(q, _mm256_loadu_si256((const __m256i *)aq), sv));
                }
            }
        }
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            isum[t] = _mm256_sub_epi32(isum[t], _mm256_setr_epi32(4 * offs[t], 0, 0, 0, 0, 0, 0, 0));
            if (tiled) y[t] = kq_tiled_add(y[t], ab->d, d, 0, QK_FN(hsum_i32x8)(isum[t]), 0);
            else acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * ab->d), acc[t]);
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = tiled ? y[t] : QK_FN(hsum)(acc[t]);
}

QK_INLINE void QK_FN(rows_iq4_xs)(const int NT, const int tiled, int n, const uint8_t *w,
                                  const uint8_t *a, size_t a_stride, float *out) {
    __m256 acc[4];
    float y[4] = {0, 0, 0, 0};
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_iq4));
    for (int b = 0; b < n / QKK; ++b) {
        const blk_iq4_xs *wb = (const blk_iq4_xs *)w + b;
        const float d = QK_FN(half)(wb->d);
        __m256i isum[4];
        for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ++ib) {
            const int ls = (((wb->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((wb->scales_h >> (2 * ib)) & 3) << 4)) - 32;
            const __m256i q = _mm256_shuffle_epi8(table, QK_FN(nibbles)(wb->qs + 16 * ib));
            const __m256i aq = _mm256_sign_epi8(q, q), sv = _mm256_set1_epi16((short)ls);
            for (int t = 0; t < NT; ++t) {
                const int8_t *ap = ((const blk_q8_K *)(a + (size_t)t * a_stride))[b].qs + 32 * ib;
                const __m256i av = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)ap), q);
                isum[t] = _mm256_add_epi32(isum[t], QK_FN(dot_scaled)(aq, av, sv));
            }
        }
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            if (tiled) y[t] = kq_tiled_add(y[t], ab->d, d, 0, QK_FN(hsum_i32x8)(isum[t]), 0);
            else acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * ab->d), acc[t]);
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = tiled ? y[t] : QK_FN(hsum)(acc[t]);
}

// MARK: float weights against f32 activations

QK_INLINE void QK_FN(rows_float)(const int type, const int NT, int n, const uint8_t *w,
                                 const uint8_t *a, size_t a_stride, float *out) {
    __m256 acc[4];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv;
        if (type == T_F32) wv = _mm256_loadu_ps((const float *)w + i);
        else if (type == T_F16) wv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
        else wv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 16));
        for (int t = 0; t < NT; ++t)
            acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps((const float *)(a + (size_t)t * a_stride) + i), acc[t]);
    }
    for (int t = 0; t < NT; ++t) {
        float s = QK_FN(hsum)(acc[t]);
        const float *x = (const float *)(a + (size_t)t * a_stride);
        for (int j = i; j < n; ++j) {
            float wj = type == T_F32 ? ((const float *)w)[j] : type == T_F16 ? h2f(((const uint16_t *)w)[j]) : bf2f(((const uint16_t *)w)[j]);
            s += wj * x[j];
        }
        out[t] = s;
    }
}

// MARK: driver

/// One weight row against NT tokens, NT a constant in each expansion so the token loops unroll.
QK_INLINE void QK_FN(row_tokens)(const int type, const int NT, const int tiled, int n, const uint8_t *w,
                                 const uint8_t *a, size_t a_stride, float *out) {
    switch (type) {
    case T_Q4_K: QK_FN(rows_q4_K)(NT, n, w, a, a_stride, out); break;
    case T_Q5_K: QK_FN(rows_q5_K)(NT, tiled, n, w, a, a_stride, out); break;
    case T_Q6_K: QK_FN(rows_q6_K)(NT, tiled, n, w, a, a_stride, out); break;
    case T_Q2_K: QK_FN(rows_q2_K)(NT, tiled, n, w, a, a_stride, out); break;
    case T_Q3_K: QK_FN(rows_q3_K)(NT, tiled, n, w, a, a_stride, out); break;
    case T_IQ4_XS: QK_FN(rows_iq4_xs)(NT, tiled, n, w, a, a_stride, out); break;
    default: QK_FN(rows_float)(type, NT, n, w, a, a_stride, out); break;
    }
}

/// All rows for a fixed type. Rows go in tiles of about 32 KB of weights; within a tile, tokens
/// go in groups of 4, so each weight block is unpacked once per 4 tokens and the tile stays in
/// L1/L2 while every token group passes over it.
QK_INLINE void QK_FN(gemm_type)(const int type, int n, const uint8_t *w, size_t w_stride, int nrows,
                                const uint8_t *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
#if QK_VNNI
    // Prefill: whole tiles of 16 rows with rows in lanes; the rest below.
    if (type == T_Q4_K || type == T_Q6_K) {
        const int done = type == T_Q4_K ? QK_FN(gemm_q4K_tiles)(n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride)
                                        : QK_FN(gemm_q6K_tiles)(n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
        w += (size_t)done * w_stride; y += done; nrows -= done;
    }
#endif
    float out[4];
    const int tiled = ntok >= 8;   // k-quants but Q4_K: llama.cpp's tiled matmul order (kq_tiled_add)
    const int tile = ntok <= 4 ? nrows : (int)(w_stride >= 32768 ? 1 : 32768 / w_stride);
    for (int r0 = 0; r0 < nrows; r0 += tile) {
        const int r1 = nrows - r0 < tile ? nrows : r0 + tile;
        for (int t0 = 0; t0 < ntok; t0 += 4) {
            const int nt = ntok - t0 < 4 ? ntok - t0 : 4;
            const uint8_t *at = a + (size_t)t0 * a_stride;
            float *yt = y + (size_t)t0 * y_stride;
            for (int r = r0; r < r1; ++r) {
                const uint8_t *wr = w + (size_t)r * w_stride;
                switch (nt) {
                case 1: QK_FN(row_tokens)(type, 1, tiled, n, wr, at, a_stride, out); break;
                case 2: QK_FN(row_tokens)(type, 2, tiled, n, wr, at, a_stride, out); break;
                case 3: QK_FN(row_tokens)(type, 3, tiled, n, wr, at, a_stride, out); break;
                default: QK_FN(row_tokens)(type, 4, tiled, n, wr, at, a_stride, out); break;
                }
                for (int t = 0; t < nt; ++t) yt[(size_t)t * y_stride + r] = out[t];
            }
        }
    }
}

static QK_TARGET int QK_FN(gemm)(int type, int n, const void *w, size_t w_stride, int nrows,
                                 const void *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    switch (type) {
#define QK_CASE(T) case T: QK_FN(gemm_type)(T, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride); return 0;
#define QK_CASE_B32(T, K) case T: return QK_FN(gemm_b32)(K, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
    QK_CASE_B32(T_Q4_0, K_Q4_0) QK_CASE_B32(T_Q4_1, K_Q4_1) QK_CASE_B32(T_Q5_0, K_Q5_0)
    QK_CASE_B32(T_Q5_1, K_Q5_1) QK_CASE_B32(T_Q8_0, K_Q8_0) QK_CASE_B32(T_IQ4_NL, K_IQ4_NL)
#undef QK_CASE_B32
    QK_CASE(T_Q4_K) QK_CASE(T_Q5_K) QK_CASE(T_Q6_K) QK_CASE(T_Q2_K) QK_CASE(T_Q3_K) QK_CASE(T_IQ4_XS) QK_CASE(T_F32) QK_CASE(T_F16) QK_CASE(T_BF16)
#undef QK_CASE
    default: return -1;
    }
}

// MARK: llama.cpp's repacked orders

#include "quant_dot_repacked_x86.h"

// MARK: activation quantizers (same results as the generic ones: round to nearest even)

static QK_TARGET void QK_FN(quantize_q8_x)(const float *x, void *out, int n, int with_sum) {
    char *o = out;
    const size_t bs = with_sum ? 36 : 34;
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / QK; ++b, o += bs) {
        const float *xb = x + QK * b;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int i = 0; i < 4; ++i) { v[i] = _mm256_loadu_ps(xb + 8 * i); m = _mm256_max_ps(m, _mm256_andnot_ps(signbit, v[i])); }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        // As ggml: multiplier 127 / amax (not 1 / d), then round to nearest even.
        const float d = amax / 127.f, id = amax != 0 ? 127.f / amax : 0.f;
        const __m256 idv = _mm256_set1_ps(id);
        __m256i iv[4];
        for (int i = 0; i < 4; ++i) iv[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], idv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        // Pack 32 int32 → 32 int8 in order (packs interleave 128-bit lanes; the permute restores order).
        __m256i p01 = _mm256_packs_epi32(iv[0], iv[1]), p23 = _mm256_packs_epi32(iv[2], iv[3]);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(o + (with_sum ? 4 : 2)), p);
        uint16_t hd = f2h(d); memcpy(o, &hd, 2);
        if (with_sum) {
            __m256i s = _mm256_add_epi32(_mm256_add_epi32(iv[0], iv[1]), _mm256_add_epi32(iv[2], iv[3]));
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            s4 = _mm_hadd_epi32(s4, s4); s4 = _mm_hadd_epi32(s4, s4);
            uint16_t hs = f2h(d * (float)_mm_cvtsi128_si32(s4)); memcpy(o + 2, &hs, 2);
        }
    }
}

#undef QK_CAT2
#undef QK_CAT
#undef QK_FN
#undef QK_INLINE
