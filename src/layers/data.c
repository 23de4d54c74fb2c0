/* Data layers that need no LMDB: Caffe's ImageData (a list file of
 * "path label" lines) and netsurg's own NpyData / IdxData (whole arrays in
 * memory, see ArrayDataParameter in caffe.proto).  Each forward writes the
 * next batch: top[0] the samples through Caffe's DataTransformer
 * (transform_param: crop, mirror, mean, scale), top[1] (optional) the
 * labels.  Paths are relative to the working directory, as in Caffe. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "core/net.h"
#include "io/datum.h"
#include "layers/data_xform.h"

/* ---- Caffe's DataTransformer ---------------------------------------- */

ns_status ns_xform_setup(ns_ctx *ctx, ns_layer *l, ns_xform *x) {
  const Caffe__TransformationParameter *tp = l->param->transform_param;
  memset(x, 0, sizeof *x);
  x->scale = tp && tp->has_scale ? tp->scale : 1.0f;
  x->crop = tp && tp->has_crop_size ? (int)tp->crop_size : 0;
  x->mirror = tp && tp->has_mirror && tp->mirror;
  x->train = ns_layer_phase_train(l);
  if (!tp) return NS_OK;
  if (tp->mean_file && tp->n_mean_value)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot specify mean_file and mean_value at once");
  if (tp->n_mean_value > MAX_MEAN_VALUES)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED, "%zu mean values", tp->n_mean_value);
  x->n_mean = (int)tp->n_mean_value;
  for (int i = 0; i < x->n_mean; i++) x->mean_values[i] = tp->mean_value[i];
  if (tp->mean_file && tp->mean_file[0]) {
    if (ns_mean_load(ctx, tp->mean_file, &x->mean) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s': ", l->name);
      return ctx->status;
    }
  }
  return NS_OK;
}

/* Checks the transform fits samples of c x h x w; out_h/out_w after crop. */
ns_status ns_xform_check(ns_ctx *ctx, ns_layer *l, const ns_xform *x, int64_t c, int64_t h,
                             int64_t w, int64_t *out_h, int64_t *out_w) {
  if (x->crop && (x->crop > h || x->crop > w))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "crop_size %d exceeds the %lldx%lld samples", x->crop,
                         (long long)h, (long long)w);
  if (x->n_mean > 1 && x->n_mean != c)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "%d mean values for %lld channels (give 1 or one per channel)", x->n_mean,
                         (long long)c);
  if (x->mean.count) {
    int ok = x->mean.num_axes == 3 && x->mean.shape[0] == c && x->mean.shape[1] == h &&
             x->mean.shape[2] == w;
    if (!ok)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "the mean_file must be %lld x %lld x %lld like the samples",
                           (long long)c, (long long)h, (long long)w);
  }
  *out_h = x->crop ? x->crop : h;
  *out_w = x->crop ? x->crop : w;
  return NS_OK;
}

static unsigned rand_below(ns_rng *r, unsigned n) { return (unsigned)(ns_rng_next(r) % n); }

/* DataTransformer::Transform: (pixel - mean) * scale; at TRAIN a random
 * crop and a random mirror, at TEST the centre crop and no mirror. */
void ns_xform_apply(const ns_xform *x, ns_rng *rng, const float *src, int64_t c, int64_t h,
                        int64_t w, float *dst) {
  int do_mirror = x->mirror && x->train && rand_below(rng, 2);
  int64_t oh = h, ow = w, h_off = 0, w_off = 0;
  if (x->crop) {
    oh = ow = x->crop;
    if (x->train) {
      h_off = rand_below(rng, (unsigned)(h - x->crop + 1));
      w_off = rand_below(rng, (unsigned)(w - x->crop + 1));
    } else {
      h_off = (h - x->crop) / 2;
      w_off = (w - x->crop) / 2;
    }
  }
  for (int64_t ch = 0; ch < c; ch++) {
    float mv = x->n_mean == 0 ? 0.0f : x->mean_values[x->n_mean == 1 ? 0 : ch];
    for (int64_t y = 0; y < oh; y++)
      for (int64_t xx = 0; xx < ow; xx++) {
        int64_t si = (ch * h + h_off + y) * w + w_off + xx;
        int64_t di = (ch * oh + y) * ow + (do_mirror ? ow - 1 - xx : xx);
        float m = x->mean.count ? x->mean.data[si] : mv;
        dst[di] = (src[si] - m) * x->scale;
      }
  }
}

/* ---- shared state ----------------------------------------------------- */

