/* LSTMUnit, as BVLC's LSTMUnitLayer (src/caffe/layers/lstm_unit_layer.cpp):
 * one step of an LSTM.  Bottoms: c_prev (1, N, H), the gate inputs X
 * (1, N, 4H) in the order i, f, o, g, and cont (1, N).  Tops: c and h,
 * both (1, N, H):
 *   i = sigmoid(X_i), f = cont * sigmoid(X_f) (0 where cont == 0),
 *   o = sigmoid(X_o), g = tanh(X_g), c = f c_prev + i g, h = o tanh(c).
 * Backward to c_prev and X (Caffe's formulas, ns_lstm_unit_backward);
 * none to cont (an error if asked, as Caffe's CHECK).  Not in place. */
#include <string.h>

#include "layers/recurrent.h"

typedef struct lstm_unit_state {
  int64_t n, h;
  float *acts; /* the activated gates of the last forward (N, 4H) */
  int64_t acts_cap;
} lstm_unit_state;

static ns_status unit_setup(ns_ctx *ctx, ns_layer *l) {
  lstm_unit_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  return NS_OK;
}

static ns_status unit_check(ns_ctx *ctx, const ns_layer *l) {
  const ns_blob *c = l->bottom[0], *x = l->bottom[1], *cont = l->bottom[2];
  char a[96], b[96], d[96];
  if (c->num_axes != 3 || x->num_axes != 3 || cont->num_axes != 2 || c->shape[0] != 1 ||
      x->shape[0] != 1 || cont->shape[0] != 1 || x->shape[1] != c->shape[1] ||
      cont->shape[1] != c->shape[1] || x->shape[2] != 4 * c->shape[2])
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottoms must be c_prev (1, N, H), gate inputs (1, N, 4H) and cont "
                         "(1, N); got %s, %s and %s",
                         ns_shape_str(c->shape, c->num_axes, a, sizeof a),
                         ns_shape_str(x->shape, x->num_axes, b, sizeof b),
                         ns_shape_str(cont->shape, cont->num_axes, d, sizeof d));
  for (int j = 0; j < 2; j++)
    for (int i = 0; i < 3; i++)
      if (l->top[j] == l->bottom[i])
        return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot run in place");
  return NS_OK;
}

static ns_status unit_reshape(ns_ctx *ctx, ns_layer *l) {
  lstm_unit_state *s = l->priv;
  if (unit_check(ctx, l) != NS_OK) return ctx->status;
  s->n = l->bottom[0]->shape[1];
  s->h = l->bottom[0]->shape[2];
  if (ns_blob_reshape_like(ctx, l->top[0], l->bottom[0]) != NS_OK ||
      ns_blob_reshape_like(ctx, l->top[1], l->bottom[0]) != NS_OK)
    goto fail;
  if (l->bottom[1]->count > s->acts_cap) {
    ns_floats_free(ctx, s->acts);
    s->acts = ns_floats_alloc(ctx, l->bottom[1]->count);
    s->acts_cap = s->acts ? l->bottom[1]->count : 0;
    if (!s->acts) goto fail;
  }
  return NS_OK;
fail:
  ns_error_prefix(ctx, "layer '%s' (LSTMUnit): ", l->name);
  return ctx->status;
}

static ns_status unit_forward(ns_ctx *ctx, ns_layer *l) {
  (void)ctx;
  lstm_unit_state *s = l->priv;
  ns_lstm_unit_forward(s->n, s->h, l->bottom[0]->data, l->bottom[1]->data, l->bottom[2]->data,
                       s->acts, l->top[0]->data, l->top[1]->data);
  return NS_OK;
}

static ns_status unit_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  lstm_unit_state *s = l->priv;
  if (down[2])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to the sequence markers (cont)");
  if (!down[0] && !down[1]) return NS_OK;
  const float *dc = l->top[0]->diff, *dh = l->top[1]->diff;
  float *dx = down[1] ? l->bottom[1]->diff : ns_layer_scratch(ctx, l, l->bottom[1]->count);
  if (!dx) return ctx->status;
  ns_lstm_unit_backward(s->n, s->h, l->bottom[0]->data, s->acts, l->top[0]->data, dc, dh, dx,
                        down[0] ? l->bottom[0]->diff : NULL);
  return NS_OK;
}

static void unit_destroy(ns_ctx *ctx, ns_layer *l) {
  lstm_unit_state *s = l->priv;
  if (!s) return;
  ns_floats_free(ctx, s->acts);
}

const ns_layer_ops ns_lstm_unit_ops = {
    .type = "LSTMUnit",
    .min_bottoms = 3,
    .max_bottoms = 3,
    .min_tops = 2,
    .max_tops = 2,
    .setup = unit_setup,
    .reshape = unit_reshape,
    .forward = unit_forward,
    .backward = unit_backward,
    .destroy = unit_destroy,
};
