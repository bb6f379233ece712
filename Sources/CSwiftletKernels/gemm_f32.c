// Portable f32 GEMM: packed blocking (BLIS loop order) around a register-tiled micro-kernel.
// See include/gemm_f32.h. The Swift twin used as the test oracle is ScalarReference.gemm.
#include "gemm_f32.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SWIFTLET_X86 1
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

// Block sizes: a KC x NR sliver of B (KC*32*4 = 24 KiB) stays in L1 while the MR x KC slivers of
// the packed MC x KC block of A (L2) stream past it; the KC x NC block of B lives in L2/L3.
#ifndef SWIFTLET_GEMM_KC
#define SWIFTLET_GEMM_KC 192
#define SWIFTLET_GEMM_MC 96
#define SWIFTLET_GEMM_NC 3072
#endif
enum { KC = SWIFTLET_GEMM_KC, MC = SWIFTLET_GEMM_MC, NC = SWIFTLET_GEMM_NC };

typedef void (*micro_kernel)(long kc, const float *ap, const float *bp, float *c, long ldc, int mr,
                             int nr);

typedef struct {
    int mr, nr;
    micro_kernel kernel;
    const char *name;
} gemm_variant;

// ---- generic C kernel (4 x 8) -------------------------------------------------------------
// 4-wide vector extension: SSE on baseline x86-64, NEON on arm64, scalar code elsewhere.

typedef float v4f __attribute__((vector_size(16)));

static inline v4f load4(const float *p) {
    v4f v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static void kernel_generic(long kc, const float *ap, const float *bp, float *c, long ldc, int mr,
                           int nr) {
    v4f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
    for (long p = 0; p < kc; p++) {
        const v4f b0 = load4(bp), b1 = load4(bp + 4);
        const v4f a0 = {ap[0], ap[0], ap[0], ap[0]}, a1 = {ap[1], ap[1], ap[1], ap[1]};
        const v4f a2 = {ap[2], ap[2], ap[2], ap[2]}, a3 = {ap[3], ap[3], ap[3], ap[3]};
        c00 += a0 * b0; c01 += a0 * b1;
        c10 += a1 * b0; c11 += a1 * b1;
        c20 += a2 * b0; c21 += a2 * b1;
        c30 += a3 * b0; c31 += a3 * b1;
        ap += 4;
        bp += 8;
    }
    float tile[4][8];
    memcpy(tile[0], &c00, 16); memcpy(tile[0] + 4, &c01, 16);
    memcpy(tile[1], &c10, 16); memcpy(tile[1] + 4, &c11, 16);
    memcpy(tile[2], &c20, 16); memcpy(tile[2] + 4, &c21, 16);
    memcpy(tile[3], &c30, 16); memcpy(tile[3] + 4, &c31, 16);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[r * ldc + j] += tile[r][j];
}

#ifdef SWIFTLET_X86
// ---- AVX2 + FMA kernel (6 x 16) -------------------------------------------------------------

__attribute__((target("avx2,fma"))) static void kernel_avx2(long kc, const float *ap,
                                                             const float *bp, float *c, long ldc,
                                                             int mr, int nr) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (long p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        __m256 a;
        a = _mm256_broadcast_ss(ap + 0); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(ap + 1); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(ap + 2); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(ap + 3); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(ap + 4); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(ap + 5); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
        ap += 6;
        bp += 16;
    }
    __m256 rows[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (mr == 6 && nr == 16) {
        for (int r = 0; r < 6; r++) {
            float *cr = c + r * ldc;
            _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), rows[r][0]));
            _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), rows[r][1]));
        }
        return;
    }
    float tile[6][16];
    for (int r = 0; r < 6; r++) {
        _mm256_storeu_ps(tile[r], rows[r][0]);
        _mm256_storeu_ps(tile[r] + 8, rows[r][1]);
    }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[r * ldc + j] += tile[r][j];
}

// ---- AVX-512F kernel (8 x 32) -----------------------------------------------------------------

