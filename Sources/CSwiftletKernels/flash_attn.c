// Flash attention in llama.cpp's CPU float order; see include/flash_attn.h.
// Fused multiply-adds are written out (fmaf / _mm*_fmadd_ps) exactly where ggml's compiled code
// has them; nothing else may be contracted.
#pragma STDC FP_CONTRACT OFF

#include "flash_attn.h"
#include "gc_internal.h"
#include "quant_dot.h"

// MARK: - Row formats

static int block_values(int type) { return type == SWIFTLET_FA_F16 ? 1 : 32; }

static int block_bytes(int type) {
    switch (type) {
    case SWIFTLET_FA_F16: return 2;
    case SWIFTLET_FA_Q4_0: return 18;
    case SWIFTLET_FA_Q4_1: return 20;
    case SWIFTLET_FA_Q5_0: return 22;
    case SWIFTLET_FA_Q5_1: return 24;
    case SWIFTLET_FA_Q8_0: return 34;
    case SWIFTLET_FA_IQ4_NL: return 18;
    default: return 0;
    }
}

long swiftlet_fa_row_bytes(int type, long n) {
    const int bytes = block_bytes(type), values = block_values(type);
    if (!bytes || n <= 0 || n % values) return -1;
    return n / values * bytes;
}

/// ggml's `kvalues_iq4nl`.
static const int8_t iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline uint16_t load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/// Whether blocks of `type` carry a min m next to the scale d (value = level · d + m).
static inline int has_min(int type) { return type == SWIFTLET_FA_Q4_1 || type == SWIFTLET_FA_Q5_1; }

/// The 32 levels of block `b` of a 4/5/8-bit row, in element order: signed values, or for the
/// types with a min the unsigned levels.
static void unpack_block(int type, const uint8_t *b, int v[32]) {
    switch (type) {
    case SWIFTLET_FA_Q4_1:
        for (int j = 0; j < 16; ++j) { v[j] = b[4 + j] & 0xf; v[j + 16] = b[4 + j] >> 4; }
        break;
    case SWIFTLET_FA_Q5_1: {
        uint32_t qh; memcpy(&qh, b + 4, 4);
        for (int j = 0; j < 16; ++j) {
            v[j] = (int)((b[8 + j] & 0xf) | (((qh >> j) & 1) << 4));
            v[j + 16] = (int)((b[8 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
        }
        break;
    }
    case SWIFTLET_FA_Q8_0:
        for (int j = 0; j < 32; ++j) v[j] = (int8_t)b[2 + j];
        break;
    case SWIFTLET_FA_Q4_0:
        for (int j = 0; j < 16; ++j) { v[j] = (b[2 + j] & 0xf) - 8; v[j + 16] = (b[2 + j] >> 4) - 8; }
        break;
    case SWIFTLET_FA_Q5_0: {
        uint32_t qh; memcpy(&qh, b + 2, 4);
        for (int j = 0; j < 16; ++j) {
            v[j] = (int)((b[6 + j] & 0xf) | (((qh >> j) & 1) << 4)) - 16;
            v[j + 16] = (int)((b[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
        }
        break;
    }
    default: // IQ4_NL
        for (int j = 0; j < 16; ++j) { v[j] = iq4nl_values[b[2 + j] & 0xf]; v[j + 16] = iq4nl_values[b[2 + j] >> 4]; }
        break;
    }
}

#ifdef GC_X86
GC_512 static void dequantize_signed_avx512(int type, const uint8_t *row, float *y, int n);
GC_512 static void dequantize_min_avx512(int type, const uint8_t *row, float *y, int n);
#endif

/// dequantize_row_*: value · d, one rounding each; Q4_1 / Q5_1 level · d + m, two roundings (ggml
/// compiles its base library without fma contraction).
static void dequantize_row(int type, const uint8_t *row, float *y, int n, int simd) {
#ifdef GC_X86
    if (simd && type != SWIFTLET_FA_F16 && !has_min(type)) {
        dequantize_signed_avx512(type, row, y, n);
        return;
    }
    if (simd && has_min(type)) {
        dequantize_min_avx512(type, row, y, n);
        return;
    }
#endif
    (void)simd;
    if (type == SWIFTLET_FA_F16) {
        const uint16_t *h = (const uint16_t *)row;
        for (int i = 0; i < n; ++i) y[i] = h2f(h[i]);
        return;
    }
    const int bytes = block_bytes(type);
    int v[32];
    for (int b = 0; b < n / 32; ++b) {
        const uint8_t *blk = row + (long)b * bytes;
        const float d = h2f(load_u16(blk));
        unpack_block(type, blk, v);
        if (has_min(type)) {
            const float m = h2f(load_u16(blk + 2));
            for (int j = 0; j < 32; ++j) y[32 * b + j] = (float)v[j] * d + m;
        } else {
            for (int j = 0; j < 32; ++j) y[32 * b + j] = (float)v[j] * d;
        }
    }
}

// MARK: - K·q in ggml's vec_dot orders

/// hsum_float_8: (lanes 0-3 + 4-7), then (0+2, 1+3), then the two.
static inline float hsum8(const float a[8]) {
    const float r0 = a[0] + a[4], r1 = a[1] + a[5], r2 = a[2] + a[6], r3 = a[3] + a[7];
    return (r0 + r2) + (r1 + r3);
}

/// ggml_vec_dot_{q4_0,q5_0,q8_0,iq4_nl}_q8_0 on x86 (AVX2 and up): per block eight lanes of four
/// consecutive products (exact integers), each lane accumulated as fma(d_x·d_q, lane, acc); with
/// `pairs` (IQ4_NL's vec_dot) two accumulators alternate by block parity and are added before the
/// horizontal sum. tinyBLAS sums IQ4_NL with one accumulator (`pairs` 0).
static float dot_q8_scalar(int type, const uint8_t *k, const uint8_t *q8, int n, int pairs) {
    const int nb = n / 32, bytes = block_bytes(type);
    float acc[2][8] = {{0}};
    int v[32], ib = 0;
    const int paired = pairs ? nb & ~1 : nb;
    for (; ib < paired; ++ib) {
        const uint8_t *kb = k + (long)ib * bytes, *qb = q8 + (long)ib * 34;
        unpack_block(type, kb, v);
        const float d = pairs ? h2f(load_u16(qb)) * h2f(load_u16(kb)) : h2f(load_u16(kb)) * h2f(load_u16(qb));
        float *a = acc[pairs ? ib & 1 : 0];
        for (int l = 0; l < 8; ++l) {
            int s = 0;
            for (int j = 4 * l; j < 4 * l + 4; ++j) s += v[j] * (int8_t)qb[2 + j];
            a[l] = fmaf(d, (float)s, a[l]);
        }
    }
    float lanes[8];
    for (int l = 0; l < 8; ++l) lanes[l] = pairs ? acc[0][l] + acc[1][l] : acc[0][l];
    float sum = hsum8(lanes);
    for (; ib < nb; ++ib) {   // IQ4_NL's odd last block
        const uint8_t *kb = k + (long)ib * bytes, *qb = q8 + (long)ib * 34;
        unpack_block(type, kb, v);
        int s = 0;
        for (int j = 0; j < 32; ++j) s += v[j] * (int8_t)qb[2 + j];
        sum = fmaf(h2f(load_u16(qb)) * h2f(load_u16(kb)), (float)s, sum);
    }
    return sum;
}

/// ggml_vec_dot_{q4_1,q5_1}_q8_1 on x86 (AVX2 and up): per block eight lanes of four consecutive
/// products of unsigned level and query byte, each lane accumulated as fma(d_x·d_q, lane, acc);
/// the min's part m_x·s_q (s = d_q·Σq) is one fma chain of its own, added after the horizontal sum.
static float dot_q8_1_scalar(int type, const uint8_t *k, const uint8_t *q8, int n) {
    const int nb = n / 32, bytes = block_bytes(type);
    float acc[8] = {0}, summs = 0.0f;
    int v[32];
    for (int ib = 0; ib < nb; ++ib) {
        const uint8_t *kb = k + (long)ib * bytes, *qb = q8 + (long)ib * 36;
        unpack_block(type, kb, v);
        summs = fmaf(h2f(load_u16(kb + 2)), h2f(load_u16(qb + 2)), summs);
        const float d = h2f(load_u16(kb)) * h2f(load_u16(qb));
        for (int l = 0; l < 8; ++l) {
            int s = 0;
            for (int j = 4 * l; j < 4 * l + 4; ++j) s += v[j] * (int8_t)qb[4 + j];
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
    }
    return hsum8(acc) + summs;
}

#ifdef GC_X86
#define GC_AVX2 __attribute__((target("avx2,fma,f16c")))

GC_AVX2 static inline float hsum8_avx(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/// ggml's bytes_from_bits_32: byte j is 0xff when bit j of the 32-bit `qh` is set.
GC_AVX2 static inline __m256i bytes_from_bits(const uint8_t *qh_bytes) {
    uint32_t qh; memcpy(&qh, qh_bytes, 4);
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    const __m256i b = _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread),
                                      _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

/// The 32 signed values of a Q8_0 / Q4_0 / Q5_0 / IQ4_NL key block as bytes.
GC_AVX2 static inline __m256i signed_levels(int type, const uint8_t *kb) {
    if (type == SWIFTLET_FA_Q8_0) return _mm256_loadu_si256((const __m256i *)(kb + 2));
    const uint8_t *qs = kb + (type == SWIFTLET_FA_Q5_0 ? 6 : 2);
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i nib = _mm256_and_si256(_mm256_set1_epi8(0xf), _mm256_set_m128i(_mm_srli_epi16(t, 4), t));
    switch (type) {
    case SWIFTLET_FA_Q4_0: return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
    case SWIFTLET_FA_Q5_0: {
        const __m256i high = _mm256_and_si256(bytes_from_bits(kb + 2), _mm256_set1_epi8(0x10));
        return _mm256_sub_epi8(_mm256_or_si256(nib, high), _mm256_set1_epi8(16));
    }
    default: {   // IQ4_NL
        const __m128i lut = _mm_loadu_si128((const __m128i *)iq4nl_values);
        return _mm256_shuffle_epi8(_mm256_set_m128i(lut, lut), nib);
    }
    }
}

/// dot_q8_scalar for Q8_0, Q4_0, Q5_0 and IQ4_NL keys with `heads` Q8_0 query rows (`q_bytes`
/// apart): each key block is unpacked once for all of them. IQ4_NL takes vec_dot's two
/// accumulators (block parity) and its odd last block after the horizontal sum.
GC_AVX2 static void dots_q8_avx2(int type, const uint8_t *k, const uint8_t *q8, long q_bytes, int heads, int n,
                                 float *out) {
    enum { MAXH = 8 };
    const int nb = n / 32, bytes = block_bytes(type), pairs = type == SWIFTLET_FA_IQ4_NL;
    const int paired = pairs ? nb & ~1 : nb;
    for (int h0 = 0; h0 < heads; h0 += MAXH) {
        const int hn = heads - h0 < MAXH ? heads - h0 : MAXH;
        __m256 acc[2][MAXH];
        for (int g = 0; g < hn; ++g) acc[0][g] = acc[1][g] = _mm256_setzero_ps();
        for (int ib = 0; ib < paired; ++ib) {
            const uint8_t *kb = k + (long)ib * bytes;
            const __m256i qx = signed_levels(type, kb);
            const __m256i ax = _mm256_sign_epi8(qx, qx);
            const float dk = h2f(load_u16(kb));
            __m256 *a = acc[pairs ? ib & 1 : 0];
            for (int g = 0; g < hn; ++g) {
                const uint8_t *qb = q8 + (h0 + g) * q_bytes + (long)ib * 34;
                const __m256i sy = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(qb + 2)), qx);
                const __m256i lanes = _mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(ax, sy));
                const __m256 d = _mm256_set1_ps(dk * h2f(load_u16(qb)));
                a[g] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), a[g]);
            }
        }
        for (int g = 0; g < hn; ++g) out[h0 + g] = hsum8_avx(pairs ? _mm256_add_ps(acc[0][g], acc[1][g]) : acc[0][g]);
        if (paired < nb) {   // IQ4_NL's odd last block: its exact integer dot, one fma
            const uint8_t *kb = k + (long)paired * bytes;
            const __m256i qx = signed_levels(type, kb), ax = _mm256_sign_epi8(qx, qx);
            for (int g = 0; g < hn; ++g) {
                const uint8_t *qb = q8 + (h0 + g) * q_bytes + (long)paired * 34;
                const __m256i sy = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(qb + 2)), qx);
                int32_t lanes[8];
                _mm256_storeu_si256((__m256i *)lanes, _mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(ax, sy)));
                int total = 0;
                for (int l = 0; l < 8; ++l) total += lanes[l];
                out[h0 + g] = fmaf(h2f(load_u16(qb)) * h2f(load_u16(kb)), (float)total, out[h0 + g]);
            }
        }
    }
}

