/* Mean files for preprocessing: a .npy array (as ilsvrc_2012_mean.npy) or
 * a Caffe .binaryproto (a serialized BlobProto, as compute_image_mean
 * writes).  Like caffe.io.blobproto_to_array, the legacy num/channels/
 * height/width fields take precedence over `shape` when any is set. */
#include <string.h>

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/fileio.h"

#define MEAN_MAX_FILE_BYTES (1ull << 30)

/* (C, H, W) or (C,) from the shapes people store means in: (C, H, W),
 * (H, W) for one channel, (1, C, H, W) from blobproto_to_array, (C,). */
static ns_status normalise_mean_shape(ns_ctx *ctx, const char *name, ns_ndarray *a) {
  if (a->num_axes == 4) {
    if (a->shape[0] != 1)
      return ns_fail(ctx, NS_ERR_INPUT, "%s: mean has %lld images (expected 1)", name,
                     (long long)a->shape[0]);
    memmove(a->shape, a->shape + 1, 3 * sizeof(int64_t));
    a->num_axes = 3;
  } else if (a->num_axes == 2) {
    memmove(a->shape + 1, a->shape, 2 * sizeof(int64_t));
    a->shape[0] = 1;
    a->num_axes = 3;
  } else if (a->num_axes != 3 && a->num_axes != 1) {
    return ns_fail(ctx, NS_ERR_INPUT, "%s: mean of %d axes (expected (C, H, W) or (C,))", name,
                   a->num_axes);
  }
  if (a->count == 0) return ns_fail(ctx, NS_ERR_INPUT, "%s: empty mean", name);
  return NS_OK;
}

/* Shape of a BlobProto as blobproto_to_array reads it. */
static ns_status blob_shape(ns_ctx *ctx, const char *name, const Caffe__BlobProto *b,
                            ns_ndarray *a) {
  if (b->has_num || b->has_channels || b->has_height || b->has_width) {
    int32_t legacy[4] = {b->num, b->channels, b->height, b->width};
    a->num_axes = 4;
    for (int i = 0; i < 4; i++) a->shape[i] = legacy[i];
  } else {
    size_t n = b->shape ? b->shape->n_dim : 0;
    if (n > NS_NDARRAY_MAX_AXES)
      return ns_fail(ctx, NS_ERR_INPUT, "%s: BlobProto shape has %zu axes", name, n);
    a->num_axes = (int)n;
    for (size_t i = 0; i < n; i++) a->shape[i] = b->shape->dim[i];
  }
  a->count = 1;
  for (int i = 0; i < a->num_axes; i++)
    if (!ns_mul_i64(a->count, a->shape[i], &a->count))
      return ns_fail(ctx, NS_ERR_INPUT, "%s: bad BlobProto shape (axis %d is %lld)", name, i,
                     (long long)a->shape[i]);
  return NS_OK;
}

static ns_status blob_to_array(ns_ctx *ctx, const char *name, const Caffe__BlobProto *b,
                               ns_ndarray *out) {
  if (blob_shape(ctx, name, b, out) != NS_OK) return ctx->status;
  int use_double = b->n_data == 0 && b->n_double_data > 0;
  size_t have = use_double ? b->n_double_data : b->n_data;
  if ((uint64_t)have != (uint64_t)out->count)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: BlobProto has %zu values, its shape needs %lld", name,
                   have, (long long)out->count);
  if (ns_check_tensor_size(ctx, out->count, name) != NS_OK) return ctx->status;
  out->data = ns_floats_alloc(ctx, out->count);
  if (!out->data) return ctx->status;
  for (size_t i = 0; i < have; i++)
    out->data[i] = use_double ? (float)b->double_data[i] : b->data[i];
  return NS_OK;
}

ns_status ns_mean_parse_binaryproto(ns_ctx *ctx, const void *bytes, size_t size, const char *name,
                                    ns_ndarray *out) {
  memset(out, 0, sizeof *out);
  if (!name) name = "<memory>";
  Caffe__BlobProto *b = caffe__blob_proto__unpack(&ctx->pb_alloc, size, bytes);
  if (!b) return ns_fail(ctx, NS_ERR_INPUT, "%s: not a .npy file or a Caffe BlobProto", name);
  ns_status st = blob_to_array(ctx, name, b, out);
  caffe__blob_proto__free_unpacked(b, &ctx->pb_alloc);
  if (st == NS_OK) st = normalise_mean_shape(ctx, name, out);
  if (st != NS_OK) ns_ndarray_free(ctx, out);
  return st;
}

ns_status ns_mean_load(ns_ctx *ctx, const char *path, ns_ndarray *out) {
  unsigned char *bytes;
  size_t size;
  memset(out, 0, sizeof *out);
  if (ns_io_read_file(ctx, path, MEAN_MAX_FILE_BYTES, &bytes, &size) != NS_OK) return ctx->status;
  ns_status st;
  if (size >= 6 && memcmp(bytes, "\x93NUMPY", 6) == 0) {
    st = ns_npy_parse(ctx, bytes, size, path, out);
    if (st == NS_OK) st = normalise_mean_shape(ctx, path, out);
    if (st != NS_OK) ns_ndarray_free(ctx, out);
  } else {
    st = ns_mean_parse_binaryproto(ctx, bytes, size, path, out);
  }
  ns_free(ctx, bytes);
  return st;
}
