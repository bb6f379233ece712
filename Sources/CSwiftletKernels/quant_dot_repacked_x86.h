// x86 kernels in the float order of llama.cpp's repacked weights (ggml-cpu's "repack" buffer
// type: Q4_0 / IQ4_NL 8x8 with AVX2, Q2_K 8x8 with AVX-512). Included by quant_dot_x86.h in each
// variant. Private to CSwiftletKernels.
//
// The weights stay in their ggml layout; only the order is llama.cpp's. Q4_0 / IQ4_NL: one f32
// chain per output, y = fma(float(S_b), d_w·d_a, y), S_b the block's exact integer dot. Tiles of
// 8 rows form each row's 8 lane sums, and a transposing horizontal add turns the 8 rows' lanes
// into one vector of 8 block sums, so the chains of 8 rows advance in the lanes of one FMA.
// Q2_K: two chains (scales, mins) per super-block (gemv) or per 128-weight half (gemm).

/// The 8 lane sums of each of l[0..7] → one vector of their 8 totals (row r in lane r).
QK_INLINE __m256i QK_FN(reduce8_i32)(const __m256i *l) {
    const __m256i h01 = _mm256_hadd_epi32(l[0], l[1]), h23 = _mm256_hadd_epi32(l[2], l[3]);
    const __m256i h45 = _mm256_hadd_epi32(l[4], l[5]), h67 = _mm256_hadd_epi32(l[6], l[7]);
    const __m256i lo = _mm256_hadd_epi32(h01, h23), hi = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
}

/// Signed levels of one Q4_0 / IQ4_NL block.
QK_INLINE __m256i QK_FN(chain_levels)(const int kind, const uint8_t *wb) {
    const __m256i x = QK_FN(nibbles)(wb + 2);
    if (kind == K_Q4_0) return _mm256_sub_epi8(x, _mm256_set1_epi8(8));
    return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_iq4)), x);
}

/// R (8 or 1) rows × NT ≤ 4 tokens in the chain order; y[t * y_stride + r].
QK_INLINE void QK_FN(tile_chain)(const int kind, const int R, const int NT, int nb, const uint8_t *w, size_t w_stride,
                                 const uint8_t *a, size_t a_stride, float *y, size_t y_stride) {
    __m256 acc[4];
    float acc1[4] = {0, 0, 0, 0};
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; ++b) {
        __m256i u[8], q[8];
        short hw[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int r = 0; r < R; ++r) {
            const uint8_t *wb = w + (size_t)r * w_stride + (size_t)b * 18;
            q[r] = QK_FN(chain_levels)(kind, wb);
            u[r] = _mm256_sign_epi8(q[r], q[r]);
            memcpy(&hw[r], wb, 2);
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(hw[0], hw[1], hw[2], hw[3], hw[4], hw[5], hw[6], hw[7]));
        for (int t = 0; t < NT; ++t) {
            const uint8_t *ab = a + (size_t)t * a_stride + (size_t)b * 34;
            const __m256i av = _mm256_loadu_si256((const __m256i *)(ab + 2));
            uint16_t h; memcpy(&h, ab, 2);
            const float da = QK_FN(half)(h);
            __m256i l[8];
            for (int r = 0; r < R; ++r) l[r] = QK_FN(dot_us)(u[r], _mm256_sign_epi8(av, q[r]));
            if (R == 8) {
                const __m256 s = _mm256_cvtepi32_ps(QK_FN(reduce8_i32)(l));
                acc[t] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, _mm256_set1_ps(da)), acc[t]);
            } else {
                acc1[t] = fmaf((float)QK_FN(hsum_i32x8)(l[0]), QK_FN(half)((uint16_t)hw[0]) * da, acc1[t]);
            }
        }
    }
    for (int t = 0; t < NT; ++t) {
        if (R == 8) _mm256_storeu_ps(y + (size_t)t * y_stride, acc[t]);
        else y[(size_t)t * y_stride] = acc1[t];
    }
}

