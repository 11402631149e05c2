/* The gradient kernels of cl/conv2d_depthwise.cl (included at its end; PASS 2 and 0
 * programs): backward data (any stride; 3x3 stride 2 padding 1 on its own) and backward
 * filter. They use the forward file's defines and helpers (VEC, TP, K3, STRIDE, the
 * vector types, load_cols). */
#if PASS != 1
/* VEC values of the dy row at dyr from column q0 (zero past the row's end, q; dhi: the end
 * of the buffer's readable part). keep: the lanes inside the row. */
inline floatV load_dy(__global const float *dy, int dyr, int q0, int q, int dhi, intV keep) {
    if (q0 + VEC <= q) return vloadV(0, dy + dyr + q0);
    if (dyr + q0 + VEC <= dhi) return select((floatV)(0.0f), vloadV(0, dy + dyr + q0), keep);
    float tq[VEC];
    for (int l = 0; l < VEC; l++)
        tq[l] = q0 + l < q ? dy[dyr + q0 + l] : 0.0f;
    return vloadV(0, tq);
}

/* ---- backward data ------------------------------------------------------------------
 *
 *   dx[ni,ch,ih,iw] = sum_{kr,ks} wt[ch,0,kr,ks] * dy[ni, ch, (ih+ph-kr*dh)/sh, (iw+pw-ks*dw)/sw]
 *   over the taps whose numerators are non-negative multiples of the strides and whose
 *   quotients are inside dy: a gather per dx element, no atomics.
 *
 * Work-item -> dx mapping: dim0 = (row tile, column tile, column phase), dim1 = channel,
 * dim2 = image; TP consecutive rows x VEC columns iw = phase + sw*(j0 + l), l < VEC, of
 * one phase (iw mod sw); for stride 2 one work-item computes both phases (dim0 has no
 * phase then) and stores them interleaved, 2*VEC consecutive columns. Every column of a
 * phase uses the same column taps, and their dy columns are consecutive: one vector load
 * per (row, tap). Strides 1 and 2 store vectors, others element by element. Fixed order (ks, then
 * kr): deterministic. */
__kernel void conv2d_depthwise_bwd_data(__global const float *dy, int dy_off,
                                        __global const float *wt, int w_off, __global float *dx,
                                        int dx_off, int n, int c, int h, int w, int p, int q, int r,
                                        int s, int sh, int sw, int ph, int pw, int dh, int dw) {
    K3_GEOMETRY();
    const int wq = (w + sw - 1) / sw; /* columns of phase 0, the longest phase */
    const int qt = (wq + VEC - 1) / VEC, ht = (h + TP - 1) / TP;
    const int nph = sw == 2 ? 2 : 1; /* phases per work-item */
    const int t = get_global_id(0), ch = get_global_id(1), ni = get_global_id(2);
    if (t >= ht * qt * (sw / nph) || ch >= c || ni >= n) return;
    const int ph0 = nph == 2 ? 0 : t % sw, t2 = nph == 2 ? t : t / sw;
    const int h0 = (t2 / qt) * TP, j0 = (t2 % qt) * VEC;
    const int plane = dy_off + (ni * c + ch) * p * q;
    const int lo = dy_off, hi = dy_off + n * c * p * q;
    __global const float *wc = wt + w_off + ch * r * s;

    /* f and tp unrolled: the accumulators stay in registers (indexed at run time, they
     * were kept in memory, a load and a store around every FMA) */
    floatV acc[2][TP];
#pragma unroll
    for (int f = 0; f < 2; f++)
#pragma unroll
        for (int tp = 0; tp < TP; tp++)
            acc[f][tp] = (floatV)(0.0f);
#pragma unroll
    for (int f = 0; f < 2; f++) {
        if (f >= nph) break;
        for (int ks = 0; ks < s; ks++) {
            const int num = ph0 + f + pw - ks * dw;
            if (num % sw != 0) continue;
            const int c0 = num / sw + j0; /* exact: dy column of lane 0 */
            for (int kr = 0; kr < r; kr++) {
                const float wv = wc[kr * s + ks];
#pragma unroll
                for (int tp = 0; tp < TP; tp++) {
                    const int nr = h0 + tp + ph - kr * dh;
                    if (nr < 0 || nr % sh != 0) continue;
                    const int pi = nr / sh;
                    if (pi >= p) continue;
                    acc[f][tp] = fma((floatV)(wv), load_cols(dy, plane + pi * q, c0, q, 1, lo, hi),
                                     acc[f][tp]);
                }
            }
        }
    }

    /* stride 1: VEC consecutive columns; stride 2: both phases interleaved into 2*VEC
     * consecutive columns; other strides: element by element */
    __global float *xc = dx + dx_off + (ni * c + ch) * h * w;
#pragma unroll
    for (int tp = 0; tp < TP; tp++) {
        const int ih = h0 + tp;
        if (ih >= h) break;
        __global float *xr = xc + ih * w;
        if (sw == 1 && j0 + VEC <= w) {
            vstoreV(acc[0][tp], 0, xr + j0);
        } else if (nph == 2) {
            float a[VEC], b[VEC], o[2 * VEC];
            vstoreV(acc[0][tp], 0, a);
            vstoreV(acc[1][tp], 0, b);
            for (int l = 0; l < VEC; l++) {
                o[2 * l] = a[l];
                o[2 * l + 1] = b[l];
            }
            const int col0 = 2 * j0;
            if (col0 + 2 * VEC <= w) {
                vstoreV(vloadV(0, o), 0, xr + col0);
                vstoreV(vloadV(0, o + VEC), 0, xr + col0 + VEC);
            } else {
                for (int l = 0; l < 2 * VEC && col0 + l < w; l++)
                    xr[col0 + l] = o[l];
            }
        } else {
            float o[VEC];
            vstoreV(acc[0][tp], 0, o);
            for (int l = 0; l < VEC; l++) {
                const int col = ph0 + sw * (j0 + l);
                if (col >= w) break;
                xr[col] = o[l];
            }
        }
    }
}