typedef struct data_priv {
  ns_xform x;
  ns_rng rng; /* shuffles, crops and mirrors: drawn from the net's seed */
  int64_t batch;
  int64_t n;       /* samples */
  int64_t c, h, w; /* one sample, before the crop */
  int64_t *order;  /* sample order (shuffled or 0..n-1) */
  int64_t cursor;
  int shuffle;
  /* NpyData / IdxData */
  ns_ndarray data, label;
  int64_t label_size; /* values per sample: 1, or a map (N x H x W labels) */
  /* ImageData */
  char **paths;
  float *labels;
  int new_h, new_w, is_color;
  float *sample; /* the first image, decoded at setup for the shape */
} data_priv;

static void data_destroy(ns_ctx *ctx, ns_layer *l) {
  data_priv *p = l->priv;
  if (!p) return;
  ns_ndarray_free(ctx, &p->x.mean);
  ns_ndarray_free(ctx, &p->data);
  ns_ndarray_free(ctx, &p->label);
  for (int64_t i = 0; p->paths && i < p->n; i++) ns_free(ctx, p->paths[i]);
  ns_free(ctx, p->paths);
  ns_free(ctx, p->labels);
  ns_free(ctx, p->order);
  ns_floats_free(ctx, p->sample);
}

static void shuffle_order(data_priv *p) {
  for (int64_t i = p->n - 1; i > 0; i--) {
    int64_t j = (int64_t)(ns_rng_next(&p->rng) % (uint64_t)(i + 1));
    int64_t t = p->order[i];
    p->order[i] = p->order[j];
    p->order[j] = t;
  }
}

static ns_status make_order(ns_ctx *ctx, data_priv *p) {
  p->order = ns_calloc(ctx, (size_t)p->n, sizeof *p->order);
  if (!p->order) return ctx->status;
  for (int64_t i = 0; i < p->n; i++) p->order[i] = i;
  if (p->shuffle) shuffle_order(p);
  return NS_OK;
}

/* The next sample's index; at the end of an epoch start over (reshuffled). */
static int64_t next_index(data_priv *p) {
  if (p->cursor >= p->n) {
    p->cursor = 0;
    if (p->shuffle) shuffle_order(p);
  }
  return p->order[p->cursor++];
}

static ns_status shape_tops(ns_ctx *ctx, ns_layer *l, int flat) {
  data_priv *p = l->priv;
  int64_t oh = 0, ow = 0;
  if (ns_xform_check(ctx, l, &p->x, p->c, p->h, p->w, &oh, &ow) != NS_OK) return ctx->status;
  int64_t shape[4] = {p->batch, p->c, oh, ow};
  if (ns_blob_reshape(ctx, l->top[0], flat ? 2 : 4, shape) != NS_OK) return ctx->status;
  if (l->n_top > 1 && ns_blob_reshape(ctx, l->top[1], 1, shape) != NS_OK) return ctx->status;
  return NS_OK;
}

static ns_status data_reshape(ns_ctx *ctx, ns_layer *l) { return NS_OK; }

/* ---- NpyData / IdxData -------------------------------------------------- */

static ns_status load_array(ns_ctx *ctx, ns_layer *l, int idx, const char *path, ns_ndarray *a) {
  ns_status st = idx ? ns_idx_load(ctx, path, a) : ns_npy_load(ctx, path, a);
  if (st != NS_OK) ns_error_prefix(ctx, "layer '%s': ", l->name);
  return st;
}

