// ARM64 NEON kernels, included by quant_dot.c three times: plain NEON (QK_DOTPROD 0), ARMv8.2
// dot product (QK_DOTPROD 1, `sdot`) and dot product + int8 matrix multiply (QK_I8MM 1, `smmla`).
// 128-bit vectors: a 32-weight block is two registers (weights 0-15, 16-31). Private to
// CSwiftletKernels.
//
// Every result equals the generic C twin in quant_dot.c bit for bit: integer sums are exact
// however they are formed, and the float steps are the twin's, in its order (the 32-weight
// formats: eight lanes of 4 products, acc = fma(d, lane, acc), hsum8_ordered; Q4_K / Q6_K: the
// twin's lane and fma structure; Q2_K / Q3_K / IQ4_XS: the per-super-block combine helpers the
// twin calls; Q5_K: kq_tiled_add's steps on the converted sums, arm_tiled_add_f). The twin follows llama.cpp's x86 order, so an ARM device computes what
// an x86 one does; llama.cpp's own ARM kernels use other orders (see README, "ARM64").

#define QK_CAT2(a, b) a##_##b
#define QK_CAT(a, b) QK_CAT2(a, b)
#define QK_FN(name) QK_CAT(name, QK_VARIANT)
#define QK_INLINE static inline QK_TARGET __attribute__((always_inline))
// Short loops over register arrays, unrolled fully: GCC -O2 keeps the loop (and the array goes
// to the stack), clang may too where the body is large.
#define QK_UNROLL _Pragma("GCC unroll 16")

#ifndef QK_ARM_COMMON
#define QK_ARM_COMMON
/// 0x10 in byte j (0..15) where bit j of `bits` is set.
static inline uint8x16_t arm_bit4_from_bits16(uint32_t bits) {
    const uint8x16_t sel = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t v = vcombine_u8(vdup_n_u8((uint8_t)bits), vdup_n_u8((uint8_t)(bits >> 8)));
    return vandq_u8(vtstq_u8(v, sel), vdupq_n_u8(0x10));
}

static inline float arm_half(const uint8_t *p) {
    __fp16 h; memcpy(&h, p, 2);
    return (float)h;
}

/// hsum8_ordered of the lanes lo (0-3) and hi (4-7): (i + i+4), then (0+2)(1+3), then the two.
static inline float arm_hsum8(float32x4_t lo, float32x4_t hi) {
    const float32x4_t s = vaddq_f32(lo, hi);
    const float32x2_t t = vadd_f32(vget_low_f32(s), vget_high_f32(s));
    return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

// MARK: activation quantizers (the generic ones' results: round to nearest even)

/// quantize_q8_0_generic: d = amax / 127, multiplier 127 / amax; Q8_1 adds s = fp16(d · Σq).
static void arm_quantize_q8_x(const float *x, void *out, int n, int with_sum) {
    char *o = out;
    const size_t bs = with_sum ? sizeof(blk_q8_1) : sizeof(blk_q8_0);
    for (int b = 0; b < n / QK; ++b, o += bs) {
        const float *xb = x + QK * b;
        float32x4_t v[8], m = vdupq_n_f32(0);
        for (int i = 0; i < 8; ++i) { v[i] = vld1q_f32(xb + 4 * i); m = vmaxnmq_f32(m, vabsq_f32(v[i])); }
        const float amax = vmaxnmvq_f32(m);
        const float d = amax / 127.f, id = amax != 0 ? 127.f / amax : 0.f;
        int32x4_t iv[8], sum = vdupq_n_s32(0);
        for (int i = 0; i < 8; ++i) { iv[i] = vcvtnq_s32_f32(vmulq_f32(v[i], vdupq_n_f32(id))); sum = vaddq_s32(sum, iv[i]); }
        int8_t *qs = (int8_t *)(o + (with_sum ? 4 : 2));
        for (int i = 0; i < 8; i += 2) {
            const int16x8_t h = vcombine_s16(vmovn_s32(iv[i]), vmovn_s32(iv[i + 1]));
            vst1_s8(qs + 4 * i, vmovn_s16(h));
        }
        uint16_t hd = f2h(d); memcpy(o, &hd, 2);
        if (with_sum) { uint16_t hs = f2h(d * (float)vaddvq_s32(sum)); memcpy(o + 2, &hs, 2); }
    }
}

/// quantize_q8_K_generic (the first largest-magnitude value's sign, or the 4-row rule with `grouped`).
static void arm_quantize_q8_K(const float *x, void *out, int n, int grouped) {
    blk_q8_K *y = out;
    for (int b = 0; b < n / QKK; ++b) {
        const float *xb = x + QKK * b;
        float32x4_t m = vdupq_n_f32(0);
        for (int j = 0; j < QKK; j += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(xb + j)));
        const float amax = vmaxnmvq_f32(m);
        if (amax == 0) { memset(&y[b], 0, sizeof(blk_q8_K)); continue; }
        float max = -amax;
        if (grouped) {
            for (int j = 0; j < QKK; ++j) if (xb[j] == amax) { max = amax; break; }
        } else {
            for (int j = 0; j < QKK; ++j) if (fabsf(xb[j]) == amax) { max = xb[j]; break; }
        }
        const float iscale = -127.f / max;
        const float32x4_t is = vdupq_n_f32(iscale);
        for (int j = 0; j < QKK; j += 16) {
            int32x4_t q[4];
            for (int i = 0; i < 4; ++i) q[i] = vminq_s32(vcvtnq_s32_f32(vmulq_f32(is, vld1q_f32(xb + j + 4 * i))), vdupq_n_s32(127));
            const int8x16_t q8 = vcombine_s8(vmovn_s16(vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]))),
                                             vmovn_s16(vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]))));
            vst1q_s8(y[b].qs + j, q8);
            y[b].bsums[j / 16] = (int16_t)vaddlvq_s8(q8);
        }
        y[b].d = 1 / iscale;
    }
}
#endif

/// Lane i of the result: acc[i] + Σ a[4i..4i+3]·b[4i..4i+3].
QK_INLINE int32x4_t QK_FN(dot4)(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if QK_DOTPROD
    return vdotq_s32(acc, a, b);
#else
    // Pairs of products added in 16 bits: |a| <= 128 and the activation bytes b come from the Q8
    // quantizers, within ±127, so a pair stays within 2 · 128 · 127 < 32768.
    const int16x8_t pairs = vpaddq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b)), vmull_high_s8(a, b));
    return vaddq_s32(acc, vpaddlq_s16(pairs));
#endif
}