#if K3 && STRIDE == 2
/* ---- backward data, 3x3 stride 2 padding 1 (MobileNet's downsampling layers) -----------
 *
 * With padding 1, dx rows 2u and 2u+1 take dy rows u and u+1 only (and so do columns):
 *   dx[2u  ][2v  ] = w11 dy[u][v]
 *   dx[2u  ][2v+1] = w10 dy[u][v+1] + w12 dy[u][v]
 *   dx[2u+1][2v  ] = w01 dy[u+1][v] + w21 dy[u][v]
 *   dx[2u+1][2v+1] = w00 dy[u+1][v+1] + w20 dy[u][v+1] + w02 dy[u+1][v] + w22 dy[u][v]
 * (dy outside its plane: 0). A work-item takes DU pairs of dx rows x VEC values of v, so it
 * loads DU+1 dy rows at v and v+1 (vector loads; element by element in a row's last
 * tile) and stores 2*VEC interleaved columns per dx row. Sums in the order of
 * conv2d_depthwise_bwd_data (ks, then kr), from 0: the same values. Work-item: dim0 = (pair
 * block, column tile), dim1 = channel, dim2 = image. */
#define DU 2
#if VEC == 16
#define STORE_PAIR(a, b, p)                                                                        \
    vstore16(shuffle2((a), (b), (uint16)(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)), \
             0, (p));                                                                              \
    vstore16(shuffle2((a), (b),                                                                    \
                      (uint16)(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)),     \
             0, (p) + 16)
#elif VEC == 8
#define STORE_PAIR(a, b, p)                                                                        \
    vstore16(shuffle2((a), (b), (uint16)(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15)),   \
             0, (p))
#else
#define STORE_PAIR(a, b, p) vstore8(shuffle2((a), (b), (uint8)(0, 4, 1, 5, 2, 6, 3, 7)), 0, (p))
#endif

/* VEC values of dy row u from column v (0 outside the plane's rows and columns). */
inline floatV s2_row(__global const float *plane, int u, int v, int p, int q) {
    if (u >= p) return (floatV)(0.0f);
    return load_dy(plane, u * q, v, q, p * q, LANES < (intV)(q - v));
}

