/* pycaffe's Transformer.preprocess for one image:
 *
 *   if im.shape[:2] != input HxW: im = resize_image(im, (H, W))
 *   x = im.transpose(2, 0, 1)[channel_swap]      # HWC -> CHW, e.g. RGB -> BGR
 *   x *= raw_scale; x -= mean; x *= input_scale  # in float32, mean in float64
 *
 * The mean is per channel or a (C, H, W) image.  Recent pycaffe refuses a
 * mean image whose H x W differ from the input; Caffe 1.0's set_mean (and
 * the seed's notebook, with ilsvrc_2012_mean.npy at 256 x 256) resized it:
 * normalise by its min and max, resize_image, scale back.  We do the
 * latter, with the same anti-aliasing setting as the image. */
#include <string.h>

#include "core/blob.h"

void ns_transform_init(ns_transform *t) {
  memset(t, 0, sizeof *t);
  t->raw_scale = 1.0;
  t->input_scale = 1.0;
  t->antialias = 1;
}

ns_status ns_transform_set_mean(ns_ctx *ctx, ns_transform *t, const ns_ndarray *mean,
                                int channel_average) {
  t->num_mean_values = 0;
  t->mean_image = NULL;
  if (!mean || (mean->num_axes != 1 && mean->num_axes != 3) || mean->count < 1 ||
      mean->shape[0] < 1 || mean->shape[0] > NS_TRANSFORM_MAX_CHANNELS)
    return ns_fail(ctx, NS_ERR_USAGE, "mean: expected shape (C,) or (C, H, W) with C <= %d",
                   NS_TRANSFORM_MAX_CHANNELS);
  if (mean->num_axes == 3 && !channel_average) {
    t->mean_image = mean;
    return NS_OK;
  }
  /* Each channel's values are contiguous (C-order); summed in double. */
  int channels = (int)mean->shape[0];
  int64_t per = mean->count / channels;
  for (int c = 0; c < channels; c++) {
    double sum = 0;
    for (int64_t i = 0; i < per; i++) sum += mean->data[c * per + i];
    t->mean_values[c] = sum / (double)per;
  }
  t->num_mean_values = channels;
  return NS_OK;
}

/* The HWC image transposed to CHW (no resizing), as a (C, H, W) array. */
static void hwc_to_chw(const float *src, int h, int w, int c, float *dst) {
  for (int ch = 0; ch < c; ch++)
    for (int64_t i = 0; i < (int64_t)h * w; i++) dst[ch * (int64_t)h * w + i] = src[i * c + ch];
}

ns_status ns_mean_resize(ns_ctx *ctx, const ns_ndarray *mean, int height, int width, int antialias,
                         ns_ndarray *out) {
  memset(out, 0, sizeof *out);
  if (mean->num_axes != 3 || mean->shape[0] < 1 || mean->shape[1] < 1 || mean->shape[2] < 1 ||
      mean->shape[0] > NS_TRANSFORM_MAX_CHANNELS || mean->shape[1] > NS_IMAGE_MAX_DIM ||
      mean->shape[2] > NS_IMAGE_MAX_DIM)
    return ns_fail(ctx, NS_ERR_USAGE, "mean image: expected shape (C, H, W)");
  int c = (int)mean->shape[0], h = (int)mean->shape[1], w = (int)mean->shape[2];
  ns_image hwc, resized;
  if (ns_image_alloc(ctx, h, w, c, &hwc) != NS_OK) return ctx->status;
  for (int ch = 0; ch < c; ch++)
    for (int64_t i = 0; i < (int64_t)h * w; i++)
      hwc.data[i * c + ch] = mean->data[ch * (int64_t)h * w + i];
  ns_status st = ns_image_resize(ctx, &hwc, height, width, antialias, &resized);
  ns_image_free(ctx, &hwc);
  if (st != NS_OK) return st;
  out->data = ns_floats_alloc(ctx, (int64_t)c * height * width);
  if (out->data) {
    out->num_axes = 3;
    out->shape[0] = c;
    out->shape[1] = height;
    out->shape[2] = width;
    out->count = (int64_t)c * height * width;
    hwc_to_chw(resized.data, height, width, c, out->data);
  }
  ns_image_free(ctx, &resized);
  return out->data ? NS_OK : ctx->status;
}