/// Some split of acc + Σ a·b over 4 lanes (only the lane total is meaningful).
QK_INLINE int32x4_t QK_FN(dot_acc)(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if QK_DOTPROD
    return vdotq_s32(acc, a, b);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/// Σ over 32 products of two 16-byte pairs.
QK_INLINE int QK_FN(dot32)(int8x16_t a0, int8x16_t a1, const int8_t *b) {
    return vaddvq_s32(QK_FN(dot_acc)(QK_FN(dot_acc)(vdupq_n_s32(0), a0, vld1q_s8(b)), a1, vld1q_s8(b + 16)));
}

// MARK: 32-weight blocks against Q8_0 / Q8_1

#define B32_WSIZE(kind) ((kind) == K_Q4_0 || (kind) == K_IQ4_NL ? 18 : (kind) == K_Q4_1 ? 20 : (kind) == K_Q5_0 ? 22 : (kind) == K_Q5_1 ? 24 : 34)
#define B32_WITH_MIN(kind) ((kind) == K_Q4_1 || (kind) == K_Q5_1)

/// The 32 levels of one weight block (lo: weights 0-15, hi: 16-31), signed; Q4_1 / Q5_1 unsigned
/// (0..31, their min is applied separately).
QK_INLINE void QK_FN(levels_b32)(const int kind, const uint8_t *wb, int8x16_t *lo, int8x16_t *hi) {
    if (kind == K_Q8_0) { *lo = vld1q_s8((const int8_t *)wb + 2); *hi = vld1q_s8((const int8_t *)wb + 18); return; }
    const int qs = kind == K_Q4_1 ? 4 : kind == K_Q5_0 ? 6 : kind == K_Q5_1 ? 8 : 2;
    const uint8x16_t raw = vld1q_u8(wb + qs);
    uint8x16_t l = vandq_u8(raw, vdupq_n_u8(0x0F)), h = vshrq_n_u8(raw, 4);
    switch (kind) {
    case K_Q4_0:
        *lo = vsubq_s8(vreinterpretq_s8_u8(l), vdupq_n_s8(8)); *hi = vsubq_s8(vreinterpretq_s8_u8(h), vdupq_n_s8(8));
        return;
    case K_Q5_0: case K_Q5_1: {
        uint32_t bits; memcpy(&bits, wb + (kind == K_Q5_0 ? 2 : 4), 4);
        l = vorrq_u8(l, arm_bit4_from_bits16(bits & 0xFFFF));
        h = vorrq_u8(h, arm_bit4_from_bits16(bits >> 16));
        if (kind == K_Q5_0) {
            *lo = vsubq_s8(vreinterpretq_s8_u8(l), vdupq_n_s8(16)); *hi = vsubq_s8(vreinterpretq_s8_u8(h), vdupq_n_s8(16));
        } else {
            *lo = vreinterpretq_s8_u8(l); *hi = vreinterpretq_s8_u8(h);
        }
        return;
    }
    case K_IQ4_NL: {
        const int8x16_t table = vld1q_s8(kvalues_iq4);
        *lo = vqtbl1q_s8(table, l); *hi = vqtbl1q_s8(table, h);
        return;
    }
    default: *lo = vreinterpretq_s8_u8(l); *hi = vreinterpretq_s8_u8(h); return;   // Q4_1
    }
}

/// One weight row × NT ≤ 4 activation rows (the weight block unpacked once per group).
QK_INLINE void QK_FN(rows_b32)(const int kind, const int NT, int n, const uint8_t *w,
                               const uint8_t *a, size_t a_stride, float *out) {
    const int wsize = B32_WSIZE(kind), with_min = B32_WITH_MIN(kind);
    const int asize = with_min ? 36 : 34, aq = with_min ? 4 : 2;
    float32x4_t acc0[4], acc1[4];
    float summs[4] = {0, 0, 0, 0};
    for (int t = 0; t < NT; ++t) { acc0[t] = vdupq_n_f32(0); acc1[t] = vdupq_n_f32(0); }
    int b = 0;
    if (NT == 1)   // decode: eight blocks per step, their fp16 scales converted and multiplied four at a time
        for (; b + 8 <= n / QK; b += 8) {
#define B32_HALVES(k) \
            hw = vld1_lane_u16((const uint16_t *)(const void *)(wb + (k) * wsize), hw, k); \
            ha = vld1_lane_u16((const uint16_t *)(const void *)(ab + (k) * asize), ha, k);
#define B32_STEP(k) { \
                const uint8_t *wk = wb + (k) * wsize, *ak = ab + (k) * asize; \
                int8x16_t lo, hi; \
                QK_FN(levels_b32)(kind, wk, &lo, &hi); \
                const int32x4_t l0 = QK_FN(dot4)(vdupq_n_s32(0), lo, vld1q_s8((const int8_t *)ak + aq)); \
                const int32x4_t l1 = QK_FN(dot4)(vdupq_n_s32(0), hi, vld1q_s8((const int8_t *)ak + aq + 16)); \
                acc0[0] = vfmaq_laneq_f32(acc0[0], vcvtq_f32_s32(l0), d4, k); \
                acc1[0] = vfmaq_laneq_f32(acc1[0], vcvtq_f32_s32(l1), d4, k); \
                if (with_min) summs[0] = fmaf(arm_half(wk + 2), arm_half(ak + 2), summs[0]); \
            }
            QK_UNROLL for (int g = 0; g < 2; ++g) {
                const uint8_t *wb = w + (size_t)(b + 4 * g) * wsize, *ab = a + (size_t)(b + 4 * g) * asize;
                uint16x4_t hw = vdup_n_u16(0), ha = vdup_n_u16(0);
                B32_HALVES(0) B32_HALVES(1) B32_HALVES(2) B32_HALVES(3)
                const float32x4_t d4 = vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u16(hw)), vcvt_f32_f16(vreinterpret_f16_u16(ha)));
                B32_STEP(0) B32_STEP(1) B32_STEP(2) B32_STEP(3)
            }
#undef B32_HALVES
#undef B32_STEP
        }
    for (; b < n / QK; ++b) {
        const uint8_t *wb = w + (size_t)b * wsize;
        int8x16_t lo, hi;
        QK_FN(levels_b32)(kind, wb, &lo, &hi);
        const float dw = arm_half(wb), mw = with_min ? arm_half(wb + 2) : 0;
        for (int t = 0; t < NT; ++t) {
            const uint8_t *ab = a + (size_t)t * a_stride + (size_t)b * asize;
            const int32x4_t l0 = QK_FN(dot4)(vdupq_n_s32(0), lo, vld1q_s8((const int8_t *)ab + aq));
            const int32x4_t l1 = QK_FN(dot4)(vdupq_n_s32(0), hi, vld1q_s8((const int8_t *)ab + aq + 16));
            const float d = dw * arm_half(ab);
            acc0[t] = vfmaq_n_f32(acc0[t], vcvtq_f32_s32(l0), d);
            acc1[t] = vfmaq_n_f32(acc1[t], vcvtq_f32_s32(l1), d);
            if (with_min) summs[t] = fmaf(mw, arm_half(ab + 2), summs[t]);
        }
    }
    for (int t = 0; t < NT; ++t) {
        const float s = arm_hsum8(acc0[t], acc1[t]);
        out[t] = with_min ? s + summs[t] : s;
    }
}

// MARK: k-quants against Q8_K

#ifndef QK_ARM_K4_SCALES
#define QK_ARM_K4_SCALES
/// The 8 scales (lanes 0-7) and 8 mins (lanes 8-15) of a Q4_K / Q5_K super-block, unpacked from
/// their 12 bytes with 32-bit word operations (the same values as k4_scales_mins).
static inline uint8x16_t arm_k4_scales_mins(const uint8_t *packed) {
    uint32_t w0, w1, w2;
    memcpy(&w0, packed, 4); memcpy(&w1, packed + 4, 4); memcpy(&w2, packed + 8, 4);
    const uint32_t sc_lo = w0 & 0x3f3f3f3fu, mn_lo = w1 & 0x3f3f3f3fu;
    const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    const uint32_t mn_hi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
    return vcombine_u8(vcreate_u8((uint64_t)sc_lo | ((uint64_t)sc_hi << 32)),
                       vcreate_u8((uint64_t)mn_lo | ((uint64_t)mn_hi << 32)));
}
#endif

/// Q4_K / Q5_K integer parts for one token: lanes k = 0..3 of *scaled and *mins hold the sums over
/// sub-blocks 2k, 2k+1 (the twin's per-64 values); their totals are the per-super-block values.
QK_INLINE void QK_FN(k4_sums)(const int8x16_t q[8][2], uint8x16_t scmn, const blk_q8_K *ab,
                              int32x4_t *scaled, int32x4_t *mins) {
    int32x4_t p[8];
    QK_UNROLL for (int h = 0; h < 4; ++h) {
        const int8x16x4_t x = vld1q_s8_x4(ab->qs + 64 * h);
        p[2 * h] = QK_FN(dot_acc)(QK_FN(dot_acc)(vdupq_n_s32(0), q[2 * h][0], x.val[0]), q[2 * h][1], x.val[1]);
        p[2 * h + 1] = QK_FN(dot_acc)(QK_FN(dot_acc)(vdupq_n_s32(0), q[2 * h + 1][0], x.val[2]), q[2 * h + 1][1], x.val[3]);
    }
    const int32x4_t is_lo = vpaddq_s32(vpaddq_s32(p[0], p[1]), vpaddq_s32(p[2], p[3]));
    const int32x4_t is_hi = vpaddq_s32(vpaddq_s32(p[4], p[5]), vpaddq_s32(p[6], p[7]));
    const int16x8_t sc = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(scmn))), mn = vreinterpretq_s16_u16(vmovl_high_u8(scmn));
    *scaled = vpaddq_s32(vmulq_s32(is_lo, vmovl_s16(vget_low_s16(sc))), vmulq_s32(is_hi, vmovl_high_s16(sc)));
    const int16x8_t bs = vpaddq_s16(vld1q_s16(ab->bsums), vld1q_s16(ab->bsums + 8));   // per sub-block
    *mins = vpaddq_s32(vmull_s16(vget_low_s16(bs), vget_low_s16(mn)), vmull_high_s16(bs, mn));
}

