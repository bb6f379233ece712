// x86 SIMD kernels for the k-quants Q4_K / Q5_K / Q6_K against Q8_K activations, and the Q8_K
// activation quantizer. Included by quant_dot_x86.h (itself included twice by quant_dot.c, once
// per QK_TARGET). Private to CSwiftletKernels.
//
// Q4_K and Q6_K reproduce the float operations of the llama.cpp CPU backend on x86 bit for bit
// (the generic C twins in quant_dot.c and SwiftletQuant/DotReference.swift spell the order out):
// - Q4_K is repacked by llama.cpp at load and multiplied by its 8x8 gemv / gemm kernels. A token
//   outside whole groups of 4 (gemv) accumulates per super-block:
//     acc = fma(Σ sc·dot, d·da, acc); accm = fma(Σ mn·bsum, dmin·da, accm); y = acc − accm.
//   A token in a group of 4 (gemm) does the same per 64 weights (two sub-blocks).
// - Q6_K uses ggml_vec_dot_q6_K_q8_K (AVX2): eight int32 lanes, lane k holding weights 4k..4k+3 of
//   every 32 (scaled) minus 32 · (bsum·scale of sub-blocks 2k and 2k+1), accumulated per lane by
//   fma(da·d, lane, acc) over super-blocks, then summed ((0+4)+(2+6))+((1+5)+(3+7)). For 8 or
//   more tokens llama.cpp takes its tiled k-quant matmul instead (ggml-cpu/tiled, AVX-512 VNNI
//   microkernel, GCC-contracted epilogue): per super-block y = fma((float)S · d, da, y), S the
//   exact integer Σ scale·(dot − 32·bsum).

/// Σ over 32 bytes of u·s (u unsigned, s signed), pairs scaled by the 16 int16 lanes of `scale`.
QK_INLINE __m256i QK_FN(dot_scaled)(__m256i u, __m256i s, __m256i scale) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale);
}

QK_INLINE int QK_FN(hsum_i32x4)(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(v);
}

