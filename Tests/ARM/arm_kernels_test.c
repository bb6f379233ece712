// ARM64 kernel check, C only (no Swift): every NEON variant of the quantized kernels must equal
// the generic C twin bit for bit, on random weight blocks (every bit pattern of the level bytes)
// and on real weight rows read from the GGUF models in Models/cache. Built by Tests/ARM/run.sh
// with gcc-aarch64-linux-gnu and run under qemu-aarch64 (`-cpu max`: dotprod + i8mm;
// `-cpu cortex-a53`: plain NEON). Also checks the f32 GEMM micro-kernel and the ggml_compat
// operations against their portable paths.
//
//   arm_kernels_test check [ROWS]          random + real rows (needs SWIFTLET_MODELS_DIR)
//   arm_kernels_test count TYPE VARIANT N [ROWS TOKENS]   N products of 4096-weight rows
//                                                         (for Tests/ARM/count_insns.py)
#include "swiftlet_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// MARK: - helpers

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return rng_state;
}
static float rnd_unit(void) { return (float)(rnd() >> 40) / (float)(1 << 24) - 0.5f; }

static uint16_t to_half(float f) {
    __fp16 h = (__fp16)f;
    uint16_t u; memcpy(&u, &h, 2);
    return u;
}

typedef struct { int id; const char *name; int block, bytes; int act; } type_info;
// act: the paired activation type (8 = Q8_0, 9 = Q8_1, 15 = Q8_K); header fp16 offsets below.
static const type_info types[] = {
    {2, "q4_0", 32, 18, 8}, {3, "q4_1", 32, 20, 9}, {6, "q5_0", 32, 22, 8}, {7, "q5_1", 32, 24, 9},
    {8, "q8_0", 32, 34, 8}, {20, "iq4_nl", 32, 18, 8}, {10, "q2_K", 256, 84, 15}, {11, "q3_K", 256, 110, 15},
    {12, "q4_K", 256, 144, 15}, {13, "q5_K", 256, 176, 15}, {14, "q6_K", 256, 210, 15},
    {23, "iq4_xs", 256, 136, 15},
};
enum { NTYPES = sizeof(types) / sizeof(types[0]) };

static int act_bytes(int act, int n) { return act == 8 ? n / 32 * 34 : act == 9 ? n / 32 * 36 : n / 256 * 292; }

/// A random, finite block scale: ±[2^-14, 2^-2) (products of sums of 256 levels stay finite).
static float rnd_scale(void) {
    const float mag = ldexpf(1.0f + (float)(rnd() % 1024) / 1024.0f, -2 - (int)(rnd() % 12));
    return (rnd() & 1) ? -mag : mag;
}

/// Random bytes for every field, then finite fp16 (or f32) scales in the header fields.
static void random_row(const type_info *t, uint8_t *row, int n) {
    for (int i = 0; i < n / t->block * t->bytes; ++i) row[i] = (uint8_t)rnd();
    for (int b = 0; b < n / t->block; ++b) {
        uint8_t *blk = row + (size_t)b * t->bytes;
        int offs[2] = {-1, -1};
        switch (t->id) {
        case 2: case 6: case 8: case 20: case 23: offs[0] = 0; break;
        case 3: case 7: case 12: case 13: offs[0] = 0; offs[1] = 2; break;
        case 10: offs[0] = 80; offs[1] = 82; break;
        case 11: offs[0] = 108; break;
        case 14: offs[0] = 208; break;
        case 15: { float d = rnd_scale(); memcpy(blk, &d, 4); break; }
        }
        for (int k = 0; k < 2; ++k)
            if (offs[k] >= 0) { uint16_t h = to_half(rnd_scale()); memcpy(blk + offs[k], &h, 2); }
    }
}

static void random_floats(float *x, int n) {
    for (int i = 0; i < n; ++i) x[i] = (i % 97 == 0 ? 8.0f : 1.0f) * rnd_unit();
}

static const char *variant_name(int v) {
    switch (v) {
    case SWIFTLET_QK_GENERIC: return "generic";
    case SWIFTLET_QK_NEON: return "neon";
    case SWIFTLET_QK_DOTPROD: return "dotprod";
    case SWIFTLET_QK_I8MM: return "i8mm";
    default: return "?";
    }
}

static int failures = 0;
/// Failure lines printed per area (quantized, gemm, ggml_compat), at most 20 each.
static int printed[3];
#define FAIL_LINE(area) (failures++, printed[area]++ < 20)