/// dot_q8_1_scalar for Q4_1 and Q5_1 keys with `heads` Q8_1 query rows (`q_bytes` apart): each
/// key block is unpacked once for all of them.
GC_AVX2 static void dots_q8_1_avx2(int type, const uint8_t *k, const uint8_t *q8, long q_bytes, int heads, int n,
                                   float *out) {
    enum { MAXH = 8 };
    const int nb = n / 32, bytes = block_bytes(type);
    for (int h0 = 0; h0 < heads; h0 += MAXH) {
        const int hn = heads - h0 < MAXH ? heads - h0 : MAXH;
        __m256 acc[MAXH];
        float summs[MAXH];
        for (int g = 0; g < hn; ++g) { acc[g] = _mm256_setzero_ps(); summs[g] = 0.0f; }
        for (int ib = 0; ib < nb; ++ib) {
            const uint8_t *kb = k + (long)ib * bytes;
            const uint8_t *qs = kb + (type == SWIFTLET_FA_Q5_1 ? 8 : 4);
            const __m128i t = _mm_loadu_si128((const __m128i *)qs);
            __m256i qx = _mm256_and_si256(_mm256_set1_epi8(0xf), _mm256_set_m128i(_mm_srli_epi16(t, 4), t));
            if (type == SWIFTLET_FA_Q5_1) qx = _mm256_or_si256(qx, _mm256_and_si256(bytes_from_bits(kb + 4), _mm256_set1_epi8(0x10)));
            const float dk = h2f(load_u16(kb)), mk = h2f(load_u16(kb + 2));
            for (int g = 0; g < hn; ++g) {
                const uint8_t *qb = q8 + (h0 + g) * q_bytes + (long)ib * 36;
                summs[g] = fmaf(mk, h2f(load_u16(qb + 2)), summs[g]);
                const __m256i qy = _mm256_loadu_si256((const __m256i *)(qb + 4));
                const __m256i lanes = _mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(qx, qy));
                const __m256 d = _mm256_set1_ps(dk * h2f(load_u16(qb)));
                acc[g] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc[g]);
            }
        }
        for (int g = 0; g < hn; ++g) out[h0 + g] = hsum8_avx(acc[g]) + summs[g];
    }
}

/// ggml_vec_dot_f16 of one f16 key row with `heads` query rows (f16 values as floats, `q_stride`
/// apart), head_dim a multiple of 64.
GC_512 static void dots_f16_avx512(const uint16_t *k, const float *q, long q_stride, int heads, int n, float *out) {
    for (int g = 0; g < heads; ++g) {
        const float *qg = q + g * q_stride;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int j = 0; j < n; j += 64) {
            s0 = _mm512_fmadd_ps(load_h16(k + j), _mm512_loadu_ps(qg + j), s0);
            s1 = _mm512_fmadd_ps(load_h16(k + j + 16), _mm512_loadu_ps(qg + j + 16), s1);
            s2 = _mm512_fmadd_ps(load_h16(k + j + 32), _mm512_loadu_ps(qg + j + 32), s2);
            s3 = _mm512_fmadd_ps(load_h16(k + j + 48), _mm512_loadu_ps(qg + j + 48), s3);
        }
        float lanes[16];
        _mm512_storeu_ps(lanes, _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3)));
        out[g] = (float)(double)reduce16(lanes);
    }
}

/// Block `blk` of a V row widened as dequantize_row widens it (value · d, one rounding).
GC_512 static inline __attribute__((always_inline)) void widen_block(int type, const uint8_t *blk, __m512 *lo, __m512 *hi) {
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(blk)));
    __m512i l, h;
    if (type == SWIFTLET_FA_Q8_0) {
        l = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)));
        h = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18)));
    } else if (type == SWIFTLET_FA_Q5_0) {
        const __m128i q = _mm_loadu_si128((const __m128i *)(blk + 6)), m = _mm_set1_epi8(0xf);
        uint32_t qh; memcpy(&qh, blk + 2, 4);
        const __m512i sixteen = _mm512_set1_epi32(16);
        l = _mm512_sub_epi32(_mm512_or_si512(_mm512_cvtepu8_epi32(_mm_and_si128(q, m)),
                                             _mm512_maskz_mov_epi32((__mmask16)(qh & 0xffff), sixteen)), sixteen);
        h = _mm512_sub_epi32(_mm512_or_si512(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), m)),
                                             _mm512_maskz_mov_epi32((__mmask16)(qh >> 16), sixteen)), sixteen);
    } else {
        const __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2)), m = _mm_set1_epi8(0xf);
        __m128i ql = _mm_and_si128(q, m), qh = _mm_and_si128(_mm_srli_epi16(q, 4), m);
        if (type == SWIFTLET_FA_Q4_0) {
            ql = _mm_sub_epi8(ql, _mm_set1_epi8(8));
            qh = _mm_sub_epi8(qh, _mm_set1_epi8(8));
        } else {   // IQ4_NL
            const __m128i lut = _mm_loadu_si128((const __m128i *)iq4nl_values);
            ql = _mm_shuffle_epi8(lut, ql);
            qh = _mm_shuffle_epi8(lut, qh);
        }
        l = _mm512_cvtepi8_epi32(ql);
        h = _mm512_cvtepi8_epi32(qh);
    }
    *lo = _mm512_mul_ps(_mm512_cvtepi32_ps(l), d);
    *hi = _mm512_mul_ps(_mm512_cvtepi32_ps(h), d);
}