/// The four lane sums of v0..v3 (integer, exact).
QK_INLINE __m128i QK_FN(sums4)(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/// Q4_K row against NT tokens: NT == 4 follows llama.cpp's gemm order, NT < 4 its gemv order.
QK_INLINE void QK_FN(rows_q4_K)(const int NT, int n, const uint8_t *w,
                                const uint8_t *a, size_t a_stride, float *out) {
    const int grouped = NT == 4;
    __m128 accv = _mm_setzero_ps(), accmv = _mm_setzero_ps();   // grouped: lane t = token t
    float acc[4] = {0, 0, 0, 0}, accm[4] = {0, 0, 0, 0};
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q4_K *wb = (const blk_q4_K *)w + b;
        const float d = QK_FN(half)(wb->d), dmin = QK_FN(half)(wb->dmin);
        uint8_t sc[8], mn[8];
        k4_scales_mins(wb->scales, sc, mn);
        const __m128i mn16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
        __m256i part[4][4];   // grouped: [token][64-weight chunk]; else [token][0] = running sum
        for (int t = 0; t < NT; ++t) part[t][0] = _mm256_setzero_si256();
        for (int k = 0; k < 4; ++k) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * k));
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i s0 = _mm256_set1_epi16(sc[2 * k]), s1 = _mm256_set1_epi16(sc[2 * k + 1]);
            for (int t = 0; t < NT; ++t) {
                const int8_t *aq = ((const blk_q8_K *)(a + (size_t)t * a_stride))[b].qs + 64 * k;
                const __m256i a0 = _mm256_loadu_si256((const __m256i *)aq), a1 = _mm256_loadu_si256((const __m256i *)(aq + 32));
                const __m256i v = _mm256_add_epi32(QK_FN(dot_scaled)(lo, a0, s0), QK_FN(dot_scaled)(hi, a1, s1));
                if (grouped) part[t][k] = v;
                else part[t][0] = _mm256_add_epi32(part[t][0], v);
            }
        }
        __m128i sums[4], mins[4];
        float da[4];
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)ab->bsums);
            // Sub-block sums (pairs of 16), then Σ mn·sum per 64-weight chunk.
            const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
            mins[t] = _mm_madd_epi16(pairs, mn16);
            da[t] = ab->d;
            if (grouped) {
                sums[t] = QK_FN(sums4)(part[t][0], part[t][1], part[t][2], part[t][3]);
            } else {
                const __m256i v = part[t][0];
                const int isum = QK_FN(hsum_i32x4)(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
                const int msum = QK_FN(hsum_i32x4)(mins[t]);
                const float dd = d * da[t], dm = dmin * da[t];
                acc[t] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss((float)isum), _mm_set_ss(dd), _mm_set_ss(acc[t])));
                accm[t] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss((float)msum), _mm_set_ss(dm), _mm_set_ss(accm[t])));
            }
        }
        if (grouped) {
            const __m128 dav = _mm_loadu_ps(da);
            const __m128 ddv = _mm_mul_ps(_mm_set1_ps(d), dav), dmv = _mm_mul_ps(_mm_set1_ps(dmin), dav);
            // Transpose [token][chunk] → [chunk][token] so the 4 tokens' chains run in lanes.
            __m128 s0 = _mm_castsi128_ps(sums[0]), s1 = _mm_castsi128_ps(sums[1]), s2 = _mm_castsi128_ps(sums[2]), s3 = _mm_castsi128_ps(sums[3]);
            __m128 m0 = _mm_castsi128_ps(mins[0]), m1 = _mm_castsi128_ps(mins[1]), m2 = _mm_castsi128_ps(mins[2]), m3 = _mm_castsi128_ps(mins[3]);
            _MM_TRANSPOSE4_PS(s0, s1, s2, s3);
            _MM_TRANSPOSE4_PS(m0, m1, m2, m3);
            accv = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(s0)), ddv, accv);
            accmv = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(m0)), dmv, accmv);
            accv = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(s1)), ddv, accv);
            accmv = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(m1)), dmv, accmv);
            accv = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(s2)), ddv, accv);
            accmv = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(m2)), dmv, accmv);
            accv = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(s3)), ddv, accv);
            accmv = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(m3)), dmv, accmv);
        }
    }
    if (grouped) _mm_storeu_ps(out, _mm_sub_ps(accv, accmv));
    else for (int t = 0; t < NT; ++t) out[t] = acc[t] - accm[t];
}

/// Σ of 8 int32 lanes (exact).
QK_INLINE int QK_FN(hsum_i32x8)(__m256i v) {
    return QK_FN(hsum_i32x4)(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

/// Q5_K row against NT tokens: with `tiled`, llama.cpp's tiled k-quant matmul order (kq_tiled_add);
/// otherwise ggml's vec_dot order is not reproduced (fewer than 8 tokens).
QK_INLINE void QK_FN(rows_q5_K)(const int NT, const int tiled, int n, const uint8_t *w,
                                const uint8_t *a, size_t a_stride, float *out) {
    __m256 acc[4];
    float msum[4] = {0, 0, 0, 0}, y[4] = {0, 0, 0, 0};
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m16 = _mm256_set1_epi8(0x10);
    for (int b = 0; b < n / QKK; ++b) {
        const uint8_t *wb = w + (size_t)b * sizeof(blk_q5_K);
        uint16_t hd, hm; memcpy(&hd, wb, 2); memcpy(&hm, wb + 2, 2);
        const float d = QK_FN(half)(hd), dmin = QK_FN(half)(hm);
        uint8_t sc[8], mn[8];
        k4_scales_mins(wb + 4, sc, mn);
        const uint8_t *qs = wb + 48;
        __m256i hbits = _mm256_loadu_si256((const __m256i *)(wb + 16));
        __m256i isum[4];
        for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
        for (int k = 0; k < 4; ++k) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * k));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hbits, 4), m16));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hbits, 3), m16));
            hbits = _mm256_srli_epi16(hbits, 2);
            const __m256i s0 = _mm256_set1_epi16(sc[2 * k]), s1 = _mm256_set1_epi16(sc[2 * k + 1]);
            for (int t = 0; t < NT; ++t) {
                const int8_t *aq = ((const blk_q8_K *)(a + (size_t)t * a_stride))[b].qs + 64 * k;
                const __m256i a0 = _mm256_loadu_si256((const __m256i *)aq), a1 = _mm256_loadu_si256((const __m256i *)(aq + 32));
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(QK_FN(dot_scaled)(lo, a0, s0), QK_FN(dot_scaled)(hi, a1, s1)));
            }
        }
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            int mins = 0;
            for (int j = 0; j < 8; ++j) mins += mn[j] * (ab->bsums[2 * j] + ab->bsums[2 * j + 1]);
            if (tiled) {
                y[t] = kq_tiled_add(y[t], ab->d, d, dmin, QK_FN(hsum_i32x8)(isum[t]), mins);
                continue;
            }
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * ab->d), acc[t]);
            msum[t] -= dmin * ab->d * (float)mins;
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = tiled ? y[t] : QK_FN(hsum)(acc[t]) + msum[t];
}

