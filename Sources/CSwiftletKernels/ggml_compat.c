// Operations that reproduce llama.cpp's CPU results bit for bit; see include/ggml_compat.h.
// Fused multiply-adds are written out (fmaf / _mm512_fmadd_ps) exactly where ggml's compiled code
// has them; nothing else may be contracted.
#pragma STDC FP_CONTRACT OFF

#include "ggml_compat.h"

#include "gc_internal.h"

#include <pthread.h>

float swiftlet_gc_expf(float x) { return gc_expf_body(x); }

static int portable_only;
void swiftlet_gc_select(int portable) { __atomic_store_n(&portable_only, portable, __ATOMIC_RELAXED); }
int swiftlet_gc_portable_only(void) { return __atomic_load_n(&portable_only, __ATOMIC_RELAXED); }

#ifdef GC_NEON
// ARM64: NEON versions of the portable loops, each element computed by the same operations in
// the same order (4-lane vectors standing in for ggml's 16-lane chunks where it matters).
static int use_neon(void) { return !__atomic_load_n(&portable_only, __ATOMIC_RELAXED); }

/// swiftlet_gc_expf on 4 lanes; 0 when a lane needs the scalar path (|n| > 125: the result may
/// be subnormal, infinite or zero, where ldexpf's rounding is kept by the scalar code).
static inline int exp4(float32x4_t x, float32x4_t *out) {
    const float32x4_t r = vdupq_n_f32(0x1.8p23f);
    const float32x4_t z = vfmaq_f32(r, x, vdupq_n_f32(0x1.715476p+0f));
    const float32x4_t n = vsubq_f32(z, r);
    if (vmaxvq_f32(vabsq_f32(n)) > 125.0f || vmaxvq_u32(vmvnq_u32(vceqq_f32(x, x)))) return 0;
    const float32x4_t b = vfmsq_f32(vfmsq_f32(x, n, vdupq_n_f32(0x1.62e4p-1f)), n, vdupq_n_f32(0x1.7f7d1cp-20f));
    const float32x4_t u = vmulq_f32(b, b);
    const float32x4_t p3 = vfmaq_f32(vdupq_n_f32(0x1.573e2ep-5f), vdupq_n_f32(0x1.0e4020p-7f), b);
    const float32x4_t p2 = vfmaq_f32(vdupq_n_f32(0x1.fffdb6p-2f), vdupq_n_f32(0x1.555e66p-3f), b);
    const float32x4_t p1 = vfmaq_f32(vdupq_n_f32(1.0f), vdupq_n_f32(0x1.ffffecp-1f), b);
    const float32x4_t j = vfmaq_f32(p1, vfmaq_f32(p2, p3, u), u);
    // 2^n exactly (n is an integer in [-125, 125]), so j · 2^n is ldexpf(j, n) for normal results.
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    *out = vmulq_f32(j, vreinterpretq_f32_s32(e));
    return 1;
}

/// f32 → f16 → f32 on 4 lanes (vcvt rounds to nearest even as f2h); 0 for a NaN lane.
static inline int round_f16_4(float32x4_t x, float32x4_t *out) {
    if (vmaxvq_u32(vmvnq_u32(vceqq_f32(x, x)))) return 0;
    *out = vcvt_f32_f16(vcvt_f16_f32(x));
    return 1;
}
#endif

// MARK: - RMSNorm, SwiGLU, GeGLU