/// Product of `rows` weight rows with `ntok` activation rows (from floats x), every supported ARM
/// variant against the generic one; activations quantized by each variant must equal the generic
/// bytes. Returns the number of (row, token) outputs compared per variant.
static long check_product(const type_info *t, const uint8_t *w, int n, int rows, const float *x, int ntok,
                          uint8_t *act, uint8_t *act_v, float *yref, float *y, const char *what) {
    const int ab = act_bytes(t->act, n);
    for (int k = 0; k < ntok; ++k)
        swiftlet_qk_quantize_row(SWIFTLET_QK_GENERIC, t->id, x + (size_t)k * n, act + (size_t)k * ab, n, k, ntok);
    swiftlet_qk_gemm(SWIFTLET_QK_GENERIC, t->id, n, w, (size_t)(n / t->block * t->bytes), rows, act, ab, ntok, yref, rows);
    for (int v = SWIFTLET_QK_NEON; v <= SWIFTLET_QK_I8MM; ++v) {
        if (!swiftlet_qk_variant_supported(v)) continue;
        for (int k = 0; k < ntok; ++k)
            swiftlet_qk_quantize_row(v, t->id, x + (size_t)k * n, act_v + (size_t)k * ab, n, k, ntok);
        if (memcmp(act, act_v, (size_t)ab * ntok) != 0) {
            if (FAIL_LINE(0)) printf("FAIL %s %s %s: activation bytes differ (%d tokens)\n", t->name, variant_name(v), what, ntok);
        }
        memset(y, 0xFF, sizeof(float) * (size_t)rows * ntok);
        if (swiftlet_qk_gemm(v, t->id, n, w, (size_t)(n / t->block * t->bytes), rows, act, ab, ntok, y, rows) != 0) {
            if (FAIL_LINE(0)) printf("FAIL %s %s: gemm returned an error\n", t->name, variant_name(v));
            continue;
        }
        for (int i = 0; i < rows * ntok; ++i) {
            uint32_t a, b; memcpy(&a, &yref[i], 4); memcpy(&b, &y[i], 4);
            if (a != b && FAIL_LINE(0))
                printf("FAIL %s %s %s: row %d token %d of %d: %.9g vs generic %.9g\n", t->name, variant_name(v), what,
                       i % rows, i / rows, ntok, y[i], yref[i]);
        }
    }
    return (long)rows;
}

// MARK: - GGUF rows (a minimal reader: header, metadata skipped, tensor table, data offset)

typedef struct { char name[96]; uint32_t type; uint64_t ne0, nrows, offset; } gguf_tensor;

static int rd(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n ? 0 : -1; }

static int skip_value(FILE *f, uint32_t type) {
    static const int sizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type > 12) return -1;
    if (type == 8) { uint64_t len; if (rd(f, &len, 8)) return -1; return fseek(f, (long)len, SEEK_CUR); }
    if (type == 9) {
        uint32_t et; uint64_t count;
        if (rd(f, &et, 4) || rd(f, &count, 8)) return -1;
        if (et != 8 && et != 9 && et <= 12) return fseek(f, (long)(count * (uint64_t)sizes[et]), SEEK_CUR);
        for (uint64_t i = 0; i < count; ++i) if (skip_value(f, et)) return -1;
        return 0;
    }
    return fseek(f, sizes[type], SEEK_CUR);
}

/// Reads the tensor table of `path`; returns the count (≤ cap) or -1.
static int gguf_tensors(const char *path, gguf_tensor *out, int cap, FILE **file) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint32_t magic, version; uint64_t nt, nkv; uint64_t alignment = 32;
    if (rd(f, &magic, 4) || magic != 0x46554747u || rd(f, &version, 4) || rd(f, &nt, 8) || rd(f, &nkv, 8)) { fclose(f); return -1; }
    for (uint64_t i = 0; i < nkv; ++i) {
        uint64_t len; char key[256]; uint32_t type;
        if (rd(f, &len, 8) || len >= sizeof(key) || rd(f, key, len)) { fclose(f); return -1; }
        key[len] = 0;
        if (rd(f, &type, 4)) { fclose(f); return -1; }
        if (!strcmp(key, "general.alignment") && type == 4) { uint32_t a; if (rd(f, &a, 4)) { fclose(f); return -1; } alignment = a; continue; }
        if (skip_value(f, type)) { fclose(f); return -1; }
    }
    int count = 0;
    for (uint64_t i = 0; i < nt; ++i) {
        uint64_t len; uint32_t nd; uint64_t dims[4] = {1, 1, 1, 1};
        gguf_tensor g; memset(&g, 0, sizeof(g));
        if (rd(f, &len, 8) || len >= sizeof(g.name) || rd(f, g.name, len) || rd(f, &nd, 4) || nd > 4) { fclose(f); return -1; }
        for (uint32_t d = 0; d < nd; ++d) if (rd(f, &dims[d], 8)) { fclose(f); return -1; }
        if (rd(f, &g.type, 4) || rd(f, &g.offset, 8)) { fclose(f); return -1; }
        g.ne0 = dims[0]; g.nrows = dims[1] * dims[2] * dims[3];
        if (count < cap) out[count++] = g;
    }
    const uint64_t data = ((uint64_t)ftell(f) + alignment - 1) / alignment * alignment;
    for (int i = 0; i < count; ++i) out[i].offset += data;
    *file = f;
    return count;
}

