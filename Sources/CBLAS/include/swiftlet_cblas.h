#ifndef SWIFTLET_CBLAS_H
#define SWIFTLET_CBLAS_H
// Run-time loaded CBLAS (OpenBLAS).
//
// Why not link -lopenblas: Debian's OpenBLAS 0.3.21 does not recognise recent CPUs and silently
// falls back to SSE3 ("Prescott") kernels, 4-5x slower. OPENBLAS_CORETYPE fixes that, but only if it
// is in the environment before the library's constructor runs. Linking loads the library before any
// of our code runs, so instead this target picks the core type from the CPU's features, setenv()s it
// (only when the user has not set OPENBLAS_CORETYPE), then dlopen()s the library.
//
// The CBLAS enum values are stable across implementations, so no cblas.h is needed.
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SWIFTLET_CBLAS_ROW_MAJOR = 101,
    SWIFTLET_CBLAS_COL_MAJOR = 102,
    SWIFTLET_CBLAS_NO_TRANS = 111,
    SWIFTLET_CBLAS_TRANS = 112,
};

/// CPU feature bits reported by swiftlet_cpu_features().
enum {
    SWIFTLET_CPU_AVX2 = 1 << 0,
    SWIFTLET_CPU_FMA = 1 << 1,
    SWIFTLET_CPU_AVX512F = 1 << 2,
    SWIFTLET_CPU_AVX512VL = 1 << 3,
    SWIFTLET_CPU_AVX512BW = 1 << 4,
    SWIFTLET_CPU_AVX512DQ = 1 << 5,
    SWIFTLET_CPU_AVX512VNNI = 1 << 6,
    SWIFTLET_CPU_AVX512BF16 = 1 << 7,
    SWIFTLET_CPU_F16C = 1 << 8,
    SWIFTLET_CPU_AVX = 1 << 9,
    SWIFTLET_CPU_NEON = 1 << 10,
};

/// Feature bits of the running CPU (x86-64: checked with the compiler's cpu-model runtime, which also
/// checks that the OS saves the wider registers).
unsigned swiftlet_cpu_features(void);

/// Loads the BLAS library once (thread-safe; later calls return the first result).
/// Returns 1 when cblas_sgemm and cblas_sgemv were resolved, 0 otherwise.
int swiftlet_blas_load(void);

/// 1 when the library is loaded (does not try to load it).
int swiftlet_blas_is_loaded(void);

/// Path of the loaded library (from dladdr), or the name tried last; NULL before loading.
const char *swiftlet_blas_library_path(void);

/// Why loading failed (dlerror text), or NULL.
const char *swiftlet_blas_load_error(void);

/// OpenBLAS's own core name (openblas_get_corename), or NULL when not OpenBLAS / not loaded.
const char *swiftlet_blas_corename(void);

/// OpenBLAS's build configuration (openblas_get_config), or NULL.
const char *swiftlet_blas_config(void);

/// The OPENBLAS_CORETYPE in effect when the library was loaded, or NULL if none.
const char *swiftlet_blas_coretype(void);

/// 1 when Swiftlet chose OPENBLAS_CORETYPE itself, 0 when it came from the user's environment
/// (or none was set).
int swiftlet_blas_coretype_was_chosen(void);

/// The core type Swiftlet would choose for this CPU ("SkylakeX", "Haswell") or NULL.
const char *swiftlet_blas_preferred_coretype(void);

/// openblas_set_num_threads / openblas_get_num_threads (no-ops / -1 when absent).
void swiftlet_blas_set_num_threads(int threads);
int swiftlet_blas_get_num_threads(void);

/// cblas_sgemm of the loaded library. Must only be called after swiftlet_blas_load() returned 1.
void swiftlet_cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
                          float alpha, const float *a, int lda, const float *b, int ldb,
                          float beta, float *c, int ldc);

/// cblas_sgemv of the loaded library. Must only be called after swiftlet_blas_load() returned 1.
void swiftlet_cblas_sgemv(int order, int trans, int m, int n, float alpha, const float *a, int lda,
                          const float *x, int incx, float beta, float *y, int incy);

#ifdef __cplusplus
}
#endif
#endif