/// dequantize_row for Q8_0, Q4_0, Q5_0 and IQ4_NL: the same single product per value, 16 at a time.
GC_512 static void dequantize_signed_avx512(int type, const uint8_t *row, float *y, int n) {
    const int bytes = block_bytes(type);
    for (int b = 0; b < n / 32; ++b) {
        __m512 lo, hi;
        widen_block(type, row + (long)b * bytes, &lo, &hi);
        _mm512_storeu_ps(y + 32 * b, lo);
        _mm512_storeu_ps(y + 32 * b + 16, hi);
    }
}

/// dequantize_row for Q4_1 and Q5_1: level · d, then + m, 16 at a time.
GC_512 static void dequantize_min_avx512(int type, const uint8_t *row, float *y, int n) {
    const int bytes = block_bytes(type), five = type == SWIFTLET_FA_Q5_1;
    for (int b = 0; b < n / 32; ++b) {
        const uint8_t *blk = row + (long)b * bytes;
        const __m512 d = _mm512_set1_ps(h2f(load_u16(blk))), m = _mm512_set1_ps(h2f(load_u16(blk + 2)));
        const __m128i q = _mm_loadu_si128((const __m128i *)(blk + (five ? 8 : 4))), mask = _mm_set1_epi8(0xf);
        __m512i lo = _mm512_cvtepu8_epi32(_mm_and_si128(q, mask));
        __m512i hi = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), mask));
        if (five) {
            uint32_t qh; memcpy(&qh, blk + 4, 4);
            const __m512i sixteen = _mm512_set1_epi32(16);
            lo = _mm512_or_si512(lo, _mm512_maskz_mov_epi32((__mmask16)(qh & 0xffff), sixteen));
            hi = _mm512_or_si512(hi, _mm512_maskz_mov_epi32((__mmask16)(qh >> 16), sixteen));
        }
        _mm512_storeu_ps(y + 32 * b, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(lo), d), m));
        _mm512_storeu_ps(y + 32 * b + 16, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(hi), d), m));
    }
}

/// y = fma(x, v, y) over n floats (ggml_vec_mad_f32; element-wise, so any width).
GC_512 static void mad_f32_avx512(float *y, const float *x, float v, int n) {
    const __m512 vv = _mm512_set1_ps(v);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(_mm512_loadu_ps(x + i), vv, _mm512_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] = fmaf(x[i], v, y[i]);
}

GC_512 static void scale_f32_avx512(float *y, float v, int n) {
    const __m512 vv = _mm512_set1_ps(v);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), vv));
    for (; i < n; ++i) y[i] = y[i] * v;
}

/// y = f16(fma(f32(x), v, f32(y))) on [from, to) (ggml_vec_mad_f16's leftover loop).
GC_512 static void mad_f16_widened_avx512(uint16_t *y, const uint16_t *x, float v, int from, int to) {
    const __m512 vv = _mm512_set1_ps(v);
    int i = from;
    for (; i + 16 <= to; i += 16) {
        const __m512 r = _mm512_fmadd_ps(load_h16(x + i), vv, load_h16(y + i));
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < to; ++i) y[i] = f2h(fmaf(h2f(x[i]), v, h2f(y[i])));
}

GC_512 static void scale_f16_widened_avx512(uint16_t *y, float v, int from, int to) {
    const __m512 vv = _mm512_set1_ps(v);
    int i = from;
    for (; i + 16 <= to; i += 16) {
        const __m512 r = _mm512_mul_ps(load_h16(y + i), vv);
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < to; ++i) y[i] = f2h(h2f(y[i]) * v);
}
#endif

/// K·q of one key row with `heads` converted query rows.
static void key_dots(int k_type, const uint8_t *krow, const void *qconv, long qconv_floats, int heads, int n,
                     int simd, float *out) {
    (void)simd;
    if (k_type == SWIFTLET_FA_F16) {
        const float *qf = (const float *)qconv;
#ifdef GC_X86
        if (simd && n % 64 == 0) { dots_f16_avx512((const uint16_t *)krow, qf, qconv_floats, heads, n, out); return; }
#endif
        for (int g = 0; g < heads; ++g) out[g] = swiftlet_gc_dot_vec_f16((const uint16_t *)krow, qf + g * qconv_floats, n);
        return;
    }
    const long q_bytes = qconv_floats * 4;
#ifdef GC_X86
    if (simd && has_min(k_type)) {
        dots_q8_1_avx2(k_type, krow, (const uint8_t *)qconv, q_bytes, heads, n, out);
        return;
    }
    if (simd) {
        dots_q8_avx2(k_type, krow, (const uint8_t *)qconv, q_bytes, heads, n, out);
        return;
    }
#endif
    if (has_min(k_type)) {
        for (int g = 0; g < heads; ++g) out[g] = dot_q8_1_scalar(k_type, krow, (const uint8_t *)qconv + g * q_bytes, n);
        return;
    }
    for (int g = 0; g < heads; ++g)
        out[g] = dot_q8_scalar(k_type, krow, (const uint8_t *)qconv + g * q_bytes, n, k_type == SWIFTLET_FA_IQ4_NL);
}

void swiftlet_fa_query_to_dot_type(int k_type, float *q, int n) {
    const int variant = has_avx512() ? swiftlet_qk_best_variant() : SWIFTLET_QK_GENERIC;
    const int act = has_min(k_type) ? 9 : 8, bytes = has_min(k_type) ? 36 : 34;
    // Block b lands at bytes [bytes·b, bytes·(b+1)), never past the floats of block b, so each
    // block is read (copied out) before anything overwrites it.
    float block[32];
    for (int b = 0; b < n / 32; ++b) {
        memcpy(block, q + 32 * b, sizeof block);
        swiftlet_qk_quantize_act(variant, act, block, (uint8_t *)q + (long)bytes * b, 32);
    }
}

float swiftlet_fa_key_dot(int k_type, const void *krow, const void *qconv, int n, int tinyblas) {
    if (tinyblas && k_type == SWIFTLET_FA_IQ4_NL) return dot_q8_scalar(k_type, krow, qconv, n, 0);
    float out;
    key_dots(k_type, (const uint8_t *)krow, qconv, 0, 1, n, has_avx512(), &out);
    return out;
}

// MARK: - f16 accumulator (ggml_vec_mad_f16 / ggml_vec_scale_f16 on an AVX512-FP16 build)

/// f16(x·v + y) rounded once, as one AVX512-FP16 fma: x·v is exact in float (11-bit mantissas)
/// and x·v + y exact in double (f16 exponents span far less than 53 bits where the result is
/// finite), so one rounding from double to f16 remains; done through float with round-to-odd.
static inline uint16_t fma_f16_exact(float x, float v, float y) {
    const double exact = (double)(x * v) + (double)y;
    float f = (float)exact;
    if ((double)f != exact && isfinite(f)) {
        uint32_t bits; memcpy(&bits, &f, 4);
        if (!(bits & 1)) {   // round to odd: step toward the exact value
            f = nextafterf(f, (double)f < exact ? INFINITY : -INFINITY);
        }
    }
    return f2h(f);
}

#ifdef GC_X86
#include <cpuid.h>

/// AVX512-FP16 (CPUID.7.0:EDX[23]), with the AVX-512 state has_avx512 checks.
static int has_avx512fp16(void) {
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        unsigned a = 0, b = 0, cx = 0, d = 0;
        c = __get_cpuid_count(7, 0, &a, &b, &cx, &d) && (d >> 23 & 1);
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c && has_avx512();
}

