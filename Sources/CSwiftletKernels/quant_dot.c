// Quantized dot-product kernels: generic C variants, activation quantizers and the run-time
// dispatch. The x86 SIMD variants come from quant_dot_x86.h, compiled twice (AVX2, AVX-512 VNNI);
// the ARM64 ones from quant_dot_arm.h, compiled three times (NEON, dotprod, dotprod + i8mm).
#include "quant_dot.h"
#include "quant_blocks.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// MARK: - Generic C (the portable fallback; bit-for-bit the integer sums of the Swift reference)

typedef float (*row_dot_fn)(int n, const void *w, const void *a);

static float dot_f32_generic(int n, const void *w, const void *a) {
    const float *x = (const float *)w, *y = (const float *)a; float s = 0;
    for (int i = 0; i < n; ++i) s += x[i] * y[i];
    return s;
}
static float dot_f16_generic(int n, const void *w, const void *a) {
    const uint16_t *x = (const uint16_t *)w; const float *y = (const float *)a; float s = 0;
    for (int i = 0; i < n; ++i) s += h2f(x[i]) * y[i];
    return s;
}
static float dot_bf16_generic(int n, const void *w, const void *a) {
    const uint16_t *x = (const uint16_t *)w; const float *y = (const float *)a; float s = 0;
    for (int i = 0; i < n; ++i) s += bf2f(x[i]) * y[i];
    return s;
}
// The 32-weight block formats follow llama.cpp's x86 order exactly (vec_dot_*_q8_* and tinyBLAS
// agree): per block the combined scale d = d_w · d_a (exact in f32: two 11-bit mantissas), eight
// int32 lane sums of 4 consecutive products, each accumulated as acc[i] = fma(d, lane_i, acc[i])
// in block order; then hsum ((acc[i] + acc[i+4]), pairs 0+2 / 1+3, then those two) and, for
// Q4_1 / Q5_1, + Σ fma(m_w, s_a) accumulated separately. Explicit fmaf, one operation per
// statement, so no compiler contraction changes the order.

/// Level j (0..31, element order) of a 32-weight block, as the signed value it stands for
/// (Q4_1 / Q5_1: the unsigned level, their min is applied separately). Always inlined, so each
/// caller's constant `type` folds the switch out of the inner loops.
static inline __attribute__((always_inline)) int level_b32(int type, const uint8_t *wb, int j) {
    const int hi = j >= 16, k = j & 15;
    switch (type) {
    case T_Q4_0: return ((hi ? wb[2 + k] >> 4 : wb[2 + k] & 0xF)) - 8;
    case T_Q4_1: return hi ? wb[4 + k] >> 4 : wb[4 + k] & 0xF;
    case T_Q5_0: {
        uint32_t qh; memcpy(&qh, wb + 2, 4);
        return ((hi ? wb[6 + k] >> 4 : wb[6 + k] & 0xF) | (int)(((qh >> j) & 1) << 4)) - 16;
    }
    case T_Q5_1: {
        uint32_t qh; memcpy(&qh, wb + 4, 4);
        return (hi ? wb[8 + k] >> 4 : wb[8 + k] & 0xF) | (int)(((qh >> j) & 1) << 4);
    }
    case T_Q8_0: return (int8_t)wb[2 + j];
    default: return kvalues_iq4[hi ? wb[2 + k] >> 4 : wb[2 + k] & 0xF];   // IQ4_NL
    }
}

/// The horizontal sum of 8 lanes in the order of ggml's hsum_float_8.
static float hsum8_ordered(const float *acc) {
    const float s0 = acc[0] + acc[4], s1 = acc[1] + acc[5], s2 = acc[2] + acc[6], s3 = acc[3] + acc[7];
    const float t0 = s0 + s2, t1 = s1 + s3;
    return t0 + t1;
}