/// o[i] = (x[i] · scale) · w[i].
static void scale_row(const float *x, const float *w, float scale, long n, float *o) {
    long i = 0;
#ifdef GC_NEON
    if (use_neon())
        for (; i + 4 <= n; i += 4) vst1q_f32(o + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
#endif
    for (; i < n; ++i) o[i] = (x[i] * scale) * w[i];
}

void swiftlet_gc_rms_norm(const float *x, const float *w, long n, long rows, float eps, float *out) {
    // Each row's sum is one sequential chain of double adds (ggml's order); four rows at a time
    // keep four independent chains in flight.
    long r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *x0 = x + r * n, *x1 = x0 + n, *x2 = x1 + n, *x3 = x2 + n;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        long i = 0;
#ifdef GC_NEON
        if (use_neon()) {
            // Lanes are rows: each lane's chain still adds its row's products in order.
            float64x2_t s01 = vdupq_n_f64(0), s23 = vdupq_n_f64(0);
            for (; i + 4 <= n; i += 4) {
                const float32x4_t p0 = vmulq_f32(vld1q_f32(x0 + i), vld1q_f32(x0 + i));
                const float32x4_t p1 = vmulq_f32(vld1q_f32(x1 + i), vld1q_f32(x1 + i));
                const float32x4_t p2 = vmulq_f32(vld1q_f32(x2 + i), vld1q_f32(x2 + i));
                const float32x4_t p3 = vmulq_f32(vld1q_f32(x3 + i), vld1q_f32(x3 + i));
                const float32x4_t t01l = vzip1q_f32(p0, p1), t01h = vzip2q_f32(p0, p1);
                const float32x4_t t23l = vzip1q_f32(p2, p3), t23h = vzip2q_f32(p2, p3);
                s01 = vaddq_f64(s01, vcvt_f64_f32(vget_low_f32(t01l))); s23 = vaddq_f64(s23, vcvt_f64_f32(vget_low_f32(t23l)));
                s01 = vaddq_f64(s01, vcvt_high_f64_f32(t01l)); s23 = vaddq_f64(s23, vcvt_high_f64_f32(t23l));
                s01 = vaddq_f64(s01, vcvt_f64_f32(vget_low_f32(t01h))); s23 = vaddq_f64(s23, vcvt_f64_f32(vget_low_f32(t23h)));
                s01 = vaddq_f64(s01, vcvt_high_f64_f32(t01h)); s23 = vaddq_f64(s23, vcvt_high_f64_f32(t23h));
            }
            s0 = vgetq_lane_f64(s01, 0); s1 = vgetq_lane_f64(s01, 1);
            s2 = vgetq_lane_f64(s23, 0); s3 = vgetq_lane_f64(s23, 1);
        }
#endif
        for (; i < n; ++i) {
            s0 += (double)(x0[i] * x0[i]); s1 += (double)(x1[i] * x1[i]);
            s2 += (double)(x2[i] * x2[i]); s3 += (double)(x3[i] * x3[i]);
        }
        const double sums[4] = {s0, s1, s2, s3};
        for (int k = 0; k < 4; ++k) {
            const float mean = (float)(sums[k] / (double)n);
            const float scale = 1.0f / sqrtf(mean + eps);
            const float *xr = x + (r + k) * n;
            float *o = out + (r + k) * n;
            scale_row(xr, w, scale, n, o);
        }
    }
    for (; r < rows; ++r) {
        const float *xr = x + r * n;
        float *o = out + r * n;
        double sum = 0;
        for (long i = 0; i < n; ++i) sum += (double)(xr[i] * xr[i]);
        const float mean = (float)(sum / (double)n);
        const float scale = 1.0f / sqrtf(mean + eps);
        scale_row(xr, w, scale, n, o);
    }
}

#ifdef GC_X86
GC_512 static void swiglu_avx512(const float *g, const float *u, float *o, long n, long *done) {
    long i = 0;
    const __m512 one = _mm512_set1_ps(1);
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i);
        const __m512 silu = _mm512_div_ps(x, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
        _mm512_storeu_ps(o + i, _mm512_mul_ps(silu, _mm512_loadu_ps(u + i)));
    }
    *done = i;
}
#endif

void swiftlet_gc_hadamard(float *x, long count, long n) {
    // Every lane does the same additions as ggml's scalar and vector passes (its vector
    // u − v is fma(v, −1, u), which rounds like the subtraction), so plain loops give its bits.
    const float scale = 1.0f / sqrtf((float)n);
    for (long row = 0; row + n <= count; row += n) {
        float *r = x + row;
        for (long j = 0; j < n; j++) r[j] *= scale;
        for (long span = 1; span < n; span <<= 1)
            for (long i = 0; i < n; i += 2 * span)
                for (long j = i; j < i + span; j++) {
                    const float u = r[j], v = r[j + span];
                    r[j] = u + v;
                    r[j + span] = u - v;
                }
    }
}

void swiftlet_gc_swiglu(const float *gate, const float *up, float *out, long n) {
    long i = 0;
#ifdef GC_X86
    if (has_avx512()) swiglu_avx512(gate, up, out, n, &i);
#endif
    const long chunked = n & ~15L;   // whole 16-lane chunks use ggml's expf
#ifdef GC_NEON
    if (use_neon())
        for (; i < chunked; i += 4) {
            const float32x4_t x = vld1q_f32(gate + i);
            float32x4_t e;
            if (!exp4(vnegq_f32(x), &e)) break;
            vst1q_f32(out + i, vmulq_f32(vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), e)), vld1q_f32(up + i)));
        }
