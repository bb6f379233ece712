#ifndef SWIFTLET_GEMM_BF16_H
#define SWIFTLET_GEMM_BF16_H
// The opt-in bfloat16 products of the BERT encoder: weights rounded to bf16 once and packed at
// load, activations rounded per product, products accumulated in f32 — by AMX tiles (TDPBF16PS)
// where the CPU and OS allow it, else by AVX-512 BF16 (VDPBF16PS). Not llama.cpp-exact (no llama.cpp counterpart); its accuracy is reported as the
// cosine of the embeddings to the f32 ones.
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Whether this CPU (and build) runs the bf16 products: AVX-512 F, BW and BF16 (AMX-BF16 then
/// speeds them up where the OS grants it).
int swiftlet_bf16_supported(void);

/// Bytes of the packed form of an `n × k` weight (n outputs of k inputs), or -1 unless n is a
/// positive multiple of 32 and k a positive even number.
long swiftlet_bf16_packed_bytes(long n, long k);

/// Packs the row-major f32 weight `w` (`n × k`) into `packed` (swiftlet_bf16_packed_bytes
/// bytes, 64-byte aligned): panels of 16 outputs, each k/2 rows of 16 pairs (inputs 2j, 2j+1)
/// rounded to bf16 (nearest, ties to even).
void swiftlet_bf16_pack(const float *w, long n, long k, void *packed);

/// Rounds `count` floats (even) to bf16 pairs, nearest even.
void swiftlet_bf16_round(const float *x, long count, uint16_t *out);

/// c[m × [n0, n0 + count)] = a · wᵀ over the bf16 activations `a` (`m × k`, row-major, from
/// swiftlet_bf16_round) and the packed weight of `k` inputs; n0 and count multiples of 32;
/// c's rows are `ldc` floats apart. `a` must be readable for m rounded up to 32 rows (the AMX
/// path computes whole 32-row blocks and keeps the rows that exist).
void swiftlet_bf16_gemm(const uint16_t *a, long m, long k, const void *packed, long n0, long count, float *c, long ldc);

/// For tests: 1 makes swiftlet_bf16_gemm take the AVX-512 BF16 kernel even where AMX runs.
void swiftlet_bf16_select(int avx512);

/// Whether swiftlet_bf16_gemm runs on AMX tiles for `k` inputs (a multiple of 32, AMX usable,
/// not deselected).
int swiftlet_bf16_uses_amx(long k);

#ifdef __cplusplus
}
#endif
#endif
