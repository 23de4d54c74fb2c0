/* Caffe's dataset tools as library calls: convert_imageset (a list of
 * images to a database of Datum records) and compute_image_mean (the mean
 * of a database's records as a BlobProto). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "io/datum.h"
#include "io/db.h"

#define DATASET_MAX_IMAGE_BYTES (1ull << 30)
#define PROGRESS_EVERY 1000

typedef struct image_list {
  char **paths;
  int *labels;
  int64_t n;
} image_list;

static void list_free(ns_ctx *ctx, image_list *l) {
  for (int64_t i = 0; i < l->n; i++) ns_free(ctx, l->paths[i]);
  ns_free(ctx, l->paths);
  ns_free(ctx, l->labels);
}

static ns_status list_add(ns_ctx *ctx, image_list *l, int64_t *cap, const char *path, int label) {
  if (l->n == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    char **np = ns_realloc_array(ctx, l->paths, (size_t)*cap, sizeof *np);
    if (!np) return ctx->status;
    l->paths = np;
    int *nl = ns_realloc_array(ctx, l->labels, (size_t)*cap, sizeof *nl);
    if (!nl) return ctx->status;
    l->labels = nl;
  }
  size_t len = strlen(path) + 1;
  if (!(l->paths[l->n] = ns_alloc(ctx, len))) return ctx->status;
  memcpy(l->paths[l->n], path, len);
  l->labels[l->n++] = label;
  return NS_OK;
}

/* "path label" lines split at the last space, as convert_imageset. */
static ns_status read_image_list(ns_ctx *ctx, const char *list, image_list *out) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(list, "r");
  if (!f) return ns_fail(ctx, NS_ERR_IO, "cannot open the list file %s", list);
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
    if (!sp || sp == line || end == sp + 1 || *end || lab < INT32_MIN || lab > INT32_MAX) {
      st = ns_fail(ctx, NS_ERR_INPUT, "%s:%lld: expected \"path label\"", list, (long long)lineno);
      break;
    }
    *sp = 0;
    st = list_add(ctx, out, &cap, line, (int)lab);
  }
  fclose(f);
  if (st == NS_OK && out->n == 0) st = ns_fail(ctx, NS_ERR_INPUT, "%s names no images", list);
  if (st != NS_OK) list_free(ctx, out);
  return st;
}

static void shuffle_list(image_list *l, uint64_t seed) {
  ns_rng rng;
  ns_rng_seed(&rng, seed);
  for (int64_t i = l->n - 1; i > 0; i--) {
    int64_t j = (int64_t)(ns_rng_next(&rng) % (uint64_t)(i + 1));
    char *tp = l->paths[i];
    int tl = l->labels[i];
    l->paths[i] = l->paths[j], l->labels[i] = l->labels[j];
    l->paths[j] = tp, l->labels[j] = tl;
  }
}

/* A raw Datum: the image's 0..255 values as bytes, channel-major. */
static ns_status raw_datum(ns_ctx *ctx, const unsigned char *file, size_t size, const char *path,
                           const ns_imageset_opts *o, Caffe__Datum *d) {
  ns_image im;
  if (ns_image_decode(ctx, file, size, path, 0, &im) != NS_OK) return ctx->status;
  int h, w;
  float *chw;
  ns_status st = ns_caffe_image(ctx, &im, !o->grey, o->resize_height, o->resize_width, &h, &w,
                                &chw);
  ns_image_free(ctx, &im);
  if (st != NS_OK) return st;
  int c = o->grey ? 1 : 3;
  size_t count = (size_t)c * h * w;
  unsigned char *bytes = ns_alloc(ctx, count);
  if (bytes)
    for (size_t i = 0; i < count; i++) bytes[i] = (unsigned char)chw[i];
  ns_floats_free(ctx, chw);
  if (!bytes) return ctx->status;
  d->has_channels = d->has_height = d->has_width = 1;
  d->channels = c, d->height = h, d->width = w;
  d->data.data = bytes, d->data.len = count;
  return NS_OK;
}

