#define _DEFAULT_SOURCE /* madvise */
#include "core/blob.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* Aligned allocation on top of the context allocator: over-allocate and
 * keep the original pointer just before the aligned block. */
float *ns_floats_alloc(ns_ctx *ctx, int64_t count) {
  if (ns_check_tensor_size(ctx, count, "tensor") != NS_OK) return NULL;
  size_t bytes = (size_t)count * sizeof(float) + 64 + sizeof(void *);
  unsigned char *raw = ns_alloc(ctx, bytes);
  if (!raw) return NULL;
  uintptr_t p = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
  ((void **)p)[-1] = raw;
#ifdef MADV_HUGEPAGE
  /* Big tensors (fc weights: 151 MB) on 2 MiB pages where the system
   * allows it: a fault per 2 MiB instead of per 4 KiB when first written
   * (loading), fewer TLB misses when streamed (fc forward).  A hint. */
  const uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t lo = (p + huge - 1) & ~(huge - 1), hi = (p + (size_t)count * sizeof(float)) & ~(huge - 1);
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#endif
  return (float *)p;
}

void ns_floats_free(ns_ctx *ctx, float *p) {
  if (p) ns_free(ctx, ((void **)p)[-1]);
}

ns_blob *ns_blob_create(ns_ctx *ctx, const char *name) {
  ns_blob *b = ns_calloc(ctx, 1, sizeof *b);
  if (!b) return NULL;
  b->name = ns_strdup(ctx, name ? name : "");
  if (!b->name) {
    ns_free(ctx, b);
    return NULL;
  }
  /* A 0-axis blob holds one value: give it storage now, so that a blob no
   * layer shapes (an Input without a shape) is never read through NULL. */
  if (ns_blob_reshape(ctx, b, 0, NULL) != NS_OK) {
    ns_blob_destroy(ctx, b);
    return NULL;
  }
  return b;
}

void ns_blob_destroy(ns_ctx *ctx, ns_blob *b) {
  if (!b) return;
  if (!b->borrowed) ns_floats_free(ctx, b->data);
  ns_floats_free(ctx, b->diff);
  ns_free(ctx, b->name);
  ns_free(ctx, b);
}

ns_status ns_blob_reshape(ns_ctx *ctx, ns_blob *b, int num_axes, const int64_t *shape) {
  if (num_axes < 0 || num_axes > NS_MAX_AXES)
    return ns_fail(ctx, NS_ERR_NET, "blob '%s': %d axes (at most %d)", b->name, num_axes,
                   NS_MAX_AXES);
  int64_t count = 1;
  for (int i = 0; i < num_axes; i++) {
    if (shape[i] < 0)
      return ns_fail(ctx, NS_ERR_NET, "blob '%s': negative dimension %lld at axis %d", b->name,
                     (long long)shape[i], i);
    if (!ns_mul_i64(count, shape[i], &count))
      return ns_fail(ctx, NS_ERR_NOMEM, "blob '%s': element count overflows", b->name);
  }
  if (ns_check_tensor_size(ctx, count, b->name) != NS_OK) return ctx->status;
  if (count > b->capacity || !b->data) { /* data is never NULL, even for 0 elements */
    float *data = ns_floats_alloc(ctx, count);
    if (!data) return ctx->status;
    memset(data, 0, (size_t)count * sizeof(float));
    if (!b->borrowed) ns_floats_free(ctx, b->data);
    b->borrowed = 0;
    b->data = data;
    if (b->diff) {
      ns_floats_free(ctx, b->diff);
      b->diff = NULL;
    }
    b->capacity = count;
  }
  b->num_axes = num_axes;
  for (int i = 0; i < num_axes; i++) b->shape[i] = shape[i];
  b->count = count;
  return NS_OK;
}

ns_status ns_blob_reshape_like(ns_ctx *ctx, ns_blob *b, const ns_blob *other) {
  return ns_blob_reshape(ctx, b, other->num_axes, other->shape);
}

ns_status ns_blob_alloc_diff(ns_ctx *ctx, ns_blob *b) {
  if (!b->diff) {
    b->diff = ns_floats_alloc(ctx, b->capacity > 0 ? b->capacity : 1);
    if (!b->diff) return ctx->status;
  }
  memset(b->diff, 0, (size_t)(b->capacity > 0 ? b->capacity : 1) * sizeof(float));
  return NS_OK;
}

ns_status ns_blob_axis(ns_ctx *ctx, const ns_blob *b, int axis, const char *what, int *out) {
  if (axis < -b->num_axes || axis >= b->num_axes)
    return ns_fail(ctx, NS_ERR_NET, "%s: axis %d out of range for blob '%s' with %d axes", what,
                   axis, b->name, b->num_axes);
  *out = axis < 0 ? axis + b->num_axes : axis;
  return NS_OK;
}

int64_t ns_blob_count_range(const ns_blob *b, int start, int end) {
  int64_t c = 1;
  for (int i = start; i < end && i < b->num_axes; i++) c *= b->shape[i];
  return c;
}

int ns_blob_same_shape(const ns_blob *a, const ns_blob *b) {
  if (a->num_axes != b->num_axes) return 0;
  for (int i = 0; i < a->num_axes; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

const char *ns_shape_str(const int64_t *shape, int num_axes, char *buf, size_t size) {
  size_t n = 0;
  if (size == 0) return buf;
  buf[0] = '\0';
  n += (size_t)snprintf(buf + n, size - n, "(");
  for (int i = 0; i < num_axes && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (n < size) n += (size_t)snprintf(buf + n, size - n, num_axes == 1 ? ",)" : ")");
  return buf;
}

ns_status ns_blob_ensure_diff(ns_ctx *ctx, ns_blob *b) {
  if (b->diff) return NS_OK;
  return ns_blob_alloc_diff(ctx, b);
}

ns_status ns_floats_save(ns_ctx *ctx, float **buf, int64_t *cap, const float *src, int64_t count) {
  if (count > *cap) {
    float *p = ns_floats_alloc(ctx, count);
    if (!p) return ctx->status;
    ns_floats_free(ctx, *buf);
    *buf = p;
    *cap = count;
  }
  if (count) memcpy(*buf, src, (size_t)count * sizeof(float));
  return NS_OK;
}