#endif
    for (; i < chunked; ++i) {
        const float x = gate[i];
        out[i] = (x / (1.0f + swiftlet_gc_expf(0.0f - x))) * up[i];
    }
    for (; i < n; ++i) {   // ggml's scalar tail uses libm expf
        const float x = gate[i];
        out[i] = (x / (1.0f + expf(-x))) * up[i];
    }
}

static float gelu_table[1 << 16];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static void build_gelu_table(void) {
    const float a = 0.044715f, s = 0.79788456080286535587989211986876f;
    for (int i = 0; i < (1 << 16); ++i) {
        const float x = h2f((uint16_t)i);
        // GCC fuses a·x·x + 1 into one FMA when it builds ggml's table.
        const float inner = fmaf(a * x, x, 1.0f);
        gelu_table[i] = f16_round(0.5f * x * (1.0f + tanhf(s * x * inner)));
    }
}

#ifdef GC_X86
GC_512 static long geglu_avx512(const float *gate, const float *up, float *out, long n) {
    long i = 0;
    const __m512 lo = _mm512_set1_ps(-10.0f), hi = _mm512_set1_ps(10.0f);
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(gate + i), u = _mm512_loadu_ps(up + i);
        const __m512i idx = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
        __m512 g = _mm512_mul_ps(_mm512_i32gather_ps(idx, gelu_table, 4), u);
        g = _mm512_mask_mov_ps(g, _mm512_cmp_ps_mask(x, hi, _CMP_GE_OQ), _mm512_mul_ps(x, u));
        g = _mm512_mask_mov_ps(g, _mm512_cmp_ps_mask(x, lo, _CMP_LE_OQ), _mm512_setzero_ps());
        _mm512_storeu_ps(out + i, g);
    }
    return i;
}
#endif

void swiftlet_gc_geglu(const float *gate, const float *up, float *out, long n) {
    pthread_once(&gelu_once, build_gelu_table);
    long i = 0;
#ifdef GC_X86
    if (has_avx512()) i = geglu_avx512(gate, up, out, n);
#endif
#ifdef GC_NEON
    if (use_neon())
        for (; i + 4 <= n; i += 4) {
            const float32x4_t x = vld1q_f32(gate + i), u = vld1q_f32(up + i);
            if (vmaxvq_u32(vmvnq_u32(vceqq_f32(x, x)))) break;   // NaN: the scalar path
            uint16_t h[4];
            vst1_u16(h, vreinterpret_u16_f16(vcvt_f16_f32(x)));
            const float g[4] = {gelu_table[h[0]], gelu_table[h[1]], gelu_table[h[2]], gelu_table[h[3]]};
            float32x4_t v = vmulq_f32(vld1q_f32(g), u);
            v = vbslq_f32(vcgeq_f32(x, vdupq_n_f32(10.0f)), vmulq_f32(x, u), v);
            v = vbslq_f32(vcleq_f32(x, vdupq_n_f32(-10.0f)), vdupq_n_f32(0.0f), v);
            vst1q_f32(out + i, v);
        }
#endif
    for (; i < n; ++i) {
        const float x = gate[i];
        if (x <= -10.0f) {
            out[i] = 0.0f;
        } else if (x >= 10.0f) {
            out[i] = x * up[i];
        } else {
            out[i] = gelu_table[f2h(x)] * up[i];
        }
    }
}

#ifdef GC_X86
GC_512 static long round_f16_avx512(float *x, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    return i;
}
#endif

void swiftlet_gc_round_f16(float *x, long n) {
    long i = 0;
#ifdef GC_X86
    if (has_avx512()) i = round_f16_avx512(x, n);
#endif
#ifdef GC_NEON
    if (use_neon())
        for (; i + 4 <= n; i += 4) {
            float32x4_t v;
            if (!round_f16_4(vld1q_f32(x + i), &v)) break;
            vst1q_f32(x + i, v);
        }
#endif
    for (; i < n; ++i) x[i] = f16_round(x[i]);
}

// MARK: - RoPE

/// ggml's pair rotation from pair `i` on; pair k is x[k·stride] and x[k·stride + offset].
static inline __attribute__((always_inline)) void rope_pairs(float *x, long i, long pairs, long stride, long offset,
                                                             const float *c, const float *s) {
    for (; i < pairs; ++i) {
        float *p0 = x + i * stride, *p1 = p0 + offset;
        const float x0 = *p0, x1 = *p1;
        *p0 = fmaf(x0, c[i], -(x1 * s[i]));
        *p1 = fmaf(x0, s[i], x1 * c[i]);
    }
}