#if !QK_DOTPROD
/// Eight 16-bit lanes, each the sum of 4 of the 32 products of one sub-block.
QK_INLINE int16x8_t QK_FN(q4k_prod16)(int8x16_t q0, int8x16_t q1, int8x16_t xa, int8x16_t xb) {
    int16x8_t v = vmull_s8(vget_low_s8(q0), vget_low_s8(xa));
    v = vmlal_high_s8(v, q0, xa);
    v = vmlal_s8(v, vget_low_s8(q1), vget_low_s8(xb));
    return vmlal_high_s8(v, q1, xb);
}
#endif

#ifndef QK_ARM_K4_HEADER
#define QK_ARM_K4_HEADER
/// arm_k4_scales_mins from the first 16 bytes of a Q4_K / Q5_K super-block (d, dmin, the 12 packed
/// bytes) with vector operations. 32-bit words of `head`: 1 = w0, 2 = w1, 3 = w2 (packed bytes
/// 0-3, 4-7, 8-11); result words: w0 & 63, (w2 & 15) | (w0 >> 6) << 4, w1 & 63,
/// (w2 >> 4) | (w1 >> 6) << 4, bytewise. `exact_ops` pins the final and + usra (clang otherwise
/// makes them three operations; the plain-NEON caller is better off without the pin, whose
/// register pressure costs more there).
static inline uint8x16_t arm_k4_head_scales_mins(uint8x16_t head, const int exact_ops) {
    const uint8x16_t pick_low = {4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15};
    const uint8x16_t pick_high = {255, 255, 255, 255, 4, 5, 6, 7, 255, 255, 255, 255, 8, 9, 10, 11};
    const int8x16_t shift = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -4, -4, -4, -4};
    const uint8x16_t mask = {63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15};
    const uint8x16_t low = vandq_u8(vshlq_u8(vqtbl1q_u8(head, pick_low), shift), mask);
    uint8x16_t high = vandq_u8(vqtbl1q_u8(head, pick_high), vdupq_n_u8(0xC0));
    if (exact_ops) __asm__("" : "+w"(high));
    return vsraq_n_u8(low, high, 2);
}

/// d and dmin of a Q4_K / Q5_K super-block from its first bytes.
static inline float32x2_t arm_k4_head_d_dmin(uint8x16_t head) {
    return vget_low_f32(vcvt_f32_f16(vreinterpret_f16_u8(vget_low_u8(head))));
}
#endif

/// Q4_K: the twin's dot_q4_K_ordered; a token group of 4 (`grouped`) takes the per-64 order.
/// Lane 0 of acc[t] is the twin's acc (Σ scaled · dd), lane 1 its accm (Σ mins · dm): the same
/// fmas, two at a time.
QK_INLINE void QK_FN(rows_q4_K)(const int NT, const int grouped, int n, const uint8_t *w,
                                const uint8_t *a, size_t a_stride, float *out) {
    float32x2_t acc[4];
    for (int t = 0; t < NT; ++t) acc[t] = vdup_n_f32(0);
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q4_K *wb = (const blk_q4_K *)w + b;
        const uint8x16_t head = vld1q_u8((const uint8_t *)wb);
        const uint8x16_t scmn = arm_k4_head_scales_mins(head, QK_DOTPROD);
        const float32x2_t dmw = arm_k4_head_d_dmin(head);
        int8x16_t q[8][2];   // sub-block sb, halves
        const uint8x16x4_t raw[2] = {vld1q_u8_x4(wb->qs), vld1q_u8_x4(wb->qs + 64)};
        if (QK_DOTPROD || NT > 1 || grouped)   // NEON, one token: unpacked where used
        QK_UNROLL for (int j = 0; j < 4; ++j) {
            const uint8x16_t r0 = raw[j / 2].val[2 * (j % 2)], r1 = raw[j / 2].val[2 * (j % 2) + 1];
            q[2 * j][0] = vreinterpretq_s8_u8(vandq_u8(r0, vdupq_n_u8(0x0F)));
            q[2 * j][1] = vreinterpretq_s8_u8(vandq_u8(r1, vdupq_n_u8(0x0F)));
            q[2 * j + 1][0] = vreinterpretq_s8_u8(vshrq_n_u8(r0, 4));
            q[2 * j + 1][1] = vreinterpretq_s8_u8(vshrq_n_u8(r1, 4));
        }
        const int16x8_t mn = vreinterpretq_s16_u16(vmovl_high_u8(scmn));
#if QK_DOTPROD
        // Two running sums (sub-blocks 0-3 and 4-7) are scaled after each sub-block by the
        // difference to the next scale (the last by its own), which telescopes to Σ sc · isum.
        const uint8x8_t pick_next = {1, 2, 3, 255, 5, 6, 7, 255};
        const int16x8_t dsc = vmovl_s8(vsub_s8(vreinterpret_s8_u8(vget_low_u8(scmn)), vqtbl1_s8(vreinterpretq_s8_u8(scmn), pick_next)));
        int32x4_t dlo = vmovl_s16(vget_low_s16(dsc)), dhi = vmovl_high_s16(dsc);
        __asm__("" : "+w"(dlo), "+w"(dhi));   // keeps the widened lanes (else each use gets its own dup + widen)
#else
        // Scales per lane pair, matching the pairwise-added product lanes below.
        const uint8x16_t sc_twice = vzip1q_u8(scmn, scmn);
        const int16x8_t sc_pairs0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(sc_twice)));
        const int16x8_t sc_pairs1 = vreinterpretq_s16_u16(vmovl_high_u8(sc_twice));
#endif
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            const float32x2_t ddm = vmul_n_f32(dmw, ab->d);   // the twin's dd, dm
            if (grouped) {
                int32x4_t sv, mv;
                QK_FN(k4_sums)(q, scmn, ab, &sv, &mv);
                const int32x4_t z0 = vzip1q_s32(sv, mv), z1 = vzip2q_s32(sv, mv);   // (scaled, mins) per k
                acc[t] = vfma_f32(acc[t], vcvt_f32_s32(vget_low_s32(z0)), ddm);
                acc[t] = vfma_f32(acc[t], vcvt_f32_s32(vget_high_s32(z0)), ddm);
                acc[t] = vfma_f32(acc[t], vcvt_f32_s32(vget_low_s32(z1)), ddm);
                acc[t] = vfma_f32(acc[t], vcvt_f32_s32(vget_high_s32(z1)), ddm);
                continue;
            }
            const int8_t *x = ab->qs;   // sub-block sb: x + 32 sb, two halves
            int32x4_t s;
#if QK_DOTPROD
            int32x4_t ca = vdupq_n_s32(0), cb = vdupq_n_s32(0);
            ca = vdotq_s32(vdotq_s32(ca, q[0][0], vld1q_s8(x)), q[0][1], vld1q_s8(x + 16));
            cb = vdotq_s32(vdotq_s32(cb, q[4][0], vld1q_s8(x + 128)), q[4][1], vld1q_s8(x + 144));
            s = vmlaq_laneq_s32(vmulq_laneq_s32(ca, dlo, 0), cb, dhi, 0);
            ca = vdotq_s32(vdotq_s32(ca, q[1][0], vld1q_s8(x + 32)), q[1][1], vld1q_s8(x + 48));
            cb = vdotq_s32(vdotq_s32(cb, q[5][0], vld1q_s8(x + 160)), q[5][1], vld1q_s8(x + 176));
            s = vmlaq_laneq_s32(vmlaq_laneq_s32(s, ca, dlo, 1), cb, dhi, 1);
            ca = vdotq_s32(vdotq_s32(ca, q[2][0], vld1q_s8(x + 64)), q[2][1], vld1q_s8(x + 80));
            cb = vdotq_s32(vdotq_s32(cb, q[6][0], vld1q_s8(x + 192)), q[6][1], vld1q_s8(x + 208));
            s = vmlaq_laneq_s32(vmlaq_laneq_s32(s, ca, dlo, 2), cb, dhi, 2);
            ca = vdotq_s32(vdotq_s32(ca, q[3][0], vld1q_s8(x + 96)), q[3][1], vld1q_s8(x + 112));
            cb = vdotq_s32(vdotq_s32(cb, q[7][0], vld1q_s8(x + 224)), q[7][1], vld1q_s8(x + 240));
            s = vmlaq_laneq_s32(vmlaq_laneq_s32(s, ca, dlo, 3), cb, dhi, 3);