// MARK: - f32 GEMM and ggml_compat (NEON paths against the portable ones)

static long check_gemm(int reps) {
    long checked = 0;
    for (int r = 0; r < reps; ++r) {
        const long m = 1 + (long)(rnd() % 37), n = 1 + (long)(rnd() % 45), k = 1 + (long)(rnd() % 300);
        const int ta = (int)(rnd() & 1), tb = (int)(rnd() & 1);
        float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(k * n));
        float *c0 = malloc(sizeof(float) * (size_t)(m * n)), *c1 = malloc(sizeof(float) * (size_t)(m * n));
        random_floats(a, (int)(m * k)); random_floats(b, (int)(k * n));
        random_floats(c0, (int)(m * n)); memcpy(c1, c0, sizeof(float) * (size_t)(m * n));
        const float alpha = 0.75f, beta = (r & 1) ? 0.5f : 0.0f;
        swiftlet_sgemm_f32_variant(1, ta, tb, m, n, k, alpha, a, ta ? m : k, b, tb ? k : n, beta, c0, n);
        swiftlet_sgemm_f32_variant(0, ta, tb, m, n, k, alpha, a, ta ? m : k, b, tb ? k : n, beta, c1, n);
        if (memcmp(c0, c1, sizeof(float) * (size_t)(m * n)) != 0 && FAIL_LINE(1))
            printf("FAIL sgemm %s: %ldx%ldx%ld differs from generic\n", swiftlet_sgemm_f32_kernel_name(), m, n, k);
        checked += m;
        free(a); free(b); free(c0); free(c1);
    }
    return checked;
}

static int same_bits(const float *a, const float *b, long n) { return memcmp(a, b, sizeof(float) * (size_t)n) == 0; }

static long check_ggml_compat(int reps) {
    long checked = 0;
    enum { N = 1152 };
    static float x[4 * N], w[N], u[N], o0[4 * N], o1[4 * N], c[N], s[N];
    for (int r = 0; r < reps; ++r) {
        const long n = 16 + (long)(rnd() % (N - 16));
        random_floats(x, 4 * N); random_floats(w, N); random_floats(u, N);
        for (long i = 0; i < n; ++i) { x[i] *= 12; c[i] = cosf(0.01f * (float)i + (float)r); s[i] = sinf(0.01f * (float)i + (float)r); }
        const char *op = "";
        for (int k = 0; k < 6; ++k) {
            for (int portable = 1; portable >= 0; --portable) {
                swiftlet_gc_select(portable);
                float *o = portable ? o0 : o1;
                memcpy(o, x, sizeof(x));
                switch (k) {
                case 0: op = "rms_norm"; swiftlet_gc_rms_norm(x, w, n, 3, 1e-6f, o); break;
                case 1: op = "swiglu"; swiftlet_gc_swiglu(x, u, o, n); break;
                case 2: op = "geglu"; swiftlet_gc_geglu(x, u, o, n); break;
                case 3: op = "rope"; swiftlet_gc_rope(o, n / 2, c, s, 0); break;
                case 4: op = "rope_neox"; swiftlet_gc_rope(o, n / 2, c, s, 1); break;
                default: op = "round_f16"; swiftlet_gc_round_f16(o, n); break;
                }
            }
            swiftlet_gc_select(0);
            if (!same_bits(o0, o1, 3 * n) && FAIL_LINE(2)) printf("FAIL ggml_compat %s n=%ld\n", op, n);
        }
        checked++;
    }
    // Attention over an f16 cache: both orders (batched tinyBLAS, single-token vec_f16).
    enum { HD = 64, POS = 80, PAD = POS + 64 };
    static uint16_t keys[PAD * HD], vt[HD * PAD];
    static float q0[8 * HD], q1[8 * HD], scratch[8 * (PAD + 64)], a0[8 * HD], a1[8 * HD];
    for (int r = 0; r < reps / 4 + 1; ++r) {
        for (int i = 0; i < PAD * HD; ++i) { keys[i] = to_half(rnd_unit()); vt[i] = to_half(rnd_unit()); }
        for (int batched = 0; batched < 2; ++batched) {
            const int rows = batched ? 5 : 1, first = (int)(rnd() % (POS - 8));
            const int window = (r & 1) ? 0 : 17;
            random_floats(q0, 8 * HD); memcpy(q1, q0, sizeof(q0));
            swiftlet_gc_select(1);
            swiftlet_gc_attention_f16(q0, HD, rows, first, HD, keys, vt, PAD, window, 0.125f, batched, scratch, a0, HD);
            swiftlet_gc_select(0);
            swiftlet_gc_attention_f16(q1, HD, rows, first, HD, keys, vt, PAD, window, 0.125f, batched, scratch, a1, HD);
            if (!same_bits(a0, a1, (long)rows * HD) && FAIL_LINE(2))
                printf("FAIL ggml_compat attention batched=%d first=%d\n", batched, first);
        }
        checked++;
    }
    return checked;
}

