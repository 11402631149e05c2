/* ConvTranspose in plans: the data gradient of the convolution whose weights are the
 * ConvTranspose weights as they are.
 *
 * A convolution with weights (k_f, c_f/group, r, s) maps x_f (n, c_f, ., .) to
 * y_f (n, k_f, ., .); its data gradient maps y_f-shaped dy to x_f-shaped dx. ConvTranspose
 * weights are (c, k/group, r, s) for x (n, c, h, w) and y (n, k, p, q): k_f = c, c_f = k,
 * so x is dy, y is dx and the weights need no re-layout (groups match group by group).
 * With pads (top, left, bottom, right) equal per side and no output_padding, y is dx of
 * the convolution padded by (top, left). Otherwise dx is the full transposed convolution
 * (no padding) in a step-owned (n, k, h_full, w_full) buffer and one strided copy crops it
 * (positive pads) or extends it with zeros (negative pads, output_padding). The bias is
 * a (k, 1, 1) operand of one broadcasting add. */
#include "exec/exec_internal.h"

#include "clcnn_ids.h"

#include <stdio.h>

clcnn_status cc_prepare_convt(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                              int na) {
    (void)na;
    const cc_gnode *n = &g->nodes[absorbed[0]];
    const cc_op_attrs *a = &n->a;
    const size_t *x = p->vals[n->in[0]].shape;  /* (n, c, h, w) */
    const size_t *y = p->vals[n->out[0]].shape; /* (n, k, p, q) */
    s->dynamic = 1; /* parameters in param[] or read from in[] per run */
    s->n_in = n->n_in > 2 && n->in[2] >= 0 ? 3 : 2;
    for (int i = 0; i < s->n_in; i++)
        s->in[i] = n->in[i];
    s->out = n->out[0];
    for (int i = 1; i < s->n_in; i++) {
        const cc_gvalue *v = &g->vals[n->in[i]];
        if (v->kind != CC_VAL_INIT) continue;
        if (v->dtype != CLCNN_F32)
            return cc_step_unsupported(n, "the weight and bias must be float initializers");
        size_t shape[4], k = (size_t)v->dims[0], one[3] = {k, 1, 1};
        for (int d = 0; d < v->ndim; d++)
            shape[d] = (size_t)v->dims[d];
        CC_TRY(cc_step_upload(p->dev, i == 1 ? 4 : 3, i == 1 ? shape : one, v->data,
                              &s->param[i - 1]));
    }
    clcnn_conv2d_desc *d = &s->conv_desc;
    *d = clcnn_conv2d_desc_default();
    d->stride_h = (int)a->strides[0];
    d->stride_w = (int)a->strides[1];
    d->dilation_h = (int)a->dilations[0];
    d->dilation_w = (int)a->dilations[1];
    d->groups = (int)a->group;
    size_t full[4] = {x[0], y[1], 0, 0};
    for (int i = 0; i < 2; i++)
        full[2 + i] = (size_t)a->strides[i] * (x[2 + i] - 1) +
                      (size_t)(a->dilations[i] * (a->kernel[i] - 1)) + 1;
    s->convt_direct = a->pads[0] == a->pads[2] && a->pads[1] == a->pads[3] && a->pads[0] >= 0 &&
                      a->pads[1] >= 0 && y[2] + 2 * (size_t)a->pads[0] == full[2] &&
                      y[3] + 2 * (size_t)a->pads[1] == full[3];
    const char *how = "direct";
    if (s->convt_direct) {
        d->pad_h = (int)a->pads[0];
        d->pad_w = (int)a->pads[1];
    } else {
        how = "cropped";
        CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 4, full, &s->scratch));
        cc_step_window(&s->xcopy, y, full, a->pads[0], a->pads[1]);
    }
    snprintf(s->desc, sizeof s->desc, "ConvTranspose %s [%s]", n->name, how);
    return CLCNN_OK;
}

clcnn_status cc_run_convt(clcnn_plan *p, cc_step *s) {
    const clcnn_tensor *w = s->param[0] ? s->param[0] : cc_plan_tensor(p, s->in[1]);
    clcnn_tensor *y = (clcnn_tensor *)cc_plan_tensor(p, s->out);
    CC_TRY(clcnn_conv2d_backward_data(p->dev, &s->conv_desc, cc_plan_tensor(p, s->in[0]), w,
                                      s->convt_direct ? y : s->scratch));
    if (!s->convt_direct) CC_TRY(cc_copy_nd_run(p->dev, &s->xcopy, s->scratch, y));
    if (s->n_in < 3) return CLCNN_OK;
    if (s->param[1]) return cc_binary(p->dev, CLCNN_BIN_ID_ADD, y, s->param[1], y);
    const clcnn_tensor *b = cc_plan_tensor(p, s->in[2]);
    size_t one[3] = {clcnn_tensor_dim(b, 0), 1, 1};
    clcnn_tensor *bv = NULL;
    CC_TRY(clcnn_tensor_view(b, 3, one, &bv));
    clcnn_status st = cc_binary(p->dev, CLCNN_BIN_ID_ADD, y, bv, y);
    clcnn_tensor_free(bv);
    return st;
}
