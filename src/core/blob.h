/* N-D float tensor, as Caffe's Blob: shape, data, and (for training) diff. */
#ifndef NS_CORE_BLOB_H
#define NS_CORE_BLOB_H

#include <stdint.h>

#include "core/ctx.h"

#define NS_MAX_AXES 32 /* Caffe's kMaxBlobAxes */

typedef struct ns_blob {
  char *name;
  int num_axes;
  int64_t shape[NS_MAX_AXES];
  int64_t count;    /* product of shape; 1 for a 0-axis blob */
  float *data;      /* count floats, 64-byte aligned */
  float *diff;      /* NULL until a backward pass needs it */
  int64_t capacity; /* floats allocated behind data */
  int borrowed;     /* data lies in the net's shared activation buffers (net_reuse.c) */
} ns_blob;

ns_blob *ns_blob_create(ns_ctx *ctx, const char *name);
void ns_blob_destroy(ns_ctx *ctx, ns_blob *b);

/* Sets the shape; checks every dim is >= 0, the product does not overflow
 * and stays under the context's memory limit.  Grows storage when needed
 * (new storage is zeroed; existing data is kept only if it fits). */
ns_status ns_blob_reshape(ns_ctx *ctx, ns_blob *b, int num_axes, const int64_t *shape);
ns_status ns_blob_reshape_like(ns_ctx *ctx, ns_blob *b, const ns_blob *other);
/* Allocates diff to match data (zeroed). */
ns_status ns_blob_alloc_diff(ns_ctx *ctx, ns_blob *b);
/* Allocates the diff of b if it has none (zeroed); keeps an existing one. */
ns_status ns_blob_ensure_diff(ns_ctx *ctx, ns_blob *b);

/* Caffe's CanonicalAxisIndex: negative axes count from the end.  Records
 * an error naming `what` when out of range. */
ns_status ns_blob_axis(ns_ctx *ctx, const ns_blob *b, int axis, const char *what, int *out);
/* Product of shape[start..end). */
int64_t ns_blob_count_range(const ns_blob *b, int start, int end);
int ns_blob_same_shape(const ns_blob *a, const ns_blob *b);

/* "(4096, 9216)"-style text into buf; returns buf. */
const char *ns_shape_str(const int64_t *shape, int num_axes, char *buf, size_t size);

/* 64-byte aligned float arrays through the context allocator. */
float *ns_floats_alloc(ns_ctx *ctx, int64_t count);
void ns_floats_free(ns_ctx *ctx, float *p);
/* Copies count floats into *buf, first growing it (to *cap floats) when
 * too small: a layer's saved copy of a blob it overwrites in place. */
ns_status ns_floats_save(ns_ctx *ctx, float **buf, int64_t *cap, const float *src, int64_t count);

#endif