/// Q6_K row against NT tokens, each in ggml_vec_dot_q6_K_q8_K's order (see the top of the file),
/// or with `tiled` in the order of llama.cpp's tiled k-quant matmul (taken for 8 or more tokens):
/// per super-block y = fma((float)Σ scale·dot · d, da, y).
QK_INLINE void QK_FN(rows_q6_K)(const int NT, const int tiled, int n, const uint8_t *w,
                                const uint8_t *a, size_t a_stride, float *out) {
    __m256 acc[4];
    float y[4] = {0, 0, 0, 0};
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03), m30 = _mm256_set1_epi8(0x30), m0c = _mm256_set1_epi8(0x0C);
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q6_K *wb = (const blk_q6_K *)w + b;
        const float d = QK_FN(half)(wb->d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb->scales));
        __m256i isum[4];
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            // Levels are stored +32: lane k starts at −32 · Σ bsum·scale of sub-blocks 2k, 2k+1.
            const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)ab->bsums), sc16), 5);
            isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), off);
        }
        for (int h = 0; h < 2; ++h) {
            const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h));
            const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(wb->qh + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m0c), 2));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            for (int c = 0; c < 4; ++c) {
                const int8_t *s = wb->scales + 8 * h + 2 * c;
                const __m256i sv = _mm256_set_m128i(_mm_set1_epi16(s[1]), _mm_set1_epi16(s[0]));
                for (int t = 0; t < NT; ++t) {
                    const int8_t *aq = ((const blk_q8_K *)(a + (size_t)t * a_stride))[b].qs + 128 * h + 32 * c;
                    isum[t] = _mm256_add_epi32(isum[t], QK_FN(dot_scaled)(q[c], _mm256_loadu_si256((const __m256i *)aq), sv));
                }
            }
        }
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            if (tiled) {
                const __m256i v = isum[t];
                const int total = QK_FN(hsum_i32x4)(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
                const float r = (float)total * d;
                y[t] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(r), _mm_set_ss(ab->d), _mm_set_ss(y[t])));
            } else {
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(ab->d * d), _mm256_cvtepi32_ps(isum[t]), acc[t]);
            }
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = tiled ? y[t] : QK_FN(hsum)(acc[t]);
}