#else
            // 16-bit lanes of 4 products per sub-block (|sum| <= 4 * 15 * 128), pairwise added
            // twice (16 products, still within int16), then widened by the scale multiply.
            int16x8_t z[4];   // lanes 0-3: sub-block 2j, 4-7: 2j + 1
            for (int j = 0; j < 4; ++j) {
                int8x16_t l0, l1, h0, h1;
                if (NT == 1) {   // unpacked at the point of use: fewer live registers
                    const uint8x16_t r0 = vld1q_u8(wb->qs + 32 * j), r1 = vld1q_u8(wb->qs + 32 * j + 16);
                    l0 = vreinterpretq_s8_u8(vandq_u8(r0, vdupq_n_u8(0x0F))); l1 = vreinterpretq_s8_u8(vandq_u8(r1, vdupq_n_u8(0x0F)));
                    h0 = vreinterpretq_s8_u8(vshrq_n_u8(r0, 4)); h1 = vreinterpretq_s8_u8(vshrq_n_u8(r1, 4));
                } else {
                    l0 = q[2 * j][0]; l1 = q[2 * j][1]; h0 = q[2 * j + 1][0]; h1 = q[2 * j + 1][1];
                }
                z[j] = vpaddq_s16(QK_FN(q4k_prod16)(l0, l1, vld1q_s8(x + 64 * j), vld1q_s8(x + 64 * j + 16)),
                                  QK_FN(q4k_prod16)(h0, h1, vld1q_s8(x + 64 * j + 32), vld1q_s8(x + 64 * j + 48)));
            }
            const int16x8_t y0 = vpaddq_s16(z[0], z[1]);   // lanes 2i, 2i+1: sub-block i
            const int16x8_t y1 = vpaddq_s16(z[2], z[3]);   // sub-block 4 + i
            s = vmull_s16(vget_low_s16(y0), vget_low_s16(sc_pairs0));
            s = vmlal_high_s16(s, y0, sc_pairs0);
            s = vmlal_s16(s, vget_low_s16(y1), vget_low_s16(sc_pairs1));
            s = vmlal_high_s16(s, y1, sc_pairs1);
#endif
            const int16x8_t bs = vpaddq_s16(vld1q_s16(ab->bsums), vld1q_s16(ab->bsums + 8));   // per sub-block
            const int32x4_t m = vmlal_high_s16(vmull_s16(vget_low_s16(bs), vget_low_s16(mn)), bs, mn);
            const int32x4_t sm = vpaddq_s32(s, m), tot = vpaddq_s32(sm, sm);   // scaled, mins, ...
            acc[t] = vfma_f32(acc[t], vcvt_f32_s32(vget_low_s32(tot)), ddm);
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = vget_lane_f32(acc[t], 0) - vget_lane_f32(acc[t], 1);
}

#ifndef QK_ARM_Q5K_COMMON
#define QK_ARM_Q5K_COMMON
/// kq_tiled_add with the integer sums already converted: (float)scaled, (float)mins.
static inline float arm_tiled_add_f(float y, float da, float d, float dmin, float scaled, float mins) {
    return fmaf(fmaf(-dmin, mins, scaled * d), da, y);
}
#endif

/// Q5_K levels minus 16 of one sub-block half: `tst` is 0xFF where the high bit is clear (a test
/// of the inverted qh bytes), so keeping its top nibble above the weight nibble gives
/// nibble + 16·bit − 16 as a signed byte. `high` picks the nibble (sub-block 2j + 1).
QK_INLINE int8x16_t QK_FN(q5k_level)(uint8x16_t raw, uint8x16_t inverted_qh, uint8x16_t bit, const int high) {
    const uint8x16_t tst = vtstq_u8(inverted_qh, bit);
    return vreinterpretq_s8_u8(high ? vsriq_n_u8(tst, raw, 4) : vbslq_u8(vdupq_n_u8(0x0F), raw, tst));
}

/// Q5_K (the twin's order: llama.cpp's tiled epilogue, kq_tiled_add, for every token count). The
/// levels are formed minus 16 (see q5k_level), so each sub-block sum is short by 16 · its
/// activation sum, added back from the bsums: scaled = Σ sc · (isum' + 16 · bsum).
QK_INLINE void QK_FN(rows_q5_K)(const int NT, int n, const uint8_t *w,
                                const uint8_t *a, size_t a_stride, float *out) {
    float s[4] = {0, 0, 0, 0};
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q5_K *wb = (const blk_q5_K *)w + b;
        const uint8x16_t head = vld1q_u8((const uint8_t *)wb);
        const uint8x16_t scmn = arm_k4_head_scales_mins(head, QK_DOTPROD);
        const float32x2_t dmw = arm_k4_head_d_dmin(head);
        uint8x16_t hn[2] = {vmvnq_u8(vld1q_u8(wb->qh)), vmvnq_u8(vld1q_u8(wb->qh + 16))};
        __asm__("" : "+w"(hn[0]), "+w"(hn[1]));   // else clang tests qh & bit == 0: two operations per use
        const uint8x16x4_t raw[2] = {vld1q_u8_x4(wb->qs), vld1q_u8_x4(wb->qs + 64)};
        int8x16_t q[8][2];   // sub-block sb, halves (NT > 1: unpacked once for all tokens)
        if (NT > 1) {
            QK_UNROLL for (int sb = 0; sb < 8; ++sb)
                QK_UNROLL for (int p = 0; p < 2; ++p)
                    q[sb][p] = QK_FN(q5k_level)(raw[sb / 4].val[2 * ((sb / 2) % 2) + p], hn[p], vdupq_n_u8((uint8_t)(1 << sb)), sb & 1);
        }
#define Q5K_LEVEL(sb, p) (NT > 1 ? q[sb][p] : QK_FN(q5k_level)(raw[(sb) / 4].val[2 * (((sb) / 2) % 2) + (p)], hn[p], vdupq_n_u8((uint8_t)(1 << (sb))), (sb) & 1))
        const int16x8_t sc = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(scmn)));
        const int16x8_t mn = vreinterpretq_s16_u16(vmovl_high_u8(scmn));
        const int16x8_t sc16 = vshlq_n_s16(sc, 4);
#if QK_DOTPROD
        // Two running sums (sub-blocks 0-3 and 4-7) are scaled after each sub-block by the
        // difference to the next scale (the last by its own), which telescopes to Σ sc · isum.
        const uint8x8_t pick_next = {1, 2, 3, 255, 5, 6, 7, 255};
        const int16x8_t dsc = vmovl_s8(vsub_s8(vreinterpret_s8_u8(vget_low_u8(scmn)), vqtbl1_s8(vreinterpretq_s8_u8(scmn), pick_next)));
        int32x4_t dlo = vmovl_s16(vget_low_s16(dsc)), dhi = vmovl_high_s16(dsc);
        __asm__("" : "+w"(dlo), "+w"(dhi));   // keeps the widened lanes (else each use gets its own dup + widen)
#else
        // Each scale four times, matching the product lanes below (lanes 0-3: sub-block 2j, 4-7: 2j + 1).
        const uint8x16_t sc2 = vzip1q_u8(scmn, scmn);
        const uint8x16_t sc4a = vzip1q_u8(sc2, sc2), sc4b = vzip2q_u8(sc2, sc2);
        const int16x8_t scq[4] = {vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(sc4a))), vreinterpretq_s16_u16(vmovl_high_u8(sc4a)),
                                  vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(sc4b))), vreinterpretq_s16_u16(vmovl_high_u8(sc4b))};
#endif
        const float32x2_t dv = dmw;
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            const int8_t *x = ab->qs;   // sub-block sb: x + 32 sb, two halves
            int32x4_t acc;
