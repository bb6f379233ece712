#ifndef SWIFTLET_GC_INTERNAL_H
#define SWIFTLET_GC_INTERNAL_H
#pragma STDC FP_CONTRACT OFF
// Building blocks shared by the llama.cpp-exact kernels (ggml_compat.c, flash_attn.c): f16
// conversions, ggml's 16-lane reduction order, its vectorised expf, CPU dispatch. Not public.
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define GC_X86 1
#define GC_512 __attribute__((target("avx512f,avx512dq,fma,f16c")))
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#define GC_NEON 1
#endif

// MARK: - Scalar building blocks (the oracle)

/// f32 → f16 bits, round to nearest even (portable; x86 paths use F16C).
static inline uint16_t f2h(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000, a = x & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(sign | (a > 0x7f800000u ? 0x7e00 : 0x7c00));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);            // rounds past 65504
    if (a < 0x38800000u) {                                              // f16 subnormal or zero
        float m; memcpy(&m, &a, 4);
        return (uint16_t)(sign | (uint32_t)nearbyintf(m * 0x1p24f));   // exact scaling, RNE
    }
    return (uint16_t)(sign | ((a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13));
}

static inline float h2f(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) { const float v = (float)m * 0x1p-24f; return sign ? -v : v; }
    const uint32_t bits = sign | (e == 31 ? 0x7f800000u | (m << 13) : ((e + 112) << 23) | (m << 13));
    float f; memcpy(&f, &bits, 4);
    return f;
}

static inline float f16_round(float x) { return h2f(f2h(x)); }

/// The order of ggml's 16-lane horizontal sum (GCC's _mm512_reduce_add_ps; tinyBLAS's hsum):
/// halves, then quarters, then pairs (0,2)(1,3), then the last two.
static inline float reduce16(const float *v) {
    float l[8], m[4];
    for (int i = 0; i < 8; ++i) l[i] = v[i] + v[i + 8];
    for (int i = 0; i < 4; ++i) m[i] = l[i] + l[i + 4];
    const float n0 = m[0] + m[2], n1 = m[1] + m[3];
    return n0 + n1;
}

static inline float gc_expf_body(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    if (fabsf(n) > 192) return n <= 0 ? 0.0f : INFINITY;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n);
}

/// ggml_vec_dot_f16's order (four 16-lane accumulators over 64-element steps, combined (0+2),
/// (1+3), then (0+1), reduced, widened to double; leftovers added in double) of f16 `a` with `b`
/// (f16 values held as floats).
float swiftlet_gc_dot_vec_f16(const uint16_t *a, const float *b, long k);

/// 1 while swiftlet_gc_select(1) forces the portable paths.
int swiftlet_gc_portable_only(void);

/// Converts query row `q` (`n` floats) in place to the dot type of keys of block type `k_type`
/// (Q8_0, or Q8_1 for Q4_1 / Q5_1), as ggml's mul_mat converts its f32 operand; the blocks then
/// start at `q`. Defined in flash_attn.c.
void swiftlet_fa_query_to_dot_type(int k_type, float *q, int n);

/// ggml's vec_dot of one key row of block type `k_type` with a query converted by
/// swiftlet_fa_query_to_dot_type, or with `tinyblas` llamafile's tinyBLAS order (differs for
/// IQ4_NL only). Defined in flash_attn.c.
float swiftlet_fa_key_dot(int k_type, const void *krow, const void *qconv, int n, int tinyblas);

#ifdef GC_X86
static inline int has_avx512(void) {
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        __builtin_cpu_init();
        c = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma")
            && __builtin_cpu_supports("f16c");
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c && !swiftlet_gc_portable_only();
}

GC_512 static inline __m512 exp512(__m512 x) {
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __mmask16 d = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    const __m512 res = _mm512_scalef_ps(j, n);
    if (!d) return res;
    const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ),
                                            _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
    return _mm512_mask_blend_ps(d, res, alt);
}

/// r[i] = reduce16(v[i]) for 16 vectors at once, with reduce16's pairing: halves, quarters,
/// then the (0,2)(1,3) pairs, then the last two — as a transposing add network.
GC_512 static inline __m512 reduce16x16(const __m512 *v) {
    __m512 s1[8], s2[4], s3[2];
    for (int p = 0; p < 8; ++p) {
        const __m512 a = v[2 * p], b = v[2 * p + 1];
        s1[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    for (int p = 0; p < 4; ++p) {
        const __m512 a = s1[2 * p], b = s1[2 * p + 1];
        s2[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    for (int p = 0; p < 2; ++p) {
        const __m512 a = s2[2 * p], b = s2[2 * p + 1];
        s3[p] = _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(s3[0], s3[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_ps(s3[0], s3[1], _MM_SHUFFLE(3, 1, 3, 1)));
    // Lane 4q + k now holds vector 4k + q.
    const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(order, r);
}

GC_512 static inline __m512 load_h16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
#else
static inline int has_avx512(void) { return 0; }
#endif

#endif
