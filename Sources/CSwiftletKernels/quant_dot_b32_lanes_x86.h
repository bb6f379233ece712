// AVX-512 VNNI prefill kernel for the 32-weight block formats: 16 weight rows in the lanes of
// each 512-bit vector. Included by quant_dot_b32_x86.h in the VNNI variant only. Private to
// CSwiftletKernels.
//
// llama.cpp's order per (row, token) is an 8-lane accumulator, lane g taking the exact integer
// sum of the 4 products of weights 4g..4g+3 of each block: acc_g = fma(d_w·d_a, lane_g, acc_g),
// then ggml's hsum ((0+4)+(2+6))+((1+5)+(3+7)) (+ Σ fma(m_w, s_a) for Q4_1 / Q5_1). Here the
// 8 lanes of one (row, token) live in 8 vectors, one per g, whose 16 lanes are 16 rows; vpdpbusd
// of the 4-weight group g of 16 rows (a vector of the unpacked tile) against the broadcast 4
// activations forms lane g of 16 rows at once, and the final hsum is 7 vertical additions.
//
// vpdpbusd multiplies unsigned by signed bytes, so the tile holds level + bias (unsigned: 8 for
// Q4_0, 16 for Q5_0, 128 for Q8_0 / IQ4_NL, 0 for Q4_1 / Q5_1) and each sum starts from
// −bias · (sum of the 4 activations), formed once per token and block. The start value also
// carries 0x4B400000 (the bits of 1.5·2^23): the int32 result L + 0x4B400000 read as a float is
// exactly 12582912 + L for |L| < 2^22 (|L| ≤ 4·255·128 here), so one float subtraction gives
// float(L) exactly, in place of a conversion on the port vpdpbusd also needs.

/// Rows per tile: the 16 lanes of a 512-bit vector.
#define B32L_ROWS 16
/// The bits of 12582912.0f (1.5 · 2^23).
#define B32L_MAGIC 0x4B400000

/// Unpacked weights of one 16-row tile, laid out per block: 8 vectors of [row][4 levels + bias],
/// the 16 row scales d and (Q4_1 / Q5_1) mins m as f32.
typedef struct {
    uint8_t *q;   // nb · 8 · 64 bytes
    float *d;     // nb · 16
    float *m;     // nb · 16
} QK_FN(b32l_tile);

/// Per (token, block): the 8 lane start values and the activation scales, for a group of tokens.
typedef struct {
    int32_t *init;   // [token][block][8]
    float *da;       // [token][block]
    float *sa;       // [token][block] (Q8_1 s)
} QK_FN(b32l_pack);

QK_INLINE int QK_FN(b32l_bias)(const int kind) {
    return kind == K_Q4_0 ? 8 : kind == K_Q5_0 ? 16 : kind == K_Q8_0 || kind == K_IQ4_NL ? 128 : 0;
}

QK_INLINE void QK_FN(b32l_unpack)(const int kind, const QK_FN(b32l_tile) *tile, int nb,
                                         const uint8_t *w, size_t w_stride) {
    const int wsize = B32_WSIZE(kind);
    const __m256i bias = _mm256_set1_epi8((char)QK_FN(b32l_bias)(kind));
    for (int r = 0; r < B32L_ROWS; ++r) {
        const uint8_t *row = w + (size_t)r * w_stride;
        for (int b = 0; b < nb; ++b) {
            const uint8_t *wb = row + (size_t)b * wsize;
            uint32_t v[8];
            _mm256_storeu_si256((__m256i *)v, _mm256_add_epi8(QK_FN(levels1_b32)(kind, wb), bias));
            uint32_t *dst = (uint32_t *)(tile->q + (size_t)b * 8 * 64) + r;
            for (int g = 0; g < 8; ++g) dst[16 * g] = v[g];
            uint16_t h; memcpy(&h, wb, 2);
            tile->d[16 * b + r] = _cvtsh_ss(h);
            if (B32_WITH_MIN(kind)) { memcpy(&h, wb + 2, 2); tile->m[16 * b + r] = _cvtsh_ss(h); }
        }
    }
}