#if QK_DOTPROD
            int32x4_t ca = vdupq_n_s32(0), cb = vdupq_n_s32(0);
            ca = vdotq_s32(vdotq_s32(ca, Q5K_LEVEL(0, 0), vld1q_s8(x)), Q5K_LEVEL(0, 1), vld1q_s8(x + 16));
            cb = vdotq_s32(vdotq_s32(cb, Q5K_LEVEL(4, 0), vld1q_s8(x + 128)), Q5K_LEVEL(4, 1), vld1q_s8(x + 144));
            acc = vmlaq_laneq_s32(vmulq_laneq_s32(ca, dlo, 0), cb, dhi, 0);
            ca = vdotq_s32(vdotq_s32(ca, Q5K_LEVEL(1, 0), vld1q_s8(x + 32)), Q5K_LEVEL(1, 1), vld1q_s8(x + 48));
            cb = vdotq_s32(vdotq_s32(cb, Q5K_LEVEL(5, 0), vld1q_s8(x + 160)), Q5K_LEVEL(5, 1), vld1q_s8(x + 176));
            acc = vmlaq_laneq_s32(vmlaq_laneq_s32(acc, ca, dlo, 1), cb, dhi, 1);
            ca = vdotq_s32(vdotq_s32(ca, Q5K_LEVEL(2, 0), vld1q_s8(x + 64)), Q5K_LEVEL(2, 1), vld1q_s8(x + 80));
            cb = vdotq_s32(vdotq_s32(cb, Q5K_LEVEL(6, 0), vld1q_s8(x + 192)), Q5K_LEVEL(6, 1), vld1q_s8(x + 208));
            acc = vmlaq_laneq_s32(vmlaq_laneq_s32(acc, ca, dlo, 2), cb, dhi, 2);
            ca = vdotq_s32(vdotq_s32(ca, Q5K_LEVEL(3, 0), vld1q_s8(x + 96)), Q5K_LEVEL(3, 1), vld1q_s8(x + 112));
            cb = vdotq_s32(vdotq_s32(cb, Q5K_LEVEL(7, 0), vld1q_s8(x + 224)), Q5K_LEVEL(7, 1), vld1q_s8(x + 240));
            acc = vmlaq_laneq_s32(vmlaq_laneq_s32(acc, ca, dlo, 3), cb, dhi, 3);
#else
            // 16-bit lanes of 8 products of one sub-block (|sum| <= 8 · 16 · 128), widened by the
            // scale multiply.
            acc = vdupq_n_s32(0);
            QK_UNROLL for (int j = 0; j < 4; ++j) {
                const int16x8_t z = vpaddq_s16(QK_FN(q4k_prod16)(Q5K_LEVEL(2 * j, 0), Q5K_LEVEL(2 * j, 1), vld1q_s8(x + 64 * j), vld1q_s8(x + 64 * j + 16)),
                                               QK_FN(q4k_prod16)(Q5K_LEVEL(2 * j + 1, 0), Q5K_LEVEL(2 * j + 1, 1), vld1q_s8(x + 64 * j + 32), vld1q_s8(x + 64 * j + 48)));
                acc = vmlal_s16(acc, vget_low_s16(z), vget_low_s16(scq[j]));
                acc = vmlal_high_s16(acc, z, scq[j]);
            }
#endif
            const int16x8_t bs = vpaddq_s16(vld1q_s16(ab->bsums), vld1q_s16(ab->bsums + 8));   // per sub-block
            acc = vmlal_high_s16(vmlal_s16(acc, vget_low_s16(bs), vget_low_s16(sc16)), bs, sc16);   // the 16 · bsum
            const int32x4_t m = vmlal_high_s16(vmull_s16(vget_low_s16(bs), vget_low_s16(mn)), bs, mn);
            const int32x4_t sm = vpaddq_s32(acc, m);
            const float32x2_t tot = vcvt_f32_s32(vget_low_s32(vpaddq_s32(sm, sm)));   // scaled, mins
            s[t] = arm_tiled_add_f(s[t], ab->d, vget_lane_f32(dv, 0), vget_lane_f32(dv, 1), vget_lane_f32(tot, 0), vget_lane_f32(tot, 1));
        }
#undef Q5K_LEVEL
    }
    for (int t = 0; t < NT; ++t) out[t] = s[t];
}

/// Q6_K: the twin's dot_q6_K_ordered (eight lanes of 4 weights per 32, or the tiled total).
QK_INLINE void QK_FN(rows_q6_K)(const int NT, const int tiled, int n, const uint8_t *w,
                                const uint8_t *a, size_t a_stride, float *out) {
    float32x4_t acc0[4], acc1[4];
    float tot[4] = {0, 0, 0, 0};
    for (int t = 0; t < NT; ++t) { acc0[t] = vdupq_n_f32(0); acc1[t] = vdupq_n_f32(0); }
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x03);
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q6_K *wb = (const blk_q6_K *)w + b;
        int8x16_t q[8][2];   // chunk 4h + c, halves (levels 0..63; the −32 goes through bsums)
        QK_UNROLL for (int h = 0; h < 2; ++h)
            QK_UNROLL for (int p = 0; p < 2; ++p) {
                const uint8x16_t l0 = vld1q_u8(wb->ql + 64 * h + 16 * p), l1 = vld1q_u8(wb->ql + 64 * h + 32 + 16 * p);
                const uint8x16_t hb = vld1q_u8(wb->qh + 32 * h + 16 * p);
                q[4 * h + 0][p] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4)));
                q[4 * h + 1][p] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4)));
                q[4 * h + 2][p] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4)));
                q[4 * h + 3][p] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4)));
            }
        const float dw = arm_half((const uint8_t *)&wb->d);
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            int32_t init[8];
            QK_UNROLL for (int k = 0; k < 8; ++k)
                init[k] = -32 * (ab->bsums[2 * k] * wb->scales[2 * k] + ab->bsums[2 * k + 1] * wb->scales[2 * k + 1]);
            int32x4_t lane0 = vld1q_s32(init), lane1 = vld1q_s32(init + 4);
            QK_UNROLL for (int ch = 0; ch < 8; ++ch) {
                const int8_t *ap = ab->qs + 32 * ch;
                const int s0 = wb->scales[2 * ch], s1 = wb->scales[2 * ch + 1];
                lane0 = vmlaq_n_s32(lane0, QK_FN(dot4)(vdupq_n_s32(0), q[ch][0], vld1q_s8(ap)), s0);
                lane1 = vmlaq_n_s32(lane1, QK_FN(dot4)(vdupq_n_s32(0), q[ch][1], vld1q_s8(ap + 16)), s1);
            }
            if (tiled) {
                const int total = vaddvq_s32(vaddq_s32(lane0, lane1));
                const float r = (float)total * dw;
                tot[t] = fmaf(r, ab->d, tot[t]);
            } else {
                const float d = ab->d * dw;
                acc0[t] = vfmaq_n_f32(acc0[t], vcvtq_f32_s32(lane0), d);
                acc1[t] = vfmaq_n_f32(acc1[t], vcvtq_f32_s32(lane1), d);
            }
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = tiled ? tot[t] : arm_hsum8(acc0[t], acc1[t]);
}

