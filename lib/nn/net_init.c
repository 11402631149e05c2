/* Initialising a net's parameters (clcnn_net_init): weights drawn (He or Xavier) from one
 * random stream per parameter; biases, batch norm scales, shifts and running statistics set
 * to their starting values (cc_param_default); other initializers left alone. The seed
 * also keys the dropout masks (clcnn_net_set_seed). */
#include "nn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: one independent stream per parameter, keyed by (seed, parameter index), so
 * a layer's weights do not depend on the layers before it. */
typedef struct init_rng {
    uint64_t s;
} init_rng;

static uint64_t rng_next(init_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in (0, 1), never 0 (for the logarithm of Box-Muller) */
static double rng_open01(init_rng *r) {
    return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

/* Draw parameter i's weights (n of them) into host. */
static void draw_weights(const cc_param *p, int i, clcnn_init init, uint64_t seed, float *host,
                         size_t n) {
    init_rng r = {seed ^ (0xD1B54A32D192ED03ULL * (uint64_t)(i + 1))};
    rng_next(&r);
    if (init == CLCNN_INIT_HE) {
        double std = sqrt(2.0 / (double)(p->fan_in ? p->fan_in : 1));
        for (size_t j = 0; j < n; j += 2) {
            double rad = sqrt(-2.0 * log(rng_open01(&r))), th = 2.0 * M_PI * rng_open01(&r);
            host[j] = (float)(std * rad * cos(th));
            if (j + 1 < n) host[j + 1] = (float)(std * rad * sin(th));
        }
    } else {
        double a = sqrt(6.0 / (double)(p->fan_in + p->fan_out ? p->fan_in + p->fan_out : 1));
        for (size_t j = 0; j < n; j++)
            host[j] = (float)(a * (2.0 * rng_open01(&r) - 1.0));
    }
}

clcnn_status cc_net_init_params(clcnn_net *net, clcnn_init init, uint64_t seed,
                                const char *const *only, int n_only) {
    int np = net->nparams;
    size_t cap = 0;
    float *host = NULL;
    clcnn_status s = CLCNN_OK;
    for (int i = 0; s == CLCNN_OK && i < np; i++) {
        cc_param *p = &net->params[i];
        int pick = n_only == 0;
        for (int k = 0; k < n_only && !pick; k++)
            pick = !strcmp(only[k], p->name);
        if (!pick || p->role == CC_PARAM_OTHER) continue;
        if (p->role != CC_PARAM_WEIGHT) {
            s = clcnn_tensor_fill(p->value, cc_param_default(p->role));
            continue;
        }
        size_t n = p->value->numel;
        if (n > cap) {
            float *grown = realloc(host, n * sizeof *host);
            if (!grown) {
                s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_net_init: out of host memory");
                break;
            }
            host = grown;
            cap = n;
        }
        draw_weights(p, i, init, seed, host, n);
        s = clcnn_tensor_upload(p->value, host, n * sizeof *host);
    }
    free(host);
    net->version++;
    net->fwd_valid = 0;
    return s;
}

clcnn_status clcnn_net_init(clcnn_net *net, clcnn_init init, uint64_t seed) {
    CC_RETURN_IF(!net, CLCNN_ERR_INVALID_ARG, "clcnn_net_init: net is NULL");
    CC_RETURN_IF(init != CLCNN_INIT_HE && init != CLCNN_INIT_XAVIER, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_init: unknown initialisation %d", (int)init);
    CC_TRY(cc_net_bind(net));
    CC_TRY(cc_net_init_params(net, init, seed, NULL, 0));
    CC_TRY(clcnn_tensor_fill(net->grad_arena, 0.0f));
    clcnn_net_set_seed(net, seed);
    return CLCNN_OK;
}

void clcnn_net_set_seed(clcnn_net *net, uint64_t seed) {
    if (!net) return;
    net->seed = seed;
    net->forwards = 0;
    net->fwd_valid = 0;
}
