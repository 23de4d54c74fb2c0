/* Caffe's extract_features records (BVLC tools/extract_features.cpp): one
 * Datum of float_data per item of a feature blob, keyed by a running
 * index printed as "%010d", in a new LMDB or LevelDB. */
#include <stdio.h>

#include "caffe.pb-c.h"
#include "io/db.h"

struct ns_feature_db {
  ns_db *db;
  int64_t index;
};

ns_status ns_feature_db_create(ns_ctx *ctx, const char *path, int backend, ns_feature_db **out) {
  *out = NULL;
  ns_feature_db *f = ns_calloc(ctx, 1, sizeof *f);
  if (!f) return ctx->status;
  if (ns_db_open(ctx, path, backend, 1, &f->db) != NS_OK) {
    ns_free(ctx, f);
    return ctx->status;
  }
  *out = f;
  return NS_OK;
}

/* Caffe's legacy Blob::channels() / height() / width() of a blob. */
static void legacy_dims(const ns_tensor *b, int64_t per_item, Caffe__Datum *d) {
  d->has_channels = d->has_height = d->has_width = 1;
  if (b->num_axes > 4) {
    d->channels = (int32_t)per_item, d->height = d->width = 1;
    return;
  }
  d->channels = (int32_t)(b->num_axes > 1 ? b->shape[1] : 1);
  d->height = (int32_t)(b->num_axes > 2 ? b->shape[2] : 1);
  d->width = (int32_t)(b->num_axes > 3 ? b->shape[3] : 1);
}

ns_status ns_feature_db_put(ns_ctx *ctx, ns_feature_db *f, const ns_tensor *blob) {
  if (blob->num_axes < 1 || blob->shape[0] < 1)
    return ns_fail(ctx, NS_ERR_INPUT, "blob '%s' has no items along axis 0", blob->name);
  const int64_t items = blob->shape[0], per_item = blob->count / items;
  if (per_item > INT32_MAX / 4)
    return ns_fail(ctx, NS_ERR_INPUT, "blob '%s' has %lld values per item; a Datum holds fewer",
                   blob->name, (long long)per_item);
  uint8_t *packed = NULL;
  size_t cap = 0;
  for (int64_t n = 0; n < items; n++) {
    Caffe__Datum d = CAFFE__DATUM__INIT;
    legacy_dims(blob, per_item, &d);
    d.n_float_data = (size_t)per_item;
    d.float_data = blob->data + n * per_item;
    size_t len = caffe__datum__get_packed_size(&d);
    if (len > cap) {
      ns_free(ctx, packed);
      if (!(packed = ns_alloc(ctx, len))) return ctx->status;
      cap = len;
    }
    caffe__datum__pack(&d, packed);
    char key[32];
    int key_len = snprintf(key, sizeof key, "%010lld", (long long)f->index);
    if (ns_db_put(ctx, f->db, key, (size_t)key_len, packed, len) != NS_OK) {
      ns_free(ctx, packed);
      ns_error_prefix(ctx, "features of blob '%s': ", blob->name);
      return ctx->status;
    }
    f->index++;
  }
  ns_free(ctx, packed);
  return NS_OK;
}

ns_status ns_feature_db_close(ns_ctx *ctx, ns_feature_db *f, int64_t *records) {
  if (records) *records = f ? f->index : 0;
  if (!f) return NS_OK;
  ns_status st = ns_db_close(ctx, f->db);
  ns_free(ctx, f);
  return st;
}
