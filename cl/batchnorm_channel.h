/* Whole-channel batch norm kernels for CPUs (included at the end of cl/batchnorm.cl; host
 * side: lib/ops/batchnorm.c, which uses them where a channel's values fit a core's cache).
 * One work-item per channel makes every pass of a training forward or backward over that
 * channel's values, so only the first pass reads them from memory and the later ones
 * find them in the cache: the chunk kernels read every tensor once per pass, each from
 * memory when the tensors are larger than the cache.
 *
 * Both compute what the chunk kernels compute, bit for bit: the channel's chunks are the
 * chunking's (n * chunks of them, slot = sample * chunks + kc), their partial sums come
 * from the same helpers (bn_sums, bn_bwd_sums, BN_IL chunks interleaved), and
 * the partials are added in slot order with bn_kahan as bn_total adds the stored ones.
 *
 * bn_fwd_channel: mean, invstd and the running statistics (as bn_mean_final and
 *   bn_var_final write them), then y = act(bn(x) (+ res)) as bn_apply_chunk. y may be x or
 *   res itself.
 * bn_bwd_channel: sum_dy and sum_dyxhat (as bn_bwd_final), then dx when dx is not NULL (as
 *   bn_bwd_dx_chunk). dx may be x or dy itself. */

/* Slot slot (sample * chunks + kc) of channel ch: the chunk bn_chunk_of gives the chunk
 * kernels' work-item of that sample's plane and kc. */
inline bn_chunk bn_channel_chunk(int ch, int slot, int c, int hw, int chunk, int chunks) {
    const int sample = slot / chunks, kc = slot - sample * chunks;
    return bn_chunk_of((sample * c + ch) * chunks + kc, c, hw, chunk, chunks);
}

/* Chunks s0 .. s0 + BN_IL - 1 of channel ch (len 0 past its last, P = n * chunks); returns
 * the longest. */
inline int bn_channel_chunks(int ch, int s0, int P, int c, int hw, int chunk, int chunks,
                             bn_chunk *ck) {
    int maxlen = 0;
    for (int j = 0; j < BN_IL; j++) {
        if (s0 + j < P) {
            ck[j] = bn_channel_chunk(ch, s0 + j, c, hw, chunk, chunks);
        } else {
            ck[j].first = ck[j].slot = 0;
            ck[j].ch = ch;
            ck[j].len = 0;
        }
        maxlen = max(maxlen, ck[j].len);
    }
    return maxlen;
}

__kernel void bn_fwd_channel(__global const float *x, int x_off, __global float *y, int y_off,
                             int n, int c, int hw, int chunk, int chunks, float eps,
                             __global float *mean, int mean_off, __global float *invstd,
                             int inv_off, int update_running, __global float *rmean, int rm_off,
                             __global float *rvar, int rv_off, float momentum,
                             __global const float *gamma, int g_off, __global const float *beta,
                             int b_off, int act, __global const float *res, int res_off) {
    const int ch = get_global_id(0);
    if (ch >= c) return;
    const int P = n * chunks, m = n * hw;
    __global const float *xb = x + x_off, *end = x + x_off + n * c * hw;
    bn_chunk ck[BN_IL];
    float part[BN_IL], mus[BN_IL];
    float tot = 0.0f, comp = 0.0f;
    for (int s0 = 0; s0 < P; s0 += BN_IL) {
        const int maxlen = bn_channel_chunks(ch, s0, P, c, hw, chunk, chunks, ck);
        bn_sums(xb, end, ck, maxlen, 1, NULL, part);
        for (int j = 0; j < BN_IL && s0 + j < P; j++)
            bn_kahan(&tot, &comp, part[j]);
    }
    const float mu = tot / (float)m;
    mean[mean_off + ch] = mu;
    for (int j = 0; j < BN_IL; j++)
        mus[j] = mu;
    tot = comp = 0.0f;
    for (int s0 = 0; s0 < P; s0 += BN_IL) {
        const int maxlen = bn_channel_chunks(ch, s0, P, c, hw, chunk, chunks, ck);
        bn_sums(xb, end, ck, maxlen, 1, mus, part);
        for (int j = 0; j < BN_IL && s0 + j < P; j++)
            bn_kahan(&tot, &comp, part[j]);
    }
    const float inv = bn_store_var(mu, tot, m, eps, ch, invstd, inv_off, update_running, rmean,
                                   rm_off, rvar, rv_off, momentum);
    const float g = gamma ? gamma[g_off + ch] : 1.0f;
    const float b = beta ? beta[b_off + ch] : 0.0f;
    for (int slot = 0; slot < P; slot++) {
        const bn_chunk k = bn_channel_chunk(ch, slot, c, hw, chunk, chunks);
        bn_apply_span(xb + k.first, y + y_off + k.first, res ? res + res_off + k.first : NULL,
                      k.len, mu, inv, g, b, act);
    }
}

__kernel void bn_bwd_channel(__global const float *x, int x_off, __global const float *dy,
                             int dy_off, __global float *dx, int dx_off, int n, int c, int hw,
                             int chunk, int chunks, __global const float *mean, int mean_off,
                             __global const float *invstd, int inv_off, __global const float *gamma,
                             int g_off, __global const float *beta, int b_off, int act,
                             __global float *sum_dy, int sdy_off, __global float *sum_dyxhat,
                             int sdx_off) {
    const int ch = get_global_id(0);
    if (ch >= c) return;
    const int P = n * chunks;
    __global const float *xb = x + x_off, *end = x + x_off + n * c * hw;
    __global const float *db = dy + dy_off, *dend = dy + dy_off + n * c * hw;
    const float mu = mean[mean_off + ch], inv = invstd[inv_off + ch];
    const float g = gamma ? gamma[g_off + ch] : 1.0f, be = beta ? beta[b_off + ch] : 0.0f;
    float mus[BN_IL], invs[BN_IL], gs[BN_IL], bes[BN_IL], p1[BN_IL], p2[BN_IL];
    for (int j = 0; j < BN_IL; j++) {
        mus[j] = mu;
        invs[j] = inv;
        gs[j] = g;
        bes[j] = be;
    }
    bn_chunk ck[BN_IL];
    float t1 = 0.0f, c1 = 0.0f, t2 = 0.0f, c2 = 0.0f;
    for (int s0 = 0; s0 < P; s0 += BN_IL) {
        const int maxlen = bn_channel_chunks(ch, s0, P, c, hw, chunk, chunks, ck);
        bn_bwd_sums(xb, end, db, dend, ck, maxlen, 1, mus, invs, gs, bes, act, p1, p2);
        for (int j = 0; j < BN_IL && s0 + j < P; j++) {
            bn_kahan(&t1, &c1, p1[j]);
            bn_kahan(&t2, &c2, p2[j]);
        }
    }
    const float sdy = t1, sdx = t2 * inv;
    sum_dy[sdy_off + ch] = sdy;
    sum_dyxhat[sdx_off + ch] = sdx;
    if (!dx) return;
    const float fm = (float)(n * hw);
    const float a = sdy / fm, b = sdx / fm, gi = g * inv;
    for (int slot = 0; slot < P; slot++) {
        const bn_chunk k = bn_channel_chunk(ch, slot, c, hw, chunk, chunks);
        bn_dx_span(xb + k.first, db + k.first, dx + dx_off + k.first, k.len, mu, inv, g, be, a, b,
                   gi, act);
    }
}
