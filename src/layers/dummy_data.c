/* DummyData, as Caffe's DummyDataLayer: no bottom; each top i has the
 * shape dummy_data_param.shape[i] (one shape: every top), or the legacy
 * (num, channels, height, width), each list given once or once per top
 * and never beside shape.  data_filler: none (constant 0), one for every
 * top, or one per top.  A constant filler fills its top once, at setup;
 * any other refills it on every forward, as Caffe (which draws from its
 * global generator; here the net's, so a seed repeats the data). */
#include <string.h>

#include "core/filler.h"
#include "core/layer.h"

typedef struct dummy_state {
  int n_fillers; /* 0, 1 or n_top */
  int *refill;   /* per top: 1 for a non-constant filler */
} dummy_state;

static const Caffe__FillerParameter *filler_of(const ns_layer *l, int i) {
  const Caffe__DummyDataParameter *p = l->param->dummy_data_param;
  const dummy_state *s = l->priv;
  if (s->n_fillers == 0) return NULL; /* constant 0 */
  return p->data_filler[s->n_fillers == 1 ? 0 : i];
}

static int is_constant(const Caffe__FillerParameter *f) {
  return !f || !f->type || strcmp(f->type, "constant") == 0;
}

static ns_status check_count(ns_ctx *ctx, const ns_layer *l, const char *field, size_t n) {
  if (n == 1 || (int)n == l->n_top) return NS_OK;
  return ns_layer_fail(ctx, l, NS_ERR_NET,
                       "dummy_data_param.%s is given %zu times; give it once or once per top (%d)",
                       field, n, l->n_top);
}

static ns_status check_param(ns_ctx *ctx, const ns_layer *l, const Caffe__DummyDataParameter *p) {
  if (!p)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "dummy_data_param is missing (it gives the shapes)");
  if (p->n_data_filler > 1 && (int)p->n_data_filler != l->n_top)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "dummy_data_param.data_filler is given %zu times; give it 0, 1 or %d "
                         "(once per top) times",
                         p->n_data_filler, l->n_top);
  int legacy = p->n_num || p->n_channels || p->n_height || p->n_width;
  if (legacy && p->n_shape)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "dummy_data_param: both shape and the legacy num/channels/height/width "
                         "are given");
  if (!legacy) return check_count(ctx, l, "shape", p->n_shape);
  if (check_count(ctx, l, "num", p->n_num) != NS_OK ||
      check_count(ctx, l, "channels", p->n_channels) != NS_OK ||
      check_count(ctx, l, "height", p->n_height) != NS_OK)
    return ctx->status;
  return check_count(ctx, l, "width", p->n_width);
}

static uint32_t pick(const uint32_t *v, size_t n, int i) { return v[n == 1 ? 0 : i]; }

static ns_status dummy_reshape(ns_ctx *ctx, ns_layer *l) {
  const Caffe__DummyDataParameter *p = l->param->dummy_data_param;
  for (int i = 0; i < l->n_top; i++) {
    int64_t shape[NS_MAX_AXES];
    int n;
    if (p->n_shape) {
      const Caffe__BlobShape *bs = p->shape[p->n_shape == 1 ? 0 : i];
      if (bs->n_dim > NS_MAX_AXES)
        return ns_layer_fail(ctx, l, NS_ERR_NET, "dummy_data_param.shape has %zu dims; at most %d",
                             bs->n_dim, NS_MAX_AXES);
      n = (int)bs->n_dim;
      for (int k = 0; k < n; k++) shape[k] = bs->dim[k]; /* negative: refused below */
    } else {
      n = 4;
      shape[0] = pick(p->num, p->n_num, i);
      shape[1] = pick(p->channels, p->n_channels, i);
      shape[2] = pick(p->height, p->n_height, i);
      shape[3] = pick(p->width, p->n_width, i);
    }
    if (ns_blob_reshape(ctx, l->top[i], n, shape) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s' (DummyData): top %d: ", l->name, i);
      return ctx->status;
    }
  }
  return NS_OK;
}

/* constant_tops 1: fill the constant-filler tops (setup); 0: the others (forward). */
static ns_status fill_tops(ns_ctx *ctx, ns_layer *l, int constant_tops) {
  const dummy_state *s = l->priv;
  for (int i = 0; i < l->n_top; i++) {
    if (s->refill[i] == constant_tops) continue;
    if (ns_filler_fill(ctx, l->top[i], filler_of(l, i), l->rng) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s' (DummyData): data_filler: ", l->name);
      return ctx->status;
    }
  }
  return NS_OK;
}

static ns_status dummy_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__DummyDataParameter *p = l->param->dummy_data_param;
  if (check_param(ctx, l, p) != NS_OK) return ctx->status;
  dummy_state *s = l->priv = ns_calloc(ctx, 1, sizeof *s);
  if (!s || !(s->refill = ns_calloc(ctx, (size_t)l->n_top, sizeof *s->refill))) return ctx->status;
  s->n_fillers = (int)p->n_data_filler;
  for (int i = 0; i < l->n_top; i++) s->refill[i] = !is_constant(filler_of(l, i));
  if (dummy_reshape(ctx, l) != NS_OK) return ctx->status;
  return fill_tops(ctx, l, 1); /* the constant tops, once */
}

static ns_status dummy_forward(ns_ctx *ctx, ns_layer *l) { return fill_tops(ctx, l, 0); }

static void dummy_destroy(ns_ctx *ctx, ns_layer *l) {
  dummy_state *s = l->priv;
  if (s) ns_free(ctx, s->refill);
}

const ns_layer_ops ns_dummy_data_ops = {
    .type = "DummyData",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = -1,
    .setup = dummy_setup,
    .reshape = dummy_reshape,
    .forward = dummy_forward,
    .destroy = dummy_destroy,
};
