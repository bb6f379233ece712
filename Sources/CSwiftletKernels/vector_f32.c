// f32 vector kernels with run-time dispatch; see include/vector_f32.h.
#include "vector_f32.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SWIFTLET_X86 1
#endif

// Cephes expf: x = n·ln2 + r, |r| ≤ ln2/2, exp(r) by a degree-6 polynomial, 2^n by exponent bits.
#define EXP_HI 88.3762626647949f
#define EXP_LO -87.3365447504019f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define P0 1.9875691500e-4f
#define P1 1.3981999507e-3f
#define P2 8.3334519073e-3f
#define P3 4.1665795894e-2f
#define P4 1.6666665459e-1f
#define P5 5.0000001201e-1f
#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT2 0.7071067811865476f
// Abramowitz–Stegun 7.1.26 erf (absolute error < 1.5e-7).
#define ERF_P 0.3275911f
#define ERF_A1 0.254829592f
#define ERF_A2 -0.284496736f
#define ERF_A3 1.421413741f
#define ERF_A4 -1.453152027f
#define ERF_A5 1.061405429f

// ---- generic C --------------------------------------------------------------------------------

static float dot_generic(const float *a, const float *b, long n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static void softmax_generic(float *x, long n) {
    if (n <= 0) return;
    float m = -INFINITY;
    for (long i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) {
        for (long i = 0; i < n; i++) x[i] = 0;
        return;
    }
    float s = 0;
    for (long i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    const float inv = 1.0f / s;
    for (long i = 0; i < n; i++) x[i] *= inv;
}

static float erf_as(float x) {
    const float ax = fabsf(x);
    const float t = 1.0f / (1.0f + ERF_P * ax);
    const float p = ((((ERF_A5 * t + ERF_A4) * t + ERF_A3) * t + ERF_A2) * t + ERF_A1) * t;
    const float y = 1.0f - p * expf(-ax * ax);
    return x < 0 ? -y : y;
}

static void silu_generic(float *x, long n) {
    for (long i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

static void swiglu_generic(const float *g, const float *u, float *o, long n) {
    for (long i = 0; i < n; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void gelu_tanh_generic(float *x, long n) {
    for (long i = 0; i < n; i++) {
        const float v = x[i];
        const float u = 2.0f * SQRT_2_OVER_PI * (v + 0.044715f * v * v * v);
        x[i] = v / (1.0f + expf(-u));
    }
}

static void gelu_erf_generic(float *x, long n) {
    for (long i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erf_as(x[i] * INV_SQRT2));
}

#ifdef SWIFTLET_X86
// ---- AVX-512F -------------------------------------------------------------------------------

#define T512 __attribute__((target("avx512f,fma")))

T512 static inline __m512 exp512(__m512 x) {
    const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(EXP_HI));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    // scalef gives correct subnormals, zero and infinity for the whole clamped range.
    __m512 y = _mm512_scalef_ps(p, n);
    y = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-104.0f), _CMP_NLT_UQ), y);
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_HI), _CMP_GT_OQ), _mm512_set1_ps(INFINITY));
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

T512 static inline __m512 loadn512(const float *p, long n) {
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}

T512 static inline void storen512(float *p, __m512 v, long n) {
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), v);
}

T512 static float dot_avx512(const float *a, const float *b, long n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    long i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) s1 = _mm512_fmadd_ps(loadn512(a + i, n - i), loadn512(b + i, n - i), s1);
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

T512 static void softmax_avx512(float *x, long n) {
    if (n <= 0) return;
    __m512 vm = _mm512_set1_ps(-INFINITY);
    long i = 0;
    for (; i + 16 <= n; i += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(x + i));
    float m = _mm512_reduce_max_ps(vm);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) {
        for (i = 0; i < n; i++) x[i] = 0;
        return;
    }
    vm = _mm512_set1_ps(m);
    __m512 vs = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        _mm512_storeu_ps(x + i, e);
        vs = _mm512_add_ps(vs, e);
    }
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm)));
        _mm512_mask_storeu_ps(x + i, k, e);
        vs = _mm512_add_ps(vs, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vs));
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    if (i < n) storen512(x + i, _mm512_mul_ps(loadn512(x + i, n - i), inv), n - i);
}