// MARK: - main

static int run_check(long random_rows, const char *models_dir, int require_models) {
    printf("cpu variants:");
    for (int v = SWIFTLET_QK_NEON; v <= SWIFTLET_QK_I8MM; ++v) if (swiftlet_qk_variant_supported(v)) printf(" %s", variant_name(v));
    printf(" (best %s); sgemm kernel %s\n", variant_name(swiftlet_qk_best_variant()), swiftlet_sgemm_f32_kernel_name());
    enum { NMAX = 8192, TMAX = 9, RMAX = 40 };
    uint8_t *w = malloc((size_t)120 * NMAX / 32 * 34 + 4096);
    float *x = malloc(sizeof(float) * NMAX * TMAX);
    uint8_t *act = malloc((size_t)TMAX * NMAX / 32 * 36), *act_v = malloc((size_t)TMAX * NMAX / 32 * 36);
    float *yref = malloc(sizeof(float) * RMAX * TMAX), *y = malloc(sizeof(float) * RMAX * TMAX);
    static const int token_counts[] = {1, 2, 3, 4, 5, 7, 8, 9};
    long real_rows[NTYPES] = {0};
    for (int ti = 0; ti < NTYPES; ++ti) {
        const type_info *t = &types[ti];
        long done = 0;
        for (int it = 0; done < random_rows; ++it) {
            const int n = t->block == 32 ? 32 * (1 + (int)(rnd() % 20)) : 256 * (1 + (int)(rnd() % 2));
            const int rows = 1 + (int)(rnd() % RMAX), ntok = token_counts[it % 8];
            for (int r = 0; r < rows; ++r) random_row(t, w + (size_t)r * (n / t->block * t->bytes), n);
            random_floats(x, n * ntok);
            // A block with +max after −max: the grouped Q8_K quantizer picks the other sign.
            if (t->block == 256) { x[5] = -9; x[200] = 9; }
            done += check_product(t, w, n, rows, x, ntok, act, act_v, yref, y, "random");
        }
        printf("%-7s random rows: %ld\n", t->name, done);
    }
    // Real rows: up to 120 rows from each tensor of a checked type (400 per type and model),
    // spread over the tensor.
    static const char *models[] = {"smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf",
                                   "gemma-3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf",
                                   "qwen2.5-coder-0.5b-instruct-q4_k_m/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"};
    // Source 3: rows of the types none of the three models holds, from Gemma 3 270M requantized
    // by llama-quantize (Tests/Fixtures/arm-rows, see SOURCE.md there; read from the repository root).
    static const char *fixture = "Tests/Fixtures/arm-rows/gemma-3-270m-requantized-rows.gguf";
    int models_found = 0;
    for (int mi = 0; mi < 4; ++mi) {
        char path[1024];
        if (mi == 3) snprintf(path, sizeof(path), "%s", fixture);
        else if (models_dir) snprintf(path, sizeof(path), "%s/%s", models_dir, models[mi]);
        else continue;
        static gguf_tensor tensors[1024];
        FILE *f = NULL;
        const int nt = gguf_tensors(path, tensors, 1024, &f);
        if (nt < 0) {
            printf("%s missing or unreadable: %s\n", mi == 3 ? "FAIL fixture" : "model", path);
            if (mi == 3) failures++;
            continue;
        }
        if (mi < 3) models_found++;
        long per_type[NTYPES] = {0};
        for (int i = 0; i < nt; ++i) {
            int ti = -1;
            for (int k = 0; k < NTYPES; ++k) if (types[k].id == (int)tensors[i].type) ti = k;
            if (ti < 0 || tensors[i].ne0 > NMAX || tensors[i].ne0 % (uint64_t)types[ti].block) continue;
            if (per_type[ti] >= 400) continue;
            const type_info *t = &types[ti];
            const int n = (int)tensors[i].ne0;
            const size_t row_bytes = (size_t)(n / t->block * t->bytes);
            const int rows = tensors[i].nrows < 120 ? (int)tensors[i].nrows : 120;
            const uint64_t step = tensors[i].nrows / (uint64_t)rows;
            int ok = 1;
            for (int r = 0; r < rows && ok; ++r) {
                ok = fseek(f, (long)(tensors[i].offset + (uint64_t)r * step * row_bytes), SEEK_SET) == 0 &&
                     fread(w + (size_t)r * row_bytes, 1, row_bytes, f) == row_bytes;
            }
            if (!ok) { printf("FAIL reading %s from %s\n", tensors[i].name, path); failures++; continue; }
            // Real rows in groups of ≤ 40 against 1-9 tokens.
            for (int r0 = 0; r0 < rows; r0 += RMAX) {
                const int rr = rows - r0 < RMAX ? rows - r0 : RMAX, ntok = token_counts[(r0 / RMAX + i) % 8];
                random_floats(x, n * ntok);
                per_type[ti] += check_product(t, w + (size_t)r0 * row_bytes, n, rr, x, ntok, act, act_v, yref, y, tensors[i].name);
            }
        }
        fclose(f);
        for (int k = 0; k < NTYPES; ++k)
            if (per_type[k]) {
                printf("%-7s real rows: %ld (%s)\n", types[k].name, per_type[k], mi == 3 ? fixture : models[mi]);
                real_rows[k] += per_type[k];
                if (per_type[k] < 100) { printf("FAIL %s: fewer than 100 real rows\n", types[k].name); failures++; }
            }
    }
    if (models_found < 3 && require_models) { printf("FAIL: %d of 3 models found (SWIFTLET_REQUIRE_MODELS=1)\n", models_found); failures++; }
    printf("f32 gemm: %ld output rows checked\n", check_gemm(200));
    printf("ggml_compat: %ld cases checked\n", check_ggml_compat(200));
    free(w); free(x); free(act); free(act_v); free(yref); free(y);
    if (failures) printf("arm kernels: %d FAILURES\n", failures);
    else printf("arm kernels: all equal to the generic twins\n");
    return failures ? 1 : 0;
}