#if QK_VNNI
/// The 16 lane sums of each of v[0..3] (rows 2k, 2k+1 in the halves of v[k]) → 8 row totals in the
/// order r0 r2 r4 r6 r1 r3 r5 r7.
QK_INLINE __m256i QK_FN(reduce8x2_i32)(const __m512i *v) {
    const __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
    const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
    const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
    const __m512i w = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_castsi512_si256(_mm512_shuffle_i32x4(w, w, _MM_SHUFFLE(0, 0, 2, 0)));
}

/// 8 rows × NT ≤ 4 tokens in the chain order with rows in pairs per 512-bit vector: the signed
/// levels multiply the activations + 128 (unsigned), each sum starting from −128 · Σ levels.
/// `ahead` (or NULL): a later tile's rows (contiguous), fetched a block's share per block, since
/// 8 short row streams at once outrun the hardware prefetcher.
QK_INLINE void QK_FN(tile_chain512)(const int kind, const int NT, int nb, const uint8_t *w, size_t w_stride,
                                    const uint8_t *a, size_t a_stride, const uint8_t *ahead, float *y, size_t y_stride) {
    __m256 acc[4];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    const int K = kind == K_Q4_0 ? K_Q4_0 : K_IQ4_NL;
    for (int b = 0; b < nb; ++b) {
        const size_t wo = (size_t)b * 18;
        if (ahead)
            for (int o = 0; o < 8 * 18; o += 64) _mm_prefetch((const char *)ahead + (size_t)b * 8 * 18 + o, _MM_HINT_T0);
        __m512i q[4], init[4];
        short hw[8];
        for (int p = 0; p < 4; ++p) {
            const uint8_t *w0 = w + (size_t)(2 * p) * w_stride + wo, *w1 = w0 + w_stride;
            q[p] = QK_FN(levels2_b32)(K, w0, w1);
            init[p] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, q[p]));
            memcpy(&hw[p], w0, 2); memcpy(&hw[4 + p], w1, 2);   // lane order r0 r2 r4 r6 r1 r3 r5 r7
        }
        // Built from registers: 2-byte stores read back as one 16-byte load would stall store forwarding.
        const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(hw[0], hw[1], hw[2], hw[3], hw[4], hw[5], hw[6], hw[7]));
        for (int t = 0; t < NT; ++t) {
            const uint8_t *ab = a + (size_t)t * a_stride + (size_t)b * 34;
            const __m512i ax = _mm512_xor_si512(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(ab + 2))), bias);
            uint16_t h; memcpy(&h, ab, 2);
            __m512i l[4];
            for (int p = 0; p < 4; ++p) l[p] = _mm512_dpbusd_epi32(init[p], ax, q[p]);
            const __m256 s = _mm256_cvtepi32_ps(QK_FN(reduce8x2_i32)(l));
            acc[t] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, _mm256_set1_ps(QK_FN(half)(h))), acc[t]);
        }
    }
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int t = 0; t < NT; ++t) _mm256_storeu_ps(y + (size_t)t * y_stride, _mm256_permutevar8x32_ps(acc[t], order));
}

/// ≥ 8 tokens: 16-row tiles unpacked with rows in lanes (quant_dot_b32_lanes_x86.h), each block's
/// 8 groups of 4 products chained into one vpdpbusd sum per row, then one FMA per block.
QK_INLINE void QK_FN(b32l_tokens_chain)(const int kind, const QK_FN(b32l_tile) *tile, int nb,
                                        const uint8_t *a, const int32_t *init, const float *da, float *y) {
    const __m512 offset = _mm512_set1_ps(12582912.0f);
    __m512 acc = _mm512_setzero_ps();
    (void)kind;
    for (int b = 0; b < nb; ++b) {
        const uint8_t *wq = tile->q + (size_t)b * 8 * 64;
        const uint8_t *ap = a + (size_t)b * 34 + 2;
        // Start: 1.5·2^23 − bias·Σa over the whole block (the pack holds it per group of 4).
        int32_t start = init[8 * b];
        for (int g = 1; g < 8; ++g) start += init[8 * b + g] - 0x4B400000;
        __m512i lanes = _mm512_set1_epi32(start);
        for (int g = 0; g < 8; ++g) {
            int32_t av; memcpy(&av, ap + 4 * g, 4);
            lanes = _mm512_dpbusd_epi32(lanes, _mm512_loadu_si512((const void *)(wq + 64 * g)), _mm512_set1_epi32(av));
        }
        const __m512 f = _mm512_sub_ps(_mm512_castsi512_ps(lanes), offset);
        const __m512 d = _mm512_mul_ps(_mm512_loadu_ps(tile->d + 16 * b), _mm512_set1_ps(da[b]));
        acc = _mm512_fmadd_ps(f, d, acc);
    }
    _mm512_storeu_ps(y, acc);
}

