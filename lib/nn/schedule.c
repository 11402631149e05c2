/* Learning-rate schedules as closed forms of the step number (computed in double):
 *   constant: lr
 *   step:     lr * gamma^floor(step / step_size)          (step_size <= 0: constant)
 *   cosine:   min_lr + (lr - min_lr) * (1 + cos(pi * step / total_steps)) / 2,
 *             min_lr from total_steps on                   (total_steps <= 0: lr)
 * Negative steps count as step 0. An unknown kind returns lr. */
#include "nn_internal.h"

#include <math.h>

float clcnn_schedule_lr(const clcnn_schedule *s, int64_t step) {
    if (!s) return 0.0f;
    if (step < 0) step = 0;
    switch (s->kind) {
    case CLCNN_SCHEDULE_STEP:
        if (s->step_size <= 0) return s->lr;
        return (float)((double)s->lr * pow((double)s->gamma, (double)(step / s->step_size)));
    case CLCNN_SCHEDULE_COSINE:
        if (s->total_steps <= 0) return s->lr;
        if (step >= s->total_steps) return s->min_lr;
        return (float)((double)s->min_lr +
                       ((double)s->lr - (double)s->min_lr) *
                           (1.0 + cos(M_PI * (double)step / (double)s->total_steps)) / 2.0);
    case CLCNN_SCHEDULE_CONSTANT:
    default:
        return s->lr;
    }
}