/// The native part of ggml_vec_mad_f16 / ggml_vec_scale_f16 with the instructions an
/// AVX512-FP16 build of ggml uses: one f16 rounding per element, as fma_f16_exact emulates.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512fp16")))
static void mad_f16_native_fp16(uint16_t *y, const uint16_t *x, uint16_t vh, int n) {
    const __m512h v = _mm512_castsi512_ph(_mm512_set1_epi16((short)vh));
    for (int i = 0; i + 32 <= n; i += 32) {
        const __m512h xv = _mm512_castsi512_ph(_mm512_loadu_si512((const void *)(x + i)));
        const __m512h yv = _mm512_castsi512_ph(_mm512_loadu_si512((const void *)(y + i)));
        _mm512_storeu_si512((void *)(y + i), _mm512_castph_si512(_mm512_fmadd_ph(xv, v, yv)));
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512fp16")))
static void scale_f16_native_fp16(uint16_t *y, uint16_t vh, int n) {
    const __m512h v = _mm512_castsi512_ph(_mm512_set1_epi16((short)vh));
    for (int i = 0; i + 32 <= n; i += 32) {
        const __m512h yv = _mm512_castsi512_ph(_mm512_loadu_si512((const void *)(y + i)));
        _mm512_storeu_si512((void *)(y + i), _mm512_castph_si512(_mm512_mul_ph(yv, v)));
    }
}
#endif

/// ggml_vec_mad_f16: the first `n & ~127` elements in native f16 (v rounded to f16 first), the
/// rest widened to f32.
static void mad_f16(uint16_t *y, const uint16_t *x, float v, int n, int simd) {
    const int native = n & ~127;
#ifdef GC_X86
    if (native && simd && has_avx512fp16()) {
        mad_f16_native_fp16(y, x, f2h(v), native);
        mad_f16_widened_avx512(y, x, v, native, n);
        return;
    }
#endif
    if (native) {
        const float vh = h2f(f2h(v));
        for (int i = 0; i < native; ++i) y[i] = fma_f16_exact(h2f(x[i]), vh, h2f(y[i]));
    }
#ifdef GC_X86
    if (simd) { mad_f16_widened_avx512(y, x, v, native, n); return; }
#endif
    (void)simd;
    for (int i = native; i < n; ++i) y[i] = f2h(fmaf(h2f(x[i]), v, h2f(y[i])));
}

/// ggml_vec_scale_f16 with the same split: native products of two f16 values are exact in float,
/// so one rounding to f16.
static void scale_f16(uint16_t *y, float v, int n, int simd) {
    const int native = n & ~127;
#ifdef GC_X86
    if (native && simd && has_avx512fp16()) {
        scale_f16_native_fp16(y, f2h(v), native);
        scale_f16_widened_avx512(y, v, native, n);
        return;
    }
#endif
    if (native) {
        const float vh = h2f(f2h(v));
        for (int i = 0; i < native; ++i) y[i] = f2h(h2f(y[i]) * vh);
    }
#ifdef GC_X86
    if (simd) { scale_f16_widened_avx512(y, v, native, n); return; }
#endif
    (void)simd;
    for (int i = native; i < n; ++i) y[i] = f2h(h2f(y[i]) * v);
}

static void mad_f32(float *y, const float *x, float v, int n, int simd) {
#ifdef GC_X86
    if (simd) { mad_f32_avx512(y, x, v, n); return; }
#endif
    (void)simd;
    for (int i = 0; i < n; ++i) y[i] = fmaf(x[i], v, y[i]);
}

static void scale_f32(float *y, float v, int n, int simd) {
#ifdef GC_X86
    if (simd) { scale_f32_avx512(y, v, n); return; }
#endif
    (void)simd;
    for (int i = 0; i < n; ++i) y[i] = y[i] * v;
}

// MARK: - Quantized K and V, one query, AVX-512

/// Positions a tile of quantized attention spans: its scores, weights and widened V rows are
/// computed a pass at a time, so each pass runs over independent positions.
enum { FA_TILE = 64, FA_TILE_MAX_BLOCKS = 8 };

#ifdef GC_X86
#define GC_512BW __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,f16c")))

static int has_avx512bw(void) {
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        __builtin_cpu_init();
        c = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c && has_avx512();
}

/// Whether one query's attention over `k_type` keys and `v_type` values of `head_dim` takes the
/// tiled path below: keys whose vec_dot has one accumulator (Q8_0, Q4_0, Q5_0), values widened
/// with one product each (Q8_0, Q4_0, Q5_0, IQ4_NL).
static int quantized_tiles_apply(int k_type, int v_type, int head_dim) {
    const int keys = k_type == SWIFTLET_FA_Q8_0 || k_type == SWIFTLET_FA_Q4_0 || k_type == SWIFTLET_FA_Q5_0;
    const int vals = v_type == SWIFTLET_FA_Q8_0 || v_type == SWIFTLET_FA_Q4_0 || v_type == SWIFTLET_FA_Q5_0
                     || v_type == SWIFTLET_FA_IQ4_NL;
    return keys && vals && head_dim % 32 == 0 && head_dim / 32 <= FA_TILE_MAX_BLOCKS && has_avx512bw();
}

/// Whether one query's attention over f16 keys and values takes the tiled path: head size 64,
/// where ggml_vec_dot_f16 is one 64-wide step and ggml_vec_mad_f16 widens every element.
static int f16_tiles_apply(int k_type, int v_type, int head_dim) {
    return k_type == SWIFTLET_FA_F16 && v_type == SWIFTLET_FA_F16 && head_dim == 64 && has_avx512bw();
}

/// hsum_float_8 of both halves of 8 vectors at once (vector j holds position 2j in its low half,
/// 2j + 1 in its high half): (lanes 0-3 + 4-7), then (0+2, 1+3), then the two, as a transposing
/// add network. Lane i of the result is position i.
GC_512 static inline __m512 hsum8_pairs(const __m512 *v) {
    __m512 s1[4], s2[2];
    for (int p = 0; p < 4; ++p) {   // chunk c of s1[p]: position 4p + c, lanes i + (i + 4)
        const __m512 a = v[2 * p], b = v[2 * p + 1];
        s1[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    for (int p = 0; p < 2; ++p) {   // chunk c of s2[p]: positions 8p + c (lanes 0, 1) and 8p + 4 + c
        const __m512 a = s1[2 * p], b = s1[2 * p + 1];
        s2[p] = _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(s2[0], s2[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_ps(s2[0], s2[1], _MM_SHUFFLE(3, 1, 3, 1)));
    // Lane 4c + k now holds position 4k + c.
    const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(order, r);
}

/// Scores (K·q)·scale + 0 of positions first ..< first + n (n ≤ FA_TILE) for `heads` Q8_0 query
/// rows, each dot in dots_q8_avx2's order. Two positions share a register (one per 256-bit half);
/// the key blocks of 16 positions are unpacked once for all heads.
GC_512BW static void tile_scores(int type, const uint8_t *keys, long k_row_bytes, long first, int n,
                                 const uint8_t *q8, long q_bytes, int heads, int head_dim, float scale,
                                 float *scores) {
    const int nb = head_dim / 32, bytes = block_bytes(type);
    __m512i ax[8][FA_TILE_MAX_BLOCKS];
    __m512 dk[8][FA_TILE_MAX_BLOCKS];
    __mmask64 neg[8][FA_TILE_MAX_BLOCKS];
    const __m512i pair_halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int i = 0; i < n; i += 16) {
        for (int j = 0; j < 8; ++j) {
            // Past the tile, repeat its last position: computed, never stored.
            const long pa = first + (i + 2 * j < n ? i + 2 * j : n - 1);
            const long pb = first + (i + 2 * j + 1 < n ? i + 2 * j + 1 : n - 1);
            const uint8_t *ka = keys + pa * k_row_bytes, *kb = keys + pb * k_row_bytes;
            for (int b = 0; b < nb; ++b) {
                const __m512i k = _mm512_inserti64x4(_mm512_castsi256_si512(signed_levels(type, ka + (long)b * bytes)),
                                                     signed_levels(type, kb + (long)b * bytes), 1);
                ax[j][b] = _mm512_abs_epi8(k);
                neg[j][b] = _mm512_movepi8_mask(k);
                const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128((int)(load_u16(ka + (long)b * bytes)
                                                                      | (uint32_t)load_u16(kb + (long)b * bytes) << 16)));
                dk[j][b] = _mm512_permutexvar_ps(pair_halves, _mm512_castps128_ps512(d));
            }
        }
        for (int g = 0; g < heads; ++g) {
            __m512i qz[FA_TILE_MAX_BLOCKS];
            __m512 dq[FA_TILE_MAX_BLOCKS];
            for (int b = 0; b < nb; ++b) {
                const uint8_t *qb = q8 + g * q_bytes + (long)b * 34;
                qz[b] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qb + 2)));
                dq[b] = _mm512_set1_ps(h2f(load_u16(qb)));
            }
            __m512 acc[8];
            for (int j = 0; j < 8; ++j) {
                acc[j] = _mm512_setzero_ps();
                for (int b = 0; b < nb; ++b) {
                    const __m512i sq = _mm512_mask_sub_epi8(qz[b], neg[j][b], _mm512_setzero_si512(), qz[b]);
                    const __m512i lanes = _mm512_madd_epi16(_mm512_maddubs_epi16(ax[j][b], sq), _mm512_set1_epi16(1));
                    acc[j] = _mm512_fmadd_ps(_mm512_mul_ps(dk[j][b], dq[b]), _mm512_cvtepi32_ps(lanes), acc[j]);
                }
            }
            const __m512 s = _mm512_add_ps(_mm512_mul_ps(hsum8_pairs(acc), _mm512_set1_ps(scale)), _mm512_setzero_ps());
            _mm512_storeu_ps(scores + (long)g * FA_TILE + i, s);
        }
    }
}

/// For `heads` heads (heads · head_dim ≤ 256) over a tile: VKQ += v·w position by position
/// (ggml_vec_mad_f32), scaling VKQ by w first and taking w = 1 where the running maximum moved
/// (ggml_vec_scale_f32), and S = S·ms + vs. Each V row is widened once for the heads; the
/// accumulators stay in registers for the tile, and the heads' fma chains interleave.
GC_512BW static inline __attribute__((always_inline)) void tile_accumulate(
        int v_type, const uint8_t *values, long v_row_bytes, long first, int n, float *vkq, float *ms,
        const float *w, const uint8_t *moved, const int heads, const int head_dim) {
    const int vecs = head_dim / 16, bytes = block_bytes(v_type);
    __m512 acc[16], weight[4];
    float S[4];
    for (int g = 0; g < heads; ++g) {
        S[g] = ms[2 * g + 1];
        for (int i = 0; i < vecs; ++i) acc[g * vecs + i] = _mm512_loadu_ps(vkq + (long)g * head_dim + 16 * i);
    }
    for (int p = 0; p < n; ++p) {
        for (int g = 0; g < heads; ++g) {
            const float wg = w[g * FA_TILE + p];
            if (moved[g * FA_TILE + p]) {
                weight[g] = _mm512_set1_ps(wg);
                for (int i = 0; i < vecs; ++i) acc[g * vecs + i] = _mm512_mul_ps(acc[g * vecs + i], weight[g]);
                weight[g] = _mm512_set1_ps(1.0f);
                S[g] = fmaf(S[g], wg, 1.0f);
            } else {
                weight[g] = _mm512_set1_ps(wg);
                S[g] = fmaf(S[g], 1.0f, wg);
            }
        }
        const uint8_t *row = values + (first + p) * v_row_bytes;
        for (int b = 0; b < vecs / 2; ++b) {
            __m512 lo, hi;
            widen_block(v_type, row + (long)b * bytes, &lo, &hi);
            for (int g = 0; g < heads; ++g) {
                acc[g * vecs + 2 * b] = _mm512_fmadd_ps(lo, weight[g], acc[g * vecs + 2 * b]);
                acc[g * vecs + 2 * b + 1] = _mm512_fmadd_ps(hi, weight[g], acc[g * vecs + 2 * b + 1]);
            }
        }
    }
    for (int g = 0; g < heads; ++g) {
        ms[2 * g + 1] = S[g];
        for (int i = 0; i < vecs; ++i) _mm512_storeu_ps(vkq + (long)g * head_dim + 16 * i, acc[g * vecs + i]);
    }
}

// MARK: glibc's expf, eight lanes at a time

/// glibc's expf (since 2.28; the `__expf_fma` build x86-64 runs on FMA CPUs): x·32/ln 2 = k + r,
/// expf(x) = 2^(k/32) · p(r) in double, one rounding to float at the end. Its table of
/// 2^(i/32) (bits, less i << 47) and constants, as the library holds them.
static const uint64_t expf_table[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
static const uint64_t expf_inv_ln2_32 = 0x40471547652b82fe, expf_shift = 0x4338000000000000;
static const uint64_t expf_poly[3] = {0x3ebc6af84b912394, 0x3f2ebfce50fac4f3, 0x3f962e42ff0c52d6};

static inline double bits_to_double(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

/// expf of 8 floats with glibc's operations (its fused ones fused), for |x| < 88; other lanes
/// (glibc's special cases) go to libm.
GC_512BW static inline __m256 expf8_glibc(__m256 x) {
    const __m512d xd = _mm512_cvtps_pd(x), inv = _mm512_set1_pd(bits_to_double(expf_inv_ln2_32));
    const __m512d shift = _mm512_set1_pd(bits_to_double(expf_shift));
    const __m512d kd = _mm512_fmadd_pd(inv, xd, shift);
    const __m512i ki = _mm512_castpd_si512(kd);
    const __m512d r = _mm512_fmsub_pd(inv, xd, _mm512_sub_pd(kd, shift));
    const __m512i *tab = (const __m512i *)expf_table;
    const __m512i lo = _mm512_permutex2var_epi64(_mm512_loadu_si512(tab), ki, _mm512_loadu_si512(tab + 1));
    const __m512i hi = _mm512_permutex2var_epi64(_mm512_loadu_si512(tab + 2), ki, _mm512_loadu_si512(tab + 3));
    const __mmask8 upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
    const __m512i t = _mm512_add_epi64(_mm512_mask_blend_epi64(upper, lo, hi), _mm512_slli_epi64(ki, 47));
    const __m512d z = _mm512_fmadd_pd(r, _mm512_set1_pd(bits_to_double(expf_poly[0])),
                                      _mm512_set1_pd(bits_to_double(expf_poly[1])));
    const __m512d r2 = _mm512_mul_pd(r, r);
    const __m512d y = _mm512_fmadd_pd(r, _mm512_set1_pd(bits_to_double(expf_poly[2])), _mm512_set1_pd(1.0));
    __m256 e = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_fmadd_pd(z, r2, y), _mm512_castsi512_pd(t)));
    // glibc's fast path takes (bits >> 20 & 0x7ff) < 0x42b: |x| < 88 and not ±inf / NaN.
    const __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
    const __mmask8 special = _mm256_cmpgt_epi32_mask(top, _mm256_set1_epi32(0x42a));
    if (special) {
        float xs[8], es[8];
        _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(es, e);
        for (int i = 0; i < 8; ++i) if (special >> i & 1) es[i] = expf(xs[i]);
        e = _mm256_loadu_ps(es);
    }
    return e;
}

GC_512BW static void expf8_glibc_array(const float *x, float *e) { _mm256_storeu_ps(e, expf8_glibc(_mm256_loadu_ps(x))); }

/// Whether expf8_glibc equals this process's libm expf: checked once, over 4096 spread inputs
/// and the edges of the fast range. Elsewhere (another libm) the tiles call libm.
static int expf8_matches_libm(void);

/// The online softmax of one head over a tile's scores, in place: per position the weight (expf
/// of the gap to the running maximum, or of the old maximum's gap to a new one) and whether the
/// maximum moved. The expf arguments are found first, so the exponentials run eight at a time.
GC_512BW static void tile_softmax(float *scores, int n, float *M, uint8_t *moved) {
    float m = *M;
    for (int p = 0; p < n; ++p) {
        const float x = scores[p];
        moved[p] = x > m;
        scores[p] = x > m ? m - x : x - m;
        m = x > m ? x : m;
    }
    if (expf8_matches_libm()) {
        int p = 0;
        for (; p + 8 <= n; p += 8) _mm256_storeu_ps(scores + p, expf8_glibc(_mm256_loadu_ps(scores + p)));
        if (p < n) {
            const __mmask8 rest = (__mmask8)((1u << (n - p)) - 1);
            _mm256_mask_storeu_ps(scores + p, rest, expf8_glibc(_mm256_maskz_loadu_ps(rest, scores + p)));
        }
    } else {
        for (int p = 0; p < n; ++p) scores[p] = expf(scores[p]);
    }
    *M = m;
}

/// The position loop of swiftlet_fa_attend for one query over begin ..< end, a tile at a time:
/// all heads' scores, their softmax weights, then the V accumulation of up to four heads at once.
/// Each head's operations keep their order; only heads interleave differently.
GC_512BW static void attend_quantized_tiles(int k_type, const uint8_t *keys, long k_row_bytes,
                                            int v_type, const uint8_t *values, long v_row_bytes,
                                            const uint8_t *q8, long q_bytes, int heads, int head_dim, float scale,
                                            long begin, long end, float *ms, float *vkq32, float *tile) {
    float *w = tile;
    uint8_t *moved = (uint8_t *)(w + (long)heads * FA_TILE);
    const int group = head_dim == 64 ? 4 : head_dim == 128 ? 2 : 1;
    for (long first = begin; first < end; first += FA_TILE) {
        const int n = end - first < FA_TILE ? (int)(end - first) : FA_TILE;
        tile_scores(k_type, keys, k_row_bytes, first, n, q8, q_bytes, heads, head_dim, scale, w);
        for (int g = 0; g < heads; ++g) tile_softmax(w + (long)g * FA_TILE, n, ms + 2 * g, moved + (long)g * FA_TILE);
        for (int g0 = 0; g0 < heads; g0 += group) {
            const int gn = heads - g0 < group ? heads - g0 : group;
            float *acc = vkq32 + (long)g0 * head_dim, *m = ms + 2 * g0;
            const float *wg = w + (long)g0 * FA_TILE;
            const uint8_t *mg = moved + (long)g0 * FA_TILE;
#define ACCUMULATE(G, D) tile_accumulate(v_type, values, v_row_bytes, first, n, acc, m, wg, mg, G, D)
            switch (head_dim << 3 | gn) {
            case 64 << 3 | 1: ACCUMULATE(1, 64); break;
            case 64 << 3 | 2: ACCUMULATE(2, 64); break;
            case 64 << 3 | 3: ACCUMULATE(3, 64); break;
            case 64 << 3 | 4: ACCUMULATE(4, 64); break;
            case 128 << 3 | 1: ACCUMULATE(1, 128); break;
            case 128 << 3 | 2: ACCUMULATE(2, 128); break;
            case 256 << 3 | 1: ACCUMULATE(1, 256); break;
            default: ACCUMULATE(1, head_dim); break;
            }
#undef ACCUMULATE
        }
    }
}
/// Scores (K·q)·scale + 0 of positions first ..< first + n for `heads` query rows (f16-rounded
/// floats, `head_dim` apart) over f16 keys of head size 64: each dot as dots_f16_avx512 takes it
/// (four 16-lane fma chains, (s0 + s2) + (s1 + s3), then reduce16), 16 positions' reductions at
/// once through reduce16x16. Each 16-position block of keys is widened once for all heads.
GC_512BW static void tile_scores_f16(const uint16_t *keys, long k_row_halves, long first, int n, const float *q,
                                     int heads, float scale, float *scores) {
    float widened[16][64];
    for (int i = 0; i < n; i += 16) {
        for (int j = 0; j < 16; ++j) {
            const uint16_t *k = keys + (first + (i + j < n ? i + j : n - 1)) * k_row_halves;
            for (int c = 0; c < 4; ++c) _mm512_storeu_ps(widened[j] + 16 * c, load_h16(k + 16 * c));
        }
        for (int g = 0; g < heads; ++g) {
            const float *qg = q + (long)g * 64;
            const __m512 q0 = _mm512_loadu_ps(qg), q1 = _mm512_loadu_ps(qg + 16), q2 = _mm512_loadu_ps(qg + 32),
                         q3 = _mm512_loadu_ps(qg + 48), zero = _mm512_setzero_ps();
            __m512 sums[16];
            for (int j = 0; j < 16; ++j) {
                const float *k = widened[j];
                const __m512 s0 = _mm512_fmadd_ps(_mm512_loadu_ps(k), q0, zero);
                const __m512 s1 = _mm512_fmadd_ps(_mm512_loadu_ps(k + 16), q1, zero);
                const __m512 s2 = _mm512_fmadd_ps(_mm512_loadu_ps(k + 32), q2, zero);
                const __m512 s3 = _mm512_fmadd_ps(_mm512_loadu_ps(k + 48), q3, zero);
                sums[j] = _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3));
            }
            const __m512 s = _mm512_add_ps(_mm512_mul_ps(reduce16x16(sums), _mm512_set1_ps(scale)), zero);
            _mm512_storeu_ps(scores + (long)g * FA_TILE + i, s);
        }
    }
}