/// Σ_sb scale[sb] · Σ(q[sb] · a[16 sb ..]) over the 16 sub-blocks of 16 weights (q2_K / q3_K).
QK_INLINE int QK_FN(scaled16)(const int8x16_t q[16], int8x16_t scales, const int8_t *a) {
#if !QK_DOTPROD
    // Levels of at most 4 in magnitude: a sub-block's 16 products stay within int16 (|sum| <= 16 *
    // 4 * 128), so they are formed and pairwise added in 16-bit lanes, widened once by the scales.
    int16x8_t w[4];   // lanes 2i, 2i + 1: sub-block 4g + i
    QK_UNROLL for (int g = 0; g < 4; ++g) {
        int16x8_t p[4];
        QK_UNROLL for (int i = 0; i < 4; ++i) {
            const int sb = 4 * g + i;
            const int8x16_t x = vld1q_s8(a + 16 * sb);
            p[i] = vmlal_high_s8(vmull_s8(vget_low_s8(q[sb]), vget_low_s8(x)), q[sb], x);
        }
        w[g] = vpaddq_s16(vpaddq_s16(p[0], p[1]), vpaddq_s16(p[2], p[3]));
    }
    const int16x8_t y0 = vpaddq_s16(w[0], w[1]), y1 = vpaddq_s16(w[2], w[3]);   // lane k: sub-block k, 8 + k
    const int16x8_t slo = vmovl_s8(vget_low_s8(scales)), shi = vmovl_high_s8(scales);
    int32x4_t acc = vmull_s16(vget_low_s16(y0), vget_low_s16(slo));
    acc = vmlal_high_s16(acc, y0, slo);
    acc = vmlal_s16(acc, vget_low_s16(y1), vget_low_s16(shi));
    return vaddvq_s32(vmlal_high_s16(acc, y1, shi));
#else
    int32x4_t p[16];
    QK_UNROLL for (int h = 0; h < 4; ++h) {
        const int8x16x4_t x = vld1q_s8_x4(a + 64 * h);
        QK_UNROLL for (int i = 0; i < 4; ++i) p[4 * h + i] = QK_FN(dot_acc)(vdupq_n_s32(0), q[4 * h + i], x.val[i]);
    }
    int32x4_t s4[4];   // lane i of s4[g]: the sum of sub-block 4g + i
    QK_UNROLL for (int g = 0; g < 4; ++g) s4[g] = vpaddq_s32(vpaddq_s32(p[4 * g], p[4 * g + 1]), vpaddq_s32(p[4 * g + 2], p[4 * g + 3]));
    const int16x8_t slo = vmovl_s8(vget_low_s8(scales)), shi = vmovl_high_s8(scales);
    int32x4_t acc = vmulq_s32(s4[0], vmovl_s16(vget_low_s16(slo)));
    acc = vmlaq_s32(acc, s4[1], vmovl_high_s16(slo));
    acc = vmlaq_s32(acc, s4[2], vmovl_s16(vget_low_s16(shi)));
    acc = vmlaq_s32(acc, s4[3], vmovl_high_s16(shi));
    return vaddvq_s32(acc);
#endif
}

/// The 2-bit levels of a q2_K / q3_K super-block: sub-block 8h + 2c + p holds bits 2c..2c+1 of
/// bytes 32h + 16p .. +16.
QK_INLINE void QK_FN(levels2)(const uint8_t *qs, uint8x16_t q[16]) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    const uint8x16x4_t r = vld1q_u8_x4(qs);
    QK_UNROLL for (int h = 0; h < 2; ++h)
        QK_UNROLL for (int p = 0; p < 2; ++p) {
            const uint8x16_t v = r.val[2 * h + p];
            q[8 * h + 0 + p] = vandq_u8(v, m3);
            q[8 * h + 2 + p] = vandq_u8(vshrq_n_u8(v, 2), m3);
            q[8 * h + 4 + p] = vandq_u8(vshrq_n_u8(v, 4), m3);
            q[8 * h + 6 + p] = vshrq_n_u8(v, 6);
        }
}

QK_INLINE void QK_FN(rows_q2_K)(const int NT, int n, const uint8_t *w,
                                const uint8_t *a, size_t a_stride, float *out) {
    float s[4] = {0, 0, 0, 0};
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q2_K *wb = (const blk_q2_K *)w + b;
        uint8x16_t qu[16];
        QK_FN(levels2)(wb->qs, qu);
        int8x16_t q[16];
        QK_UNROLL for (int i = 0; i < 16; ++i) q[i] = vreinterpretq_s8_u8(qu[i]);
        const uint8x16_t scv = vld1q_u8(wb->scales);
        const int8x16_t sc = vreinterpretq_s8_u8(vandq_u8(scv, vdupq_n_u8(0x0F)));
        const uint8x16_t mnv = vshrq_n_u8(scv, 4);
        const int16x8_t mlo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mnv))), mhi = vreinterpretq_s16_u16(vmovl_high_u8(mnv));
        const float d = arm_half((const uint8_t *)&wb->d), dmin = arm_half((const uint8_t *)&wb->dmin);
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            const int scaled = QK_FN(scaled16)(q, sc, ab->qs);
            const int16x8_t b0 = vld1q_s16(ab->bsums), b1 = vld1q_s16(ab->bsums + 8);
            int32x4_t mv = vmull_s16(vget_low_s16(b0), vget_low_s16(mlo));
            mv = vmlal_high_s16(mv, b0, mlo);
            mv = vmlal_s16(mv, vget_low_s16(b1), vget_low_s16(mhi));
            mv = vmlal_high_s16(mv, b1, mhi);
            s[t] = kq_tiled_add(s[t], ab->d, d, dmin, scaled, vaddvq_s32(mv));
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = s[t];
}

#ifndef QK_ARM_Q3K_SCALES
#define QK_ARM_Q3K_SCALES
/// The 16 signed scales of a q3_K super-block (q3k_scales) with 32-bit word operations.
static inline int8x16_t arm_q3k_scales(const uint8_t *packed) {
    uint32_t a0, a1, a2;
    memcpy(&a0, packed, 4); memcpy(&a1, packed + 4, 4); memcpy(&a2, packed + 8, 4);
    const uint32_t m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
    const uint32_t s0 = (a0 & m4) | ((a2 & m2) << 4), s1 = (a1 & m4) | (((a2 >> 2) & m2) << 4);
    const uint32_t s2 = ((a0 >> 4) & m4) | (((a2 >> 4) & m2) << 4), s3 = ((a1 >> 4) & m4) | (((a2 >> 6) & m2) << 4);
    const uint8x16_t u = vcombine_u8(vcreate_u8((uint64_t)s0 | ((uint64_t)s1 << 32)), vcreate_u8((uint64_t)s2 | ((uint64_t)s3 << 32)));
    return vsubq_s8(vreinterpretq_s8_u8(u), vdupq_n_s8(32));
}
#endif

QK_INLINE void QK_FN(rows_q3_K)(const int NT, const int tiled, int n, const uint8_t *w,
                                const uint8_t *a, size_t a_stride, float *out) {
    float s[4] = {0, 0, 0, 0};
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q3_K *wb = (const blk_q3_K *)w + b;
        const int8x16_t scs = arm_q3k_scales(wb->scales);
        const uint8x16_t hm[2] = {vld1q_u8(wb->hmask), vld1q_u8(wb->hmask + 16)};
        uint8x16_t qu[16];
        QK_FN(levels2)(wb->qs, qu);
        int8x16_t q[16];   // level = low 2 bits − 4 where the mask bit (4h + c) is clear
        QK_UNROLL for (int h = 0; h < 2; ++h)
            QK_UNROLL for (int c = 0; c < 4; ++c)
                QK_UNROLL for (int p = 0; p < 2; ++p) {
                    const int i = 8 * h + 2 * c + p;
                    const uint8x16_t clear = vbicq_u8(vdupq_n_u8(4), vtstq_u8(hm[p], vdupq_n_u8((uint8_t)(1 << (4 * h + c)))));
                    q[i] = vsubq_s8(vreinterpretq_s8_u8(qu[i]), vreinterpretq_s8_u8(clear));
                }
        const float d = arm_half((const uint8_t *)&wb->d);
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            const int scaled = QK_FN(scaled16)(q, scs, ab->qs);
            s[t] = tiled ? kq_tiled_add(s[t], ab->d, d, 0, scaled, 0) : kq_add_scaled(s[t], ab->d, d, scaled);
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = s[t];
}

