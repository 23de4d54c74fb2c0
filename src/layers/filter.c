/* Filter, as Caffe's FilterLayer: the last bottom is a selector (N, 1,
 * ...: every axis after the first of size 1); each other bottom i (N, ...)
 * goes to top i keeping only the items n whose selector is nonzero, in
 * order.  So the tops' first axis depends on the selector's values:
 * reshape gives them the full N (as Caffe's first Reshape), and forward
 * gives them the selected count (as Caffe's Reshape in every Forward;
 * the net then reshapes the layers after it: ops.reshapes_in_forward).
 * Backward copies each top item's gradient back to its item and zeroes
 * the items not selected; the selector takes no gradient. */
#include <string.h>

#include "core/layer.h"

typedef struct filter_state {
  int64_t *picked; /* indices of the selected items, from the last forward */
  int64_t n_picked, cap;
} filter_state;

static ns_status filter_setup(ns_ctx *ctx, ns_layer *l) {
  if (l->n_top != l->n_bottom - 1)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "needs one top per bottom but the selector: %d bottoms, %d tops",
                         l->n_bottom, l->n_top);
  l->priv = ns_calloc(ctx, 1, sizeof(filter_state));
  return l->priv ? NS_OK : ctx->status;
}

static void filter_destroy(ns_ctx *ctx, ns_layer *l) {
  filter_state *s = l->priv;
  if (s) ns_free(ctx, s->picked);
}

static int64_t first_dim(const ns_blob *b) { return b->num_axes ? b->shape[0] : 1; }

/* Gives every top its bottom's shape with `num` items. */
static ns_status shape_tops(ns_ctx *ctx, ns_layer *l, int64_t num) {
  for (int t = 0; t < l->n_top; t++) {
    const ns_blob *b = l->bottom[t];
    int64_t shape[NS_MAX_AXES];
    memcpy(shape, b->shape, sizeof shape);
    if (b->num_axes) shape[0] = num;
    if (ns_blob_reshape(ctx, l->top[t], b->num_axes, shape) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s' (Filter): ", l->name);
      return ctx->status;
    }
  }
  return NS_OK;
}

static ns_status filter_reshape(ns_ctx *ctx, ns_layer *l) {
  filter_state *s = l->priv;
  const ns_blob *sel = l->bottom[l->n_bottom - 1];
  for (int i = 1; i < sel->num_axes; i++)
    if (sel->shape[i] != 1)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "selector dimensions must be singletons (1), except the first");
  int64_t n = first_dim(sel);
  for (int t = 0; t < l->n_top; t++) {
    if (l->top[t] == l->bottom[t])
      return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot run in place");
    if (first_dim(l->bottom[t]) != n || !l->bottom[t]->num_axes)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "bottom %d must have the selector's first dimension %lld", t,
                           (long long)n);
  }
  if (n > s->cap) {
    int64_t *p = ns_calloc(ctx, (size_t)n, sizeof *p);
    if (!p) return ctx->status;
    ns_free(ctx, s->picked);
    s->picked = p;
    s->cap = n;
  }
  s->n_picked = 0;
  return shape_tops(ctx, l, n);
}

static ns_status filter_forward(ns_ctx *ctx, ns_layer *l) {
  filter_state *s = l->priv;
  const ns_blob *sel = l->bottom[l->n_bottom - 1];
  s->n_picked = 0;
  for (int64_t n = 0; n < sel->count; n++)
    if (sel->data[n] != 0) s->picked[s->n_picked++] = n; /* Caffe: if (*selector) */
  if (shape_tops(ctx, l, s->n_picked) != NS_OK) return ctx->status;
  for (int t = 0; t < l->n_top; t++) {
    const ns_blob *b = l->bottom[t];
    int64_t dim = ns_blob_count_range(b, 1, b->num_axes);
    for (int64_t k = 0; k < s->n_picked && dim; k++)
      memcpy(l->top[t]->data + k * dim, b->data + s->picked[k] * dim, (size_t)dim * sizeof(float));
  }
  return NS_OK;
}

static ns_status filter_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const filter_state *s = l->priv;
  if (down[l->n_bottom - 1])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to the selector input");
  for (int t = 0; t < l->n_top; t++) {
    if (!down[t]) continue;
    ns_blob *b = l->bottom[t];
    int64_t dim = ns_blob_count_range(b, 1, b->num_axes);
    if (b->count) memset(b->diff, 0, (size_t)b->count * sizeof(float));
    for (int64_t k = 0; k < s->n_picked && dim; k++)
      memcpy(b->diff + s->picked[k] * dim, l->top[t]->diff + k * dim, (size_t)dim * sizeof(float));
  }
  return NS_OK;
}

const ns_layer_ops ns_filter_ops = {
    .type = "Filter",
    .min_bottoms = 2,
    .max_bottoms = -1,
    .min_tops = 1,
    .max_tops = -1,
    .setup = filter_setup,
    .reshape = filter_reshape,
    .forward = filter_forward,
    .backward = filter_backward,
    .destroy = filter_destroy,
    .reshapes_in_forward = 1,
};