/// f32 → f16 → f32, nearest even: ggml_vec_mad_f16's and ggml_vec_scale_f16's rounding of each
/// widened result.
GC_512 static inline __m512 round_f16(__m512 x) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/// tile_accumulate for f16 values and an f16 accumulator of head size 64 (the widened halves of
/// ggml_vec_mad_f16 / ggml_vec_scale_f16: every result rounded to f16), `heads` ≤ 4 at once.
GC_512BW static inline __attribute__((always_inline)) void tile_accumulate_f16(
        const uint16_t *values, long v_row_halves, long first, int n, uint16_t *vkq, long vkq_stride, float *ms,
        const float *w, const uint8_t *moved, const int heads) {
    __m512 acc[16], weight[4];
    float S[4];
    for (int g = 0; g < heads; ++g) {
        S[g] = ms[2 * g + 1];
        for (int i = 0; i < 4; ++i) acc[4 * g + i] = load_h16(vkq + g * vkq_stride + 16 * i);
    }
    for (int p = 0; p < n; ++p) {
        for (int g = 0; g < heads; ++g) {
            const float wg = w[g * FA_TILE + p];
            if (moved[g * FA_TILE + p]) {
                weight[g] = _mm512_set1_ps(wg);
                for (int i = 0; i < 4; ++i) acc[4 * g + i] = round_f16(_mm512_mul_ps(acc[4 * g + i], weight[g]));
                weight[g] = _mm512_set1_ps(1.0f);
                S[g] = fmaf(S[g], wg, 1.0f);
            } else {
                weight[g] = _mm512_set1_ps(wg);
                S[g] = fmaf(S[g], 1.0f, wg);
            }
        }
        const uint16_t *row = values + (first + p) * v_row_halves;
        for (int i = 0; i < 4; ++i) {
            const __m512 v = load_h16(row + 16 * i);
            for (int g = 0; g < heads; ++g) acc[4 * g + i] = round_f16(_mm512_fmadd_ps(v, weight[g], acc[4 * g + i]));
        }
    }
    for (int g = 0; g < heads; ++g) {
        ms[2 * g + 1] = S[g];
        for (int i = 0; i < 4; ++i)
            _mm256_storeu_si256((__m256i *)(vkq + g * vkq_stride + 16 * i),
                                _mm512_cvtps_ph(acc[4 * g + i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}

/// attend_quantized_tiles for f16 keys and values of head size 64 (f16_tiles_apply): the query
/// rows are f16-rounded floats, the accumulators f16 (`vkq_stride` halves apart).
GC_512BW static void attend_f16_tiles(const uint16_t *keys, long k_row_halves, const uint16_t *values, long v_row_halves,
                                      const float *q, int heads, float scale, long begin, long end, float *ms,
                                      uint16_t *vkq, long vkq_stride, float *tile) {
    float *w = tile;
    uint8_t *moved = (uint8_t *)(w + (long)heads * FA_TILE);
    for (long first = begin; first < end; first += FA_TILE) {
        const int n = end - first < FA_TILE ? (int)(end - first) : FA_TILE;
        tile_scores_f16(keys, k_row_halves, first, n, q, heads, scale, w);
        for (int g = 0; g < heads; ++g) tile_softmax(w + (long)g * FA_TILE, n, ms + 2 * g, moved + (long)g * FA_TILE);
        for (int g0 = 0; g0 < heads; g0 += 4) {
            uint16_t *acc = vkq + g0 * vkq_stride;
            float *m = ms + 2 * g0;
            const float *wg = w + (long)g0 * FA_TILE;
            const uint8_t *mg = moved + (long)g0 * FA_TILE;
            switch (heads - g0 < 4 ? heads - g0 : 4) {
            case 1: tile_accumulate_f16(values, v_row_halves, first, n, acc, vkq_stride, m, wg, mg, 1); break;
            case 2: tile_accumulate_f16(values, v_row_halves, first, n, acc, vkq_stride, m, wg, mg, 2); break;
            case 3: tile_accumulate_f16(values, v_row_halves, first, n, acc, vkq_stride, m, wg, mg, 3); break;
            default: tile_accumulate_f16(values, v_row_halves, first, n, acc, vkq_stride, m, wg, mg, 4); break;
            }
        }
    }
}

static int expf8_matches_libm(void) {
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        c = 1;
        float x[8], e[8];
        for (int i = 0; i < 4096 + 8 && c; i += 8) {
            for (int j = 0; j < 8; ++j) {
                const int k = i + j;
                // Spread over [-104, 0] (a prime stride through the range), then the edges.
                x[j] = k < 4096 ? -104.0f * (float)((k * 2657) % 4096) / 4096.0f - (float)k * 1e-7f
                                : (const float[]){-88.0f, -87.99999f, -0.0f, -INFINITY, -1e-30f, -103.97f, -150.0f, NAN}[k - 4096];
            }
            expf8_glibc_array(x, e);
            for (int j = 0; j < 8; ++j) {
                const float ref = expf(x[j]);
                if (memcmp(&ref, &e[j], 4) != 0 && !(isnan(ref) && isnan(e[j]))) c = 0;
            }
        }
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c;
}

long swiftlet_fa_expf_mismatches(float lo, float hi) {
    if (!has_avx512bw() || !expf8_matches_libm()) return -1;
    long bad = 0;
    float x[8], e[8];
    int filled = 0;
    // Every float in [lo, hi], walked by bit pattern (lo ≤ hi ≤ 0: patterns fall from lo to hi).
    uint32_t from, to;
    memcpy(&from, &lo, 4);
    memcpy(&to, &hi, 4);
    for (uint32_t u = from;; --u) {
        memcpy(&x[filled++], &u, 4);
        if (filled == 8 || u == to) {
            expf8_glibc_array(x, e);
            for (int j = 0; j < filled; ++j) {
                const float ref = expf(x[j]);
                bad += memcmp(&ref, &e[j], 4) != 0;
            }
            filled = 0;
        }
        if (u == to) break;
    }
    return bad;
}
#else
static int quantized_tiles_apply(int k_type, int v_type, int head_dim) { (void)k_type; (void)v_type; (void)head_dim; return 0; }
static int f16_tiles_apply(int k_type, int v_type, int head_dim) { (void)k_type; (void)v_type; (void)head_dim; return 0; }
long swiftlet_fa_expf_mismatches(float lo, float hi) { (void)lo; (void)hi; return -1; }
#endif

// MARK: - One chunk

long swiftlet_fa_attend_scratch(int rows, int head_dim) {
    // Per row: VKQ32, VKQ16, the converted query, M and S; one widened V row; tile weights and flags.
    const long tile = (long)rows * (FA_TILE + FA_TILE / 4) + 16;
    return (long)rows * (4L * head_dim + 2) + head_dim + 16 + tile;
}

void swiftlet_fa_attend(const float *q, long q_stride, int tokens, int heads, int first_pos, int head_dim,
                        int k_type, const void *keys, long k_row_bytes,
                        int v_type, const void *values, long v_row_bytes,
                        int window, float scale, long kv_begin, long kv_end,
                        float *scratch, float *out, long out_stride, float *partials) {
    const int D = head_dim, simd = has_avx512();
    const int v16 = v_type == SWIFTLET_FA_F16;
    // Per row: VKQ32 [D] | VKQ16 [D halves, D floats reserved] | converted q [D floats] | M, S.
    float *vkq32 = scratch, *vkq16f = vkq32 + (long)heads * D, *qconv = vkq16f + (long)heads * D;
    float *ms = qconv + (long)heads * D, *v32 = ms + 2L * heads;
    const int variant = simd ? swiftlet_qk_best_variant() : SWIFTLET_QK_GENERIC;
    float dots[64];
    for (int t = 0; t < tokens; ++t) {
        const int pos = first_pos + t;
        long begin = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
        if (begin < kv_begin) begin = kv_begin;
        const long end = pos + 1 < kv_end ? pos + 1 : kv_end;
        for (int g = 0; g < heads; ++g) {
            const float *qg = q + t * q_stride + (long)g * D;
            float *qc = qconv + (long)g * D;
            if (k_type == SWIFTLET_FA_F16) {
                for (int i = 0; i < D; ++i) qc[i] = h2f(f2h(qg[i]));
            } else {
                swiftlet_qk_quantize_act(variant, has_min(k_type) ? 9 : 8, qg, qc, D);
            }
            ms[2 * g] = -INFINITY;
            ms[2 * g + 1] = 0.0f;
            if (v16) memset(vkq16f + (long)g * D, 0, sizeof(uint16_t) * D);
            else memset(vkq32 + (long)g * D, 0, sizeof(float) * D);
        }
        if (simd && quantized_tiles_apply(k_type, v_type, D)) {
#ifdef GC_X86
            attend_quantized_tiles(k_type, keys, k_row_bytes, v_type, values, v_row_bytes, (const uint8_t *)qconv,
                                   4L * D, heads, D, scale, begin, end, ms, vkq32, v32 + D + 16);
#endif
        } else if (simd && f16_tiles_apply(k_type, v_type, D)) {
#ifdef GC_X86
            attend_f16_tiles((const uint16_t *)keys, k_row_bytes / 2, (const uint16_t *)values, v_row_bytes / 2, qconv, heads,
                             scale, begin, end, ms, (uint16_t *)vkq16f, 2L * D, v32 + D + 16);
#endif
        } else for (long ic = begin; ic < end; ++ic) {
            const uint8_t *krow = (const uint8_t *)keys + ic * k_row_bytes;
            const uint8_t *vrow = (const uint8_t *)values + ic * v_row_bytes;
            for (int g0 = 0; g0 < heads; g0 += 64) {
                const int gn = heads - g0 < 64 ? heads - g0 : 64;
                key_dots(k_type, krow, qconv + (long)g0 * D, D, gn, D, simd, dots);
                if (!v16 && g0 == 0) dequantize_row(v_type, vrow, v32, D, simd);
                for (int gi = 0; gi < gn; ++gi) {
                    const int g = g0 + gi;
                    const float s = dots[gi] * scale + 0.0f;   // + the mask's 0
                    float *M = ms + 2 * g, *S = M + 1;
                    float mscale = 1.0f, vs = 1.0f;
                    if (s > *M) {
                        const float old = *M;
                        *M = s;
                        mscale = expf(old - s);
                        if (v16) scale_f16((uint16_t *)(vkq16f + (long)g * D), mscale, D, simd);
                        else scale_f32(vkq32 + (long)g * D, mscale, D, simd);
                    } else {
                        vs = expf(s - *M);
                    }
                    if (v16) mad_f16((uint16_t *)(vkq16f + (long)g * D), (const uint16_t *)vrow, vs, D, simd);
                    else mad_f32(vkq32 + (long)g * D, v32, vs, D, simd);
                    *S = fmaf(*S, mscale, vs);
                }
            }
        }
        for (int g = 0; g < heads; ++g) {
            float *acc = vkq32 + (long)g * D;
            if (v16) {
                const uint16_t *h = (const uint16_t *)(vkq16f + (long)g * D);
                for (int i = 0; i < D; ++i) acc[i] = h2f(h[i]);
            }
            const float M = ms[2 * g], S = ms[2 * g + 1];
            if (partials) {
                float *p = partials + ((long)t * heads + g) * (D + 2);
                p[0] = M;
                p[1] = S;
                memcpy(p + 2, acc, sizeof(float) * D);
            } else {
                const float inv = S == 0.0f ? 0.0f : 1.0f / S;
                float *o = out + t * out_stride + (long)g * D;
                for (int i = 0; i < D; ++i) o[i] = acc[i] * inv;
            }
        }
    }
}

void swiftlet_fa_reduce(const float *partials, long chunk_stride, int chunks, int head_dim, float *out) {
    float M = -INFINITY, S = 0.0f;
    for (int i = 0; i < head_dim; ++i) out[i] = 0.0f;
    for (int c = 0; c < chunks; ++c) {
        const float *p = partials + c * chunk_stride;
        const float Mc = p[0], Sc = p[1];
        if (Sc == 0.0f) continue;
        const float Mn = fmaxf(M, Mc);
        const float old = expf(M - Mn), fresh = expf(Mc - Mn);
        for (int i = 0; i < head_dim; ++i) out[i] = fmaf(out[i], old, p[2 + i] * fresh);
        S = fmaf(S, old, Sc * fresh);
        M = Mn;
    }
    if (S != 0.0f) {
        const float inv = 1.0f / S;
        for (int i = 0; i < head_dim; ++i) out[i] = out[i] * inv;
    }
}

// MARK: - Tiled

enum { TILE = 64 };

long swiftlet_fa_tiled_scratch(int rows, int head_dim) {
    return 2L * TILE * head_dim + (long)rows * (TILE + 2L * head_dim + 2) + 16;
}

/// C[m×n] += A[m×k] · B[k×n] (row-major), each element one fma chain over k in order, starting
/// from C (simd_gemm's order).
static void gemm_acc_scalar(float *C, const float *A, const float *B, int m, int k, int n) {
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            float acc = C[(long)i * n + j];
            for (int l = 0; l < k; ++l) acc = fmaf(B[(long)l * n + j], A[(long)i * k + l], acc);
            C[(long)i * n + j] = acc;
        }
}

#ifdef GC_X86
/// gemm_acc_scalar for n a multiple of 16: 4 rows × 64 columns of accumulators at a time.
GC_512 static void gemm_acc_avx512(float *C, const float *A, const float *B, int m, int k, int n) {
    int i = 0;
    for (; i + 4 <= m; i += 4) {
        int j = 0;
        for (; j + 64 <= n; j += 64) {
            __m512 acc[4][4];
            for (int r = 0; r < 4; ++r)
                for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_loadu_ps(C + (long)(i + r) * n + j + 16 * c);
            for (int l = 0; l < k; ++l) {
                __m512 b[4];
                for (int c = 0; c < 4; ++c) b[c] = _mm512_loadu_ps(B + (long)l * n + j + 16 * c);
                for (int r = 0; r < 4; ++r) {
                    const __m512 a = _mm512_set1_ps(A[(long)(i + r) * k + l]);
                    for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_fmadd_ps(b[c], a, acc[r][c]);
                }
            }
            for (int r = 0; r < 4; ++r)
                for (int c = 0; c < 4; ++c) _mm512_storeu_ps(C + (long)(i + r) * n + j + 16 * c, acc[r][c]);
        }
        for (; j < n; j += 16) {
            __m512 acc[4];
            for (int r = 0; r < 4; ++r) acc[r] = _mm512_loadu_ps(C + (long)(i + r) * n + j);
            for (int l = 0; l < k; ++l) {
                const __m512 b = _mm512_loadu_ps(B + (long)l * n + j);
                for (int r = 0; r < 4; ++r) acc[r] = _mm512_fmadd_ps(b, _mm512_set1_ps(A[(long)(i + r) * k + l]), acc[r]);
            }
            for (int r = 0; r < 4; ++r) _mm512_storeu_ps(C + (long)(i + r) * n + j, acc[r]);
        }
    }
    for (; i < m; ++i)
        for (int j = 0; j < n; j += 16) {
            __m512 acc = _mm512_loadu_ps(C + (long)i * n + j);
            for (int l = 0; l < k; ++l)
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(B + (long)l * n + j), _mm512_set1_ps(A[(long)i * k + l]), acc);
            _mm512_storeu_ps(C + (long)i * n + j, acc);
        }
}

GC_512 static double softmax_tile_avx512(float *w, float max) {
    double sum = 0;
    for (int j = 0; j < TILE; j += 16) {
        const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(w + j), _mm512_set1_ps(max)));
        _mm512_storeu_ps(w + j, e);
        float lanes[16];
        _mm512_storeu_ps(lanes, e);
        sum += (double)reduce16(lanes);
    }
    return sum;
}
#endif