/// Q8_K activation quantizer (quantize_row_q8_K_ref; with `grouped`, the sign rule of
/// quantize_mat_q8_K: see quantize_q8_K_generic).
static QK_TARGET void QK_FN(quantize_q8_K)(const float *x, void *out, int n, int grouped) {
    blk_q8_K *y = out;
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / QKK; ++b) {
        const float *xb = x + QKK * b;
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QKK; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(signbit, _mm256_loadu_ps(xb + j)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0) { memset(&y[b], 0, sizeof(blk_q8_K)); continue; }
        const __m256 av = _mm256_set1_ps(amax);
        float max = -amax;
        if (grouped) {
            for (int j = 0; j < QKK; j += 8)
                if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(xb + j), av, _CMP_EQ_OQ))) { max = amax; break; }
        } else {
            for (int j = 0; j < QKK; j += 8) {
                const __m256 v = _mm256_loadu_ps(xb + j);
                const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(signbit, v), av, _CMP_EQ_OQ));
                if (hit) { max = xb[j + __builtin_ctz((unsigned)hit)]; break; }
            }
        }
        const float iscale = -127.f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        for (int j = 0; j < QKK; j += 32) {
            __m256i iv[4];
            for (int i = 0; i < 4; ++i)
                iv[i] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(is, _mm256_loadu_ps(xb + j + 8 * i)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)), _mm256_set1_epi32(127));
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(iv[0], iv[1]), _mm256_packs_epi32(iv[2], iv[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y[b].qs + j), p);
            // Sums of 16: bytes → int16 pairs → fold.
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), p);
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));   // 8 sums of 4
            const __m256i s2 = _mm256_hadd_epi32(s32, s32);                        // per lane: [0+1, 2+3, 0+1, 2+3]
            const __m256i s4 = _mm256_hadd_epi32(s2, s2);                          // per lane: sum of 16
            y[b].bsums[j / 16] = (int16_t)_mm256_extract_epi32(s4, 0);
            y[b].bsums[j / 16 + 1] = (int16_t)_mm256_extract_epi32(s4, 4);
        }
        y[b].d = 1 / iscale;
    }
}

#if QK_VNNI
// MARK: Q4_K prefill with weight rows in lanes (AVX-512 VNNI)
//
// For 4 or more tokens a tile of 16 weight rows is unpacked once into bytes laid out 16 rows × 4
// weights per 512-bit vector, so vpdpbusd puts each row's partial dot in its own lane: the per-row
// float chains (the same llama.cpp order as rows_q4_K) then run 16 rows wide with no horizontal
// sums. The unpack is shared by every token group.

enum { Q4K_TILE_ROWS = 16, Q4K_TILE_MAX_COLS = 8192 };

typedef struct {
    uint8_t q[Q4K_TILE_MAX_COLS * Q4K_TILE_ROWS];        // [super-block][sub-block][4-weight group][row][4]
    int32_t scale[Q4K_TILE_MAX_COLS / 32][Q4K_TILE_ROWS]; // [super-block · 8 + sub-block][row]
    // The mins of sub-blocks 2k and 2k+1 as two int16 in one lane: vpdpwssd against the two
    // 32-activation sums forms Σ min·sum of a 64-weight chunk in one step (exact: |sum| ≤ 4064).
    int32_t min_pair[Q4K_TILE_MAX_COLS / 64][Q4K_TILE_ROWS]; // [super-block · 4 + k][row]
    float d[Q4K_TILE_MAX_COLS / 256][Q4K_TILE_ROWS], dmin[Q4K_TILE_MAX_COLS / 256][Q4K_TILE_ROWS];
} QK_CAT(q4K_tile, QK_VARIANT);

static QK_TARGET void QK_FN(q4K_unpack)(QK_CAT(q4K_tile, QK_VARIANT) *tile, int nb, const uint8_t *w, size_t w_stride) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int r = 0; r < Q4K_TILE_ROWS; ++r) {
        for (int b = 0; b < nb; ++b) {
            const blk_q4_K *wb = (const blk_q4_K *)(w + (size_t)r * w_stride) + b;
            uint8_t sc[8], mn[8];
            k4_scales_mins(wb->scales, sc, mn);
            for (int sb = 0; sb < 8; ++sb) tile->scale[8 * b + sb][r] = sc[sb];
            for (int k = 0; k < 4; ++k) tile->min_pair[4 * b + k][r] = (int32_t)((uint32_t)mn[2 * k] | ((uint32_t)mn[2 * k + 1] << 16));
            tile->d[b][r] = QK_FN(half)(wb->d);
            tile->dmin[b][r] = QK_FN(half)(wb->dmin);
            for (int k = 0; k < 4; ++k) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * k));
                uint32_t lo[8], hi[8];
                _mm256_storeu_si256((__m256i *)lo, _mm256_and_si256(q, m4));
                _mm256_storeu_si256((__m256i *)hi, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
                uint32_t *dlo = (uint32_t *)(tile->q + (size_t)(8 * b + 2 * k) * 8 * 64) + r;
                uint32_t *dhi = (uint32_t *)(tile->q + (size_t)(8 * b + 2 * k + 1) * 8 * 64) + r;
                for (int g = 0; g < 8; ++g) { dlo[16 * g] = lo[g]; dhi[16 * g] = hi[g]; }
            }
        }
    }
}