QK_INLINE void QK_FN(rows_iq4_xs)(const int NT, const int tiled, int n, const uint8_t *w,
                                  const uint8_t *a, size_t a_stride, float *out) {
    float s[4] = {0, 0, 0, 0};
    const int8x16_t table = vld1q_s8(kvalues_iq4);
    for (int b = 0; b < n / QKK; ++b) {
        const blk_iq4_xs *wb = (const blk_iq4_xs *)w + b;
        int8x16_t q[8][2];
        int ls[8];
        QK_UNROLL for (int ib = 0; ib < 8; ++ib) {
            ls[ib] = (((wb->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((wb->scales_h >> (2 * ib)) & 3) << 4)) - 32;
            const uint8x16_t r = vld1q_u8(wb->qs + 16 * ib);
            q[ib][0] = vqtbl1q_s8(table, vandq_u8(r, vdupq_n_u8(0x0F)));
            q[ib][1] = vqtbl1q_s8(table, vshrq_n_u8(r, 4));
        }
        const float d = arm_half((const uint8_t *)&wb->d);
        for (int t = 0; t < NT; ++t) {
            const blk_q8_K *ab = (const blk_q8_K *)(a + (size_t)t * a_stride) + b;
            int scaled = 0;
            QK_UNROLL for (int ib = 0; ib < 8; ++ib) scaled += ls[ib] * QK_FN(dot32)(q[ib][0], q[ib][1], ab->qs + 32 * ib);
            s[t] = tiled ? kq_tiled_add(s[t], ab->d, d, 0, scaled, 0) : kq_add_scaled(s[t], ab->d, d, scaled);
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = s[t];
}

#if QK_I8MM
#ifndef QK_ARM_I8MM_TABLES
#define QK_ARM_I8MM_TABLES
/// vqtbl2q_u8 indices that spread byte `sb` (scales) or `8 + sb` (mins) of two rows' unpacked
/// scale vectors into int32 lanes (row 0, row 0, row 1, row 1): lane P = 2·row + token.
#define QK_SPREAD(o) {(o), 255, 255, 255, (o), 255, 255, 255, 16 + (o), 255, 255, 255, 16 + (o), 255, 255, 255}
static const uint8_t arm_spread_idx[16][16] = {
    QK_SPREAD(0), QK_SPREAD(1), QK_SPREAD(2), QK_SPREAD(3), QK_SPREAD(4), QK_SPREAD(5), QK_SPREAD(6), QK_SPREAD(7),
    QK_SPREAD(8), QK_SPREAD(9), QK_SPREAD(10), QK_SPREAD(11), QK_SPREAD(12), QK_SPREAD(13), QK_SPREAD(14), QK_SPREAD(15)};
#undef QK_SPREAD
#endif

/// Q4_K, two weight rows × two tokens with `smmla`: one instruction forms the four 8-product dots
/// (row, token) of an 8-weight step. Every vector below has lanes P = 2·row + token, and each
/// lane follows rows_q4_K's float steps for its (row, token).
static QK_TARGET __attribute__((noinline)) void QK_FN(tile_q4_K_2x2)(const int grouped, int n, const uint8_t *w0, const uint8_t *w1,
                                    const uint8_t *a0, const uint8_t *a1, float out[2][2]) {
    float32x4_t acc = vdupq_n_f32(0), accm = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int b = 0; b < n / QKK; ++b) {
        const blk_q4_K *wb0 = (const blk_q4_K *)w0 + b, *wb1 = (const blk_q4_K *)w1 + b;
        const blk_q8_K *ab0 = (const blk_q8_K *)a0 + b, *ab1 = (const blk_q8_K *)a1 + b;
        int32x4_t isum[8];
        for (int j = 0; j < 4; ++j) {
            int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
            for (int p = 0; p < 2; ++p) {
                const uint8x16_t r0 = vld1q_u8(wb0->qs + 32 * j + 16 * p), r1 = vld1q_u8(wb1->qs + 32 * j + 16 * p);
                const uint64x2_t n0l = vreinterpretq_u64_u8(vandq_u8(r0, m4)), n1l = vreinterpretq_u64_u8(vandq_u8(r1, m4));
                const uint64x2_t n0h = vreinterpretq_u64_u8(vshrq_n_u8(r0, 4)), n1h = vreinterpretq_u64_u8(vshrq_n_u8(r1, 4));
                const int64x2_t xl0 = vreinterpretq_s64_s8(vld1q_s8(ab0->qs + 64 * j + 16 * p));
                const int64x2_t xl1 = vreinterpretq_s64_s8(vld1q_s8(ab1->qs + 64 * j + 16 * p));
                const int64x2_t xh0 = vreinterpretq_s64_s8(vld1q_s8(ab0->qs + 64 * j + 32 + 16 * p));
                const int64x2_t xh1 = vreinterpretq_s64_s8(vld1q_s8(ab1->qs + 64 * j + 32 + 16 * p));
                lo = vmmlaq_s32(lo, vreinterpretq_s8_u64(vzip1q_u64(n0l, n1l)), vreinterpretq_s8_s64(vzip1q_s64(xl0, xl1)));
                lo = vmmlaq_s32(lo, vreinterpretq_s8_u64(vzip2q_u64(n0l, n1l)), vreinterpretq_s8_s64(vzip2q_s64(xl0, xl1)));
                hi = vmmlaq_s32(hi, vreinterpretq_s8_u64(vzip1q_u64(n0h, n1h)), vreinterpretq_s8_s64(vzip1q_s64(xh0, xh1)));
                hi = vmmlaq_s32(hi, vreinterpretq_s8_u64(vzip2q_u64(n0h, n1h)), vreinterpretq_s8_s64(vzip2q_s64(xh0, xh1)));
            }
            isum[2 * j] = lo; isum[2 * j + 1] = hi;
        }
        // Scales and mins spread to the lanes; bsum pairs (tokens 0, 1, 0, 1) per sub-block.
        const uint8x16x2_t scmn = {{arm_k4_scales_mins(wb0->scales), arm_k4_scales_mins(wb1->scales)}};
        const int16x8_t bp0 = vpaddq_s16(vld1q_s16(ab0->bsums), vld1q_s16(ab0->bsums + 8));
        const int16x8_t bp1 = vpaddq_s16(vld1q_s16(ab1->bsums), vld1q_s16(ab1->bsums + 8));
        int32x4_t bp[8];
        for (int h = 0; h < 2; ++h) {
            const int32x4_t t0 = h ? vmovl_high_s16(bp0) : vmovl_s16(vget_low_s16(bp0));
            const int32x4_t t1 = h ? vmovl_high_s16(bp1) : vmovl_s16(vget_low_s16(bp1));
            const int64x2_t z1 = vreinterpretq_s64_s32(vzip1q_s32(t0, t1)), z2 = vreinterpretq_s64_s32(vzip2q_s32(t0, t1));
            bp[4 * h + 0] = vreinterpretq_s32_s64(vdupq_laneq_s64(z1, 0));
            bp[4 * h + 1] = vreinterpretq_s32_s64(vdupq_laneq_s64(z1, 1));
            bp[4 * h + 2] = vreinterpretq_s32_s64(vdupq_laneq_s64(z2, 0));
            bp[4 * h + 3] = vreinterpretq_s32_s64(vdupq_laneq_s64(z2, 1));
        }
        int32x4_t sk[4], mk[4];
        for (int k = 0; k < 4; ++k) {
            const int32x4_t s0 = vreinterpretq_s32_u8(vqtbl2q_u8(scmn, vld1q_u8(arm_spread_idx[2 * k])));
            const int32x4_t s1 = vreinterpretq_s32_u8(vqtbl2q_u8(scmn, vld1q_u8(arm_spread_idx[2 * k + 1])));
            const int32x4_t n0 = vreinterpretq_s32_u8(vqtbl2q_u8(scmn, vld1q_u8(arm_spread_idx[8 + 2 * k])));
            const int32x4_t n1 = vreinterpretq_s32_u8(vqtbl2q_u8(scmn, vld1q_u8(arm_spread_idx[8 + 2 * k + 1])));
            sk[k] = vmlaq_s32(vmulq_s32(isum[2 * k], s0), isum[2 * k + 1], s1);
            mk[k] = vmlaq_s32(vmulq_s32(bp[2 * k], n0), bp[2 * k + 1], n1);
        }
        const float dw0 = arm_half((const uint8_t *)&wb0->d), dw1 = arm_half((const uint8_t *)&wb1->d);
        const float mw0 = arm_half((const uint8_t *)&wb0->dmin), mw1 = arm_half((const uint8_t *)&wb1->dmin);
        const float dwv[4] = {dw0, dw0, dw1, dw1}, mwv[4] = {mw0, mw0, mw1, mw1}, dav[4] = {ab0->d, ab1->d, ab0->d, ab1->d};
        const float32x4_t da = vld1q_f32(dav);
        const float32x4_t dd = vmulq_f32(vld1q_f32(dwv), da), dm = vmulq_f32(vld1q_f32(mwv), da);
        if (grouped) {
            for (int k = 0; k < 4; ++k) {
                acc = vfmaq_f32(acc, vcvtq_f32_s32(sk[k]), dd);
                accm = vfmaq_f32(accm, vcvtq_f32_s32(mk[k]), dm);
            }
        } else {
            acc = vfmaq_f32(acc, vcvtq_f32_s32(vaddq_s32(vaddq_s32(sk[0], sk[1]), vaddq_s32(sk[2], sk[3]))), dd);
            accm = vfmaq_f32(accm, vcvtq_f32_s32(vaddq_s32(vaddq_s32(mk[0], mk[1]), vaddq_s32(mk[2], mk[3]))), dm);
        }
    }
    float r[4];
    vst1q_f32(r, vsubq_f32(acc, accm));
    out[0][0] = r[0]; out[0][1] = r[1]; out[1][0] = r[2]; out[1][1] = r[3];
}
#endif

// MARK: driver

QK_INLINE void QK_FN(row_tokens)(const int type, const int NT, const int tiled, const int grouped, int n,
                                 const uint8_t *w, const uint8_t *a, size_t a_stride, float *out) {
    switch (type) {
    case T_Q4_0: QK_FN(rows_b32)(K_Q4_0, NT, n, w, a, a_stride, out); break;
    case T_Q4_1: QK_FN(rows_b32)(K_Q4_1, NT, n, w, a, a_stride, out); break;
    case T_Q5_0: QK_FN(rows_b32)(K_Q5_0, NT, n, w, a, a_stride, out); break;
    case T_Q5_1: QK_FN(rows_b32)(K_Q5_1, NT, n, w, a, a_stride, out); break;
    case T_Q8_0: QK_FN(rows_b32)(K_Q8_0, NT, n, w, a, a_stride, out); break;
    case T_IQ4_NL: QK_FN(rows_b32)(K_IQ4_NL, NT, n, w, a, a_stride, out); break;
    case T_Q4_K: QK_FN(rows_q4_K)(NT, grouped, n, w, a, a_stride, out); break;
    case T_Q5_K: QK_FN(rows_q5_K)(NT, n, w, a, a_stride, out); break;
    case T_Q6_K: QK_FN(rows_q6_K)(NT, tiled, n, w, a, a_stride, out); break;
    case T_Q2_K: QK_FN(rows_q2_K)(NT, n, w, a, a_stride, out); break;
    case T_Q3_K: QK_FN(rows_q3_K)(NT, tiled, n, w, a, a_stride, out); break;
    default: QK_FN(rows_iq4_xs)(NT, tiled, n, w, a, a_stride, out); break;
    }
}

/// All rows of one type: tokens in groups of 4 (a weight block is unpacked once per group), rows
/// in tiles of about 32 KB of weights so a tile stays in cache while every group passes over it.
QK_INLINE void QK_FN(gemm_type)(const int type, int n, const uint8_t *w, size_t w_stride, int nrows,
                                const uint8_t *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    float out[4];
    if (ntok == 1) {   // matrix × vector (decode): one pass per row
        for (int r = 0; r < nrows; ++r) {
            QK_FN(row_tokens)(type, 1, 0, 0, n, w + (size_t)r * w_stride, a, a_stride, out);
            y[r] = out[0];
        }
        return;
    }
    const int tiled = ntok >= 8;   // k-quants but Q4_K: llama.cpp's tiled matmul order (see the twin)
    const int tile = ntok <= 4 ? nrows : (int)(w_stride >= 32768 ? 1 : 32768 / w_stride);
    for (int r0 = 0; r0 < nrows; r0 += tile) {
        const int r1 = nrows - r0 < tile ? nrows : r0 + tile;
        for (int t0 = 0; t0 < ntok; t0 += 4) {
            const int nt = ntok - t0 < 4 ? ntok - t0 : 4;
            const uint8_t *at = a + (size_t)t0 * a_stride;
            float *yt = y + (size_t)t0 * y_stride;
            int r = r0;
#if QK_I8MM
            if (type == T_Q4_K && nt >= 2) {
                const int grouped = nt == 4;   // Q4_K: whole groups of 4 take the gemm order
                float o2[2][2];
                for (; r + 2 <= r1; r += 2) {
                    const uint8_t *wr = w + (size_t)r * w_stride;
                    for (int t = 0; t + 2 <= nt; t += 2) {
                        QK_FN(tile_q4_K_2x2)(grouped, n, wr, wr + w_stride, at + (size_t)t * a_stride,
                                             at + (size_t)(t + 1) * a_stride, o2);
                        for (int i = 0; i < 2; ++i)
                            for (int j = 0; j < 2; ++j) yt[(size_t)(t + j) * y_stride + r + i] = o2[i][j];
                    }
                    if (nt == 3)
                        for (int i = 0; i < 2; ++i) {
                            QK_FN(row_tokens)(type, 1, tiled, grouped, n, wr + (size_t)i * w_stride, at + 2 * a_stride, a_stride, out);
                            yt[2 * y_stride + r + i] = out[0];
                        }
                }
            }
#endif
            for (; r < r1; ++r) {
                const uint8_t *wr = w + (size_t)r * w_stride;
                switch (nt) {   // grouped == (nt == 4)
                case 1: QK_FN(row_tokens)(type, 1, tiled, 0, n, wr, at, a_stride, out); break;
                case 2: QK_FN(row_tokens)(type, 2, tiled, 0, n, wr, at, a_stride, out); break;
                case 3: QK_FN(row_tokens)(type, 3, tiled, 0, n, wr, at, a_stride, out); break;
                default: QK_FN(row_tokens)(type, 4, tiled, 1, n, wr, at, a_stride, out); break;
                }
                for (int t = 0; t < nt; ++t) yt[(size_t)t * y_stride + r] = out[t];
            }
        }
    }
}

// One function per type, so each keeps its constants in registers and saves only what it uses.
#define QK_TYPE_GEMM(T) \
    static QK_TARGET __attribute__((noinline)) void QK_FN(gemm_##T)(int n, const void *w, size_t w_stride, int nrows, \
                                                                    const void *a, size_t a_stride, int ntok, float *y, size_t y_stride) { \
        QK_FN(gemm_type)(T, n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride); \
    }
QK_TYPE_GEMM(T_Q4_0) QK_TYPE_GEMM(T_Q4_1) QK_TYPE_GEMM(T_Q5_0) QK_TYPE_GEMM(T_Q5_1) QK_TYPE_GEMM(T_Q8_0) QK_TYPE_GEMM(T_IQ4_NL)
QK_TYPE_GEMM(T_Q4_K) QK_TYPE_GEMM(T_Q5_K) QK_TYPE_GEMM(T_Q6_K) QK_TYPE_GEMM(T_Q2_K) QK_TYPE_GEMM(T_Q3_K) QK_TYPE_GEMM(T_IQ4_XS)
#undef QK_TYPE_GEMM

static QK_TARGET int QK_FN(gemm)(int type, int n, const void *w, size_t w_stride, int nrows,
                                 const void *a, size_t a_stride, int ntok, float *y, size_t y_stride) {
    switch (type) {
#define QK_CASE(T) case T: QK_FN(gemm_##T)(n, w, w_stride, nrows, a, a_stride, ntok, y, y_stride); return 0;
    QK_CASE(T_Q4_0) QK_CASE(T_Q4_1) QK_CASE(T_Q5_0) QK_CASE(T_Q5_1) QK_CASE(T_Q8_0) QK_CASE(T_IQ4_NL)
    QK_CASE(T_Q4_K) QK_CASE(T_Q5_K) QK_CASE(T_Q6_K) QK_CASE(T_Q2_K) QK_CASE(T_Q3_K) QK_CASE(T_IQ4_XS)
#undef QK_CASE
    default: return -1;   // float and Q8_K weights: the generic kernel (as on x86)
    }
}

#undef B32_WSIZE
#undef B32_WITH_MIN
#undef QK_CAT2
#undef QK_CAT
#undef QK_FN
#undef QK_INLINE
#undef QK_UNROLL
