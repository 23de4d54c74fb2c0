/* Caffe's Data layer: batches of Datum records read in key order from an
 * LMDB or LevelDB (data_param: source, backend, batch_size, rand_skip),
 * through the DataTransformer (transform_param, force_color/force_gray for
 * encoded records).  top[0] the samples, top[1] (optional) the labels.
 * The first record fixes the sample shape, as in Caffe; at the end of the
 * database reading starts over at its first record.  As Caffe's
 * BasePrefetchingDataLayer, a thread reads and transforms the next
 * data_param.prefetch batches (default 4) while the net runs
 * (data_prefetch.h); prefetch: 0 (ours: Caffe needs at least 1) reads each
 * batch in forward instead.  Either way the same batches in the same
 * order: the worker runs the same fill, with the layer's own generator. */
#include <stdio.h>
#include <string.h>

#include "core/layer.h"
#include "io/datum.h"
#include "io/db.h"
#include "layers/data_prefetch.h"
#include "layers/data_xform.h"

typedef struct db_priv {
  ns_xform x;
  ns_rng rng; /* rand_skip, crops and mirrors: drawn from the net's seed */
  ns_db *db;
  int64_t batch, c, h, w;
  int64_t item; /* floats per sample after the transform */
  int mode; /* NS_DATUM_*: how encoded records are decoded */
  ns_prefetch *prefetch; /* NULL: no thread (prefetch: 0) */
} db_priv;

static void db_destroy(ns_ctx *ctx, ns_layer *l) {
  db_priv *p = l->priv;
  if (!p) return;
  ns_prefetch_stop(ctx, p->prefetch); /* first: the worker reads db, rng and x */
  ns_ndarray_free(ctx, &p->x.mean);
  ns_db_close(ctx, p->db);
}

/* The next record, decoded; errors name the layer, the source and key. */
static ns_status next_sample(ns_ctx *ctx, ns_layer *l, ns_datum_sample *s) {
  db_priv *p = l->priv;
  const char *source = l->param->data_param->source;
  const void *key, *val;
  size_t klen, vlen;
  int got;
  if (ns_db_next(ctx, p->db, 1, &key, &klen, &val, &vlen, &got) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s': ", l->name);
    return ctx->status;
  }
  if (!got) return ns_layer_fail(ctx, l, NS_ERR_INPUT, "%s holds no records", source);
  char name[96];
  int shown = klen < 64 ? (int)klen : 64;
  snprintf(name, sizeof name, "'%.*s' of %s", shown, (const char *)key, "the database");
  if (ns_datum_decode(ctx, val, vlen, name, p->mode, s) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s': %s: ", l->name, source);
    return ctx->status;
  }
  return NS_OK;
}

/* One batch into data (batch x the sample) and label (batch, or NULL);
 * on the prefetch thread with its own ctx, or in forward. */
static ns_status fill_batch(ns_ctx *ctx, void *user, float *data, float *label) {
  ns_layer *l = user;
  db_priv *p = l->priv;
  for (int64_t b = 0; b < p->batch; b++) {
    ns_datum_sample s;
    if (next_sample(ctx, l, &s) != NS_OK) return ctx->status;
    if (s.channels != p->c || s.height != p->h || s.width != p->w) {
      ns_datum_sample_free(ctx, &s);
      return ns_layer_fail(ctx, l, NS_ERR_INPUT,
                           "%s: a record of %d x %d x %d after a first of %lld x %lld x %lld",
                           l->param->data_param->source, s.channels, s.height, s.width,
                           (long long)p->c, (long long)p->h, (long long)p->w);
    }
    ns_xform_apply(&p->x, &p->rng, s.data, p->c, p->h, p->w, data + b * p->item);
    if (label) label[b] = (float)s.label;
    ns_datum_sample_free(ctx, &s);
  }
  return NS_OK;
}