/// Rows in whole 16-row tiles against all tokens in the chain order; returns the rows done.
QK_INLINE int QK_FN(gemm_chain_lanes)(const int kind, int n, const uint8_t *w, size_t w_stride, int nrows,
                                      const uint8_t *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    const int nb = n / QK, tiles = nrows / 16;
    if (tiles == 0 || nb == 0) return 0;
    QK_FN(b32l_work) work;
    if (!QK_FN(b32l_work_open)(&work, nb, ntok)) return 0;
    for (int t0 = 0; t0 < ntok; t0 += work.group) {
        const int g = ntok - t0 < work.group ? ntok - t0 : work.group;
        const uint8_t *at = a + (size_t)t0 * a_stride;
        QK_FN(b32l_make_pack)(kind, &work.pack, nb, g, at, a_stride);
        for (int tile_index = 0; tile_index < tiles; ++tile_index) {
            const int r0 = tile_index * 16;
            QK_FN(b32l_unpack)(kind, &work.tile, nb, w + (size_t)r0 * w_stride, w_stride);
            for (int t = 0; t < g; ++t)
                QK_FN(b32l_tokens_chain)(kind, &work.tile, nb, at + (size_t)t * a_stride, work.pack.init + (size_t)t * nb * 8,
                                         work.pack.da + (size_t)t * nb, y + (size_t)(t0 + t) * y_stride + r0);
        }
    }
    free(work.buffer);
    return tiles * 16;
}
#endif