static inline __attribute__((always_inline)) float dot_b32_generic(int type, int n, const void *w, const void *a) {
    const int wsize = type == T_Q4_1 ? 20 : type == T_Q5_0 ? 22 : type == T_Q5_1 ? 24 : type == T_Q8_0 ? 34 : 18;
    const int with_min = type == T_Q4_1 || type == T_Q5_1;
    const int asize = with_min ? 36 : 34, aq = with_min ? 4 : 2;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, summs = 0;
    for (int b = 0; b < n / QK; ++b) {
        const uint8_t *wb = (const uint8_t *)w + (size_t)b * wsize, *ab = (const uint8_t *)a + (size_t)b * asize;
        uint16_t wd, ad; memcpy(&wd, wb, 2); memcpy(&ad, ab, 2);
        const float d = h2f(wd) * h2f(ad);
        for (int i = 0; i < 8; ++i) {
            int lane = 0;
            for (int j = 4 * i; j < 4 * i + 4; ++j) lane += level_b32(type, wb, j) * (int8_t)ab[aq + j];
            acc[i] = fmaf(d, (float)lane, acc[i]);
        }
        if (with_min) {
            uint16_t wm, as; memcpy(&wm, wb + 2, 2); memcpy(&as, ab + 2, 2);
            summs = fmaf(h2f(wm), h2f(as), summs);
        }
    }
    const float s = hsum8_ordered(acc);
    return with_min ? s + summs : s;
}
static float dot_q4_0_generic(int n, const void *w, const void *a) { return dot_b32_generic(T_Q4_0, n, w, a); }
static float dot_q4_1_generic(int n, const void *w, const void *a) { return dot_b32_generic(T_Q4_1, n, w, a); }
static float dot_q5_0_generic(int n, const void *w, const void *a) { return dot_b32_generic(T_Q5_0, n, w, a); }
static float dot_q5_1_generic(int n, const void *w, const void *a) { return dot_b32_generic(T_Q5_1, n, w, a); }
static float dot_q8_0_generic(int n, const void *w, const void *a) { return dot_b32_generic(T_Q8_0, n, w, a); }
static float dot_iq4_nl_generic(int n, const void *w, const void *a) { return dot_b32_generic(T_IQ4_NL, n, w, a); }
// Per-super-block float steps of the k-quants without a fixed SIMD order, shared with the ARM
// kernels so both compile the same expressions (whatever contraction the compiler applies).
static inline float kq_add_scaled(float s, float yd, float d, int scaled) { return s + yd * d * (float)scaled; }
static inline float kq_add_q8_K(float s, float xd, float yd, int isum) { return s + xd * yd * (float)isum; }
static float dot_q8_K_generic(int n, const void *w, const void *a) {
    const blk_q8_K *x = w; const blk_q8_K *y = a; float s = 0;
    for (int b = 0; b < n / QKK; ++b) {
        int isum = 0;
        for (int j = 0; j < 256; ++j) isum += x[b].qs[j] * y[b].qs[j];
        s = kq_add_q8_K(s, x[b].d, y[b].d, isum);
    }
    return s;
}
// Q2_K and Q5_K: the order of llama.cpp's tiled k-quant matmul (kq_tiled_add), which it takes for
// 8 or more tokens; its vec_dot order (fewer tokens) is not reproduced. Q3_K and IQ4_XS: with
// `tiled` the same, otherwise per super-block s += da · d · S.
static float dot_q2_K_generic(int n, const void *w, const void *a) {
    const blk_q2_K *x = w; const blk_q8_K *y = a; float s = 0;
    for (int b = 0; b < n / QKK; ++b) {
        int scaled = 0, mins = 0;
        for (int sb = 0; sb < 16; ++sb) {
            int isum = 0;
            for (int i = 0; i < 16; ++i) {
                int k = 16 * sb + i;
                int q = (x[b].qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
                isum += q * y[b].qs[k];
            }
            scaled += (x[b].scales[sb] & 0xF) * isum;
            mins += (x[b].scales[sb] >> 4) * y[b].bsums[sb];
        }
        s = kq_tiled_add(s, y[b].d, h2f(x[b].d), h2f(x[b].dmin), scaled, mins);
    }
    return s;
}
static float dot_q3_K_ordered(int n, const void *w, const void *a, int tiled) {
    const blk_q3_K *x = w; const blk_q8_K *y = a; float s = 0;
    int8_t sc[16];
    for (int b = 0; b < n / QKK; ++b) {
        q3k_scales(x[b].scales, sc);
        int scaled = 0;
        for (int sb = 0; sb < 16; ++sb) {
            int isum = 0;
            for (int i = 0; i < 16; ++i) {
                int k = 16 * sb + i;
                int low = (x[b].qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
                int high = (x[b].hmask[k % 32] >> (k / 32)) & 1;
                isum += (low - (high ? 0 : 4)) * y[b].qs[k];
            }
            scaled += sc[sb] * isum;
        }
        s = tiled ? kq_tiled_add(s, y[b].d, h2f(x[b].d), 0, scaled, 0) : kq_add_scaled(s, y[b].d, h2f(x[b].d), scaled);
    }
    return s;
}
/// Q4_K in llama.cpp's x86 repacked-kernel order: `grouped` (a token in a whole group of 4, gemm)
/// accumulates per 64 weights, otherwise (gemv) per 256. Products and FMAs as separate steps.
static float dot_q4_K_ordered(int n, const void *w, const void *a, int grouped) {
    const blk_q4_K *x = w; const blk_q8_K *y = a;
    float acc = 0, accm = 0;
    uint8_t sc[8], mn[8];
    for (int b = 0; b < n / QKK; ++b) {
        k4_scales_mins(x[b].scales, sc, mn);
        const float dd = h2f(x[b].d) * y[b].d;
        const float dm = h2f(x[b].dmin) * y[b].d;
        int scaled = 0, mins = 0;
        for (int k = 0; k < 4; ++k) {
            for (int sb = 2 * k; sb < 2 * k + 2; ++sb) {
                const uint8_t *q = x[b].qs + 32 * (sb / 2);
                const int8_t *ya = y[b].qs + 32 * sb;
                int isum = 0;
                for (int i = 0; i < 32; ++i) isum += ((sb & 1) ? q[i] >> 4 : q[i] & 0xF) * ya[i];
                scaled += sc[sb] * isum;
                mins += mn[sb] * (y[b].bsums[2 * sb] + y[b].bsums[2 * sb + 1]);
            }
            if (grouped) {
                acc = fmaf((float)scaled, dd, acc);
                accm = fmaf((float)mins, dm, accm);
                scaled = 0; mins = 0;
            }
        }
        if (!grouped) {
            acc = fmaf((float)scaled, dd, acc);
            accm = fmaf((float)mins, dm, accm);
        }
    }
    return acc - accm;
}
static float dot_q4_K_generic(int n, const void *w, const void *a) { return dot_q4_K_ordered(n, w, a, 0); }
static float dot_q5_K_generic(int n, const void *w, const void *a) {
    const blk_q5_K *x = w; const blk_q8_K *y = a; float s = 0;
    uint8_t sc[8], mn[8];
    for (int b = 0; b < n / QKK; ++b) {
        k4_scales_mins(x[b].scales, sc, mn);
        int scaled = 0, mins = 0;
        for (int sb = 0; sb < 8; ++sb) {
            const uint8_t *q = x[b].qs + 32 * (sb / 2);
            const int8_t *ya = y[b].qs + 32 * sb;
            int isum = 0;
            for (int i = 0; i < 32; ++i) {
                int v = ((sb & 1) ? q[i] >> 4 : q[i] & 0xF) | (((x[b].qh[i] >> sb) & 1) << 4);
                isum += v * ya[i];
            }
            scaled += sc[sb] * isum;
            mins += mn[sb] * (y[b].bsums[2 * sb] + y[b].bsums[2 * sb + 1]);
        }
        s = kq_tiled_add(s, y[b].d, h2f(x[b].d), h2f(x[b].dmin), scaled, mins);
    }
    return s;
}
/// Q6_K in ggml_vec_dot_q6_K_q8_K's AVX2 order: 8 integer lanes per super-block (lane k: weights
/// 4k..4k+3 of every 32, scaled, minus 32 · Σ bsum·scale of sub-blocks 2k and 2k+1), each lane
/// accumulated by an FMA across super-blocks, then the lanes summed ((0+4)+(2+6))+((1+5)+(3+7)).
/// With `tiled`, the order of llama.cpp's tiled k-quant matmul (8 or more tokens): per super-block
/// y = fma((float)S · d, da, y) with S the exact integer dot.
static float dot_q6_K_ordered(int n, const void *w, const void *a, int tiled) {
    const blk_q6_K *x = w; const blk_q8_K *y = a;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, out = 0;
    for (int b = 0; b < n / QKK; ++b) {
        const float d = y[b].d * h2f(x[b].d);
        int lane[8];
        for (int k = 0; k < 8; ++k)
            lane[k] = -32 * (y[b].bsums[2 * k] * x[b].scales[2 * k] + y[b].bsums[2 * k + 1] * x[b].scales[2 * k + 1]);
        for (int e = 0; e < QKK; ++e) {
            const int h = e / 128, c = (e % 128) / 32, l = e % 32;
            const uint8_t qlb = x[b].ql[64 * h + l + ((c & 1) ? 32 : 0)];
            const int low = c < 2 ? qlb & 0xF : qlb >> 4;
            const int high = (x[b].qh[32 * h + l] >> (2 * c)) & 3;
            const int scale = x[b].scales[8 * h + 2 * c + (l >= 16)];
            lane[(l / 4) % 8] += scale * (low | (high << 4)) * y[b].qs[e];
        }
        if (tiled) {
            int total = 0;
            for (int k = 0; k < 8; ++k) total += lane[k];
            const float r = (float)total * h2f(x[b].d);
            out = fmaf(r, y[b].d, out);
        } else {
            for (int k = 0; k < 8; ++k) acc[k] = fmaf(d, (float)lane[k], acc[k]);
        }
    }
    if (tiled) return out;
    const float s04 = acc[0] + acc[4], s15 = acc[1] + acc[5], s26 = acc[2] + acc[6], s37 = acc[3] + acc[7];
    const float even = s04 + s26, odd = s15 + s37;
    return even + odd;
}
static float dot_q6_K_generic(int n, const void *w, const void *a) { return dot_q6_K_ordered(n, w, a, 0); }
static float dot_iq4_xs_ordered(int n, const void *w, const void *a, int tiled) {
    const blk_iq4_xs *x = w; const blk_q8_K *y = a; float s = 0;
    for (int b = 0; b < n / QKK; ++b) {
        int scaled = 0;
        for (int ib = 0; ib < 8; ++ib) {
            int ls = (((x[b].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((x[b].scales_h >> (2 * ib)) & 3) << 4)) - 32;
            const uint8_t *q = x[b].qs + 16 * ib; const int8_t *ya = y[b].qs + 32 * ib;
            int isum = 0;
            for (int j = 0; j < 16; ++j) isum += kvalues_iq4[q[j] & 0xF] * ya[j] + kvalues_iq4[q[j] >> 4] * ya[j + 16];
            scaled += ls * isum;
        }
        s = tiled ? kq_tiled_add(s, y[b].d, h2f(x[b].d), 0, scaled, 0) : kq_add_scaled(s, y[b].d, h2f(x[b].d), scaled);
    }
    return s;
}
static float dot_q3_K_generic(int n, const void *w, const void *a) { return dot_q3_K_ordered(n, w, a, 0); }
static float dot_iq4_xs_generic(int n, const void *w, const void *a) { return dot_iq4_xs_ordered(n, w, a, 0); }

/// The row dot of `type` in the order llama.cpp's x86 CPU backend takes for a product of `ntok`
/// tokens (token `t`): Q4_K whole groups of 4 the repacked gemm order; the other k-quants the
/// tiled matmul's order from 8 tokens on.
static float ordered_dot(int type, int n, const void *w, const void *a, int t, int ntok) {
    const int tiled = ntok >= 8;
    switch (type) {
    case T_Q4_K: return dot_q4_K_ordered(n, w, a, t < ntok - ntok % 4);
    case T_Q6_K: return dot_q6_K_ordered(n, w, a, tiled);
    case T_Q2_K: return dot_q2_K_generic(n, w, a);
    case T_Q3_K: return dot_q3_K_ordered(n, w, a, tiled);
    case T_Q5_K: return dot_q5_K_generic(n, w, a);
    case T_IQ4_XS: return dot_iq4_xs_ordered(n, w, a, tiled);
    default: return 0;
    }
}

// MARK: - llama.cpp's repacked orders (ggml-cpu's "repack" buffer type on x86)

/// Q4_0 / IQ4_NL repacked to 8x8 rows, its gemm and gemv alike: one f32 chain per output,
/// y = fma(float(S_b), d_w·d_a, y) per block, S_b the block's exact integer dot.
static float dot_b32_chain_generic(int type, int n, const void *w, const void *a) {
    float y = 0;
    for (int b = 0; b < n / QK; ++b) {
        const uint8_t *wb = (const uint8_t *)w + (size_t)b * 18, *ab = (const uint8_t *)a + (size_t)b * 34;
        int sum = 0;
        for (int j = 0; j < QK; ++j) sum += level_b32(type, wb, j) * (int8_t)ab[2 + j];
        uint16_t wd, ad; memcpy(&wd, wb, 2); memcpy(&ad, ab, 2);
        y = fmaf((float)sum, h2f(wd) * h2f(ad), y);
    }
    return y;
}

/// Q2_K repacked to 8x8 rows (AVX-512): two chains, acc = fma(float(S), d·d_a, acc) and
/// accm = fma(float(M), dmin·d_a, accm), S = Σ scale·dot and M = Σ min·bsum exact integers, taken
/// per super-block by its gemv and per 128-weight half by its gemm (`halves`); result acc − accm.
static float dot_q2_K_repacked_generic(int n, const void *w, const void *a, int halves) {
    const blk_q2_K *x = w; const blk_q8_K *y = a;
    float acc = 0, accm = 0;
    for (int b = 0; b < n / QKK; ++b) {
        const float dd = h2f(x[b].d) * y[b].d, dm = h2f(x[b].dmin) * y[b].d;
        int scaled = 0, mins = 0;
        for (int sb = 0; sb < 16; ++sb) {
            int isum = 0;
            for (int i = 0; i < 16; ++i) {
                const int k = 16 * sb + i;
                isum += ((x[b].qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3) * y[b].qs[k];
            }
            scaled += (x[b].scales[sb] & 0xF) * isum;
            mins += (x[b].scales[sb] >> 4) * y[b].bsums[sb];
            if (sb % 8 == 7 && (halves || sb == 15)) {
                acc = fmaf((float)scaled, dd, acc);
                accm = fmaf((float)mins, dm, accm);
                scaled = mins = 0;
            }
        }
    }
    return acc - accm;
}

/// SWIFTLET_NO_REPACK=1 (or any value but 0): the order of llama.cpp run with --no-repack (-nr).
static int no_repack_requested(void) {
    static _Atomic int state = -1;
    int v = atomic_load_explicit(&state, memory_order_relaxed);
    if (v < 0) {
        const char *env = getenv("SWIFTLET_NO_REPACK");
        v = env && *env && strcmp(env, "0") != 0;
        atomic_store_explicit(&state, v, memory_order_relaxed);
    }
    return v;
}

int swiftlet_qk_llama_repacks(int type, int64_t nrows, int cpu) {
    if (nrows <= 0 || nrows % 8 != 0) return 0;
    int avx2 = 0, avx512 = 0;
    if (cpu == SWIFTLET_REPACK_CPU_RUNNING) {
        if (no_repack_requested()) return 0;
#if defined(__x86_64__) || defined(__i386__)
        avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        avx512 = avx2 && __builtin_cpu_supports("avx512f");
#endif
    } else {
        avx2 = cpu == SWIFTLET_REPACK_CPU_AVX2 || cpu == SWIFTLET_REPACK_CPU_AVX512;
        avx512 = cpu == SWIFTLET_REPACK_CPU_AVX512;
    }
    switch (type) {
    case T_Q4_0: case T_IQ4_NL: case T_Q4_K: return avx2;
    case T_Q2_K: return avx512;
    default: return 0;
    }
}

/// 1 when `repacked` changes the order of `type` (Q4_K takes its repacked order either way).
static int repacked_order(int type, int repacked) {
    return repacked && (type == T_Q4_0 || type == T_IQ4_NL || type == T_Q2_K);
}

static row_dot_fn generic_dot(int type) {
    switch (type) {
    case T_F32: return dot_f32_generic;
    case T_F16: return dot_f16_generic;
    case T_BF16: return dot_bf16_generic;
    case T_Q4_0: return dot_q4_0_generic;
    case T_Q4_1: return dot_q4_1_generic;
    case T_Q5_0: return dot_q5_0_generic;
    case T_Q5_1: return dot_q5_1_generic;
    case T_Q8_0: return dot_q8_0_generic;
    case T_IQ4_NL: return dot_iq4_nl_generic;
    case T_Q8_K: return dot_q8_K_generic;
    case T_Q2_K: return dot_q2_K_generic;
    case T_Q3_K: return dot_q3_K_generic;
    case T_Q4_K: return dot_q4_K_generic;
    case T_Q5_K: return dot_q5_K_generic;
    case T_Q6_K: return dot_q6_K_generic;
    case T_IQ4_XS: return dot_iq4_xs_generic;
    default: return 0;
    }
}

static int gemm_generic(int type, int repacked, int n, const void *w, size_t w_stride, int nrows,
                        const void *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    row_dot_fn dot = generic_dot(type);
    if (!dot) return -1;
    if (repacked_order(type, repacked)) {
        for (int r = 0; r < nrows; ++r)
            for (int t = 0; t < ntok; ++t) {
                const char *wr = (const char *)w + (size_t)r * w_stride, *at = (const char *)a + (size_t)t * a_stride;
                y[(size_t)t * y_stride + r] = type == T_Q2_K ? dot_q2_K_repacked_generic(n, wr, at, t < ntok - ntok % 4)
                                                             : dot_b32_chain_generic(type, n, wr, at);
            }
        return 0;
    }
    const int ordered = type == T_Q2_K || type == T_Q3_K || type == T_Q4_K || type == T_Q5_K
                     || type == T_Q6_K || type == T_IQ4_XS;
    for (int r = 0; r < nrows; ++r)
        for (int t = 0; t < ntok; ++t) {
            const char *wr = (const char *)w + (size_t)r * w_stride, *at = (const char *)a + (size_t)t * a_stride;
            y[(size_t)t * y_stride + r] = ordered ? ordered_dot(type, n, wr, at, t, ntok) : dot(n, wr, at);
        }
    return 0;
}

// MARK: - Activation quantizers (generic)

// As ggml's x86 quantize_row_q8_0 / q8_1: d = amax / 127, but the multiplier is 127 / amax (not
// 1 / d), products rounded to nearest even; Q8_1's s = fp16(d · Σq).
static void quantize_q8_0_generic(const float *x, void *out, int n, int with_sum) {
    char *o = out;
    const size_t bs = with_sum ? sizeof(blk_q8_1) : sizeof(blk_q8_0);
    for (int b = 0; b < n / QK; ++b, o += bs) {
        const float *xb = x + QK * b;
        float amax = 0;
        for (int j = 0; j < QK; ++j) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.f, id = amax != 0 ? 127.f / amax : 0.f;
        int8_t *qs = (int8_t *)(o + (with_sum ? 4 : 2));
        int sum = 0;
        for (int j = 0; j < QK; ++j) { int v = (int)nearbyintf(xb[j] * id); qs[j] = (int8_t)v; sum += v; }
        uint16_t hd = f2h(d); memcpy(o, &hd, 2);
        if (with_sum) { uint16_t hs = f2h(d * (float)sum); memcpy(o + 2, &hs, 2); }
    }
}

/// quantize_row_q8_K_ref: the sign of the block's first largest-magnitude value sets the scale's
/// sign. With `grouped` (llama.cpp's 4-row quantize_mat_q8_K, used for tokens in whole groups of
/// 4 of a repacked Q4_K matmul) the scale is negative whenever +max occurs, whatever comes first.
static void quantize_q8_K_generic(const float *x, void *out, int n, int grouped) {
    blk_q8_K *y = out;
    for (int b = 0; b < n / QKK; ++b) {
        const float *xb = x + QKK * b;
        float max = 0, amax = 0;
        for (int j = 0; j < QKK; ++j) { float ax = fabsf(xb[j]); if (ax > amax) { amax = ax; max = xb[j]; } }
        if (amax == 0) { memset(&y[b], 0, sizeof(blk_q8_K)); continue; }
        if (grouped) {
            max = -amax;
            for (int j = 0; j < QKK; ++j) if (xb[j] == amax) { max = amax; break; }
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QKK; ++j) { int v = (int)nearbyintf(iscale * xb[j]); y[b].qs[j] = (int8_t)(v > 127 ? 127 : v); }
        for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int i = 0; i < 16; ++i) s += y[b].qs[16 * j + i];
            y[b].bsums[j] = (int16_t)s;
        }
        y[b].d = 1 / iscale;
    }
}

// MARK: - x86 variants

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QK_VARIANT avx2
#define QK_TARGET __attribute__((target("avx2,fma,f16c")))
#define QK_VNNI 0
#include "quant_dot_x86.h"
#undef QK_VARIANT
#undef QK_TARGET
#undef QK_VNNI
#define QK_VARIANT avx512vnni
#define QK_TARGET __attribute__((target("avx512vnni,avx512bw,avx512vl,avx512f,avx2,fma,f16c")))
#define QK_VNNI 1
#include "quant_dot_x86.h"
#undef QK_VARIANT
#undef QK_TARGET
#undef QK_VNNI
#endif

// MARK: - ARM64 variants

#if defined(__aarch64__)
#include <arm_neon.h>
#if defined(__linux__) || defined(__ANDROID__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#define QK_VARIANT neon
#define QK_TARGET
#define QK_DOTPROD 0
#define QK_I8MM 0
#include "quant_dot_arm.h"
#undef QK_VARIANT
#undef QK_TARGET
#undef QK_DOTPROD
#undef QK_I8MM
#define QK_VARIANT dotprod
#define QK_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#define QK_DOTPROD 1
#define QK_I8MM 0
#include "quant_dot_arm.h"
#undef QK_VARIANT
#undef QK_TARGET
#undef QK_DOTPROD
#undef QK_I8MM
#define QK_VARIANT i8mm
#define QK_TARGET __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
#define QK_DOTPROD 1
#define QK_I8MM 1
#include "quant_dot_arm.h"
#undef QK_VARIANT
#undef QK_TARGET
#undef QK_DOTPROD
#undef QK_I8MM

/// 1 when the CPU reports the feature (Linux / Android: the auxiliary vector; Apple: sysctl).
static int arm_has_feature(int i8mm) {
#if defined(__linux__) || defined(__ANDROID__)
    if (!i8mm) return (getauxval(AT_HWCAP) & (1UL << 20)) != 0;    // HWCAP_ASIMDDP
    return (getauxval(AT_HWCAP2) & (1UL << 13)) != 0;              // HWCAP2_I8MM
#elif defined(__APPLE__)
    int value = 0;
    size_t size = sizeof(value);
    if (sysctlbyname(i8mm ? "hw.optional.arm.FEAT_I8MM" : "hw.optional.arm.FEAT_DotProd", &value, &size, NULL, 0) != 0) return 0;
    return value != 0;
#else
    (void)i8mm;
    return 0;
#endif
}
#endif

// MARK: - Dispatch

int swiftlet_qk_variant_supported(int variant) {
    switch (variant) {
    case SWIFTLET_QK_GENERIC: return 1;
#if defined(__x86_64__) || defined(__i386__)
    case SWIFTLET_QK_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case SWIFTLET_QK_AVX512VNNI:
        return swiftlet_qk_variant_supported(SWIFTLET_QK_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__)
    case SWIFTLET_QK_NEON: return 1;
    case SWIFTLET_QK_DOTPROD: {
        static int cached = -1;
        int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
        if (c < 0) { c = arm_has_feature(0); __atomic_store_n(&cached, c, __ATOMIC_RELAXED); }
        return c;
    }
    case SWIFTLET_QK_I8MM: {
        static int cached = -1;
        int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
        if (c < 0) { c = arm_has_feature(0) && arm_has_feature(1); __atomic_store_n(&cached, c, __ATOMIC_RELAXED); }
        return c;
    }
#endif
    default: return 0;
    }
}

int swiftlet_qk_best_variant(void) {
    static int best = -1;
    if (best < 0) {
        int v = SWIFTLET_QK_GENERIC;
        if (swiftlet_qk_variant_supported(SWIFTLET_QK_AVX512VNNI)) v = SWIFTLET_QK_AVX512VNNI;
        else if (swiftlet_qk_variant_supported(SWIFTLET_QK_AVX2)) v = SWIFTLET_QK_AVX2;
        else if (swiftlet_qk_variant_supported(SWIFTLET_QK_I8MM)) v = SWIFTLET_QK_I8MM;
        else if (swiftlet_qk_variant_supported(SWIFTLET_QK_DOTPROD)) v = SWIFTLET_QK_DOTPROD;
        else if (swiftlet_qk_variant_supported(SWIFTLET_QK_NEON)) v = SWIFTLET_QK_NEON;
        best = v;
    }
    return best;
}

const char *swiftlet_qk_variant_name(int variant) {
    switch (variant) {
    case SWIFTLET_QK_GENERIC: return "generic";
    case SWIFTLET_QK_AVX2: return "avx2";
    case SWIFTLET_QK_AVX512VNNI: return "avx512vnni";
    case SWIFTLET_QK_NEON: return "neon";
    case SWIFTLET_QK_DOTPROD: return "neon+dotprod";
    case SWIFTLET_QK_I8MM: return "neon+dotprod+i8mm";
    default: return "unknown";
    }
}

int swiftlet_qk_has_type(int type) { return generic_dot(type) != 0; }

int swiftlet_qk_block_bytes(int type) {
    switch (type) {
    case T_F32: return 4;
    case T_F16: case T_BF16: return 2;
    case T_Q4_0: return sizeof(blk_q4_0);
    case T_Q4_1: return sizeof(blk_q4_1);
    case T_Q5_0: return sizeof(blk_q5_0);
    case T_Q5_1: return sizeof(blk_q5_1);
    case T_Q8_0: return sizeof(blk_q8_0);
    case T_Q8_1: return sizeof(blk_q8_1);
    case T_IQ4_NL: return sizeof(blk_iq4_nl);
    case T_Q2_K: return sizeof(blk_q2_K);
    case T_Q3_K: return sizeof(blk_q3_K);
    case T_Q4_K: return sizeof(blk_q4_K);
    case T_Q5_K: return sizeof(blk_q5_K);
    case T_Q6_K: return sizeof(blk_q6_K);
    case T_Q8_K: return sizeof(blk_q8_K);
    case T_IQ4_XS: return sizeof(blk_iq4_xs);
    default: return 0;
    }
}

int swiftlet_qk_activation_type(int type) {
    switch (type) {
    case T_F32: case T_F16: case T_BF16: return T_F32;
    case T_Q4_0: case T_Q5_0: case T_Q8_0: case T_IQ4_NL: return T_Q8_0;
    case T_Q4_1: case T_Q5_1: case T_Q8_1: return T_Q8_1;
    case T_Q2_K: case T_Q3_K: case T_Q4_K: case T_Q5_K: case T_Q6_K: case T_Q8_K: case T_IQ4_XS: return T_Q8_K;
    default: return -1;
    }
}

int swiftlet_qk_quantize_act(int variant, int act_type, const float *x, void *out, int n) {
    if (!swiftlet_qk_variant_supported(variant)) return -1;
#if defined(__x86_64__) || defined(__i386__)
    if (variant != SWIFTLET_QK_GENERIC) {
        switch (act_type) {
        case T_Q8_0: quantize_q8_x_avx2(x, out, n, 0); return 0;
        case T_Q8_1: quantize_q8_x_avx2(x, out, n, 1); return 0;
        case T_Q8_K: quantize_q8_K_avx2(x, out, n, 0); return 0;
        default: return -1;
        }
    }
#endif
#if defined(__aarch64__)
    if (variant != SWIFTLET_QK_GENERIC) {
        switch (act_type) {
        case T_Q8_0: arm_quantize_q8_x(x, out, n, 0); return 0;
        case T_Q8_1: arm_quantize_q8_x(x, out, n, 1); return 0;
        case T_Q8_K: arm_quantize_q8_K(x, out, n, 0); return 0;
        default: return -1;
        }
    }
#endif
    switch (act_type) {
    case T_Q8_0: quantize_q8_0_generic(x, out, n, 0); return 0;
    case T_Q8_1: quantize_q8_0_generic(x, out, n, 1); return 0;
    case T_Q8_K: quantize_q8_K_generic(x, out, n, 0); return 0;
    default: return -1;
    }
}

// Test-only slowdown for the regression gate (scripts/bench-gate.sh): SWIFTLET_GATE_INJECT=N adds
// N extra passes over every activation row quantized, so the gate can show it catches a known
// regression. Unset, it costs one relaxed load per row.
static int injected_passes(void) {
    static _Atomic int passes = -1;
    int p = atomic_load_explicit(&passes, memory_order_relaxed);
    if (p < 0) {
        const char *env = getenv("SWIFTLET_GATE_INJECT");
        p = env ? atoi(env) : 0;
        if (p < 0) p = 0;
        atomic_store_explicit(&passes, p, memory_order_relaxed);
    }
    return p;
}

static void injected_slowdown(const float *x, int n) {
    int passes = injected_passes();
    if (passes == 0) return;
    volatile float sink = 0;
    for (int p = 0; p < passes; ++p) {
        float sum = 0;
        for (int i = 0; i < n; ++i) sum += x[i];
        sink += sum;
    }
}

int swiftlet_qk_quantize_row(int variant, int weight_type, const float *x, void *out, int n, int token, int ntok) {
    return swiftlet_qk_quantize_row_layout(variant, weight_type, 0, x, out, n, token, ntok);
}

int swiftlet_qk_quantize_row_layout(int variant, int weight_type, int repacked, const float *x, void *out, int n,
                                    int token, int ntok) {
    injected_slowdown(x, n);
    const int grouped_q8_K = weight_type == T_Q4_K || (weight_type == T_Q2_K && repacked);
    if (grouped_q8_K && token < ntok - ntok % 4) {
        if (!swiftlet_qk_variant_supported(variant)) return -1;
#if defined(__x86_64__) || defined(__i386__)
        if (variant != SWIFTLET_QK_GENERIC) { quantize_q8_K_avx2(x, out, n, 1); return 0; }
#endif
#if defined(__aarch64__)
        if (variant != SWIFTLET_QK_GENERIC) { arm_quantize_q8_K(x, out, n, 1); return 0; }
#endif
        quantize_q8_K_generic(x, out, n, 1);
        return 0;
    }
    const int act_type = swiftlet_qk_activation_type(weight_type);
    if (act_type < 0 || !generic_dot(weight_type)) return -1;
    if (act_type == T_F32) { memcpy(out, x, (size_t)n * sizeof(float)); return 0; }
    return swiftlet_qk_quantize_act(variant, act_type, x, out, n);
}

int swiftlet_qk_gemm(int variant, int type, int n, const void *w, size_t w_stride, int nrows,
                     const void *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    return swiftlet_qk_gemm_layout(variant, type, 0, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
}

int swiftlet_qk_gemm_layout(int variant, int type, int repacked, int n, const void *w, size_t w_stride, int nrows,
                            const void *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    if (!swiftlet_qk_variant_supported(variant)) return -1;
    repacked = repacked_order(type, repacked);
#if defined(__x86_64__) || defined(__i386__)
    if (repacked && variant != SWIFTLET_QK_GENERIC) {
        const int rc = variant == SWIFTLET_QK_AVX512VNNI
            ? gemm_repacked_avx512vnni(type, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride)
            : gemm_repacked_avx2(type, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
        if (rc == 0) return 0;
    } else if (variant == SWIFTLET_QK_AVX512VNNI) {
        int rc = gemm_avx512vnni(type, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
        if (rc == 0) return 0;
    } else if (variant == SWIFTLET_QK_AVX2) {
        int rc = gemm_avx2(type, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
        if (rc == 0) return 0;
    }
#endif
#if defined(__aarch64__)
    if (variant != SWIFTLET_QK_GENERIC && !repacked) {
        const int rc = variant == SWIFTLET_QK_I8MM ? gemm_i8mm(type, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride)
                     : variant == SWIFTLET_QK_DOTPROD ? gemm_dotprod(type, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride)
                     : gemm_neon(type, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
        if (rc == 0) return 0;
    }
#endif
    return gemm_generic(type, repacked, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
}