T512 static inline __m512 silu512(__m512 v) {
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
}

T512 static inline __m512 gelu_tanh512(__m512 v) {
    const __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
    const __m512 u = _mm512_mul_ps(_mm512_set1_ps(-2.0f * SQRT_2_OVER_PI),
                                   _mm512_fmadd_ps(v3, _mm512_set1_ps(0.044715f), v));
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(u)));
}

T512 static inline __m512 gelu_erf512(__m512 v) {
    const __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(INV_SQRT2));
    const __m512 az = _mm512_abs_ps(z);
    const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(az, _mm512_set1_ps(ERF_P), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(ERF_A5);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ERF_A4));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ERF_A3));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ERF_A2));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ERF_A1));
    p = _mm512_mul_ps(p, t);
    const __m512 e = exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), az), az));
    __m512 y = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
    // erf is odd: copy z's sign onto y.
    y = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y),
                                            _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32((int)0x80000000))));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), y));
}

#define MAP512(name, fn)                                                        \
    T512 static void name(float *x, long n) {                                   \
        long i = 0;                                                             \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, fn(_mm512_loadu_ps(x + i))); \
        if (i < n) storen512(x + i, fn(loadn512(x + i, n - i)), n - i);         \
    }
MAP512(silu_avx512, silu512)
MAP512(gelu_tanh_avx512, gelu_tanh512)
MAP512(gelu_erf_avx512, gelu_erf512)

T512 static void swiglu_avx512(const float *g, const float *u, float *o, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(o + i, _mm512_mul_ps(silu512(_mm512_loadu_ps(g + i)), _mm512_loadu_ps(u + i)));
    if (i < n) storen512(o + i, _mm512_mul_ps(silu512(loadn512(g + i, n - i)), loadn512(u + i, n - i)), n - i);
}

// ---- AVX2 + FMA -----------------------------------------------------------------------------

#define T256 __attribute__((target("avx2,fma")))

T256 static inline __m256 exp256(__m256 x) {
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // n ∈ [−126, 128]: 2^n as 2^(n−1)·2 so that n = 128 stays finite before the final multiply.
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(126)), 23);
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(bits)), _mm256_set1_ps(2.0f));
    y = _mm256_and_ps(y, _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LO), _CMP_NLT_UQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(EXP_HI), _CMP_GT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

T256 static float dot_avx2(const float *a, const float *b, long n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    float total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; i < n; i++) total += a[i] * b[i];
    return total;
}

T256 static void softmax_avx2(float *x, long n) {
    if (n <= 0) return;
    float m = -INFINITY;
    for (long i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) {
        for (long i = 0; i < n; i++) x[i] = 0;
        return;
    }
    const __m256 vm = _mm256_set1_ps(m);
    __m256 vs = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        vs = _mm256_add_ps(vs, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vs);
    float s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    const float inv = 1.0f / s;
    for (i = 0; i < n; i++) x[i] *= inv;
}

T256 static inline __m256 silu256(__m256 v) {
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp256(_mm256_sub_ps(_mm256_setzero_ps(), v))));
}

T256 static inline __m256 gelu_tanh256(__m256 v) {
    const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
    const __m256 u = _mm256_mul_ps(_mm256_set1_ps(-2.0f * SQRT_2_OVER_PI), _mm256_fmadd_ps(v3, _mm256_set1_ps(0.044715f), v));
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp256(u)));
}