#ifdef GC_X86
GC_512 static void f16_to_f32_avx512(const uint16_t *x, float *y, long n) {
    for (long i = 0; i < n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
}

/// The score tile of one row: scaled (row · scale + 0), −∞ outside positions [lo, pos] (tile
/// starts at position ic); returns its maximum. A row holding NaN takes the scalar chain, whose
/// pick among NaNs is order-dependent; otherwise the maximum is the same value (at most the sign
/// of a zero differs, which no later step can see).
GC_512 static float mask_scale_max_avx512(float *row, int ic, int lo, int pos, float scale) {
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 s = _mm512_set1_ps(scale), zero = _mm512_setzero_ps(), ninf = _mm512_set1_ps(-INFINITY);
    __m512 m = ninf;
    __mmask16 nan = 0;
    for (int j0 = 0; j0 < TILE; j0 += 16) {
        const __m512i j = _mm512_add_epi32(_mm512_set1_epi32(ic + j0), lanes);
        const __mmask16 visible = _mm512_cmpge_epi32_mask(j, _mm512_set1_epi32(lo)) & _mm512_cmple_epi32_mask(j, _mm512_set1_epi32(pos));
        const __m512 v = _mm512_mask_blend_ps(visible, ninf, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(row + j0), s), zero));
        _mm512_storeu_ps(row + j0, v);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, v);
    }
    if (nan) {
        float tile_max = -INFINITY;
        for (int tk = 0; tk < TILE; ++tk) tile_max = tile_max > row[tk] ? tile_max : row[tk];
        return tile_max;
    }
    return _mm512_reduce_max_ps(m);
}
#endif