/// `count`: N products of `rows` 4096-weight rows of TYPE with `tokens` activation rows by VARIANT
/// (for instruction counts; default one row, one token).
static int run_count(const char *type_name, int variant, long calls, int rows, int tokens) {
    const type_info *t = NULL;
    for (int k = 0; k < NTYPES; ++k) if (!strcmp(types[k].name, type_name)) t = &types[k];
    if (!t || rows < 1 || rows > 8 || tokens < 1 || tokens > 8) { fprintf(stderr, "bad count arguments\n"); return 2; }
    enum { N = 4096 };
    static uint8_t w[8 * (N / 32 * 34)], act[8 * (N / 32 * 36 + 4096)];
    static float x[8 * N], y[64];
    const size_t row_bytes = (size_t)(N / t->block * t->bytes), ab = (size_t)act_bytes(t->act, N);
    for (int r = 0; r < rows; ++r) random_row(t, w + r * row_bytes, N);
    random_floats(x, 8 * N);
    for (int k = 0; k < tokens; ++k) swiftlet_qk_quantize_row(SWIFTLET_QK_GENERIC, t->id, x + k * N, act + k * ab, N, k, tokens);
    float sum = 0;
    for (long i = 0; i < calls; ++i) {
        swiftlet_qk_gemm(variant, t->id, N, w, row_bytes, rows, act, ab, tokens, y, (size_t)rows);
        sum += y[0];
    }
    printf("%g\n", sum);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 5 && !strcmp(argv[1], "count"))
        return run_count(argv[2], atoi(argv[3]), atol(argv[4]), argc > 5 ? atoi(argv[5]) : 1, argc > 6 ? atoi(argv[6]) : 1);
    const long rows = argc >= 3 && !strcmp(argv[1], "check") ? atol(argv[2]) : 10000;
    const char *req = getenv("SWIFTLET_REQUIRE_MODELS");
    return run_check(rows, getenv("SWIFTLET_MODELS_DIR"), req && !strcmp(req, "1"));
}