T256 static inline __m256 gelu_erf256(__m256 v) {
    const __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(INV_SQRT2));
    const __m256 sign = _mm256_and_ps(z, _mm256_set1_ps(-0.0f));
    const __m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(az, _mm256_set1_ps(ERF_P), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(ERF_A5);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ERF_A4));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ERF_A3));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ERF_A2));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ERF_A1));
    p = _mm256_mul_ps(p, t);
    const __m256 e = exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), az), az));
    const __m256 y = _mm256_or_ps(_mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f)), sign);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), y));
}

#define MAP256(name, fn, tail)                                                   \
    T256 static void name(float *x, long n) {                                    \
        long i = 0;                                                              \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, fn(_mm256_loadu_ps(x + i))); \
        if (i < n) tail(x + i, n - i);                                           \
    }
MAP256(silu_avx2, silu256, silu_generic)
MAP256(gelu_tanh_avx2, gelu_tanh256, gelu_tanh_generic)
MAP256(gelu_erf_avx2, gelu_erf256, gelu_erf_generic)

T256 static void swiglu_avx2(const float *g, const float *u, float *o, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(o + i, _mm256_mul_ps(silu256(_mm256_loadu_ps(g + i)), _mm256_loadu_ps(u + i)));
    if (i < n) swiglu_generic(g + i, u + i, o + i, n - i);
}
#endif

// ---- dispatch -------------------------------------------------------------------------------

typedef struct {
    float (*dot)(const float *, const float *, long);
    void (*softmax)(float *, long);
    void (*silu)(float *, long);
    void (*swiglu)(const float *, const float *, float *, long);
    void (*gelu_tanh)(float *, long);
    void (*gelu_erf)(float *, long);
    const char *name;
} vector_variant;

static const vector_variant generic_variant = {dot_generic, softmax_generic, silu_generic, swiglu_generic,
                                               gelu_tanh_generic, gelu_erf_generic, "generic"};
#ifdef SWIFTLET_X86
static const vector_variant avx2_variant = {dot_avx2, softmax_avx2, silu_avx2, swiglu_avx2,
                                            gelu_tanh_avx2, gelu_erf_avx2, "avx2+fma"};
static const vector_variant avx512_variant = {dot_avx512, softmax_avx512, silu_avx512, swiglu_avx512,
                                              gelu_tanh_avx512, gelu_erf_avx512, "avx512f"};
#endif

static const vector_variant *best_vector_variant(void) {
#ifdef SWIFTLET_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return &avx512_variant;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &avx2_variant;
#endif
    return &generic_variant;
}

// Chosen once; a racing first call stores the same pointer.
static const vector_variant *active_variant;

static inline const vector_variant *variant(void) {
    const vector_variant *v = __atomic_load_n(&active_variant, __ATOMIC_ACQUIRE);
    if (!v) {
        v = best_vector_variant();
        __atomic_store_n(&active_variant, v, __ATOMIC_RELEASE);
    }
    return v;
}

void swiftlet_vector_f32_select(int which) {
    const vector_variant *best = best_vector_variant();
    const vector_variant *chosen = best;
    if (which == 1) chosen = &generic_variant;
#ifdef SWIFTLET_X86
    if (which == 2 && best != &generic_variant) chosen = &avx2_variant;
#endif
    __atomic_store_n(&active_variant, chosen, __ATOMIC_RELEASE);
}

const char *swiftlet_vector_f32_kernel_name(void) { return variant()->name; }

float swiftlet_dot_f32(const float *a, const float *b, long n) { return variant()->dot(a, b, n); }
void swiftlet_softmax_f32(float *x, long n) { variant()->softmax(x, n); }
void swiftlet_silu_f32(float *x, long n) { variant()->silu(x, n); }
void swiftlet_swiglu_f32(const float *g, const float *u, float *o, long n) { variant()->swiglu(g, u, o, n); }
void swiftlet_gelu_tanh_f32(float *x, long n) { variant()->gelu_tanh(x, n); }
void swiftlet_gelu_erf_f32(float *x, long n) { variant()->gelu_erf(x, n); }