/// NT tokens against an unpacked tile: `grouped` in llama.cpp's gemm order, else its gemv order.
QK_INLINE void QK_FN(q4K_lanes)(const int NT, const int grouped, const QK_CAT(q4K_tile, QK_VARIANT) *tile, int nb,
                                const uint8_t *a, size_t a_stride, float *y, size_t y_stride) {
    __m512 acc[4], accm[4];
    for (int t = 0; t < NT; ++t) { acc[t] = _mm512_setzero_ps(); accm[t] = _mm512_setzero_ps(); }
    for (int b = 0; b < nb; ++b) {
        const blk_q8_K *ab[4];
        __m512 dd[4], dm[4];
        const __m512 dw = _mm512_loadu_ps(tile->d[b]), dmw = _mm512_loadu_ps(tile->dmin[b]);
        __m512i isum[4], msum[4];
        for (int t = 0; t < NT; ++t) {
            ab[t] = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            const __m512 da = _mm512_set1_ps(ab[t]->d);
            dd[t] = _mm512_mul_ps(dw, da);
            dm[t] = _mm512_mul_ps(dmw, da);
            isum[t] = _mm512_setzero_si512(); msum[t] = _mm512_setzero_si512();
        }
        for (int k = 0; k < 4; ++k) {
            __m512i chunk[4];
            for (int t = 0; t < NT; ++t) chunk[t] = _mm512_setzero_si512();
            for (int sb = 2 * k; sb < 2 * k + 2; ++sb) {
                const uint8_t *wq = tile->q + (size_t)(8 * b + sb) * 8 * 64;
                __m512i W[8];
                for (int g = 0; g < 8; ++g) W[g] = _mm512_loadu_si512((const void *)(wq + 64 * g));
                const __m512i sc = _mm512_loadu_si512((const void *)tile->scale[8 * b + sb]);
                for (int t = 0; t < NT; ++t) {
                    const int8_t *aq = ab[t]->qs + 32 * sb;
                    __m512i r0 = _mm512_setzero_si512(), r1 = _mm512_setzero_si512();
                    for (int g = 0; g < 8; g += 2) {
                        int32_t a0, a1; memcpy(&a0, aq + 4 * g, 4); memcpy(&a1, aq + 4 * g + 4, 4);
                        r0 = _mm512_dpbusd_epi32(r0, W[g], _mm512_set1_epi32(a0));
                        r1 = _mm512_dpbusd_epi32(r1, W[g + 1], _mm512_set1_epi32(a1));
                    }
                    chunk[t] = _mm512_add_epi32(chunk[t], _mm512_mullo_epi32(_mm512_add_epi32(r0, r1), sc));
                }
            }
            const __m512i mn = _mm512_loadu_si512((const void *)tile->min_pair[4 * b + k]);
            for (int t = 0; t < NT; ++t) {
                const int16_t *bs = ab[t]->bsums + 4 * k;
                const uint32_t sums = (uint32_t)(uint16_t)(bs[0] + bs[1]) | ((uint32_t)(uint16_t)(bs[2] + bs[3]) << 16);
                const __m512i m = _mm512_dpwssd_epi32(_mm512_setzero_si512(), mn, _mm512_set1_epi32((int32_t)sums));
                if (grouped) {
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(chunk[t]), dd[t], acc[t]);
                    accm[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), dm[t], accm[t]);
                } else {
                    isum[t] = _mm512_add_epi32(isum[t], chunk[t]);
                    msum[t] = _mm512_add_epi32(msum[t], m);
                }
            }
        }
        if (!grouped)
            for (int t = 0; t < NT; ++t) {
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), dd[t], acc[t]);
                accm[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(msum[t]), dm[t], accm[t]);
            }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + (size_t)t * y_stride, _mm512_sub_ps(acc[t], accm[t]));
}