/// y[i] = x[i] widened from f16 (exact, so the vector conversion and h2f agree).
static void f16_to_f32(const uint16_t *x, float *y, long n, int simd) {
#ifdef GC_X86
    if (simd && n % 16 == 0) { f16_to_f32_avx512(x, y, n); return; }
#endif
    (void)simd;
    for (long i = 0; i < n; ++i) y[i] = h2f(x[i]);
}

static void gemm_acc(float *C, const float *A, const float *B, int m, int k, int n, int simd) {
#ifdef GC_X86
    if (simd && n % 16 == 0) { gemm_acc_avx512(C, A, B, m, k, n); return; }
#endif
    (void)simd;
    gemm_acc_scalar(C, A, B, m, k, n);
}

/// ggml_vec_soft_max_f32 over one 64-score tile: w = exp(w − max) in 16-lane chunks (ggml's
/// vectorised expf), the sum of each chunk's reduction added in double.
static double softmax_tile(float *w, float max, int simd) {
#ifdef GC_X86
    if (simd) return softmax_tile_avx512(w, max);
#endif
    (void)simd;
    double sum = 0;
    for (int j = 0; j < TILE; j += 16) {
        for (int l = 0; l < 16; ++l) w[j + l] = gc_expf_body(w[j + l] - max);
        sum += (double)reduce16(w + j);
    }
    return sum;
}

