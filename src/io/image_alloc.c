/* Image sizes and buffers: what the decoders and image.c share, below
 * both so that neither includes the other. */
#include "io/image_alloc.h"

#include <string.h>

#include "core/blob.h"

ns_status ns_image_check_dims(ns_ctx *ctx, const char *name, int64_t width, int64_t height,
                              int64_t bytes_per_pixel, size_t *raw_bytes) {
  if (width < 1 || height < 1 || width > NS_IMAGE_MAX_DIM || height > NS_IMAGE_MAX_DIM)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: image size %lldx%lld is outside 1..%d", name,
                   (long long)width, (long long)height, NS_IMAGE_MAX_DIM);
  int64_t pixels = width * height, floats, bytes; /* < 2^30: no overflow */
  if (!ns_mul_i64(pixels, 3, &floats) || ns_check_tensor_size(ctx, floats, name) != NS_OK)
    return ctx->status;
  if (!ns_mul_i64(pixels, bytes_per_pixel, &bytes) || (uint64_t)bytes > SIZE_MAX / 2)
    return ns_fail(ctx, NS_ERR_NOMEM, "%s: image too large", name);
  *raw_bytes = (size_t)bytes;
  return NS_OK;
}

ns_status ns_image_alloc(ns_ctx *ctx, int height, int width, int channels, ns_image *out) {
  memset(out, 0, sizeof *out);
  int64_t count;
  if (height < 1 || width < 1 || channels < 1 || !ns_mul_i64(height, width, &count) ||
      !ns_mul_i64(count, channels, &count))
    return ns_fail(ctx, NS_ERR_USAGE, "bad image size %dx%dx%d", height, width, channels);
  out->data = ns_floats_alloc(ctx, count);
  if (!out->data) return ctx->status;
  memset(out->data, 0, (size_t)count * sizeof(float));
  out->height = height;
  out->width = width;
  out->channels = channels;
  return NS_OK;
}

void ns_image_free(ns_ctx *ctx, ns_image *im) {
  if (!im) return;
  ns_floats_free(ctx, im->data);
  memset(im, 0, sizeof *im);
}