/// Rows in whole tiles of 16 (all tokens); returns how many rows it did (0 when not applicable).
static QK_TARGET __attribute__((noinline)) int QK_FN(gemm_q4K_tiles)(int n, const uint8_t *w, size_t w_stride, int nrows,
                                          const uint8_t *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    if (n > Q4K_TILE_MAX_COLS || ntok < 4 || nrows < Q4K_TILE_ROWS) return 0;
    QK_CAT(q4K_tile, QK_VARIANT) *tile = malloc(sizeof *tile);   // ~170 KB: too much for a worker's stack
    if (!tile) return 0;
    const int nb = n / QKK;
    int r0 = 0;
    for (; r0 + Q4K_TILE_ROWS <= nrows; r0 += Q4K_TILE_ROWS) {
        QK_FN(q4K_unpack)(tile, nb, w + (size_t)r0 * w_stride, w_stride);
        for (int t0 = 0; t0 < ntok; t0 += 4) {
            const uint8_t *at = a + (size_t)t0 * a_stride;
            float *yt = y + (size_t)t0 * y_stride + r0;
            switch (ntok - t0 < 4 ? ntok - t0 : 4) {
            case 1: QK_FN(q4K_lanes)(1, 0, tile, nb, at, a_stride, yt, y_stride); break;
            case 2: QK_FN(q4K_lanes)(2, 0, tile, nb, at, a_stride, yt, y_stride); break;
            case 3: QK_FN(q4K_lanes)(3, 0, tile, nb, at, a_stride, yt, y_stride); break;
            default: QK_FN(q4K_lanes)(4, 1, tile, nb, at, a_stride, yt, y_stride); break;
            }
        }
    }
    free(tile);
    return r0;
}

// MARK: Q6_K prefill (8 or more tokens) with weight rows in lanes (AVX-512 VNNI)
//
// Same tiling as Q4_K; the 6-bit levels are unpacked to bytes 0..63 (the +32 offset removed as
// 32 · bsum per 16-weight sub-block). Float order: llama.cpp's tiled matmul (see rows_q6_K).

typedef struct {
    uint8_t q[Q4K_TILE_MAX_COLS * Q4K_TILE_ROWS];        // [super-block][sub-block of 16][4-weight group][row][4]
    int32_t scale[Q4K_TILE_MAX_COLS / 16][Q4K_TILE_ROWS]; // [super-block · 16 + sub-block][row]
    float d[Q4K_TILE_MAX_COLS / 256][Q4K_TILE_ROWS];
} QK_CAT(q6K_tile, QK_VARIANT);

static QK_TARGET void QK_FN(q6K_unpack)(QK_CAT(q6K_tile, QK_VARIANT) *tile, int nb, const uint8_t *w, size_t w_stride) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03), m30 = _mm256_set1_epi8(0x30), m0c = _mm256_set1_epi8(0x0C);
    for (int r = 0; r < Q4K_TILE_ROWS; ++r) {
        for (int b = 0; b < nb; ++b) {
            const blk_q6_K *wb = (const blk_q6_K *)(w + (size_t)r * w_stride) + b;
            tile->d[b][r] = QK_FN(half)(wb->d);
            for (int s = 0; s < 16; ++s) tile->scale[16 * b + s][r] = wb->scales[s];
            for (int h = 0; h < 2; ++h) {
                const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h));
                const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h + 32));
                const __m256i qh = _mm256_loadu_si256((const __m256i *)(wb->qh + 32 * h));
                __m256i q[4];
                q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
                q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m0c), 2));
                q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
                q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
                for (int c = 0; c < 4; ++c) {
                    uint32_t v[8];
                    _mm256_storeu_si256((__m256i *)v, q[c]);
                    // Weights 128h + 32c + 4j..: sub-block 8h + 2c + j/4, group j % 4.
                    uint32_t *dst = (uint32_t *)(tile->q + (size_t)(16 * b + 8 * h + 2 * c) * 4 * 64) + r;
                    for (int j = 0; j < 8; ++j) dst[16 * j] = v[j];
                }
            }
        }
    }
}