__attribute__((target("avx512f,fma"))) static void kernel_avx512(long kc, const float *ap,
                                                                 const float *bp, float *c,
                                                                 long ldc, int mr, int nr) {
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
    __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
    __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
    __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps();
    __m512 c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
    for (long p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        __m512 a;
        a = _mm512_set1_ps(ap[0]); c00 = _mm512_fmadd_ps(a, b0, c00); c01 = _mm512_fmadd_ps(a, b1, c01);
        a = _mm512_set1_ps(ap[1]); c10 = _mm512_fmadd_ps(a, b0, c10); c11 = _mm512_fmadd_ps(a, b1, c11);
        a = _mm512_set1_ps(ap[2]); c20 = _mm512_fmadd_ps(a, b0, c20); c21 = _mm512_fmadd_ps(a, b1, c21);
        a = _mm512_set1_ps(ap[3]); c30 = _mm512_fmadd_ps(a, b0, c30); c31 = _mm512_fmadd_ps(a, b1, c31);
        a = _mm512_set1_ps(ap[4]); c40 = _mm512_fmadd_ps(a, b0, c40); c41 = _mm512_fmadd_ps(a, b1, c41);
        a = _mm512_set1_ps(ap[5]); c50 = _mm512_fmadd_ps(a, b0, c50); c51 = _mm512_fmadd_ps(a, b1, c51);
        a = _mm512_set1_ps(ap[6]); c60 = _mm512_fmadd_ps(a, b0, c60); c61 = _mm512_fmadd_ps(a, b1, c61);
        a = _mm512_set1_ps(ap[7]); c70 = _mm512_fmadd_ps(a, b0, c70); c71 = _mm512_fmadd_ps(a, b1, c71);
        ap += 8;
        bp += 32;
    }
    __m512 rows[8][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                         {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    if (nr == 32) {
        for (int r = 0; r < mr; r++) {
            float *cr = c + r * ldc;
            _mm512_storeu_ps(cr, _mm512_add_ps(_mm512_loadu_ps(cr), rows[r][0]));
            _mm512_storeu_ps(cr + 16, _mm512_add_ps(_mm512_loadu_ps(cr + 16), rows[r][1]));
        }
        return;
    }
    const __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : ((1u << nr) - 1));
    const __mmask16 m1 = (__mmask16)(nr <= 16 ? 0 : ((1u << (nr - 16)) - 1));
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        _mm512_mask_storeu_ps(cr, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), rows[r][0]));
        _mm512_mask_storeu_ps(cr + 16, m1,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), rows[r][1]));
    }
}
#endif

#if defined(__aarch64__)
// ---- NEON kernel (8 x 12) -------------------------------------------------------------------
// 24 accumulators, 3 B vectors and 2 A vectors fill 29 of the 32 registers. Each C element is
// the same chain as in the generic kernel on arm64 (fused c = fma(a_p, b_p, c) in p order from
// 0, then added to C), so the results are identical whatever the tile shape.

static void kernel_neon(long kc, const float *ap, const float *bp, float *c, long ldc, int mr, int nr) {
    float32x4_t acc[8][3];
    for (int r = 0; r < 8; r++)
        for (int j = 0; j < 3; j++) acc[r][j] = vdupq_n_f32(0);
    for (long p = 0; p < kc; p++) {
        const float32x4_t b0 = vld1q_f32(bp), b1 = vld1q_f32(bp + 4), b2 = vld1q_f32(bp + 8);
        const float32x4_t a0 = vld1q_f32(ap), a1 = vld1q_f32(ap + 4);
#define ROW(r, av, lane)                                             \
        acc[r][0] = vfmaq_laneq_f32(acc[r][0], b0, av, lane);        \
        acc[r][1] = vfmaq_laneq_f32(acc[r][1], b1, av, lane);        \
        acc[r][2] = vfmaq_laneq_f32(acc[r][2], b2, av, lane);
        ROW(0, a0, 0) ROW(1, a0, 1) ROW(2, a0, 2) ROW(3, a0, 3)
        ROW(4, a1, 0) ROW(5, a1, 1) ROW(6, a1, 2) ROW(7, a1, 3)
#undef ROW
        ap += 8;
        bp += 12;
    }
    if (nr == 12) {
        for (int r = 0; r < mr; r++) {
            float *cr = c + r * ldc;
            for (int j = 0; j < 3; j++) vst1q_f32(cr + 4 * j, vaddq_f32(vld1q_f32(cr + 4 * j), acc[r][j]));
        }
        return;
    }
    float tile[8][12];
    for (int r = 0; r < 8; r++)
        for (int j = 0; j < 3; j++) vst1q_f32(tile[r] + 4 * j, acc[r][j]);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[r * ldc + j] += tile[r][j];
}
static const gemm_variant variant_neon = {8, 12, kernel_neon, "neon"};
#endif

