/* The batch-norm error bounds of reference_bn.h. */
#include "reference_bn.h"

#include <float.h>
#include <math.h>

#define U FLT_EPSILON /* 2^-23 = 2u */
#define AT(p, i, ch, s) (p)[((i)*c + (ch)) * hw + (s)]

bn_tol ref_bn_tolerances(const double *x, const double *dy, size_t n, size_t c, size_t hw,
                         const double *gamma, const double *beta, const double *mean,
                         const double *invstd, double momentum, const double *rmean_old) {
    bn_tol t = {0};
    double m = (double)(n * hw);
    for (size_t ch = 0; ch < c; ch++) {
        double sabs = 0, dyabs = 0, dyxabs = 0, sdy = 0, sdyx = 0, xhat_max = 0, dy_max = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t s = 0; s < hw; s++) {
                double v = AT(x, i, ch, s), g = dy ? AT(dy, i, ch, s) : 0;
                double xh = (v - mean[ch]) * invstd[ch];
                sabs += fabs(v);
                dyabs += fabs(g);
                dyxabs += fabs(g * xh);
                sdy += g;
                sdyx += g * xh;
                xhat_max = fmax(xhat_max, fabs(xh));
                dy_max = fmax(dy_max, fabs(g));
            }
        double g = gamma ? fabs(gamma[ch]) : 1, b = beta ? fabs(beta[ch]) : 0;
        double inv = invstd[ch];
        double me = 10 * U * sabs / m;
        double ir = 16 * U + (me * inv) * (me * inv);
        double ye = me * inv * g + xhat_max * g * (ir + 4 * U) + 2 * U * b;
        double rme = momentum * me + 4 * U * (fabs(rmean_old[ch]) + fabs(mean[ch]));
        double dbe = 10 * U * dyabs;
        double dge = 10 * U * dyxabs + me * inv * fabs(sdy) + ir * fabs(sdyx);
        double mag = dy_max + fabs(sdy) / m + xhat_max * fabs(sdyx) / m;
        double dxe =
            g * inv *
            ((ir + 8 * U) * mag + dbe / m + xhat_max * dge / m + me * inv * fabs(sdyx) / m);
        t.mean = fmax(t.mean, me);
        t.inv_rel = fmax(t.inv_rel, ir);
        t.y = fmax(t.y, ye);
        t.rmean = fmax(t.rmean, rme);
        t.rvar_rel = fmax(t.rvar_rel, 2 * ir + 6 * U);
        t.dbeta = fmax(t.dbeta, dbe);
        t.dgamma = fmax(t.dgamma, dge);
        t.dx = fmax(t.dx, dxe);
    }
    return t;
}