#ifdef GC_X86
GC_512 static long rope_neox_avx512(float *x, long pairs, const float *c, const float *s) {
    long i = 0;
    for (; i + 16 <= pairs; i += 16) {
        const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + pairs + i);
        const __m512 cv = _mm512_loadu_ps(c + i), sv = _mm512_loadu_ps(s + i);
        _mm512_storeu_ps(x + i, _mm512_fmadd_ps(x0, cv, _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(x1, sv))));
        _mm512_storeu_ps(x + pairs + i, _mm512_fmadd_ps(x0, sv, _mm512_mul_ps(x1, cv)));
    }
    return i;
}

// The same loop where fmaf inlines to one instruction.
__attribute__((target("fma"))) static void rope_pairs_fma(float *x, long i, long pairs, long stride, long offset,
                                                          const float *c, const float *s) {
    rope_pairs(x, i, pairs, stride, offset, c, s);
}
#endif

void swiftlet_gc_rope(float *x, long pairs, const float *cos_theta, const float *sin_theta, int neox) {
    // Interleaved pairs are (2i, 2i+1): stride 2, partner +1. Halves: stride 1, partner +pairs.
    const long stride = neox ? 1 : 2, offset = neox ? pairs : 1;
    long i = 0;
#ifdef GC_X86
    if (has_avx512()) {
        if (neox) i = rope_neox_avx512(x, pairs, cos_theta, sin_theta);
        rope_pairs_fma(x, i, pairs, stride, offset, cos_theta, sin_theta);
        return;
    }
#endif
#ifdef GC_NEON
    if (use_neon()) {
        for (; i + 4 <= pairs; i += 4) {
            const float32x4_t cv = vld1q_f32(cos_theta + i), sv = vld1q_f32(sin_theta + i);
            float32x4_t x0, x1;
            float32x4x2_t v;
            if (neox) { x0 = vld1q_f32(x + i); x1 = vld1q_f32(x + pairs + i); }
            else { v = vld2q_f32(x + 2 * i); x0 = v.val[0]; x1 = v.val[1]; }
            const float32x4_t y0 = vfmaq_f32(vnegq_f32(vmulq_f32(x1, sv)), x0, cv);
            const float32x4_t y1 = vfmaq_f32(vmulq_f32(x1, cv), x0, sv);
            if (neox) { vst1q_f32(x + i, y0); vst1q_f32(x + pairs + i, y1); }
            else { v.val[0] = y0; v.val[1] = y1; vst2q_f32(x + 2 * i, v); }
        }
    }
#endif
    rope_pairs(x, i, pairs, stride, offset, cos_theta, sin_theta);
}

// MARK: - Attention over an f16 cache

/// tinyBLAS order: c = reduce16(lane l: Σ over k ≡ l (mod 16), ascending, fma(a_k, b_k)).
static float dot_tinyblas(const uint16_t *a, const float *b, long k) {
    float acc[16] = {0};
#ifdef GC_NEON
    if (use_neon()) {
        float32x4_t v[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
        for (long i = 0; i < k; i += 16)
            for (int q = 0; q < 4; ++q)
                v[q] = vfmaq_f32(v[q], vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(a + i + 4 * q))), vld1q_f32(b + i + 4 * q));
        for (int q = 0; q < 4; ++q) vst1q_f32(acc + 4 * q, v[q]);
        return reduce16(acc);
    }
#endif
    for (long i = 0; i < k; i += 16)
        for (int l = 0; l < 16; ++l) acc[l] = fmaf(h2f(a[i + l]), b[i + l], acc[l]);
    return reduce16(acc);
}

/// ggml_vec_dot_f16 order: four 16-lane accumulators over 64-element steps, combined (0+2),
/// (1+3), then (0+1), reduced, widened to double; leftovers added in double.
float swiftlet_gc_dot_vec_f16(const uint16_t *a, const float *b, long k) {
    float acc[4][16] = {{0}};
    const long np = k & ~63L;
#ifdef GC_NEON
    if (use_neon()) {
        float32x4_t v[4][4];
        for (int j = 0; j < 4; ++j)
            for (int q = 0; q < 4; ++q) v[j][q] = vdupq_n_f32(0);
        for (long i = 0; i < np; i += 64)
            for (int j = 0; j < 4; ++j)
                for (int q = 0; q < 4; ++q) {
                    const long o = i + 16 * j + 4 * q;
                    v[j][q] = vfmaq_f32(v[j][q], vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(a + o))), vld1q_f32(b + o));
                }
        for (int q = 0; q < 4; ++q) vst1q_f32(acc[0] + 4 * q, vaddq_f32(vaddq_f32(v[0][q], v[2][q]), vaddq_f32(v[1][q], v[3][q])));
        double sum = (double)reduce16(acc[0]);
        for (long i = np; i < k; ++i) sum += (double)(h2f(a[i]) * b[i]);
        return (float)sum;
    }
