/* Caffe's HDF5Data layer: hdf5_data_param { source batch_size shuffle },
 * source a text file naming .h5 files one per line; each top reads the
 * dataset of its own name, whole, one file at a time.  Rows (the first
 * axis) go out in order, or shuffled within each file with the files'
 * order shuffled at every pass when shuffle is set; after the last row of
 * a file the next file is loaded.  No transform_param, as in Caffe. */
#include <stdio.h>
#include <string.h>

#include "core/blob.h"
#include "core/layer.h"
#include "io/hdf5.h"

#define HDF5_MAX_TOPS 16

typedef struct h5_priv {
  ns_rng rng;
  char **files;
  int64_t n_files, file; /* position in order */
  int64_t *file_order, *row_order;
  int64_t rows, row;
  int64_t batch;
  int shuffle;
  ns_ndarray data[HDF5_MAX_TOPS];
} h5_priv;

static void free_data(ns_ctx *ctx, ns_layer *l, h5_priv *p) {
  for (int t = 0; t < l->n_top; t++) ns_ndarray_free(ctx, &p->data[t]);
  ns_free(ctx, p->row_order);
  p->row_order = NULL;
}

static void h5_destroy(ns_ctx *ctx, ns_layer *l) {
  h5_priv *p = l->priv;
  if (!p) return;
  free_data(ctx, l, p);
  for (int64_t i = 0; i < p->n_files; i++) ns_free(ctx, p->files[i]);
  ns_free(ctx, p->files);
  ns_free(ctx, p->file_order);
}

static void shuffle(ns_rng *rng, int64_t *a, int64_t n) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(ns_rng_next(rng) % (uint64_t)(i + 1)), t = a[i];
    a[i] = a[j], a[j] = t;
  }
}

static ns_status read_file_list(ns_ctx *ctx, ns_layer *l, const char *source, h5_priv *p) {
  FILE *f = fopen(source, "r");
  if (!f) return ns_layer_fail(ctx, l, NS_ERR_IO, "cannot open the list file %s", source);
  char line[4096];
  int64_t cap = 0;
  ns_status st = NS_OK;
  while (st == NS_OK && fgets(line, sizeof line, f)) {
    char *s = line, *e = line + strlen(line);
    while (*s == ' ' || *s == '\t') s++;
    while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
    if (!*s) continue;
    if (p->n_files == cap) {
      cap = cap ? 2 * cap : 8;
      char **nf = ns_realloc_array(ctx, p->files, (size_t)cap, sizeof *nf);
      if (!nf) {
        st = ctx->status;
        break;
      }
      p->files = nf;
    }
    size_t n = strlen(s) + 1;
    if (!(p->files[p->n_files] = ns_alloc(ctx, n))) st = ctx->status;
    else memcpy(p->files[p->n_files++], s, n);
  }
  fclose(f);
  if (st == NS_OK && p->n_files == 0)
    st = ns_layer_fail(ctx, l, NS_ERR_INPUT, "the list file %s names no HDF5 files", source);
  return st;
}

/* Loads every top's dataset from the file at position p->file. */
static ns_status load_file(ns_ctx *ctx, ns_layer *l) {
  h5_priv *p = l->priv;
  free_data(ctx, l, p);
  const char *path = p->files[p->file_order[p->file]];
  for (int t = 0; t < l->n_top; t++) {
    if (ns_hdf5_read(ctx, path, l->param->top[t], &p->data[t]) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s': ", l->name);
      return ctx->status;
    }
    if (p->data[t].shape[0] != p->data[0].shape[0] || p->data[t].shape[0] < 1)
      return ns_layer_fail(ctx, l, NS_ERR_INPUT, "%s: dataset '%s' has %lld rows, '%s' %lld", path,
                           l->param->top[t], (long long)p->data[t].shape[0], l->param->top[0],
                           (long long)p->data[0].shape[0]);
  }
  p->rows = p->data[0].shape[0], p->row = 0;
  if (!(p->row_order = ns_calloc(ctx, (size_t)p->rows, sizeof *p->row_order))) return ctx->status;
  for (int64_t i = 0; i < p->rows; i++) p->row_order[i] = i;
  if (p->shuffle) shuffle(&p->rng, p->row_order, p->rows);
  return NS_OK;
}