QK_INLINE void QK_FN(b32l_make_pack)(const int kind, const QK_FN(b32l_pack) *pk, int nb, int ntok,
                                            const uint8_t *a, size_t a_stride) {
    const int with_min = B32_WITH_MIN(kind), asize = with_min ? 36 : 34, aq = with_min ? 4 : 2;
    const int bias = QK_FN(b32l_bias)(kind), shift = bias == 8 ? 3 : bias == 16 ? 4 : 7;
    const __m256i ones = _mm256_set1_epi8(1), magic = _mm256_set1_epi32(B32L_MAGIC);
    for (int t = 0; t < ntok; ++t)
        for (int b = 0; b < nb; ++b) {
            const uint8_t *ab = a + (size_t)t * a_stride + (size_t)b * asize;
            const size_t i = (size_t)t * nb + b;
            uint16_t h; memcpy(&h, ab, 2);
            pk->da[i] = _cvtsh_ss(h);
            if (with_min) { memcpy(&h, ab + 2, 2); pk->sa[i] = _cvtsh_ss(h); }
            else {
                const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, _mm256_loadu_si256((const __m256i *)(ab + aq)));
                _mm256_storeu_si256((__m256i *)(pk->init + 8 * i), _mm256_sub_epi32(magic, _mm256_slli_epi32(sums, shift)));
            }
        }
}

/// NT (1 or 2) tokens against one unpacked tile: 16 outputs per token, stored at y + t · y_stride.
/// `a`, `init`, `da`, `sa` point at the first token's data.
QK_INLINE void QK_FN(b32l_tokens)(const int kind, const int NT, const QK_FN(b32l_tile) *tile, int nb,
                                  const uint8_t *a, size_t a_stride, const int32_t *init, const float *da, const float *sa,
                                  float *y, size_t y_stride) {
    const int with_min = B32_WITH_MIN(kind), asize = with_min ? 36 : 34, aq = with_min ? 4 : 2;
    const __m512 offset = _mm512_set1_ps(12582912.0f);
    const __m512i magic = _mm512_set1_epi32(B32L_MAGIC);
    __m512 acc[2][8], summs[2];
    for (int t = 0; t < NT; ++t) {
        for (int g = 0; g < 8; ++g) acc[t][g] = _mm512_setzero_ps();
        summs[t] = _mm512_setzero_ps();
    }
    for (int b = 0; b < nb; ++b) {
        const uint8_t *wq = tile->q + (size_t)b * 8 * 64;
        __m512i W[8];
        for (int g = 0; g < 8; ++g) W[g] = _mm512_loadu_si512((const void *)(wq + 64 * g));
        const __m512 dw = _mm512_loadu_ps(tile->d + 16 * b);
        for (int t = 0; t < NT; ++t) {
            const size_t i = (size_t)t * nb + b;
            const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(da[i]));
            const uint8_t *ap = a + (size_t)t * a_stride + (size_t)b * asize + aq;
            for (int g = 0; g < 8; ++g) {
                int32_t av; memcpy(&av, ap + 4 * g, 4);
                const __m512i start = with_min ? magic : _mm512_set1_epi32(init[8 * i + g]);
                const __m512i lanes = _mm512_dpbusd_epi32(start, W[g], _mm512_set1_epi32(av));
                const __m512 f = _mm512_sub_ps(_mm512_castsi512_ps(lanes), offset);
                acc[t][g] = _mm512_fmadd_ps(d, f, acc[t][g]);
            }
            if (with_min) summs[t] = _mm512_fmadd_ps(_mm512_loadu_ps(tile->m + 16 * b), _mm512_set1_ps(sa[i]), summs[t]);
        }
    }
    for (int t = 0; t < NT; ++t) {
        const __m512 s04 = _mm512_add_ps(acc[t][0], acc[t][4]), s15 = _mm512_add_ps(acc[t][1], acc[t][5]);
        const __m512 s26 = _mm512_add_ps(acc[t][2], acc[t][6]), s37 = _mm512_add_ps(acc[t][3], acc[t][7]);
        __m512 s = _mm512_add_ps(_mm512_add_ps(s04, s26), _mm512_add_ps(s15, s37));
        if (with_min) s = _mm512_add_ps(s, summs[t]);
        _mm512_storeu_ps(y + (size_t)t * y_stride, s);
    }
}