#endif
    for (long i = 0; i < np; i += 64)
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 16; ++l) acc[j][l] = fmaf(h2f(a[i + 16 * j + l]), b[i + 16 * j + l], acc[j][l]);
    for (int l = 0; l < 16; ++l) { acc[0][l] = acc[0][l] + acc[2][l]; acc[1][l] = acc[1][l] + acc[3][l]; }
    for (int l = 0; l < 16; ++l) acc[0][l] = acc[0][l] + acc[1][l];
    double sum = (double)reduce16(acc[0]);
    for (long i = np; i < k; ++i) sum += (double)(h2f(a[i]) * b[i]);
    return (float)sum;
}

#ifdef GC_X86
GC_512 static double exp_chunks_avx512(float *w, long count, float max) {
    double sum = 0;
    for (long j = 0; j < count; j += 16) {
        const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(w + j), _mm512_set1_ps(max)));
        _mm512_storeu_ps(w + j, e);
        sum += (double)reduce16(w + j);
    }
    return sum;
}
#endif

/// ggml's soft_max of one row of `count` (a multiple of 16) scores already scaled and masked
/// (−∞), the chunks aligned as in llama.cpp's row; the weights end rounded to f16.
static void softmax_row(float *w, long count, int simd) {
    float max = -INFINITY;
    for (long j = 0; j < count; ++j) max = w[j] > max ? w[j] : max;
    double sum = 0;
#ifdef GC_X86
    if (simd) {
        sum = exp_chunks_avx512(w, count, max);
    } else
#endif
    {
        (void)simd;
        for (long j = 0; j < count; j += 16) {
#ifdef GC_NEON
            int done = 0;
            if (use_neon()) {
                float32x4_t e[4];
                done = 1;
                for (int q = 0; q < 4 && done; ++q) done = exp4(vsubq_f32(vld1q_f32(w + j + 4 * q), vdupq_n_f32(max)), &e[q]);
                if (done) for (int q = 0; q < 4; ++q) vst1q_f32(w + j + 4 * q, e[q]);
            }
            if (!done)
#endif
            for (int l = 0; l < 16; ++l) w[j + l] = swiftlet_gc_expf(w[j + l] - max);
            sum += (double)reduce16(w + j);
        }
    }
    const float inv = (float)(1.0 / sum);
    for (long j = 0; j < count; ++j) w[j] = w[j] * inv;
    swiftlet_gc_round_f16(w, count);
}

#ifdef GC_X86
// Scores of 4 query rows × 4 keys (tinyBLAS order), via 16 accumulators.
GC_512 static void scores_tile_tinyblas(const float *const q[4], const uint16_t *const k[4], int head_dim,
                                        float out[16]) {
    __m512 acc[16];
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
    for (int d = 0; d < head_dim; d += 16) {
        __m512 kv[4];
        for (int c = 0; c < 4; ++c) kv[c] = load_h16(k[c] + d);
        for (int r = 0; r < 4; ++r) {
            const __m512 qv = _mm512_loadu_ps(q[r] + d);
            for (int c = 0; c < 4; ++c) acc[4 * r + c] = _mm512_fmadd_ps(kv[c], qv, acc[4 * r + c]);
        }
    }
    _mm512_storeu_ps(out, reduce16x16(acc));
}

// Out of 4 rows × 4 head dims (tinyBLAS order over positions j0..j1).
GC_512 static void values_tile_tinyblas(const float *const p[4], const uint16_t *const vt[4], long count,
                                        float out[16]) {
    __m512 acc[16];
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
    for (long j = 0; j < count; j += 16) {
        __m512 vv[4];
        for (int c = 0; c < 4; ++c) vv[c] = load_h16(vt[c] + j);
        for (int r = 0; r < 4; ++r) {
            const __m512 pv = _mm512_loadu_ps(p[r] + j);
            for (int c = 0; c < 4; ++c) acc[4 * r + c] = _mm512_fmadd_ps(vv[c], pv, acc[4 * r + c]);
        }
    }
    _mm512_storeu_ps(out, reduce16x16(acc));
}