QK_INLINE int QK_FN(gemm_chain_kind)(const int kind, int n, const uint8_t *w, size_t w_stride, int nrows,
                                     const uint8_t *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    const int nb = n / QK;
#if QK_VNNI
    if (ntok >= 8) {
        const int done = QK_FN(gemm_chain_lanes)(kind, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
        w += (size_t)done * w_stride; y += done; nrows -= done;
        if (nrows == 0) return 0;
    }
#endif
    for (int t0 = 0; t0 < ntok; t0 += 4) {
        const int nt = ntok - t0 < 4 ? ntok - t0 : 4;
        const uint8_t *at = a + (size_t)t0 * a_stride;
        float *yt = y + (size_t)t0 * y_stride;
        int r = 0;
        for (; r + 8 <= nrows; r += 8) {
            const uint8_t *wr = w + (size_t)r * w_stride;
#if QK_VNNI
            const uint8_t *ahead = r + 24 <= nrows ? w + (size_t)(r + 16) * w_stride : NULL;   // two tiles ahead
            switch (nt) {
            case 1: QK_FN(tile_chain512)(kind, 1, nb, wr, w_stride, at, a_stride, ahead, yt + r, y_stride); break;
            case 2: QK_FN(tile_chain512)(kind, 2, nb, wr, w_stride, at, a_stride, ahead, yt + r, y_stride); break;
            case 3: QK_FN(tile_chain512)(kind, 3, nb, wr, w_stride, at, a_stride, ahead, yt + r, y_stride); break;
            default: QK_FN(tile_chain512)(kind, 4, nb, wr, w_stride, at, a_stride, ahead, yt + r, y_stride); break;
            }
            continue;
#endif
            switch (nt) {
            case 1: QK_FN(tile_chain)(kind, 8, 1, nb, wr, w_stride, at, a_stride, yt + r, y_stride); break;
            case 2: QK_FN(tile_chain)(kind, 8, 2, nb, wr, w_stride, at, a_stride, yt + r, y_stride); break;
            case 3: QK_FN(tile_chain)(kind, 8, 3, nb, wr, w_stride, at, a_stride, yt + r, y_stride); break;
            default: QK_FN(tile_chain)(kind, 8, 4, nb, wr, w_stride, at, a_stride, yt + r, y_stride); break;
            }
        }
        for (; r < nrows; ++r)
            for (int t = 0; t < nt; ++t)
                QK_FN(tile_chain)(kind, 1, 1, nb, w + (size_t)r * w_stride, w_stride, at + (size_t)t * a_stride, a_stride,
                                  yt + (size_t)t * y_stride + r, y_stride);
    }
    return 0;
}

/// Q2_K rows against NT tokens in the repacked order: per super-block (`halves` 0, its gemv) or
/// per 128-weight half (`halves` 1, its gemm) acc = fma(float(S), d·d_a, acc) and
/// accm = fma(float(M), dmin·d_a, accm); out = acc − accm.
QK_INLINE void QK_FN(rows_q2_K_repacked)(const int NT, const int halves, int n, const uint8_t *w,
                                         const uint8_t *a, size_t a_stride, float *out) {
    float acc[4] = {0, 0, 0, 0}, accm[4] = {0, 0, 0, 0};
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q2_K *wb = (const blk_q2_K *)w + b;
        const float d = QK_FN(half)(wb->d), dmin = QK_FN(half)(wb->dmin);
        __m256i isum[4];
        for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            QK_FN(q2_K_half_isums)(NT, wb, b, h, a, a_stride, isum);
            if (!halves && h == 0) continue;
            const int j0 = halves ? 8 * h : 0;
            for (int t = 0; t < NT; ++t) {
                const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
                int mins = 0;
                for (int j = j0; j < 8 * h + 8; ++j) mins += (wb->scales[j] >> 4) * ab->bsums[j];
                acc[t] = fmaf((float)QK_FN(hsum_i32x8)(isum[t]), d * ab->d, acc[t]);
                accm[t] = fmaf((float)mins, dmin * ab->d, accm[t]);
                isum[t] = _mm256_setzero_si256();
            }
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = acc[t] - accm[t];
}

QK_INLINE void QK_FN(gemm_q2_K_repacked)(int n, const uint8_t *w, size_t w_stride, int nrows,
                                         const uint8_t *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    float out[4];
    const int grouped = ntok - ntok % 4;
    for (int t0 = 0; t0 < ntok; t0 += 4) {
        const int nt = ntok - t0 < 4 ? ntok - t0 : 4, halves = t0 < grouped;
        const uint8_t *at = a + (size_t)t0 * a_stride;
        float *yt = y + (size_t)t0 * y_stride;
        for (int r = 0; r < nrows; ++r) {
            const uint8_t *wr = w + (size_t)r * w_stride;
            switch (nt) {
            case 1: QK_FN(rows_q2_K_repacked)(1, halves, n, wr, at, a_stride, out); break;
            case 2: QK_FN(rows_q2_K_repacked)(2, halves, n, wr, at, a_stride, out); break;
            case 3: QK_FN(rows_q2_K_repacked)(3, halves, n, wr, at, a_stride, out); break;
            default: QK_FN(rows_q2_K_repacked)(4, halves, n, wr, at, a_stride, out); break;
            }
            for (int t = 0; t < nt; ++t) yt[(size_t)t * y_stride + r] = out[t];
        }
    }
}

/// swiftlet_qk_gemm_layout for repacked weights; -1 for a type without a repacked order here.
static QK_TARGET int QK_FN(gemm_repacked)(int type, int n, const void *w, size_t w_stride, int nrows,
                                          const void *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    switch (type) {
    case T_Q4_0: return QK_FN(gemm_chain_kind)(K_Q4_0, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
    case T_IQ4_NL: return QK_FN(gemm_chain_kind)(K_IQ4_NL, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride);
    case T_Q2_K: QK_FN(gemm_q2_K_repacked)(n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride); return 0;
    default: return -1;
    }
}