/// Tokens per pack (40 bytes per token and block): 2 MB takes 512 tokens of 3200-wide rows at once,
/// so each tile is unpacked once; the pack and the activations stream from L2 past the tile in L1.
#define B32L_PACK_BYTES (2 * 1024 * 1024)

/// One allocation holding a tile and the pack of up to `group` tokens.
typedef struct {
    uint8_t *buffer;
    QK_FN(b32l_tile) tile;
    QK_FN(b32l_pack) pack;
    int group;
} QK_FN(b32l_work);

/// Sizes the token group to B32L_PACK_BYTES (at least 2 tokens, at most ntok) and allocates;
/// returns 0 when the allocation fails.
QK_INLINE int QK_FN(b32l_work_open)(QK_FN(b32l_work) *work, int nb, int ntok) {
    int group = (int)(B32L_PACK_BYTES / ((size_t)nb * 40));
    if (group < 2) group = 2;
    if (group > ntok) group = ntok;
    const size_t tile_bytes = (size_t)nb * (8 * 64 + 2 * 16 * 4);
    const size_t pack_bytes = (size_t)group * nb * 40;
    uint8_t *buffer = aligned_alloc(64, (tile_bytes + pack_bytes + 63) / 64 * 64);
    if (!buffer) return 0;
    work->buffer = buffer;
    work->group = group;
    work->tile = (QK_FN(b32l_tile)){buffer, (float *)(buffer + (size_t)nb * 8 * 64),
                                    (float *)(buffer + (size_t)nb * (8 * 64 + 64))};
    work->pack = (QK_FN(b32l_pack)){(int32_t *)(buffer + tile_bytes), (float *)(buffer + tile_bytes + (size_t)group * nb * 32),
                                    (float *)(buffer + tile_bytes + (size_t)group * nb * 36)};
    return 1;
}

/// Rows in whole tiles of 16 against all tokens; returns how many rows it did (0 when it does
/// not apply or its buffers cannot be allocated: the caller's kernels then do them).
QK_INLINE int QK_FN(gemm_b32_lanes)(const int kind, int n, const uint8_t *w, size_t w_stride,
                                                                    int nrows, const uint8_t *a, size_t a_stride, int ntok,
                                                                    float *y, size_t y_stride) {
    const int nb = n / QK, tiles = nrows / B32L_ROWS;
    if (tiles == 0 || nb == 0) return 0;
    QK_FN(b32l_work) work;
    if (!QK_FN(b32l_work_open)(&work, nb, ntok)) return 0;
    const QK_FN(b32l_tile) tile = work.tile;
    const QK_FN(b32l_pack) pk = work.pack;
    for (int t0 = 0; t0 < ntok; t0 += work.group) {
        const int g = ntok - t0 < work.group ? ntok - t0 : work.group;
        const uint8_t *at = a + (size_t)t0 * a_stride;
        QK_FN(b32l_make_pack)(kind, &pk, nb, g, at, a_stride);
        for (int tile_index = 0; tile_index < tiles; ++tile_index) {
            const int r0 = tile_index * B32L_ROWS;
            QK_FN(b32l_unpack)(kind, &tile, nb, w + (size_t)r0 * w_stride, w_stride);
            float *yt = y + (size_t)t0 * y_stride + r0;
            int t = 0;
            for (; t + 2 <= g; t += 2)
                QK_FN(b32l_tokens)(kind, 2, &tile, nb, at + (size_t)t * a_stride, a_stride, pk.init + (size_t)t * nb * 8,
                                   pk.da + (size_t)t * nb, pk.sa + (size_t)t * nb, yt + (size_t)t * y_stride, y_stride);
            if (t < g)
                QK_FN(b32l_tokens)(kind, 1, &tile, nb, at + (size_t)t * a_stride, a_stride, pk.init + (size_t)t * nb * 8,
                                   pk.da + (size_t)t * nb, pk.sa + (size_t)t * nb, yt + (size_t)t * y_stride, y_stride);
        }
    }
    free(work.buffer);
    return tiles * B32L_ROWS;
}

#undef B32L_ROWS
#undef B32L_MAGIC
#undef B32L_PACK_BYTES
