/* Params by layer name: lookup, flat get/set, element offsets. */
#include <stdio.h>
#include <string.h>

#include "core/net.h"

/* "conv1 has 2 params: (96, 3, 11, 11) (96,)" into buf, for errors. */
static const char *describe_params(const ns_layer *l, char *buf, size_t size) {
  size_t used = 0;
  int n = snprintf(buf, size, "%d param%s", l->n_params, l->n_params == 1 ? "" : "s");
  used = n > 0 && (size_t)n < size ? (size_t)n : size - 1;
  for (int j = 0; j < l->n_params && used + 2 < size; j++) {
    char shape[256];
    ns_shape_str(l->params[j]->shape, l->params[j]->num_axes, shape, sizeof shape);
    n = snprintf(buf + used, size - used, "%s[%d] %s", j ? ", " : ": ", j, shape);
    used += n > 0 && (size_t)n < size - used ? (size_t)n : size - used - 1;
  }
  return buf;
}

/* The param blob, without handing out a view (see ns_net). */
static ns_status find_param(ns_ctx *ctx, const ns_net *net, const char *layer, int index,
                            ns_blob **out) {
  int li = ns_net_find_layer(net, layer);
  if (li < 0) return ns_fail(ctx, NS_ERR_USAGE, "no layer named '%s' in the net", layer);
  const ns_layer *l = &net->layers[li];
  if (index < 0 || index >= l->n_params) {
    char have[1024];
    return ns_fail(ctx, NS_ERR_USAGE, "layer '%s' has no param %d (it has %s)", layer, index,
                   describe_params(l, have, sizeof have));
  }
  *out = l->params[index];
  return NS_OK;
}

ns_status ns_net_param_by_name(ns_ctx *ctx, ns_net *net, const char *layer, int index,
                               ns_tensor *out) {
  memset(out, 0, sizeof *out);
  ns_blob *b;
  if (find_param(ctx, net, layer, index, &b) != NS_OK) return ctx->status;
  net->params_exposed = 1; /* writable: see ns_net */
  *out = (ns_tensor){b->name, b->num_axes, b->shape, b->count, b->data};
  return NS_OK;
}

static ns_status check_count(ns_ctx *ctx, const ns_blob *b, const char *layer, int index,
                             int64_t count) {
  if (count == b->count) return NS_OK;
  char shape[256];
  return ns_fail(ctx, NS_ERR_USAGE, "layer '%s' param %d is %s (%lld values), not %lld values",
                 layer, index, ns_shape_str(b->shape, b->num_axes, shape, sizeof shape),
                 (long long)b->count, (long long)count);
}

ns_status ns_net_param_get(ns_ctx *ctx, ns_net *net, const char *layer, int index, float *out,
                           int64_t count) {
  ns_blob *b;
  if (find_param(ctx, net, layer, index, &b) != NS_OK ||
      check_count(ctx, b, layer, index, count) != NS_OK)
    return ctx->status;
  if (count) memcpy(out, b->data, (size_t)count * sizeof *out);
  return NS_OK;
}

ns_status ns_net_param_set(ns_ctx *ctx, ns_net *net, const char *layer, int index,
                           const float *data, int64_t count) {
  ns_blob *b;
  if (find_param(ctx, net, layer, index, &b) != NS_OK ||
      check_count(ctx, b, layer, index, count) != NS_OK)
    return ctx->status;
  ns_net_params_written(net);
  if (count) memmove(b->data, data, (size_t)count * sizeof *data);
  return NS_OK;
}

ns_status ns_tensor_offset(ns_ctx *ctx, const ns_tensor *t, int n, const int64_t *index,
                           int64_t *offset) {
  char shape[256];
  ns_shape_str(t->shape, t->num_axes, shape, sizeof shape);
  if (n == 1 && t->num_axes != 1) { /* a flat index */
    if (index[0] < 0 || index[0] >= t->count)
      return ns_fail(ctx, NS_ERR_USAGE, "flat index %lld is outside %s (%lld values)",
                     (long long)index[0], shape, (long long)t->count);
    *offset = index[0];
    return NS_OK;
  }
  if (n != t->num_axes)
    return ns_fail(ctx, NS_ERR_USAGE,
                   "%d indices for a param of shape %s (give %d, or one flat index)", n, shape,
                   t->num_axes);
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    if (index[i] < 0 || index[i] >= t->shape[i])
      return ns_fail(ctx, NS_ERR_USAGE, "index %lld on axis %d is outside %s", (long long)index[i],
                     i, shape);
    off = off * t->shape[i] + index[i];
  }
  *offset = off;
  return NS_OK;
}