// ggml_vec_dot_f16 of 16 f16 rows (a[i], `len` long, a multiple of 64) with one f32 row b.
GC_512 static void dots16_vec_f16(const uint16_t *const a[16], const float *b, long len, float out[16]) {
    __m512 red[16];
    for (int i = 0; i < 16; ++i) {
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (long j = 0; j < len; j += 64) {
            s0 = _mm512_fmadd_ps(load_h16(a[i] + j), _mm512_loadu_ps(b + j), s0);
            s1 = _mm512_fmadd_ps(load_h16(a[i] + j + 16), _mm512_loadu_ps(b + j + 16), s1);
            s2 = _mm512_fmadd_ps(load_h16(a[i] + j + 32), _mm512_loadu_ps(b + j + 32), s2);
            s3 = _mm512_fmadd_ps(load_h16(a[i] + j + 48), _mm512_loadu_ps(b + j + 48), s3);
        }
        red[i] = _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3));
    }
    _mm512_storeu_ps(out, reduce16x16(red));
}
#endif

/// swiftlet_gc_attention_f16 and swiftlet_gc_attention_quant_k: f16 keys (`k_type` 1, rows of
/// `head_dim` halves) or block-type keys (`k_row_bytes` apart), f16 transposed values.
static void attention_f16_values(float *q, long q_stride, int rows, int first_pos, int head_dim,
                                 int k_type, const void *key_rows, long k_row_bytes,
                                 const uint16_t *values_t, long vt_stride,
                                 int window, float scale, int batched, float *scratch,
                                 float *out, long out_stride) {
    const int simd = has_avx512() && head_dim % 64 == 0;
    const int f16_keys = k_type == 1;
    const uint16_t *keys = f16_keys ? (const uint16_t *)key_rows : NULL;
    // tinyBLAS declines rows that are not whole 16-lane vectors; llama.cpp then uses vec_dot.
    const int tiny_scores = batched && head_dim % 16 == 0;
    // Positions the rows can see, widened to whole chunks: llama.cpp's score rows start at
    // position 0, so chunk and lane boundaries are absolute; fully masked chunks add exactly 0.
    const int align = batched ? 16 : 64;
    const int last = first_pos + rows;   // exclusive
    int k0 = window > 0 ? first_pos - window + 1 : 0;
    if (k0 < 0) k0 = 0;
    k0 -= k0 % align;
    const int k1 = (last + align - 1) / align * align;
    const long width = k1 - k0;
    if (!f16_keys) {
        // ggml's mul_mat: q converted to the keys' dot type, then one vec_dot per score; batches
        // take tinyBLAS for Q8_0 / Q4_0 / Q5_0 / IQ4_NL, which sums in the same order except for
        // IQ4_NL (one accumulator, not two alternating).
        for (int r = 0; r < rows; ++r) {
            float *qr = q + r * q_stride, *s = scratch + r * width;
            const int pos = first_pos + r;
            const int lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
            swiftlet_fa_query_to_dot_type(k_type, qr, head_dim);
            for (int j = k0; j < k1; ++j) {
                s[j - k0] = j < lo || j > pos
                    ? -INFINITY
                    : swiftlet_fa_key_dot(k_type, (const uint8_t *)key_rows + (long)j * k_row_bytes, qr, head_dim, batched) * scale;
            }
        }
    }
    for (int r = 0; r < rows && f16_keys; ++r) swiftlet_gc_round_f16(q + r * q_stride, head_dim);

    // Scores, scaled and masked (portable path; the SIMD paths follow).
    for (int r = 0; r < rows && f16_keys && !simd; ++r) {
        float *s = scratch + r * width;
        const int pos = first_pos + r;
        const int lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
        for (int j = k0; j < k1; ++j) {
            if (j < lo || j > pos) { s[j - k0] = -INFINITY; continue; }
            const float *qr = q + r * q_stride;
            const uint16_t *kr = keys + (long)j * head_dim;
            const float dot = tiny_scores ? dot_tinyblas(kr, qr, head_dim) : swiftlet_gc_dot_vec_f16(kr, qr, head_dim);
            s[j - k0] = dot * scale;
        }
    }
#ifdef GC_X86
    if (f16_keys && simd && !batched) {
        for (int r = 0; r < rows; ++r) {
            const int pos = first_pos + r;
            const int lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
            float *s = scratch + r * width;
            for (int j0 = k0; j0 < k1; j0 += 16) {
                if (j0 + 15 < lo || j0 > pos) {
                    for (int c = 0; c < 16; ++c) s[j0 - k0 + c] = -INFINITY;
                    continue;
                }
                const uint16_t *kp[16];
                for (int c = 0; c < 16; ++c) kp[c] = keys + (long)(j0 + c) * head_dim;
                float dots[16];
                dots16_vec_f16(kp, q + r * q_stride, head_dim, dots);
                for (int c = 0; c < 16; ++c) {
                    const int j = j0 + c;
                    s[j - k0] = (j >= lo && j <= pos) ? dots[c] * scale : -INFINITY;
                }
            }
        }
    }
    if (f16_keys && simd && batched) {
        for (int r0 = 0; r0 < rows; r0 += 4) {
            const float *qp[4];
            for (int i = 0; i < 4; ++i) qp[i] = q + (r0 + i < rows ? r0 + i : rows - 1) * q_stride;
            const int maxPos = first_pos + (r0 + 3 < rows ? r0 + 3 : rows - 1);
            const int minPos = first_pos + r0;
            const int minLo = window > 0 && minPos - window + 1 > 0 ? minPos - window + 1 : 0;
            for (int j0 = k0; j0 < k1; j0 += 4) {
                float tile[16];
                const int visible = j0 + 3 >= minLo && j0 <= maxPos;
                if (visible) {
                    const uint16_t *kp[4];
                    for (int c = 0; c < 4; ++c) kp[c] = keys + (long)(j0 + c) * head_dim;
                    scores_tile_tinyblas(qp, kp, head_dim, tile);
                }
                for (int i = 0; i < 4 && r0 + i < rows; ++i) {
                    const int pos = first_pos + r0 + i;
                    const int lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
                    float *s = scratch + (r0 + i) * width + (j0 - k0);
                    for (int c = 0; c < 4; ++c) {
                        const int j = j0 + c;
                        s[c] = (visible && j >= lo && j <= pos) ? tile[4 * i + c] * scale : -INFINITY;
                    }
                }
            }
        }
    }
#endif
    for (int r = 0; r < rows; ++r) softmax_row(scratch + r * width, width, simd);

    // out = Vᵀ · p over [k0, k1).
    for (int r0 = 0; r0 < rows; r0 += (simd ? 4 : 1)) {
#ifdef GC_X86
        if (simd && batched) {
            const float *pp[4];
            for (int i = 0; i < 4; ++i) pp[i] = scratch + (r0 + i < rows ? r0 + i : rows - 1) * width;
            for (int d0 = 0; d0 < head_dim; d0 += 4) {
                const uint16_t *vp[4];
                for (int c = 0; c < 4; ++c) vp[c] = values_t + (long)(d0 + c) * vt_stride + k0;
                float tile[16];
                values_tile_tinyblas(pp, vp, width, tile);
                for (int i = 0; i < 4 && r0 + i < rows; ++i)
                    for (int c = 0; c < 4; ++c) out[(r0 + i) * out_stride + d0 + c] = tile[4 * i + c];
            }
            continue;
        }
        if (simd && !batched) {
            for (int i = 0; i < 4 && r0 + i < rows; ++i) {
                const float *p = scratch + (r0 + i) * width;
                for (int d0 = 0; d0 < head_dim; d0 += 16) {
                    const uint16_t *vp[16];
                    for (int c = 0; c < 16; ++c) vp[c] = values_t + (long)(d0 + c) * vt_stride + k0;
                    dots16_vec_f16(vp, p, width, out + (r0 + i) * out_stride + d0);
                }
            }
            continue;
        }
#endif
        const float *p = scratch + r0 * width;
        for (int d = 0; d < head_dim; ++d) {
            const uint16_t *v = values_t + (long)d * vt_stride + k0;
            out[r0 * out_stride + d] = batched ? dot_tinyblas(v, p, width) : swiftlet_gc_dot_vec_f16(v, p, width);
        }
    }
}

