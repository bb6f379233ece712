// Run-time loader for OpenBLAS's CBLAS entry points; see include/swiftlet_cblas.h for why.
#define _GNU_SOURCE
#include "swiftlet_cblas.h"

#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#if !defined(_WIN32)
#include <dlfcn.h>
#endif

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);
typedef char *(*string_fn)(void);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);

static sgemm_fn loaded_sgemm;
static sgemv_fn loaded_sgemv;
static string_fn loaded_corename;
static string_fn loaded_config;
static set_threads_fn loaded_set_threads;
static get_threads_fn loaded_get_threads;
static int blas_loaded;
static char library_path[1024];
static char load_error[1024];
static char coretype_in_effect[64];
static int coretype_chosen;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

unsigned swiftlet_cpu_features(void) {
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx")) f |= SWIFTLET_CPU_AVX;
    if (__builtin_cpu_supports("avx2")) f |= SWIFTLET_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= SWIFTLET_CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) f |= SWIFTLET_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512vl")) f |= SWIFTLET_CPU_AVX512VL;
    if (__builtin_cpu_supports("avx512bw")) f |= SWIFTLET_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512dq")) f |= SWIFTLET_CPU_AVX512DQ;
    if (__builtin_cpu_supports("avx512vnni")) f |= SWIFTLET_CPU_AVX512VNNI;
    if (__builtin_cpu_supports("avx512bf16")) f |= SWIFTLET_CPU_AVX512BF16;
    if (__builtin_cpu_supports("f16c")) f |= SWIFTLET_CPU_F16C;
#elif defined(__aarch64__)
    f |= SWIFTLET_CPU_NEON;
#endif
    return f;
}

const char *swiftlet_blas_preferred_coretype(void) {
    unsigned f = swiftlet_cpu_features();
    const unsigned skylakex = SWIFTLET_CPU_AVX512F | SWIFTLET_CPU_AVX512VL | SWIFTLET_CPU_AVX512BW |
                              SWIFTLET_CPU_AVX512DQ | SWIFTLET_CPU_FMA;
    const unsigned haswell = SWIFTLET_CPU_AVX2 | SWIFTLET_CPU_FMA;
    if ((f & skylakex) == skylakex) return "SkylakeX";
    if ((f & haswell) == haswell) return "Haswell";
    return NULL;
}

// Puts OPENBLAS_CORETYPE into the environment unless the user set it (or asked us not to with
// SWIFTLET_BLAS_CORETYPE=native). Runs as a constructor too, so that setenv happens while the
// process is still single-threaded, before anything could load OpenBLAS.
static void choose_coretype(void) {
    const char *existing = getenv("OPENBLAS_CORETYPE");
    if (existing && existing[0]) return;
    const char *policy = getenv("SWIFTLET_BLAS_CORETYPE");
    const char *choice = NULL;
    if (policy && policy[0]) {
        if (strcmp(policy, "native") == 0) return;
        choice = policy;
    } else {
        choice = swiftlet_blas_preferred_coretype();
    }
    if (choice) {
        setenv("OPENBLAS_CORETYPE", choice, 0);
        coretype_chosen = 1;
    }
}

__attribute__((constructor)) static void swiftlet_cblas_constructor(void) { choose_coretype(); }

static int try_open(const char *name) {
#if defined(_WIN32)
    (void)name;
    return 0;
#else
    void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *err = dlerror();
        strncpy(load_error, err ? err : "dlopen failed", sizeof(load_error) - 1);
        return 0;
    }
    sgemm_fn sgemm = (sgemm_fn)dlsym(handle, "cblas_sgemm");
    sgemv_fn sgemv = (sgemv_fn)dlsym(handle, "cblas_sgemv");
    if (!sgemm || !sgemv) {
        strncpy(load_error, "library has no cblas_sgemm/cblas_sgemv", sizeof(load_error) - 1);
        dlclose(handle);
        return 0;
    }
    loaded_sgemm = sgemm;
    loaded_sgemv = sgemv;
    loaded_corename = (string_fn)dlsym(handle, "openblas_get_corename");
    loaded_config = (string_fn)dlsym(handle, "openblas_get_config");
    loaded_set_threads = (set_threads_fn)dlsym(handle, "openblas_set_num_threads");
    loaded_get_threads = (get_threads_fn)dlsym(handle, "openblas_get_num_threads");
    Dl_info info;
    if (dladdr((void *)sgemm, &info) && info.dli_fname) {
        strncpy(library_path, info.dli_fname, sizeof(library_path) - 1);
    } else {
        strncpy(library_path, name, sizeof(library_path) - 1);
    }
    load_error[0] = 0;
    return 1;
#endif
}

static void load_once_body(void) {
    choose_coretype();
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (ct) strncpy(coretype_in_effect, ct, sizeof(coretype_in_effect) - 1);

    const char *override = getenv("SWIFTLET_BLAS_LIBRARY");
    if (override && override[0]) {
        // An explicit choice is final: no silent fallback to another library.
        blas_loaded = try_open(override);
        if (!blas_loaded) strncpy(library_path, override, sizeof(library_path) - 1);
        return;
    }
    static const char *const candidates[] = {
        "libopenblas.so.0",   // Debian / Ubuntu (alternatives), Arch
        "libopenblasp.so.0",  // Fedora's pthread build
        "libopenblas.so",     // dev symlink
        "libopenblas.dylib",  // Homebrew, when Accelerate is not used
    };
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        if (try_open(candidates[i])) {
            blas_loaded = 1;
            return;
        }
    }
}

int swiftlet_blas_load(void) {
    pthread_once(&load_once, load_once_body);
    return blas_loaded;
}

int swiftlet_blas_is_loaded(void) { return blas_loaded; }

const char *swiftlet_blas_library_path(void) { return library_path[0] ? library_path : NULL; }
const char *swiftlet_blas_load_error(void) { return load_error[0] ? load_error : NULL; }
const char *swiftlet_blas_corename(void) { return (blas_loaded && loaded_corename) ? loaded_corename() : NULL; }
const char *swiftlet_blas_config(void) { return (blas_loaded && loaded_config) ? loaded_config() : NULL; }
const char *swiftlet_blas_coretype(void) { return coretype_in_effect[0] ? coretype_in_effect : NULL; }
int swiftlet_blas_coretype_was_chosen(void) { return coretype_chosen; }

void swiftlet_blas_set_num_threads(int threads) {
    if (blas_loaded && loaded_set_threads) loaded_set_threads(threads);
}

int swiftlet_blas_get_num_threads(void) {
    return (blas_loaded && loaded_get_threads) ? loaded_get_threads() : -1;
}

void swiftlet_cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc) {
    loaded_sgemm(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void swiftlet_cblas_sgemv(int order, int trans, int m, int n, float alpha, const float *a, int lda,
                          const float *x, int incx, float beta, float *y, int incy) {
    loaded_sgemv(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