/* One list entry as its serialized Datum, put under its Caffe key. */
static ns_status put_image(ns_ctx *ctx, ns_db *db, const char *root, const image_list *l,
                           int64_t i, const ns_imageset_opts *o) {
  char path[8192], key[4200];
  snprintf(path, sizeof path, "%s%s", root, l->paths[i]);
  int key_len = snprintf(key, sizeof key, "%08lld_%s", (long long)i, l->paths[i]);
  unsigned char *file;
  size_t size;
  if (ns_io_read_file(ctx, path, DATASET_MAX_IMAGE_BYTES, &file, &size) != NS_OK)
    return ctx->status;
  Caffe__Datum d = CAFFE__DATUM__INIT;
  d.has_data = d.has_label = d.has_encoded = 1;
  d.label = l->labels[i];
  ns_status st = NS_OK;
  if (o->encoded) {
    ns_image check; /* refuse what the Data layer could not decode */
    st = ns_image_decode(ctx, file, size, path, 0, &check);
    ns_image_free(ctx, &check);
    d.encoded = 1, d.data.data = file, d.data.len = size;
  } else {
    st = raw_datum(ctx, file, size, path, o, &d);
  }
  size_t packed_len = st == NS_OK ? caffe__datum__get_packed_size(&d) : 0;
  uint8_t *packed = st == NS_OK ? ns_alloc(ctx, packed_len ? packed_len : 1) : NULL;
  if (packed) {
    caffe__datum__pack(&d, packed);
    st = ns_db_put(ctx, db, key, (size_t)key_len, packed, packed_len);
  } else if (st == NS_OK) {
    st = ctx->status;
  }
  ns_free(ctx, packed);
  if (!o->encoded) ns_free(ctx, d.data.data);
  ns_free(ctx, file);
  return st;
}

static ns_status check_imageset_opts(ns_ctx *ctx, const ns_imageset_opts *o) {
  if ((o->resize_height > 0) != (o->resize_width > 0) || o->resize_height < 0 ||
      o->resize_width < 0 || o->resize_height > NS_IMAGE_MAX_DIM ||
      o->resize_width > NS_IMAGE_MAX_DIM)
    return ns_fail(ctx, NS_ERR_INPUT, "resize needs a height and a width, both 1..%d",
                   NS_IMAGE_MAX_DIM);
  if (o->encoded && o->resize_height > 0)
    return ns_fail(ctx, NS_ERR_UNSUPPORTED,
                   "encoded records of resized images (Caffe re-encodes them with OpenCV)");
  return NS_OK;
}

ns_status ns_convert_imageset(ns_ctx *ctx, const char *root, const char *list,
                              const char *db_path, const ns_imageset_opts *opts) {
  if (check_imageset_opts(ctx, opts) != NS_OK) return ctx->status;
  image_list l;
  if (read_image_list(ctx, list, &l) != NS_OK) return ctx->status;
  if (opts->shuffle) shuffle_list(&l, opts->seed);
  ns_db *db;
  ns_status st = ns_db_open(ctx, db_path, opts->backend, 1, &db);
  for (int64_t i = 0; st == NS_OK && i < l.n; i++) {
    st = put_image(ctx, db, root ? root : "", &l, i, opts);
    if (st == NS_OK && opts->progress && ((i + 1) % PROGRESS_EVERY == 0 || i + 1 == l.n))
      opts->progress(opts->user, i + 1, l.n);
  }
  if (st == NS_OK) st = ns_db_close(ctx, db);
  else if (db) ns_db_close(ctx, db);
  list_free(ctx, &l);
  return st;
}

/* ---- compute_image_mean ------------------------------------------------ */