void swiftlet_gc_attention_f16(float *q, long q_stride, int rows, int first_pos, int head_dim,
                               const uint16_t *keys, const uint16_t *values_t, long vt_stride,
                               int window, float scale, int batched, float *scratch,
                               float *out, long out_stride) {
    attention_f16_values(q, q_stride, rows, first_pos, head_dim, 1, keys, 2L * head_dim, values_t, vt_stride,
                         window, scale, batched, scratch, out, out_stride);
}

void swiftlet_gc_attention_quant_k(float *q, long q_stride, int rows, int first_pos, int head_dim,
                                   int k_type, const void *keys, long k_row_bytes,
                                   const uint16_t *values_t, long vt_stride,
                                   int window, float scale, int batched, float *scratch,
                                   float *out, long out_stride) {
    attention_f16_values(q, q_stride, rows, first_pos, head_dim, k_type, keys, k_row_bytes, values_t, vt_stride,
                         window, scale, batched, scratch, out, out_stride);
}

// MARK: - Float-weight matrix products (LoRA adapters)

/// ggml_vec_dot_f32 order: four 16-lane fma accumulators over 64-element steps, combined (0+2),
/// (1+3), then (0+1) and reduced; leftovers as rounded products added one by one (not fused).
static float dot_vec_f32(const float *a, const float *b, long k) {
    float acc[4][16] = {{0}};
    const long np = k & ~63L;
    for (long i = 0; i < np; i += 64)
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 16; ++l) acc[j][l] = fmaf(a[i + 16 * j + l], b[i + 16 * j + l], acc[j][l]);
    for (int l = 0; l < 16; ++l) { acc[0][l] = acc[0][l] + acc[2][l]; acc[1][l] = acc[1][l] + acc[3][l]; }
    for (int l = 0; l < 16; ++l) acc[0][l] = acc[0][l] + acc[1][l];
    float sum = reduce16(acc[0]);
    for (long i = np; i < k; ++i) sum += a[i] * b[i];
    return sum;
}