static ns_status check_transform(ns_ctx *ctx, const ns_transform *t, int channels) {
  if (t->num_swap) {
    if (t->num_swap != channels)
      return ns_fail(ctx, NS_ERR_USAGE, "channel swap has %d entries for %d channels", t->num_swap,
                     channels);
    for (int i = 0; i < t->num_swap; i++)
      if (t->channel_swap[i] < 0 || t->channel_swap[i] >= channels)
        return ns_fail(ctx, NS_ERR_USAGE, "channel swap entry %d is out of range",
                       t->channel_swap[i]);
  }
  if (t->num_mean_values && t->mean_image)
    return ns_fail(ctx, NS_ERR_USAGE, "give either mean values or a mean image, not both");
  if (t->num_mean_values && t->num_mean_values != channels)
    return ns_fail(ctx, NS_ERR_USAGE, "%d mean values for %d channels", t->num_mean_values,
                   channels);
  const ns_ndarray *m = t->mean_image;
  if (m && (m->num_axes != 3 || m->shape[0] != channels))
    return ns_fail(ctx, NS_ERR_USAGE, "mean image of shape (C, H, W) with C = %d expected",
                   channels);
  return NS_OK;
}

/* Gets the mean image at height x width: borrowed when it already is,
 * else resized into *tmp. */
static ns_status mean_at(ns_ctx *ctx, const ns_transform *t, int height, int width, ns_ndarray *tmp,
                         const float **mean) {
  const ns_ndarray *m = t->mean_image;
  *mean = NULL;
  if (!m) return NS_OK;
  if (m->shape[1] == height && m->shape[2] == width) {
    *mean = m->data;
    return NS_OK;
  }
  if (ns_mean_resize(ctx, m, height, width, t->antialias, tmp) != NS_OK) return ctx->status;
  *mean = tmp->data;
  return NS_OK;
}

/* The per-element steps after resizing, in pycaffe's order and precision. */
static void transform_values(const ns_transform *t, const ns_image *im, const float *mean_image,
                             float *out) {
  int c = im->channels;
  int64_t plane = (int64_t)im->height * im->width;
  float raw = (float)t->raw_scale, in_scale = (float)t->input_scale;
  for (int ch = 0; ch < c; ch++) {
    int src = t->num_swap ? t->channel_swap[ch] : ch;
    for (int64_t i = 0; i < plane; i++) {
      float v = im->data[i * c + src];
      if (t->raw_scale != 1.0) v *= raw;
      if (mean_image)
        v = (float)((double)v - (double)mean_image[ch * plane + i]);
      else if (t->num_mean_values)
        v = (float)((double)v - t->mean_values[ch]);
      if (t->input_scale != 1.0) v *= in_scale;
      out[ch * plane + i] = v;
    }
  }
}

ns_status ns_transform_preprocess(ns_ctx *ctx, const ns_transform *t, const ns_image *im,
                                  int height, int width, float *out, int64_t out_count) {
  if (!im || !im->data || im->channels < 1)
    return ns_fail(ctx, NS_ERR_USAGE, "preprocess: empty image");
  if (height < 1 || width < 1)
    return ns_fail(ctx, NS_ERR_USAGE, "preprocess: bad input size %dx%d", width, height);
  if (check_transform(ctx, t, im->channels) != NS_OK) return ctx->status;
  int64_t need = (int64_t)im->channels * height * width;
  if (out_count < need)
    return ns_fail(ctx, NS_ERR_USAGE, "preprocess: output has room for %lld values, needs %lld",
                   (long long)out_count, (long long)need);
  ns_image resized = {0, 0, 0, NULL};
  const ns_image *src = im;
  if (im->height != height || im->width != width) {
    if (ns_image_resize(ctx, im, height, width, t->antialias, &resized) != NS_OK)
      return ctx->status;
    src = &resized;
  }
  ns_ndarray tmp_mean = {0};
  const float *mean = NULL;
  ns_status st = mean_at(ctx, t, height, width, &tmp_mean, &mean);
  if (st == NS_OK) transform_values(t, src, mean, out);
  ns_ndarray_free(ctx, &tmp_mean);
  ns_image_free(ctx, &resized);
  return st;
}