static ns_status check_options(ns_ctx *ctx, ns_layer *l, const Caffe__DataParameter *dp) {
  const Caffe__TransformationParameter *tp = l->param->transform_param;
  int force_color = (tp && tp->force_color) || dp->force_encoded_color;
  int force_gray = tp && tp->force_gray;
  if (force_color && force_gray)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "force_color and force_gray at once");
  db_priv *p = l->priv;
  p->mode = force_color ? NS_DATUM_COLOR : force_gray ? NS_DATUM_GREY : NS_DATUM_NATIVE;
  p->batch = dp->has_batch_size ? dp->batch_size : 1;
  if (p->batch < 1) return ns_layer_fail(ctx, l, NS_ERR_NET, "batch_size must be positive");
  return NS_OK;
}

static ns_status db_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__DataParameter *dp = l->param->data_param;
  if (!dp || !dp->source || !dp->source[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "data_param { source } is required");
  db_priv *p = l->priv = ns_calloc(ctx, 1, sizeof *p);
  if (!p) return ctx->status;
  if (check_options(ctx, l, dp) != NS_OK) return ctx->status;
  if (ns_xform_setup(ctx, l, &p->x) != NS_OK) return ctx->status;
  ns_rng_seed(&p->rng, ns_rng_next(l->rng));
  int backend = dp->has_backend ? (int)dp->backend : NS_DB_LEVELDB;
  if (ns_db_open(ctx, dp->source, backend, 0, &p->db) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s': ", l->name);
    return ctx->status;
  }
  /* Caffe's older DataLayer: skip a random number of records first, so
   * that parallel readers do not see the same batches. */
  uint64_t skip = dp->rand_skip ? ns_rng_next(&p->rng) % dp->rand_skip : 0;
  ns_datum_sample s;
  for (uint64_t i = 0; i < skip; i++) {
    if (next_sample(ctx, l, &s) != NS_OK) return ctx->status;
    ns_datum_sample_free(ctx, &s);
  }
  /* the first record read fixes the shape; forward starts from it again */
  if (next_sample(ctx, l, &s) != NS_OK) return ctx->status;
  p->c = s.channels, p->h = s.height, p->w = s.width;
  ns_datum_sample_free(ctx, &s);
  ns_db_close(ctx, p->db);
  p->db = NULL;
  if (ns_db_open(ctx, dp->source, backend, 0, &p->db) != NS_OK) return ctx->status;
  for (uint64_t i = 0; i < skip; i++) {
    if (next_sample(ctx, l, &s) != NS_OK) return ctx->status;
    ns_datum_sample_free(ctx, &s);
  }
  int64_t oh, ow;
  if (ns_xform_check(ctx, l, &p->x, p->c, p->h, p->w, &oh, &ow) != NS_OK) return ctx->status;
  int64_t shape[4] = {p->batch, p->c, oh, ow};
  if (ns_blob_reshape(ctx, l->top[0], 4, shape) != NS_OK) return ctx->status;
  if (l->n_top > 1 && ns_blob_reshape(ctx, l->top[1], 1, shape) != NS_OK) return ctx->status;
  p->item = l->top[0]->count / p->batch; /* fixed here: the worker reads no blob */
  int count = dp->has_prefetch ? (int)(dp->prefetch > 64 ? 64 : dp->prefetch) : 4;
  if (count == 0) return NS_OK;
  return ns_prefetch_start(ctx, l, count, l->top[0]->count, l->n_top > 1 ? p->batch : 0,
                           fill_batch, l, &p->prefetch);
}

static ns_status db_reshape(ns_ctx *ctx, ns_layer *l) { return NS_OK; }

static ns_status db_forward(ns_ctx *ctx, ns_layer *l) {
  db_priv *p = l->priv;
  float *label = l->n_top > 1 ? l->top[1]->data : NULL;
  if (p->prefetch) return ns_prefetch_next(ctx, p->prefetch, l->top[0]->data, label);
  return fill_batch(ctx, l, l->top[0]->data, label);
}

const ns_layer_ops ns_db_data_ops = {
    .type = "Data",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .setup = db_setup,
    .reshape = db_reshape,
    .forward = db_forward,
    .destroy = db_destroy,
};
