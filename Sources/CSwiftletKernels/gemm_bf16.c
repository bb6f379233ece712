// The opt-in bfloat16 products of the BERT encoder; see include/gemm_bf16.h.
#include "gemm_bf16.h"
#include <string.h>

/// f32 → bf16 bits, nearest even; NaN stays NaN.
static inline uint16_t bf16_from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

long swiftlet_bf16_packed_bytes(long n, long k) {
    if (n <= 0 || k <= 0 || n % 32 != 0 || k % 2 != 0 || n > (1L << 24) || k > (1L << 24)) return -1;
    return n * k * 2;
}

void swiftlet_bf16_pack(const float *w, long n, long k, void *packed) {
    uint16_t *out = (uint16_t *)packed;
    for (long panel = 0; panel < n / 16; ++panel)
        for (long j = 0; j < k / 2; ++j)
            for (int lane = 0; lane < 16; ++lane) {
                const float *row = w + (panel * 16 + lane) * k + 2 * j;
                *out++ = bf16_from_float(row[0]);
                *out++ = bf16_from_float(row[1]);
            }
}

static void round_scalar(const float *x, long count, uint16_t *out) {
    for (long i = 0; i < count; ++i) out[i] = bf16_from_float(x[i]);
}

#if defined(__x86_64__)
#include <immintrin.h>
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

#include <cpuid.h>
#include <unistd.h>
#include <sys/syscall.h>
#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f")))

static int has_avx512bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512bf16");
}

/// AMX-BF16 usable: the CPU has it (CPUID.7.0:EDX bits 22, 24), the OS saves the tile state
/// (XCR0 bits 17, 18) and grants this process the tile data (Linux's ARCH_REQ_XCOMP_PERM).
static int amx_ready(void) {
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
    if (c >= 0) return c;
    unsigned a, b, cx, d;
    c = 0;
    if (__get_cpuid_count(7, 0, &a, &b, &cx, &d) && (d >> 22 & 1) && (d >> 24 & 1)
        && __get_cpuid(1, &a, &b, &cx, &d) && (cx >> 27 & 1)) {   // OSXSAVE
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
        c = (lo >> 17 & 3) == 3 && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    }
    __atomic_store_n(&cached, c, __ATOMIC_RELEASE);
    return c;
}

// AVX-512 BF16 is required (it rounds the activations); every CPU with AMX-BF16 has it.
int swiftlet_bf16_supported(void) { return has_avx512bf16(); }

/// The AMX tile layout: tiles 0-3 the 32 × 32 f32 block of c, 4-5 two 16-row slices of a (32
/// inputs each), 6-7 two 16-output panels (16 pairs each: a panel's rows are the B-tile rows).
struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