static ns_status write_mean(ns_ctx *ctx, const char *path, const ns_datum_sample *first,
                            const double *sum, int64_t n, int64_t count) {
  float *data = ns_floats_alloc(ctx, count);
  if (!data) return ctx->status;
  for (int64_t i = 0; i < count; i++) data[i] = (float)(sum[i] / (double)n);
  Caffe__BlobProto b = CAFFE__BLOB_PROTO__INIT;
  b.has_num = b.has_channels = b.has_height = b.has_width = 1;
  b.num = 1, b.channels = first->channels, b.height = first->height, b.width = first->width;
  b.n_data = (size_t)count, b.data = data;
  size_t len = caffe__blob_proto__get_packed_size(&b);
  uint8_t *buf = ns_alloc(ctx, len);
  ns_status st = buf ? NS_OK : ctx->status;
  ns_atomic_file af;
  if (st == NS_OK) {
    caffe__blob_proto__pack(&b, buf);
    st = ns_atomic_open(ctx, path, &af);
    if (st == NS_OK && (st = ns_atomic_write(ctx, &af, buf, len)) != NS_OK)
      ns_atomic_abort(ctx, &af);
    else if (st == NS_OK)
      st = ns_atomic_commit(ctx, &af);
  }
  ns_free(ctx, buf);
  ns_floats_free(ctx, data);
  return st;
}

/* Adds every record into sum (allocated at the first); n: records read. */
static ns_status sum_records(ns_ctx *ctx, ns_db *db, const char *db_path, ns_progress_fn progress,
                             void *user, ns_datum_sample *first, double **sum, int64_t *n) {
  const void *key, *val;
  size_t klen, vlen;
  int got;
  int64_t count = 0;
  for (;;) {
    if (ns_db_next(ctx, db, 0, &key, &klen, &val, &vlen, &got) != NS_OK) return ctx->status;
    if (!got) return NS_OK;
    char name[96];
    snprintf(name, sizeof name, "'%.*s' of %s", klen < 64 ? (int)klen : 64, (const char *)key,
             db_path);
    ns_datum_sample s;
    if (ns_datum_decode(ctx, val, vlen, name, 0, &s) != NS_OK) return ctx->status;
    if (*n == 0) {
      *first = s, first->data = NULL;
      count = (int64_t)s.channels * s.height * s.width;
      if (!(*sum = ns_calloc(ctx, (size_t)count, sizeof **sum))) {
        ns_datum_sample_free(ctx, &s);
        return ctx->status;
      }
    } else if (s.channels != first->channels || s.height != first->height ||
               s.width != first->width) {
      ns_datum_sample_free(ctx, &s);
      return ns_fail(ctx, NS_ERR_INPUT, "Datum %s is %d x %d x %d, the first %d x %d x %d", name,
                     s.channels, s.height, s.width, first->channels, first->height, first->width);
    }
    for (int64_t i = 0; i < count; i++) (*sum)[i] += s.data[i];
    ns_datum_sample_free(ctx, &s);
    if (++*n % PROGRESS_EVERY == 0 && progress) progress(user, *n, -1);
  }
}

ns_status ns_compute_mean(ns_ctx *ctx, const char *db_path, int backend, const char *mean_path,
                          ns_progress_fn progress, void *user) {
  ns_db *db;
  if (ns_db_open(ctx, db_path, backend, 0, &db) != NS_OK) return ctx->status;
  ns_datum_sample first = {0};
  double *sum = NULL;
  int64_t n = 0;
  ns_status st = sum_records(ctx, db, db_path, progress, user, &first, &sum, &n);
  ns_db_close(ctx, db);
  if (st == NS_OK && n == 0) st = ns_fail(ctx, NS_ERR_INPUT, "%s holds no records", db_path);
  if (st == NS_OK) {
    if (progress) progress(user, n, n);
    st = write_mean(ctx, mean_path, &first, sum, n,
                    (int64_t)first.channels * first.height * first.width);
  }
  ns_free(ctx, sum);
  return st;
}
