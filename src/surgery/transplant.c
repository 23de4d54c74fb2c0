/* Transplanting params between layers (of one net or two), flat: the
 * notebook's `net_full_conv.params[conv][i].flat = net.params[fc][i].flat`. */
#include <string.h>

#include "core/net.h"

static ns_status find_layer(ns_ctx *ctx, ns_net *net, const char *name, const char *which,
                            ns_layer **out) {
  int li = ns_net_find_layer(net, name);
  if (li < 0) return ns_fail(ctx, NS_ERR_USAGE, "no layer named '%s' in the %s net", name, which);
  *out = &net->layers[li];
  return NS_OK;
}

static ns_status count_mismatch(ns_ctx *ctx, const ns_layer *dst, const ns_layer *src, int j) {
  char a[256], b[256];
  const ns_blob *s = src->params[j], *d = dst->params[j];
  return ns_fail(ctx, NS_ERR_NET,
                 "cannot copy '%s' param %d %s (%lld values) into '%s' param %d %s (%lld values): "
                 "the counts differ",
                 src->name, j, ns_shape_str(s->shape, s->num_axes, a, sizeof a),
                 (long long)s->count, dst->name, j,
                 ns_shape_str(d->shape, d->num_axes, b, sizeof b), (long long)d->count);
}

ns_status ns_net_copy_params(ns_ctx *ctx, ns_net *dst, const char *dst_layer, ns_net *src,
                             const char *src_layer) {
  ns_layer *d = NULL, *s = NULL;
  if (find_layer(ctx, src, src_layer, "source", &s) != NS_OK ||
      find_layer(ctx, dst, dst_layer, "destination", &d) != NS_OK)
    return ctx->status;
  if (s->n_params != d->n_params)
    return ns_fail(ctx, NS_ERR_NET,
                   "cannot copy '%s' (%d params) into '%s' (%d params): the param counts differ "
                   "(bias_term on one side only?)",
                   s->name, s->n_params, d->name, d->n_params);
  for (int j = 0; j < s->n_params; j++)
    if (s->params[j]->count != d->params[j]->count) return count_mismatch(ctx, d, s, j);
  ns_net_params_written(dst);
  for (int j = 0; j < s->n_params; j++)
    if (s->params[j]->count && s->params[j]->data != d->params[j]->data)
      memmove(d->params[j]->data, s->params[j]->data, (size_t)s->params[j]->count * sizeof(float));
  return NS_OK;
}

ns_status ns_net_copy_params_by_name(ns_ctx *ctx, ns_net *dst, ns_net *src, int *n_copied) {
  int n = 0;
  if (n_copied) *n_copied = 0;
  for (int i = 0; i < dst->n_layers; i++) {
    const ns_layer *d = &dst->layers[i];
    int si = ns_net_find_layer(src, d->name);
    if (d->n_params == 0 || si < 0 || src->layers[si].n_params == 0) continue;
    if (ns_net_copy_params(ctx, dst, d->name, src, d->name) != NS_OK) return ctx->status;
    n++;
  }
  if (n_copied) *n_copied = n;
  return NS_OK;
}