AMX_TARGET static void gemm_amx(const uint16_t *a, long m, long k, const uint8_t *base, long n0, long count, float *c, long ldc) {
    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; ++t) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    const long panel_bytes = 32 * k, lda = 2 * k;
    float spill[32 * 32];
    for (long n = n0; n < n0 + count; n += 32) {
        const uint8_t *p0 = base + (n / 16) * panel_bytes, *p1 = p0 + panel_bytes;
        for (long r = 0; r < m; r += 32) {
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            const uint8_t *a0 = (const uint8_t *)(a + r * k);
            for (long j = 0; j < k; j += 32) {
                _tile_loadd(4, a0 + 2 * j, lda);
                _tile_loadd(5, a0 + 16 * lda + 2 * j, lda);
                _tile_loadd(6, p0 + 32 * j, 64);
                _tile_loadd(7, p1 + 32 * j, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            if (r + 32 <= m) {
                float *out = c + r * ldc + n;
                _tile_stored(0, out, 4 * ldc);
                _tile_stored(1, out + 16, 4 * ldc);
                _tile_stored(2, out + 16 * ldc, 4 * ldc);
                _tile_stored(3, out + 16 * ldc + 16, 4 * ldc);
            } else {   // the last rows: through a 32 × 32 block, then only the rows that exist
                _tile_stored(0, spill, 128);
                _tile_stored(1, spill + 16, 128);
                _tile_stored(2, spill + 16 * 32, 128);
                _tile_stored(3, spill + 16 * 32 + 16, 128);
                for (long i = 0; i < m - r; ++i) memcpy(c + (r + i) * ldc + n, spill + 32 * i, 32 * sizeof(float));
            }
        }
    }
    _tile_release();
}

/// VCVTNEPS2BF16: nearest even, as bf16_from_float except that subnormal inputs become zero.
BF16_TARGET void swiftlet_bf16_round(const float *x, long count, uint16_t *out) {
    long i = 0;
    for (; i + 16 <= count; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
    round_scalar(x + i, count - i, out + i);
}

enum { ROWS = 12 };

/// `rows` (≤ ROWS) rows × 32 outputs (two panels) over all k/2 pairs: one broadcast pair of each
/// row against the panels' 16 pairs per step; the 2 · rows accumulators stay in registers.
BF16_TARGET static inline __attribute__((always_inline)) void tile(const uint16_t *a, long k, const uint8_t *p0,
                                                                   const uint8_t *p1, float *c, long ldc, const int rows) {
    __m512 lo[ROWS], hi[ROWS];
    for (int r = 0; r < rows; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
    for (long j = 0; j < k / 2; ++j) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512(p0 + 64 * j), b1 = (__m512bh)_mm512_load_si512(p1 + 64 * j);
        for (int r = 0; r < rows; ++r) {
            int32_t pair;
            memcpy(&pair, a + r * k + 2 * j, 4);
            const __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
            lo[r] = _mm512_dpbf16_ps(lo[r], x, b0);
            hi[r] = _mm512_dpbf16_ps(hi[r], x, b1);
        }
    }
    for (int r = 0; r < rows; ++r) {
        _mm512_storeu_ps(c + r * ldc, lo[r]);
        _mm512_storeu_ps(c + r * ldc + 16, hi[r]);
    }
}

BF16_TARGET static void gemm_avx512(const uint16_t *a, long m, long k, const uint8_t *base, long n0, long count, float *c, long ldc) {
    const long panel_bytes = 32 * k;   // 16 outputs × k bf16
    for (long n = n0; n < n0 + count; n += 32) {
        const uint8_t *p0 = base + (n / 16) * panel_bytes, *p1 = p0 + panel_bytes;
        long r = 0;
        for (; r + ROWS <= m; r += ROWS) tile(a + r * k, k, p0, p1, c + r * ldc + n, ldc, ROWS);
        switch (m - r) {
#define TAIL(R) case R: tile(a + r * k, k, p0, p1, c + r * ldc + n, ldc, R); break;
        TAIL(1) TAIL(2) TAIL(3) TAIL(4) TAIL(5) TAIL(6) TAIL(7) TAIL(8) TAIL(9) TAIL(10) TAIL(11)
#undef TAIL
        default: break;
        }
    }
}
static int avx512_only;
void swiftlet_bf16_select(int avx512) { __atomic_store_n(&avx512_only, avx512, __ATOMIC_RELAXED); }
int swiftlet_bf16_uses_amx(long k) { return k % 32 == 0 && amx_ready() && !__atomic_load_n(&avx512_only, __ATOMIC_RELAXED); }

void swiftlet_bf16_gemm(const uint16_t *a, long m, long k, const void *packed, long n0, long count, float *c, long ldc) {
    if (swiftlet_bf16_uses_amx(k)) gemm_amx(a, m, k, (const uint8_t *)packed, n0, count, c, ldc);
    else gemm_avx512(a, m, k, (const uint8_t *)packed, n0, count, c, ldc);
}
#else
int swiftlet_bf16_supported(void) { return 0; }
void swiftlet_bf16_select(int avx512) { (void)avx512; }
int swiftlet_bf16_uses_amx(long k) { (void)k; return 0; }
void swiftlet_bf16_round(const float *x, long count, uint16_t *out) { round_scalar(x, count, out); }
void swiftlet_bf16_gemm(const uint16_t *a, long m, long k, const void *packed, long n0, long count, float *c, long ldc) {
    (void)a; (void)m; (void)k; (void)packed; (void)n0; (void)count; (void)c; (void)ldc;
}
#endif
