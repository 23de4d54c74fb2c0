/* SPP (spatial pyramid pooling), as Caffe's SPPLayer: for each level
 * i < spp_param.pyramid_height, a Pooling (spp_param.pool: MAX, AVE or
 * STOCHASTIC) over the (N, C, H, W) bottom into 2^i x 2^i bins:
 *   kernel = ceil(H / 2^i), stride = kernel,
 *   pad = (kernel 2^i - H + 1) / 2         (and the same along W);
 * each level flattened to (N, C oh ow) and concatenated along axis 1.
 * With pyramid_height 1 the top is the single pooling's 4-D output, as
 * Caffe's (no flatten).  The levels run our Pooling layer itself, made
 * again whenever H or W change (as Caffe's Reshape does), so its output
 * size rule and its checks (pad below the kernel) apply: Caffe refuses
 * the same small inputs.  Backward sums the levels' gradients. */
#include <math.h>
#include <string.h>

#include "core/layer.h"

#define SPP_MAX_LEVELS 16 /* 2^15 bins a side: far beyond any image */

typedef struct spp_level {
  Caffe__LayerParameter lp;
  Caffe__PoolingParameter pp;
  ns_layer pool; /* ops NULL until set up */
  ns_blob *in[1], *out[1]; /* the pooling's bottom and top lists */
  ns_blob *own;            /* its top when pyramid_height > 1 (owned) */
} spp_level;

typedef struct spp_state {
  int levels;
  int method; /* spp_param.pool: 0 MAX, 1 AVE, 2 STOCHASTIC, as Pooling's */
  int64_t h, w; /* the levels' geometry was made for this size (0: none) */
  spp_level level[SPP_MAX_LEVELS];
  float *acc; /* backward: the levels' gradients summed */
  int64_t acc_cap;
} spp_state;

static void drop_pool(ns_ctx *ctx, spp_level *lv) {
  if (!lv->pool.ops) return;
  if (lv->pool.ops->destroy) lv->pool.ops->destroy(ctx, &lv->pool);
  ns_free(ctx, lv->pool.priv);
  lv->pool.priv = NULL;
  lv->pool.ops = NULL;
}

static void spp_destroy(ns_ctx *ctx, ns_layer *l) {
  spp_state *s = l->priv;
  if (!s) return;
  for (int i = 0; i < s->levels; i++) {
    drop_pool(ctx, &s->level[i]);
    if (s->level[i].own) ns_blob_destroy(ctx, s->level[i].own);
  }
  ns_floats_free(ctx, s->acc);
}

static ns_status spp_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__SPPParameter *p = l->param->spp_param;
  if (!p || !p->has_pyramid_height || p->pyramid_height < 1 ||
      p->pyramid_height > SPP_MAX_LEVELS)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "spp_param.pyramid_height must be in [1, %d]",
                         SPP_MAX_LEVELS);
  spp_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->method = p->has_pool ? (int)p->pool : 0;
  if (s->method < 0 || s->method > 2)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "spp_param.pool %d is unknown", s->method);
  s->levels = (int)p->pyramid_height;
  for (int i = 0; i < s->levels && s->levels > 1; i++)
    if (!(s->level[i].own = ns_blob_create(ctx, l->name))) return ctx->status;
  return NS_OK;
}

/* Caffe's GetPoolingParam for level i and a bottom of h x w. */
static void level_param(spp_state *s, int i, int64_t h, int64_t w) {
  Caffe__PoolingParameter *pp = &s->level[i].pp;
  Caffe__PoolingParameter init = CAFFE__POOLING_PARAMETER__INIT;
  *pp = init;
  int64_t bins = (int64_t)1 << i;
  int64_t kh = (h + bins - 1) / bins, kw = (w + bins - 1) / bins; /* ceil */
  pp->has_kernel_h = pp->has_kernel_w = pp->has_stride_h = pp->has_stride_w = 1;
  pp->has_pad_h = pp->has_pad_w = pp->has_pool = 1;
  pp->kernel_h = pp->stride_h = (uint32_t)kh;
  pp->kernel_w = pp->stride_w = (uint32_t)kw;
  pp->pad_h = (uint32_t)((kh * bins - h + 1) / 2);
  pp->pad_w = (uint32_t)((kw * bins - w + 1) / 2);
  pp->pool = (Caffe__PoolingParameter__PoolMethod)s->method;
}