static ns_status array_setup(ns_ctx *ctx, ns_layer *l, int idx) {
  const Caffe__ArrayDataParameter *ap = l->param->array_data_param;
  if (!ap || !ap->source || !ap->source[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "array_data_param { source } is required");
  if (l->n_top > 1 && (!ap->label_source || !ap->label_source[0]))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "a label top needs array_data_param { label_source }");
  data_priv *p = l->priv = ns_calloc(ctx, 1, sizeof *p);
  if (!p) return ctx->status;
  if (ns_xform_setup(ctx, l, &p->x) != NS_OK) return ctx->status;
  ns_rng_seed(&p->rng, ns_rng_next(l->rng));
  p->batch = ap->has_batch_size ? ap->batch_size : 1;
  p->shuffle = ap->has_shuffle && ap->shuffle;
  if (p->batch < 1) return ns_layer_fail(ctx, l, NS_ERR_NET, "batch_size must be positive");
  if (load_array(ctx, l, idx, ap->source, &p->data) != NS_OK) return ctx->status;
  const ns_ndarray *d = &p->data;
  p->n = d->shape[0];
  if (p->n < 1) return ns_layer_fail(ctx, l, NS_ERR_INPUT, "%s holds no samples", ap->source);
  int k = d->num_axes - 1, flat = k == 1;
  if (k < 1 || k > 3)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                         "%s: samples of %d axes (N x D, N x H x W or N x C x H x W only)",
                         ap->source, d->num_axes);
  p->c = k == 3 ? d->shape[1] : k == 1 ? d->shape[1] : 1;
  p->h = k == 1 ? 1 : d->shape[k - 1];
  p->w = k == 1 ? 1 : d->shape[k];
  if (flat && p->x.crop)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "crop_size needs samples with height and width");
  if (l->n_top > 1) {
    if (load_array(ctx, l, idx, ap->label_source, &p->label) != NS_OK) return ctx->status;
    if (p->label.shape[0] != p->n)
      return ns_layer_fail(ctx, l, NS_ERR_INPUT, "%s holds %lld labels for %lld samples",
                           ap->label_source, (long long)p->label.shape[0], (long long)p->n);
    p->label_size = p->label.count / p->n;
    /* a label map would have to be cropped and mirrored with its sample */
    if (p->label_size > 1 && (p->x.crop || p->x.mirror))
      return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                           "crop_size and mirror with per-sample label maps");
  }
  if (make_order(ctx, p) != NS_OK) return ctx->status;
  if (shape_tops(ctx, l, flat) != NS_OK) return ctx->status;
  if (l->n_top > 1 && p->label_size > 1) {
    /* (batch, label dims...), e.g. the (N, H, W) map of a SoftmaxWithLoss
     * over every location of a fully convolutional net */
    int64_t shape[NS_NDARRAY_MAX_AXES];
    shape[0] = p->batch;
    for (int a = 1; a < p->label.num_axes; a++) shape[a] = p->label.shape[a];
    if (ns_blob_reshape(ctx, l->top[1], p->label.num_axes, shape) != NS_OK) return ctx->status;
  }
  return NS_OK;
}

static ns_status npy_setup(ns_ctx *ctx, ns_layer *l) { return array_setup(ctx, l, 0); }
static ns_status idx_setup(ns_ctx *ctx, ns_layer *l) { return array_setup(ctx, l, 1); }

static ns_status array_forward(ns_ctx *ctx, ns_layer *l) {
  data_priv *p = l->priv;
  int64_t sample = p->c * p->h * p->w, out = l->top[0]->count / p->batch;
  for (int64_t b = 0; b < p->batch; b++) {
    int64_t i = next_index(p);
    ns_xform_apply(&p->x, &p->rng, p->data.data + i * sample, p->c, p->h, p->w,
                l->top[0]->data + b * out);
    if (l->n_top > 1)
      memcpy(l->top[1]->data + b * p->label_size, p->label.data + i * p->label_size,
             sizeof(float) * (size_t)p->label_size);
  }
  return NS_OK;
}

const ns_layer_ops ns_npy_data_ops = {
    .type = "NpyData",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .setup = npy_setup,
    .reshape = data_reshape,
    .forward = array_forward,
    .destroy = data_destroy,
};

const ns_layer_ops ns_idx_data_ops = {
    .type = "IdxData",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .setup = idx_setup,
    .reshape = data_reshape,
    .forward = array_forward,
    .destroy = data_destroy,
};

/* ---- ImageData ---------------------------------------------------------- */

/* An image as cv::imread gives it to Caffe: 0..255, BGR (or one grey
 * channel: 0.299 R + 0.587 G + 0.114 B), resized if new_height/new_width
 * are set; written CHW to out (room for c*h*w).  Returns its size. */
static ns_status read_image(ns_ctx *ctx, ns_layer *l, const char *path, data_priv *p, int *oh,
                            int *ow, float **out) {
  ns_image im;
  if (ns_image_load(ctx, path, 0, &im) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s': ", l->name);
    return ctx->status;
  }
  ns_status st = ns_caffe_image(ctx, &im, p->is_color, p->new_h, p->new_w, oh, ow, out);
  ns_image_free(ctx, &im);
  return st;
}