static ns_status h5_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__HDF5DataParameter *hp = l->param->hdf5_data_param;
  if (!hp || !hp->source || !hp->source[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "hdf5_data_param { source } is required");
  h5_priv *p = l->priv = ns_calloc(ctx, 1, sizeof *p);
  if (!p) return ctx->status;
  ns_rng_seed(&p->rng, ns_rng_next(l->rng));
  p->batch = hp->has_batch_size ? hp->batch_size : 0;
  p->shuffle = hp->has_shuffle && hp->shuffle;
  if (p->batch < 1) return ns_layer_fail(ctx, l, NS_ERR_NET, "batch_size must be positive");
  if (read_file_list(ctx, l, hp->source, p) != NS_OK) return ctx->status;
  if (!(p->file_order = ns_calloc(ctx, (size_t)p->n_files, sizeof *p->file_order)))
    return ctx->status;
  for (int64_t i = 0; i < p->n_files; i++) p->file_order[i] = i;
  if (p->shuffle) shuffle(&p->rng, p->file_order, p->n_files);
  if (load_file(ctx, l) != NS_OK) return ctx->status;
  for (int t = 0; t < l->n_top; t++) {
    int64_t shape[NS_NDARRAY_MAX_AXES];
    shape[0] = p->batch;
    for (int a = 1; a < p->data[t].num_axes; a++) shape[a] = p->data[t].shape[a];
    if (ns_blob_reshape(ctx, l->top[t], p->data[t].num_axes, shape) != NS_OK) return ctx->status;
  }
  return NS_OK;
}

static ns_status h5_reshape(ns_ctx *ctx, ns_layer *l) { return NS_OK; }

/* After the last row: the next file (the first again after the last, the
 * files reshuffled then), unless there is only one. */
static ns_status next_row(ns_ctx *ctx, ns_layer *l) {
  h5_priv *p = l->priv;
  if (++p->row < p->rows) return NS_OK;
  if (p->n_files == 1) {
    p->row = 0;
    if (p->shuffle) shuffle(&p->rng, p->row_order, p->rows);
    return NS_OK;
  }
  if (++p->file == p->n_files) {
    p->file = 0;
    if (p->shuffle) shuffle(&p->rng, p->file_order, p->n_files);
  }
  if (load_file(ctx, l) != NS_OK) return ctx->status;
  for (int t = 0; t < l->n_top; t++) {
    int64_t per_row = p->data[t].count / p->rows;
    if (per_row * p->batch != l->top[t]->count)
      return ns_layer_fail(ctx, l, NS_ERR_INPUT, "%s: dataset '%s' rows differ from the first file's",
                           p->files[p->file_order[p->file]], l->param->top[t]);
  }
  return NS_OK;
}

static ns_status h5_forward(ns_ctx *ctx, ns_layer *l) {
  h5_priv *p = l->priv;
  for (int64_t b = 0; b < p->batch; b++) {
    for (int t = 0; t < l->n_top; t++) {
      int64_t per_row = l->top[t]->count / p->batch;
      memcpy(l->top[t]->data + b * per_row, p->data[t].data + p->row_order[p->row] * per_row,
             sizeof(float) * (size_t)per_row);
    }
    if (next_row(ctx, l) != NS_OK) return ctx->status;
  }
  return NS_OK;
}

const ns_layer_ops ns_hdf5_data_ops = {
    .type = "HDF5Data",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = HDF5_MAX_TOPS,
    .setup = h5_setup,
    .reshape = h5_reshape,
    .forward = h5_forward,
    .destroy = h5_destroy,
};