/// NT tokens against an unpacked Q6_K tile, llama.cpp's tiled-matmul order.
QK_INLINE void QK_FN(q6K_lanes)(const int NT, const QK_CAT(q6K_tile, QK_VARIANT) *tile, int nb,
                                const uint8_t *a, size_t a_stride, float *y, size_t y_stride) {
    __m512 acc[4];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; ++b) {
        const blk_q8_K *ab[4];
        __m512i S[4];
        // −32 · bsum per sub-block, in memory so each start value is a broadcast load.
        _Alignas(64) int32_t offset[4][16];
        for (int t = 0; t < NT; ++t) {
            ab[t] = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            S[t] = _mm512_setzero_si512();
            const __m512i bs = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)ab[t]->bsums));
            _mm512_store_si512((void *)offset[t], _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(bs, 5)));
        }
        __asm__ __volatile__("" : : "r"(offset) : "memory");
        for (int s = 0; s < 16; ++s) {
            const uint8_t *wq = tile->q + (size_t)(16 * b + s) * 4 * 64;
            const __m512i W0 = _mm512_loadu_si512((const void *)wq), W1 = _mm512_loadu_si512((const void *)(wq + 64));
            const __m512i W2 = _mm512_loadu_si512((const void *)(wq + 128)), W3 = _mm512_loadu_si512((const void *)(wq + 192));
            const __m512i sc = _mm512_loadu_si512((const void *)tile->scale[16 * b + s]);
            for (int t = 0; t < NT; ++t) {
                const int8_t *aq = ab[t]->qs + 16 * s;
                int32_t a0, a1, a2, a3; memcpy(&a0, aq, 4); memcpy(&a1, aq + 4, 4); memcpy(&a2, aq + 8, 4); memcpy(&a3, aq + 12, 4);
                __m512i r0 = _mm512_dpbusd_epi32(_mm512_set1_epi32(offset[t][s]), W0, _mm512_set1_epi32(a0));
                __m512i r1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W1, _mm512_set1_epi32(a1));
                r0 = _mm512_dpbusd_epi32(r0, W2, _mm512_set1_epi32(a2));
                r1 = _mm512_dpbusd_epi32(r1, W3, _mm512_set1_epi32(a3));
                S[t] = _mm512_add_epi32(S[t], _mm512_mullo_epi32(_mm512_add_epi32(r0, r1), sc));
            }
        }
        const __m512 dw = _mm512_loadu_ps(tile->d[b]);
        for (int t = 0; t < NT; ++t)
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(S[t]), dw), _mm512_set1_ps(ab[t]->d), acc[t]);
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + (size_t)t * y_stride, acc[t]);
}

/// Rows in whole tiles of 16 for 8 or more tokens; returns how many rows it did.
static QK_TARGET __attribute__((noinline)) int QK_FN(gemm_q6K_tiles)(int n, const uint8_t *w, size_t w_stride, int nrows,
                                          const uint8_t *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    if (n > Q4K_TILE_MAX_COLS || ntok < 8 || nrows < Q4K_TILE_ROWS) return 0;
    QK_CAT(q6K_tile, QK_VARIANT) *tile = malloc(sizeof *tile);   // ~170 KB: too much for a worker's stack
    if (!tile) return 0;
    const int nb = n / QKK;
    int r0 = 0;
    for (; r0 + Q4K_TILE_ROWS <= nrows; r0 += Q4K_TILE_ROWS) {
        QK_FN(q6K_unpack)(tile, nb, w + (size_t)r0 * w_stride, w_stride);
        for (int t0 = 0; t0 < ntok; t0 += 4) {
            const uint8_t *at = a + (size_t)t0 * a_stride;
            float *yt = y + (size_t)t0 * y_stride + r0;
            switch (ntok - t0 < 4 ? ntok - t0 : 4) {
            case 1: QK_FN(q6K_lanes)(1, tile, nb, at, a_stride, yt, y_stride); break;
            case 2: QK_FN(q6K_lanes)(2, tile, nb, at, a_stride, yt, y_stride); break;
            case 3: QK_FN(q6K_lanes)(3, tile, nb, at, a_stride, yt, y_stride); break;
            default: QK_FN(q6K_lanes)(4, tile, nb, at, a_stride, yt, y_stride); break;
            }
        }
    }
    free(tile);
    return r0;
}
#endif
