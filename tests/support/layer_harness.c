#include "layer_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lh_harness *lh_create(const char *type) {
  const ns_layer_ops *ops = ns_layer_find(type);
  if (!ops) return NULL;
  lh_harness *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->ctx = ns_ctx_create();
  if (!h->ctx) {
    free(h);
    return NULL;
  }
  Caffe__LayerParameter init = CAFFE__LAYER_PARAMETER__INIT;
  h->param = init;
  h->param.name = (char *)"t";
  h->param.type = (char *)type;
  h->net.ctx = h->ctx;
  h->net.phase = NS_PHASE_TEST; /* a zeroed net would be TRAIN */
  ns_rng_seed(&h->net.rng, 1);
  h->layer.ops = ops;
  h->layer.param = &h->param;
  h->layer.name = "t";
  h->layer.net = &h->net;
  h->layer.rng = &h->net.rng;
  h->layer.bottom = h->bottom;
  h->layer.top = h->top;
  return h;
}

void lh_destroy(lh_harness *h) {
  if (!h) return;
  ns_layer *l = &h->layer;
  if (l->ops->destroy && l->priv) l->ops->destroy(h->ctx, l);
  ns_free(h->ctx, l->priv);
  for (int i = 0; i < l->n_params; i++) ns_blob_destroy(h->ctx, l->params[i]);
  ns_free(h->ctx, l->params);
  for (int i = 0; i < h->n_owned; i++) ns_blob_destroy(h->ctx, h->owned[i]);
  ns_floats_free(h->ctx, h->net.scratch);
  ns_ctx_destroy(h->ctx);
  free(h);
}

static ns_blob *new_blob(lh_harness *h, int num_axes, const int64_t *shape, const float *data) {
  if (h->n_owned >= 2 * LH_MAX_IO) return NULL;
  char name[16];
  snprintf(name, sizeof name, "b%d", h->n_owned);
  ns_blob *b = ns_blob_create(h->ctx, name);
  if (!b) return NULL;
  if (ns_blob_reshape(h->ctx, b, num_axes, shape) != NS_OK) {
    ns_blob_destroy(h->ctx, b);
    return NULL;
  }
  if (data && b->count) memcpy(b->data, data, (size_t)b->count * sizeof(float));
  h->owned[h->n_owned++] = b;
  return b;
}

ns_blob *lh_add_bottom(lh_harness *h, int num_axes, const int64_t *shape, const float *data) {
  if (h->layer.n_bottom >= LH_MAX_IO) return NULL;
  ns_blob *b = new_blob(h, num_axes, shape, data);
  if (b) h->bottom[h->layer.n_bottom++] = b;
  return b;
}

ns_blob *lh_add_top(lh_harness *h) {
  if (h->layer.n_top >= LH_MAX_IO) return NULL;
  ns_blob *b = new_blob(h, 0, NULL, NULL);
  if (b) h->top[h->layer.n_top++] = b;
  return b;
}

void lh_add_top_in_place(lh_harness *h, int index) {
  if (h->layer.n_top < LH_MAX_IO && index < h->layer.n_bottom)
    h->top[h->layer.n_top++] = h->bottom[index];
}

static int count_ok(int n, int min, int max) { return n >= min && (max < 0 || n <= max); }

ns_status lh_setup(lh_harness *h) {
  ns_layer *l = &h->layer;
  const ns_layer_ops *o = l->ops;
  if (!count_ok(l->n_bottom, o->min_bottoms, o->max_bottoms) ||
      !count_ok(l->n_top, o->min_tops, o->max_tops))
    return ns_fail(h->ctx, NS_ERR_NET, "harness: %d bottoms / %d tops do not fit %s", l->n_bottom,
                   l->n_top, o->type);
  return o->setup(h->ctx, l);
}

ns_status lh_run(lh_harness *h) {
  ns_status st = lh_setup(h);
  return st == NS_OK ? lh_rerun(h) : st;
}

ns_status lh_rerun(lh_harness *h) {
  ns_status st = h->layer.ops->reshape(h->ctx, &h->layer);
  return st == NS_OK ? h->layer.ops->forward(h->ctx, &h->layer) : st;
}