static const gemm_variant variant_generic = {4, 8, kernel_generic, "generic"};
#ifdef SWIFTLET_X86
static const gemm_variant variant_avx2 = {6, 16, kernel_avx2, "avx2+fma"};
static const gemm_variant variant_avx512 = {8, 32, kernel_avx512, "avx512f"};
#endif

static const gemm_variant *best_variant(void) {
#ifdef SWIFTLET_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return &variant_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &variant_avx2;
#endif
#if defined(__aarch64__)
    return &variant_neon;
#endif
    return &variant_generic;
}

static const gemm_variant *variant_for(int which) {
    const gemm_variant *best = best_variant();
    switch (which) {
    case 1: return &variant_generic;
#ifdef SWIFTLET_X86
    case 2:
        return (best == &variant_avx512 || best == &variant_avx2) ? &variant_avx2 : best;
#endif
    default: return best;
    }
}

// ---- packing ------------------------------------------------------------------------------

// A block (rows i0..i0+mc, depth p0..p0+kc) scaled by alpha into MR-row slivers, k-major, zero-padded.
static void pack_a(int trans, const float *a, long lda, long i0, long p0, long mc, long kc,
                   float alpha, int mr, float *out) {
    for (long s = 0; s < mc; s += mr) {
        const long rows = (mc - s < mr) ? mc - s : mr;
        for (long p = 0; p < kc; p++) {
            for (long r = 0; r < rows; r++) {
                const long i = i0 + s + r, q = p0 + p;
                out[r] = alpha * (trans ? a[q * lda + i] : a[i * lda + q]);
            }
            for (long r = rows; r < mr; r++) out[r] = 0;
            out += mr;
        }
    }
}

// B block (depth p0..p0+kc, columns j0..j0+nc) into NR-column slivers, k-major, zero-padded.
static void pack_b(int trans, const float *b, long ldb, long p0, long j0, long kc, long nc, int nr,
                   float *out) {
    for (long s = 0; s < nc; s += nr) {
        const long cols = (nc - s < nr) ? nc - s : nr;
        if (!trans) {
            for (long p = 0; p < kc; p++) {
                const float *src = b + (p0 + p) * ldb + j0 + s;
                memcpy(out + p * nr, src, (size_t)cols * sizeof(float));
                for (long j = cols; j < nr; j++) out[p * nr + j] = 0;
            }
        } else {
            // B^T rows are contiguous in k: walk k in small blocks so that the `cols` source rows
            // and the destination block both stay in L1 (a transpose through the cache).
            const float *src = b + (j0 + s) * ldb + p0;
            for (long pb = 0; pb < kc; pb += 16) {
                const long pe = (kc - pb < 16) ? kc - pb : 16;
                for (long j = 0; j < cols; j++) {
                    const float *row = src + j * ldb + pb;
                    float *dst = out + pb * nr + j;
                    for (long p = 0; p < pe; p++) dst[p * nr] = row[p];
                }
                for (long j = cols; j < nr; j++)
                    for (long p = 0; p < pe; p++) out[(pb + p) * nr + j] = 0;
            }
        }
        out += kc * nr;
    }
}

// ---- driver -------------------------------------------------------------------------------

// Per-thread packing buffer, grown on demand and freed when the thread exits (pthread key
// destructor), so short-lived threads calling GEMM do not leak it.
typedef struct {
    float *data;
    size_t floats;
} scratch_buffer_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void free_scratch(void *p) {
    scratch_buffer_t *s = (scratch_buffer_t *)p;
    free(s->data);
    free(s);
}

static void make_scratch_key(void) { pthread_key_create(&scratch_key, free_scratch); }

