// ggml block layouts (see ggml-common.h for the format definitions) and small shared helpers
// for the quantized kernels. Private to CSwiftletKernels.
#ifndef SWIFTLET_QUANT_BLOCKS_H
#define SWIFTLET_QUANT_BLOCKS_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#define QK 32
#define QKK 256

typedef struct { uint16_t d; uint8_t qs[16]; } blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } blk_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } blk_q8_0;
typedef struct { uint16_t d, s; int8_t qs[32]; } blk_q8_1;
typedef struct { uint16_t d; uint8_t qs[16]; } blk_iq4_nl;
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } blk_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } blk_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } blk_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } blk_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } blk_q6_K;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } blk_q8_K;
typedef struct { uint16_t d; uint16_t scales_h; uint8_t scales_l[4]; uint8_t qs[128]; } blk_iq4_xs;

_Static_assert(sizeof(blk_q4_0) == 18, "q4_0"); _Static_assert(sizeof(blk_q4_1) == 20, "q4_1");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0"); _Static_assert(sizeof(blk_q5_1) == 24, "q5_1");
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0"); _Static_assert(sizeof(blk_q8_1) == 36, "q8_1");
_Static_assert(sizeof(blk_q2_K) == 84, "q2_K"); _Static_assert(sizeof(blk_q3_K) == 110, "q3_K");
_Static_assert(sizeof(blk_q4_K) == 144, "q4_K"); _Static_assert(sizeof(blk_q5_K) == 176, "q5_K");
_Static_assert(sizeof(blk_q6_K) == 210, "q6_K"); _Static_assert(sizeof(blk_q8_K) == 292, "q8_K");
_Static_assert(sizeof(blk_iq4_xs) == 136, "iq4_xs");

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8, T_Q8_1 = 9,
       T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_Q8_K = 15,
       T_IQ4_NL = 20, T_IQ4_XS = 23, T_BF16 = 30 };

/// Kinds of 32-weight blocks in the SIMD kernels (a compile-time constant in each instantiation).
enum { K_Q4_0, K_Q4_1, K_Q5_0, K_Q5_1, K_Q8_0, K_IQ4_NL };

static const int8_t kvalues_iq4[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline float h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    float f;
    if (e == 0) { f = (float)m * 5.9604644775390625e-8f; memcpy(&bits, &f, 4); bits |= sign; }
    else if (e == 31) bits = sign | 0x7f800000u | (m << 13);
    else bits = sign | ((e + 112) << 23) | (m << 13);
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t f2h(float f) {
    uint32_t bits; memcpy(&bits, &f, 4);
    uint32_t sign = bits & 0x80000000u, o;
    bits ^= sign;
    if (bits >= 0x47800000u) o = bits > 0x7f800000u ? 0x7e00 : 0x7c00;
    else if (bits < 0x38800000u) {
        const uint32_t magic = ((127 - 15) + (23 - 10) + 1) << 23;
        float a, b; memcpy(&a, &bits, 4); memcpy(&b, &magic, 4);
        a += b; memcpy(&o, &a, 4); o -= magic;
    } else {
        uint32_t odd = (bits >> 13) & 1;
        bits += ((uint32_t)(15 - 127) << 23) + 0xfff + odd;
        o = bits >> 13;
    }
    return (uint16_t)(o | (sign >> 16));
}

static inline float bf2f(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }

/// Scale and min of sub-block j of a Q4_K / Q5_K super-block.
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) { *d = q[j] & 63; *m = q[j + 4] & 63; }
    else { *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

/// The 16 signed scales of a Q3_K super-block.
static inline void q3k_scales(const uint8_t *packed, int8_t *out) {
    for (int j = 0; j < 16; ++j) {
        int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
        int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((low | (high << 4)) - 32);
    }
}

/// The 8 scales and 8 mins of a Q4_K / Q5_K super-block, unpacked.
static inline void k4_scales_mins(const uint8_t *packed, uint8_t *sc, uint8_t *mn) {
    for (int j = 0; j < 8; ++j) scale_min_k4(j, packed, &sc[j], &mn[j]);
}

/// One super-block of a k-quant dot in the order of llama.cpp's tiled k-quant matmul (x86, taken
/// for 8 or more tokens): r = (float)S · d, r = fma(−dmin, (float)M, r), y = fma(r, da, y), with
/// S = Σ scale·dot and M = Σ min·bsum exact integers (M = 0, dmin = 0 for types without mins).
static inline float kq_tiled_add(float y, float da, float d, float dmin, int scaled, int mins) {
    const float r = fmaf(-dmin, (float)mins, (float)scaled * d);
    return fmaf(r, da, y);
}
#endif