/* Row ih of dx from 2*VEC interleaved columns at 2*v0 (e: even columns, o: odd). */
inline void s2_store(__global float *xr, floatV e, floatV o, int v0, int w) {
    if (2 * v0 + 2 * VEC <= w) {
        STORE_PAIR(e, o, xr + 2 * v0);
        return;
    }
    float t[2 * VEC];
    STORE_PAIR(e, o, t);
    for (int l = 0; 2 * v0 + l < w; l++)
        xr[2 * v0 + l] = t[l];
}

__kernel void conv2d_depthwise_bwd_data_s2(__global const float *dy, int dy_off,
                                           __global const float *wt, int w_off, __global float *dx,
                                           int dx_off, int n, int c, int h, int w, int p, int q) {
    const int hu = (h + 1) / 2, wv = (w + 1) / 2; /* dx row pairs, column pairs */
    const int vt = (wv + VEC - 1) / VEC, ut = (hu + DU - 1) / DU;
    const int t = get_global_id(0), ch = get_global_id(1), ni = get_global_id(2);
    if (t >= ut * vt || ch >= c || ni >= n) return;
    const int u0 = (t / vt) * DU, v0 = (t % vt) * VEC;
    __global const float *plane = dy + dy_off + (ni * c + ch) * p * q;
    __global const float *wc = wt + w_off + ch * 9;
    const float w00 = wc[0], w01 = wc[1], w02 = wc[2], w10 = wc[3], w11 = wc[4], w12 = wc[5],
                w20 = wc[6], w21 = wc[7], w22 = wc[8];
    __global float *xc = dx + dx_off + (ni * c + ch) * h * w;
    floatV a0 = s2_row(plane, u0, v0, p, q), a1 = s2_row(plane, u0, v0 + 1, p, q);
#pragma unroll
    for (int du = 0; du < DU; du++) {
        const int u = u0 + du;
        if (2 * u >= h) break;
        const floatV b0 = s2_row(plane, u + 1, v0, p, q), b1 = s2_row(plane, u + 1, v0 + 1, p, q);
        const floatV z = (floatV)(0.0f);
        /* order (ks, then kr) per output, as the generic kernel sums */
        const floatV ee = fma((floatV)(w11), a0, z);
        const floatV eo = fma((floatV)(w12), a0, fma((floatV)(w10), a1, z));
        s2_store(xc + 2 * u * w, ee, eo, v0, w);
        if (2 * u + 1 < h) {
            const floatV oe = fma((floatV)(w21), a0, fma((floatV)(w01), b0, z));
            const floatV oo =
                fma((floatV)(w22), a0,
                    fma((floatV)(w02), b0, fma((floatV)(w20), a1, fma((floatV)(w00), b1, z))));
            s2_store(xc + (2 * u + 1) * w, oe, oo, v0, w);
        }
        a0 = b0;
        a1 = b1;
    }
}
#endif

/* ---- backward filter ----------------------------------------------------------------
 *
 *   part[chunk, ch, kr, ks] = sum over the dy rows pi of the chunk, qi < q of
 *                             dy[ni,ch,pi,qi] * x[ni, ch, pi*sh-ph+kr*dh, qi*sw-pw+ks*dw]
 *
 * A chunk is `rows` consecutive dy rows (cpi row blocks per image) of `imgs` consecutive
 * images (chunk index = image block * cpi + row block; imgs > 1 for small planes); the host sums
 * the n*cpi partial sets in fixed order (cc_conv2d_sum_parts) or, with one chunk, this kernel
 * writes dw itself. Work-item: dim0 = chunk, dim1 = channel, dim2 = a block of RB x SB taps (a 3x3
 * kernel is one block: each dy vector is loaded once for all 9 taps); VEC lanes along the dy row,
 * one vector accumulator per tap, summed lane by lane at the end. Fixed order: deterministic. part:
 * (chunks, c, r, s) dense from part_off. With K3 the nine accumulators are named variables, which
 * the compiler keeps in registers (the host then takes VEC at most the native width); an array of
 * them indexed in the loops was kept in memory, a load and a store around every FMA. */