void swiftlet_fa_tiled(const float *q, long q_stride, int tokens, int heads, int first_pos, int head_dim,
                       const uint16_t *keys, const uint16_t *values, int window, float scale,
                       float *scratch, float *out, long out_stride) {
    const int D = head_dim, R = tokens * heads, simd = has_avx512();
    float *kt = scratch, *v32 = kt + (long)TILE * D, *kq = v32 + (long)TILE * D;
    float *qc = kq + (long)R * TILE, *vkq = qc + (long)R * D, *M = vkq + (long)R * D, *S = M + R;
    for (int t = 0; t < tokens; ++t)
        for (int g = 0; g < heads; ++g) memcpy(qc + ((long)t * heads + g) * D, q + t * q_stride + (long)g * D, sizeof(float) * D);
    memset(vkq, 0, sizeof(float) * R * D);
    for (int r = 0; r < R; ++r) { M[r] = -INFINITY; S[r] = 0.0f; }
    const int last = first_pos + tokens - 1;
    int lo0 = window > 0 ? first_pos - window + 1 : 0;
    if (lo0 < 0) lo0 = 0;
    for (int ic = lo0 - lo0 % TILE; ic <= last; ic += TILE) {
        // The tile's keys widened in row order (v32 is free until the values), then transposed.
        f16_to_f32(keys + (long)ic * D, v32, (long)TILE * D, simd);
        for (int tk = 0; tk < TILE; ++tk)
            for (int d = 0; d < D; ++d) kt[(long)d * TILE + tk] = v32[(long)tk * D + d];
        memset(kq, 0, sizeof(float) * R * TILE);
        gemm_acc(kq, qc, kt, R, D, TILE, simd);
        for (int t = 0; t < tokens; ++t) {
            const int pos = first_pos + t;
            const int lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
            for (int g = 0; g < heads; ++g) {
                float *row = kq + ((long)t * heads + g) * TILE;
                const int r = t * heads + g;
                float tile_max = -INFINITY;
#ifdef GC_X86
                if (simd) tile_max = mask_scale_max_avx512(row, ic, lo, pos, scale);
                else
#endif
                {
                    for (int tk = 0; tk < TILE; ++tk) {
                        const int j = ic + tk;
                        row[tk] = (j < lo || j > pos) ? -INFINITY : row[tk] * scale + 0.0f;
                    }
                    for (int tk = 0; tk < TILE; ++tk) tile_max = tile_max > row[tk] ? tile_max : row[tk];
                }
                if (tile_max == -INFINITY) {
                    memset(row, 0, sizeof(float) * TILE);
                    continue;
                }
                const float Mnew = fmaxf(M[r], tile_max);
                if (Mnew > M[r]) {
                    const float ms = expf(M[r] - Mnew);
                    scale_f32(vkq + (long)r * D, ms, D, simd);
                    S[r] = S[r] * ms;
                }
                M[r] = Mnew;
                S[r] = (float)((double)S[r] + softmax_tile(row, Mnew, simd));
            }
        }
        f16_to_f32(values + (long)ic * D, v32, (long)TILE * D, simd);
        gemm_acc(vkq, kq, v32, R, TILE, D, simd);
    }
    for (int t = 0; t < tokens; ++t)
        for (int g = 0; g < heads; ++g) {
            const int r = t * heads + g;
            const float inv = S[r] == 0.0f ? 0.0f : 1.0f / S[r];
            float *o = out + t * out_stride + (long)g * D;
            for (int i = 0; i < D; ++i) o[i] = vkq[(long)r * D + i] * inv;
        }
}