static float *scratch_buffer(size_t floats) {
    pthread_once(&scratch_once, make_scratch_key);
    scratch_buffer_t *s = (scratch_buffer_t *)pthread_getspecific(scratch_key);
    if (!s) {
        s = (scratch_buffer_t *)calloc(1, sizeof(scratch_buffer_t));
        if (!s) return NULL;
        pthread_setspecific(scratch_key, s);
    }
    if (floats > s->floats) {
        free(s->data);
        s->data = NULL;
        s->floats = 0;
        size_t bytes = ((floats * sizeof(float)) + 63) & ~(size_t)63;
        if (posix_memalign((void **)&s->data, 64, bytes) != 0) {
            s->data = NULL;
            return NULL;
        }
        s->floats = floats;
    }
    return s->data;
}

static void scale_c(long m, long n, float beta, float *c, long ldc) {
    if (beta == 1.0f) return;
    for (long i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0.0f) {
            memset(row, 0, (size_t)n * sizeof(float));
        } else {
            for (long j = 0; j < n; j++) row[j] *= beta;
        }
    }
}

static void gemm_with(const gemm_variant *v, int trans_a, int trans_b, long m, long n, long k,
                      float alpha, const float *a, long lda, const float *b, long ldb, float beta,
                      float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    scale_c(m, n, beta, c, ldc);
    if (k <= 0 || alpha == 0.0f) return;
    const int mr = v->mr, nr = v->nr;
    const long mc_max = (MC / mr) * mr;
    const long nc_cap = ((n + nr - 1) / nr) * nr;
    const long nc_max = nc_cap < NC ? nc_cap : NC;
    const long kc_max = k < KC ? k : KC;
    float *buf = scratch_buffer((size_t)(kc_max * nc_max + kc_max * (mc_max + mr)));
    if (!buf) {
        // Out of memory for packing: plain triple loop, slow but correct.
        for (long i = 0; i < m; i++)
            for (long p = 0; p < k; p++) {
                const float aip = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
                for (long j = 0; j < n; j++) c[i * ldc + j] += aip * (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
            }
        return;
    }
    float *bp = buf;
    float *ap = buf + kc_max * nc_max;
    for (long jc = 0; jc < n; jc += NC) {
        const long nc = (n - jc < NC) ? n - jc : NC;
        for (long pc = 0; pc < k; pc += KC) {
            const long kc = (k - pc < KC) ? k - pc : KC;
            pack_b(trans_b, b, ldb, pc, jc, kc, nc, nr, bp);
            for (long ic = 0; ic < m; ic += mc_max) {
                const long mc = (m - ic < mc_max) ? m - ic : mc_max;
                pack_a(trans_a, a, lda, ic, pc, mc, kc, alpha, mr, ap);
                for (long jr = 0; jr < nc; jr += nr) {
                    const int cols = (int)((nc - jr < nr) ? nc - jr : nr);
                    const float *bsliver = bp + jr * kc;
                    for (long ir = 0; ir < mc; ir += mr) {
                        const int rows = (int)((mc - ir < mr) ? mc - ir : mr);
                        v->kernel(kc, ap + ir * kc, bsliver, c + (ic + ir) * ldc + jc + jr, ldc, rows,
                                  cols);
                    }
                }
            }
        }
    }
}

void swiftlet_sgemm_f32(int trans_a, int trans_b, long m, long n, long k, float alpha,
                        const float *a, long lda, const float *b, long ldb, float beta, float *c,
                        long ldc) {
    static const gemm_variant *chosen;
    if (!chosen) chosen = best_variant();  // idempotent, so a benign race
    gemm_with(chosen, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void swiftlet_sgemm_f32_variant(int variant, int trans_a, int trans_b, long m, long n, long k,
                                float alpha, const float *a, long lda, const float *b, long ldb,
                                float beta, float *c, long ldc) {
    gemm_with(variant_for(variant), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

const char *swiftlet_sgemm_f32_kernel_name(void) { return best_variant()->name; }
int swiftlet_sgemm_f32_tile_rows(void) { return best_variant()->mr; }
int swiftlet_sgemm_f32_tile_cols(void) { return best_variant()->nr; }