/* The list file: one "path label" per line, split at the last space. */
static ns_status read_list(ns_ctx *ctx, ns_layer *l, const char *source, const char *root,
                           data_priv *p) {
  FILE *f = fopen(source, "r");
  if (!f) return ns_layer_fail(ctx, l, NS_ERR_IO, "cannot open the list file %s", source);
  char line[4096];
  int64_t cap = 0, lineno = 0;
  ns_status st = NS_OK;
  while (st == NS_OK && fgets(line, sizeof line, f)) {
    lineno++;
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (!len) continue;
    char *sp = strrchr(line, ' '), *end;
    long lab = sp ? strtol(sp + 1, &end, 10) : 0;
    if (!sp || sp == line || end == sp + 1 || *end) {
      st = ns_layer_fail(ctx, l, NS_ERR_INPUT, "%s:%lld: expected \"path label\"", source,
                         (long long)lineno);
      break;
    }
    *sp = 0;
    if (p->n == cap) {
      cap = cap ? cap * 2 : 64;
      char **np = ns_realloc_array(ctx, p->paths, (size_t)cap, sizeof *np);
      if (!np) break;
      p->paths = np;
      float *nl = ns_realloc_array(ctx, p->labels, (size_t)cap, sizeof *nl);
      if (!nl) break;
      p->labels = nl;
    }
    size_t n = strlen(root) + strlen(line) + 1;
    char *path = ns_alloc(ctx, n);
    if (!path) break;
    snprintf(path, n, "%s%s", root, line);
    p->paths[p->n] = path;
    p->labels[p->n++] = (float)lab;
  }
  fclose(f);
  if (st == NS_OK && ctx->status != NS_OK) st = ctx->status;
  if (st == NS_OK && p->n == 0)
    st = ns_layer_fail(ctx, l, NS_ERR_INPUT, "the list file %s names no images", source);
  return st;
}

static ns_status image_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ImageDataParameter *ip = l->param->image_data_param;
  if (!ip || !ip->source || !ip->source[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "image_data_param { source } is required");
  data_priv *p = l->priv = ns_calloc(ctx, 1, sizeof *p);
  if (!p) return ctx->status;
  if (ns_xform_setup(ctx, l, &p->x) != NS_OK) return ctx->status;
  ns_rng_seed(&p->rng, ns_rng_next(l->rng));
  p->batch = ip->has_batch_size ? ip->batch_size : 1;
  p->shuffle = ip->has_shuffle && ip->shuffle;
  p->new_h = ip->has_new_height ? (int)ip->new_height : 0;
  p->new_w = ip->has_new_width ? (int)ip->new_width : 0;
  p->is_color = !ip->has_is_color || ip->is_color;
  if (p->batch < 1) return ns_layer_fail(ctx, l, NS_ERR_NET, "batch_size must be positive");
  if ((p->new_h > 0) != (p->new_w > 0))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "new_height and new_width must be set together");
  if (p->new_h > NS_IMAGE_MAX_DIM || p->new_w > NS_IMAGE_MAX_DIM)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "new_height/new_width too large");
  if (read_list(ctx, l, ip->source, ip->root_folder ? ip->root_folder : "", p) != NS_OK)
    return ctx->status;
  if (make_order(ctx, p) != NS_OK) return ctx->status;
  if (ip->has_rand_skip && ip->rand_skip) p->cursor = rand_below(&p->rng, ip->rand_skip) % p->n;
  /* The first image fixes the sample shape, as in Caffe. */
  int h, w;
  if (read_image(ctx, l, p->paths[p->order[p->cursor]], p, &h, &w, &p->sample) != NS_OK)
    return ctx->status;
  p->c = p->is_color ? 3 : 1, p->h = h, p->w = w;
  return shape_tops(ctx, l, 0);
}

static ns_status image_forward(ns_ctx *ctx, ns_layer *l) {
  data_priv *p = l->priv;
  int64_t out = l->top[0]->count / p->batch;
  for (int64_t b = 0; b < p->batch; b++) {
    int64_t i = next_index(p);
    int h, w;
    float *px;
    if (read_image(ctx, l, p->paths[i], p, &h, &w, &px) != NS_OK) return ctx->status;
    if (h != p->h || w != p->w) {
      ns_floats_free(ctx, px);
      return ns_layer_fail(ctx, l, NS_ERR_INPUT,
                           "%s is %dx%d, the first image %lldx%lld (set new_height/new_width)",
                           p->paths[i], h, w, (long long)p->h, (long long)p->w);
    }
    ns_xform_apply(&p->x, &p->rng, px, p->c, p->h, p->w, l->top[0]->data + b * out);
    ns_floats_free(ctx, px);
    if (l->n_top > 1) l->top[1]->data[b] = p->labels[i];
  }
  return NS_OK;
}

const ns_layer_ops ns_image_data_ops = {
    .type = "ImageData",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .setup = image_setup,
    .reshape = data_reshape,
    .forward = image_forward,
    .destroy = data_destroy,
};