/* (Re)makes level i's Pooling for the bottom's current size. */
static ns_status make_level(ns_ctx *ctx, ns_layer *l, int i) {
  spp_state *s = l->priv;
  spp_level *lv = &s->level[i];
  drop_pool(ctx, lv);
  level_param(s, i, l->bottom[0]->shape[2], l->bottom[0]->shape[3]);
  Caffe__LayerParameter init = CAFFE__LAYER_PARAMETER__INIT;
  lv->lp = init;
  lv->lp.name = (char *)l->name;
  lv->lp.type = (char *)"Pooling";
  lv->lp.pooling_param = &lv->pp;
  lv->in[0] = l->bottom[0];
  /* pyramid_height 1: the pooling writes the SPP's own top. */
  lv->out[0] = s->levels == 1 ? l->top[0] : lv->own;
  ns_layer *pool = &lv->pool;
  memset(pool, 0, sizeof *pool);
  pool->ops = ns_layer_find("Pooling");
  if (!pool->ops) return ns_layer_fail(ctx, l, NS_ERR_NET, "no Pooling layer to run the levels");
  pool->param = &lv->lp;
  pool->name = l->name;
  pool->net = l->net;
  pool->rng = l->rng;
  pool->n_bottom = pool->n_top = 1;
  pool->bottom = lv->in;
  pool->top = lv->out;
  if (pool->ops->setup(ctx, pool) != NS_OK) {
    ns_error_prefix(ctx, "spp level %d: ", i);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status spp_reshape(ns_ctx *ctx, ns_layer *l) {
  spp_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes != 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "input must have 4 axes (num, channels, height, width), not %d",
                         b->num_axes);
  if (l->top[0] == b) return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot run in place");
  if (b->shape[2] < 1 || b->shape[3] < 1 || b->shape[2] > (1 << 24) || b->shape[3] > (1 << 24))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "input height and width must be in [1, 2^24]");
  if (b->shape[2] != s->h || b->shape[3] != s->w) {
    s->h = s->w = 0;
    for (int i = 0; i < s->levels; i++)
      if (make_level(ctx, l, i) != NS_OK) return ctx->status;
    s->h = b->shape[2];
    s->w = b->shape[3];
  }
  int64_t width = 0;
  for (int i = 0; i < s->levels; i++) {
    ns_layer *pool = &s->level[i].pool;
    pool->top[0] = s->levels == 1 ? l->top[0] : s->level[i].own;
    if (pool->ops->reshape(ctx, pool) != NS_OK) {
      ns_error_prefix(ctx, "spp level %d: ", i);
      return ctx->status;
    }
    width += ns_blob_count_range(pool->top[0], 1, 4);
  }
  if (s->levels == 1) return NS_OK;
  const int64_t shape[2] = {b->shape[0], width};
  if (ns_blob_reshape(ctx, l->top[0], 2, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (SPP): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

static ns_status spp_forward(ns_ctx *ctx, ns_layer *l) {
  spp_state *s = l->priv;
  int64_t num = l->bottom[0]->shape[0], width = ns_blob_count_range(l->top[0], 1, l->top[0]->num_axes);
  int64_t offset = 0;
  for (int i = 0; i < s->levels; i++) {
    ns_layer *pool = &s->level[i].pool;
    if (pool->ops->forward(ctx, pool) != NS_OK) return ctx->status;
    if (s->levels == 1) break;
    const ns_blob *out = pool->top[0];
    int64_t dim = ns_blob_count_range(out, 1, 4);
    for (int64_t n = 0; n < num && dim; n++) /* flatten, then concat on axis 1 */
      memcpy(l->top[0]->data + n * width + offset, out->data + n * dim, (size_t)dim * sizeof(float));
    offset += dim;
  }
  return NS_OK;
}

static ns_status spp_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  spp_state *s = l->priv;
  if (!down[0]) return NS_OK;
  ns_blob *b = l->bottom[0];
  if (s->levels == 1) return s->level[0].pool.ops->backward(ctx, &s->level[0].pool, down);
  if (b->count > s->acc_cap) {
    float *p = ns_floats_alloc(ctx, b->count);
    if (!p) return ctx->status;
    ns_floats_free(ctx, s->acc);
    s->acc = p;
    s->acc_cap = b->count;
  }
  memset(s->acc, 0, (size_t)b->count * sizeof(float));
  int64_t num = b->shape[0], width = ns_blob_count_range(l->top[0], 1, 2), offset = 0;
  for (int i = 0; i < s->levels; i++) {
    ns_layer *pool = &s->level[i].pool;
    ns_blob *out = pool->top[0];
    int64_t dim = ns_blob_count_range(out, 1, 4);
    if (ns_blob_ensure_diff(ctx, out) != NS_OK) return ctx->status;
    for (int64_t n = 0; n < num && dim; n++)
      memcpy(out->diff + n * dim, l->top[0]->diff + n * width + offset, (size_t)dim * sizeof(float));
    offset += dim;
    if (pool->ops->backward(ctx, pool, down) != NS_OK) return ctx->status;
    for (int64_t k = 0; k < b->count; k++) s->acc[k] += b->diff[k];
  }
  if (b->count) memcpy(b->diff, s->acc, (size_t)b->count * sizeof(float));
  return NS_OK;
}

const ns_layer_ops ns_spp_ops = {
    .type = "SPP",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = spp_setup,
    .reshape = spp_reshape,
    .forward = spp_forward,
    .backward = spp_backward,
    .destroy = spp_destroy,
};