#define RB 3
#define SB 4

/* The lanes of v added in order. */
inline float lane_sum(floatV v) {
    float o[VEC];
    vstoreV(v, 0, o);
    float sum = 0.0f;
    for (int l = 0; l < VEC; l++)
        sum += o[l];
    return sum;
}

#if K3
/* x[row xb, c0 + lane*STRIDE] for VEC lanes: a plain vector load (fast: every lane inside
 * the row), else a vector load masked to the lanes of m (inside the row, lane < the dy
 * row's end) when its span lies inside x, else load_cols masked by keep. */
#define K3_LOAD(p) (STRIDE == 1 ? LOADV(p) : LOAD_EVEN(p))
inline floatV k3_load(__global const float *x, int xb, int c0, int w, int lo, int hi, int fast,
                      intV m, intV keep) {
    if (fast) return K3_LOAD(x + xb + c0);
    if (xb + c0 >= lo && xb + c0 + VEC * STRIDE <= hi)
        return select((floatV)(0.0f), K3_LOAD(x + xb + c0), m);
    return select((floatV)(0.0f), load_cols(x, xb, c0, w, STRIDE, lo, hi), keep);
}
/* The dy vector g times the three x rows ih0 .. ih0+2, into the nine accumulators (rows
 * outside the input skipped); fast and the tap masks m0..m2 as k3_load takes them. */
#define K3_ROW(ih, A0, A1, A2)                                                                     \
    if ((ih) >= 0 && (ih) < h) {                                                                   \
        const int xb = xplane + (ih)*w;                                                            \
        A0 = fma(g, k3_load(x, xb, c0, w, lo, hi, fast, m0, keep), A0);                            \
        A1 = fma(g, k3_load(x, xb, c0 + 1, w, lo, hi, fast, m1, keep), A1);                        \
        A2 = fma(g, k3_load(x, xb, c0 + 2, w, lo, hi, fast, m2, keep), A2);                        \
    }
#define K3_ROWS()                                                                                  \
    K3_ROW(ih0, a00, a01, a02)                                                                     \
    K3_ROW(ih0 + 1, a10, a11, a12)                                                                 \
    K3_ROW(ih0 + 2, a20, a21, a22)
/* Per column tile: keep, the three taps' lane masks and whole (every lane of every tap
 * inside the row; the fast loads also need the span inside x). */
#define K3_TILE()                                                                                  \
    const intV keep = LANES < (intV)(q - q0); /* no 0 * inf past the row's end */                  \
    const int c0 = q0 * STRIDE - pw;          /* column of tap ks = 0 in lane 0 */                 \
    const intV col = (intV)(c0) + LANES * STRIDE;                                                  \
    const intV m0 = keep & (col >= (intV)(0)) & (col < (intV)(w));                                 \
    const intV m1 = keep & (col >= (intV)(-1)) & (col < (intV)(w - 1));                            \
    const intV m2 = keep & (col >= (intV)(-2)) & (col < (intV)(w - 2));                            \
    const int whole = q0 + VEC <= q && c0 >= 0 && c0 + 2 + (VEC - 1) * STRIDE < w
#endif