static float dot_tinyblas_f32(const float *a, const float *b, long k) {
    float acc[16] = {0};
    for (long i = 0; i < k; i += 16)
        for (int l = 0; l < 16; ++l) acc[l] = fmaf(a[i + l], b[i + l], acc[l]);
    return reduce16(acc);
}

#ifdef GC_X86
GC_512 static float dot_tinyblas_f32_avx512(const float *a, const float *b, long k) {
    __m512 acc = _mm512_setzero_ps();
    for (long i = 0; i < k; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
    float lanes[16];
    _mm512_storeu_ps(lanes, acc);
    return reduce16(lanes);
}

GC_512 static float dot_tinyblas_f16_avx512(const uint16_t *a, const float *b, long k) {
    __m512 acc = _mm512_setzero_ps();
    for (long i = 0; i < k; i += 16) acc = _mm512_fmadd_ps(load_h16(a + i), _mm512_loadu_ps(b + i), acc);
    float lanes[16];
    _mm512_storeu_ps(lanes, acc);
    return reduce16(lanes);
}

GC_512 static float dot_vec_f32_avx512(const float *a, const float *b, long k) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    const long np = k & ~63L;
    for (long i = 0; i < np; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    s0 = _mm512_add_ps(s0, s2); s1 = _mm512_add_ps(s1, s3);
    s0 = _mm512_add_ps(s0, s1);
    float lanes[16];
    _mm512_storeu_ps(lanes, s0);
    float sum = reduce16(lanes);
    for (long i = np; i < k; ++i) sum += a[i] * b[i];
    return sum;
}
#endif

void swiftlet_gc_mul_mat_float(int f16, const void *w, long k, long rows, long row_begin, long row_end,
                               const float *x, long ntok, float *y, long y_stride) {
    // llamafile's tinyBLAS takes batches of >= 2 tokens when k is whole 16-lane vectors and the
    // rows come in fours; otherwise ggml's vec_dot runs per output.
    const int tinyblas = ntok >= 2 && k % 16 == 0 && rows % 4 == 0;
    const int simd = has_avx512();
    for (long r = row_begin; r < row_end; ++r)
        for (long t = 0; t < ntok; ++t) {
            const float *xt = x + t * k;
            float v;
            if (f16) {
                const uint16_t *wr = (const uint16_t *)w + r * k;
#ifdef GC_X86
                if (simd && tinyblas) { y[t * y_stride + r] = dot_tinyblas_f16_avx512(wr, xt, k); continue; }
#endif
                v = tinyblas ? dot_tinyblas(wr, xt, k) : swiftlet_gc_dot_vec_f16(wr, xt, k);
            } else {
                const float *wr = (const float *)w + r * k;
#ifdef GC_X86
                if (simd) { y[t * y_stride + r] = tinyblas ? dot_tinyblas_f32_avx512(wr, xt, k) : dot_vec_f32_avx512(wr, xt, k); continue; }
#endif
                v = tinyblas ? dot_tinyblas_f32(wr, xt, k) : dot_vec_f32(wr, xt, k);
            }
            y[t * y_stride + r] = v;
        }
    (void)simd;
}

void swiftlet_gc_add_scaled(float *out, const float *delta, float scale, long n) {
    for (long i = 0; i < n; ++i) {
        const float scaled = delta[i] * scale;
        out[i] = out[i] + scaled;
    }
}