__kernel void conv2d_depthwise_bwd_filter(__global const float *x, int x_off,
                                          __global const float *dy, int dy_off,
                                          __global float *part, int part_off, int n, int c, int h,
                                          int w, int p, int q, int r, int s, int sh, int sw, int ph,
                                          int pw, int dh, int dw, int rows, int cpi, int imgs) {
    K3_GEOMETRY();
    const int sblk = (s + SB - 1) / SB, rblk = (r + RB - 1) / RB;
    const int chunk = get_global_id(0), ch = get_global_id(1), tap = get_global_id(2);
    if (chunk >= (n + imgs - 1) / imgs * cpi || ch >= c || tap >= rblk * sblk) return;
    const int ni0 = chunk / cpi * imgs, ni1 = min(n, ni0 + imgs);
    const int p0 = (chunk % cpi) * rows, p1 = min(p, p0 + rows);
    const int kr0 = (tap / sblk) * RB, ks0 = (tap % sblk) * SB;
    const int nr = min(RB, r - kr0), ns = min(SB, s - ks0);
    const int lo = x_off, hi = x_off + n * c * h * w;
    const int dhi = dy_off + n * c * p * q;
#if K3
    /* 3x3 (one tap block): the nine accumulators by name, so they stay in registers (an
     * array indexed in loops was kept in memory, a load and a store around every FMA). */
    (void)nr, (void)ns, (void)kr0, (void)ks0;
    floatV a00 = (floatV)(0.0f), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00, a20 = a00,
           a21 = a00, a22 = a00;
    if (q > 2 * VEC) { /* rows outer, the columns VEC at a time; masks only at the edges */
        for (int ni = ni0; ni < ni1; ni++)
            for (int pi = p0; pi < p1; pi++) {
                const int xplane = x_off + (ni * c + ch) * h * w;
                const int dyr = dy_off + (ni * c + ch) * p * q + pi * q;
                const int ih0 = pi * STRIDE - ph;
                const int xlast = xplane + (ih0 + 2) * w + 2 + VEC * STRIDE;
#if PF
                /* the x rows and the dy row of two output rows ahead (past the plane: the
                 * next one's, or nothing useful) */
                for (int o = 0; o < w; o += 16)
                    for (int e = 1; e <= STRIDE; e++)
                        CC_PREFETCH(x + xplane + (ih0 + 2 + 2 * STRIDE - STRIDE + e) * w + o);
                for (int o = 0; o < q; o += 16)
                    CC_PREFETCH(dy + dyr + 2 * q + o);
#endif
                for (int q0 = 0; q0 < q; q0 += VEC) {
                    K3_TILE();
                    const floatV g = load_dy(dy, dyr, q0, q, dhi, keep);
                    if (whole && xlast + c0 <= hi) {
                        const int fast = 1;
                        K3_ROWS()
                    } else {
                        const int fast = 0;
                        K3_ROWS()
                    }
                }
            }
    } else { /* one or two column tiles: the masks once per tile for all rows */
        for (int q0 = 0; q0 < q; q0 += VEC) {
            K3_TILE();
            for (int ni = ni0; ni < ni1; ni++)
                for (int pi = p0; pi < p1; pi++) {
                    const int xplane = x_off + (ni * c + ch) * h * w;
                    const int dyr = dy_off + (ni * c + ch) * p * q + pi * q;
                    const int ih0 = pi * STRIDE - ph;
                    const int fast = whole && xplane + (ih0 + 2) * w + 2 + VEC * STRIDE + c0 <= hi;
                    const floatV g = load_dy(dy, dyr, q0, q, dhi, keep);
                    K3_ROWS()
                }
        }
    }
    __global float *o3 = part + part_off + (chunk * c + ch) * 9;
    o3[0] = lane_sum(a00), o3[1] = lane_sum(a01), o3[2] = lane_sum(a02);
    o3[3] = lane_sum(a10), o3[4] = lane_sum(a11), o3[5] = lane_sum(a12);
    o3[6] = lane_sum(a20), o3[7] = lane_sum(a21), o3[8] = lane_sum(a22);
#else
    floatV acc[RB][SB];
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < SB; j++)
            acc[i][j] = (floatV)(0.0f);
    if (q > 2 * VEC) { /* rows outer: plain vector loads inside the rows */
        for (int ni = ni0; ni < ni1; ni++)
            for (int pi = p0; pi < p1; pi++) {
                const int xplane = x_off + (ni * c + ch) * h * w,
                          dyc = dy_off + (ni * c + ch) * p * q;
                const int dyr = dyc + pi * q;
                for (int q0 = 0; q0 < q; q0 += VEC) {
                    const int full = q0 + VEC <= q;
                    const intV keep = LANES < (intV)(q - q0); /* no 0 * inf past the row's end */
                    const floatV g = load_dy(dy, dyr, q0, q, dhi, keep);
                    /* every tap's VEC columns inside the row (and stride 1 or 2): plain loads */
                    const int c0 = q0 * sw - pw + ks0 * dw,
                              c1 = c0 + (ns - 1) * dw + (VEC - 1) * sw;
                    const int fast = full && (sw == 1 || sw == 2) && c0 >= 0 && c1 < w;
#pragma unroll
                    for (int i = 0; i < RB; i++) {
                        if (i >= nr) break;
                        const int ih = pi * sh - ph + (kr0 + i) * dh;
                        if (ih < 0 || ih >= h) continue;
                        const int xbase = xplane + ih * w;
                        if (fast && xbase + c1 + sw <= hi) {
                            __global const float *xr = x + xbase + c0;
                            if (sw == 1) {
#pragma unroll
                                for (int j = 0; j < SB; j++) {
                                    if (j >= ns) break;
                                    acc[i][j] = fma(g, vloadV(0, xr + j * dw), acc[i][j]);
                                }
                            } else {
#pragma unroll
                                for (int j = 0; j < SB; j++) {
                                    if (j >= ns) break;
                                    acc[i][j] = fma(g, LOAD_EVEN(xr + j * dw), acc[i][j]);
                                }
                            }
                            continue;
                        }
#pragma unroll
                        for (int j = 0; j < SB; j++) {
                            if (j >= ns) break;
                            floatV xv = load_cols(x, xbase, c0 + j * dw, w, sw, lo, hi);
                            if (!full) xv = select((floatV)(0.0f), xv, keep);
                            acc[i][j] = fma(g, xv, acc[i][j]);
                        }
                    }
                }
            }
    } else { /* one or two column tiles: the lane masks once per tile for all rows */
        for (int q0 = 0; q0 < q; q0 += VEC) {
            /* per column tile: each tap's lane mask (inside the row, lane < q: no 0 * inf past
             * the row's end), computed once for all rows */
            const int full = q0 + VEC <= q;
            const intV keep = LANES < (intV)(q - q0);
            const int c0 = q0 * sw - pw + ks0 * dw;
            intV mask[SB];
            int whole[SB]; /* every lane inside: no mask */
#pragma unroll
            for (int j = 0; j < SB; j++) {
                const intV col = (intV)(c0 + j * dw) + LANES * sw;
                mask[j] = keep & (col >= (intV)(0)) & (col < (intV)(w));
                whole[j] = full && c0 + j * dw >= 0 && c0 + j * dw + (VEC - 1) * sw < w;
            }
            for (int ni = ni0; ni < ni1; ni++)
                for (int pi = p0; pi < p1; pi++) {
                    const int xplane = x_off + (ni * c + ch) * h * w,
                              dyc = dy_off + (ni * c + ch) * p * q;
                    const int dyr = dyc + pi * q;
                    const floatV g = load_dy(dy, dyr, q0, q, dhi, keep);
#pragma unroll
                    for (int i = 0; i < RB; i++) {
                        if (i >= nr) break;
                        const int ih = pi * sh - ph + (kr0 + i) * dh;
                        if (ih < 0 || ih >= h) continue;
                        const int xbase = xplane + ih * w;
#pragma unroll
                        for (int j = 0; j < SB; j++) {
                            if (j >= ns) break;
                            const int start = xbase + c0 + j * dw;
                            floatV xv;
                            if ((sw == 1 || sw == 2) && start >= lo && start + VEC * sw <= hi) {
                                xv = sw == 1 ? vloadV(0, x + start) : LOAD_EVEN(x + start);
                                if (!whole[j]) xv = select((floatV)(0.0f), xv, mask[j]);
                            } else {
                                xv = select((floatV)(0.0f),
                                            load_cols(x, xbase, c0 + j * dw, w, sw, lo, hi), keep);
                            }
                            acc[i][j] = fma(g, xv, acc[i][j]);
                        }
                    }
                }
        }
    }
    __global float *out = part + part_off + (chunk * c + ch) * r * s;
    CC_TILE_COPY(floatV, res, acc, RB, SB); /* the epilogue's loops stay rolled */
#pragma unroll 1
    for (int i = 0; i < nr; i++) {
#pragma unroll 1
        for (int j = 0; j < ns; j++)
            out[(kr0 + i) * s + ks0 + j] = lane_sum(res[i * SB + j]);
    }
#endif
}
#endif
