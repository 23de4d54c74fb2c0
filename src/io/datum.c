/* Datum records and Caffe's OpenCV view of an image (see io/datum.h).
 * A Datum is either raw (channels, height, width and data: c*h*w bytes,
 * BGR channel-major, or the same count of float_data) or encoded (data:
 * a JPEG/PNG file's bytes), as Caffe's CVMatToDatum / ReadFileToDatum
 * write them. */
#include "io/datum.h"

#include <math.h>
#include <string.h>

#include "caffe.pb-c.h"
#include "core/blob.h"

/* The two source samples of output sample o (of n in, scale in/out) and
 * the second one's weight, clamped to the edges (cv::resize's taps). */
static void linear_taps(int o, double scale, int n, int *i0, int *i1, double *a) {
  double f = (o + 0.5) * scale - 0.5;
  *i0 = (int)floor(f);
  *a = f - *i0;
  if (*i0 < 0) *i0 = 0, *a = 0;
  if (*i0 >= n - 1) *i0 = n - 1, *a = 0;
  *i1 = *i0 + 1 < n ? *i0 + 1 : *i0;
}

void ns_cv_resize_linear(const float *src, int ih, int iw, int c, float *dst, int oh, int ow) {
  double sy = (double)ih / oh, sx = (double)iw / ow;
  for (int y = 0; y < oh; y++) {
    int y0, y1;
    double ay;
    linear_taps(y, sy, ih, &y0, &y1, &ay);
    for (int x = 0; x < ow; x++) {
      int x0, x1;
      double ax;
      linear_taps(x, sx, iw, &x0, &x1, &ax);
      for (int k = 0; k < c; k++) {
        double v = (1 - ay) * ((1 - ax) * src[((size_t)y0 * iw + x0) * c + k] +
                               ax * src[((size_t)y0 * iw + x1) * c + k]) +
                   ay * ((1 - ax) * src[((size_t)y1 * iw + x0) * c + k] +
                         ax * src[((size_t)y1 * iw + x1) * c + k]);
        v = floor(v + 0.5);
        dst[((size_t)y * ow + x) * c + k] = (float)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  }
}

ns_status ns_caffe_image(ns_ctx *ctx, const ns_image *im, int color, int new_h, int new_w,
                         int *oh, int *ow, float **out) {
  int c = color ? 3 : 1;
  int64_t n = (int64_t)im->height * im->width;
  float *px = ns_floats_alloc(ctx, n * c);
  if (!px) return ctx->status;
  for (int64_t i = 0; i < n; i++) {
    const float *s = im->data + i * im->channels;
    float r = roundf(s[0] * 255), g = roundf(s[1] * 255), b = roundf(s[2] * 255);
    if (c == 3) {
      px[i * 3] = b, px[i * 3 + 1] = g, px[i * 3 + 2] = r;
    } else {
      px[i] = roundf(0.299f * r + 0.587f * g + 0.114f * b);
    }
  }
  int h = im->height, w = im->width;
  if (new_h > 0) {
    float *rs = ns_floats_alloc(ctx, (int64_t)new_h * new_w * c);
    if (!rs) {
      ns_floats_free(ctx, px);
      return ctx->status;
    }
    ns_cv_resize_linear(px, h, w, c, rs, new_h, new_w);
    ns_floats_free(ctx, px);
    px = rs, h = new_h, w = new_w;
  }
  float *chw = ns_floats_alloc(ctx, (int64_t)h * w * c);
  if (!chw) {
    ns_floats_free(ctx, px);
    return ctx->status;
  }
  for (int k = 0; k < c; k++)
    for (int64_t i = 0; i < (int64_t)h * w; i++) chw[k * (int64_t)h * w + i] = px[i * c + k];
  ns_floats_free(ctx, px);
  *oh = h, *ow = w, *out = chw;
  return NS_OK;
}

/* The component count of a JPEG's frame header (SOFn), 0 if none. */
static int jpeg_components(const unsigned char *p, size_t n) {
  size_t i = 2;
  while (i + 4 <= n && p[i] == 0xFF) {
    unsigned m = p[i + 1], len = (unsigned)p[i + 2] << 8 | p[i + 3];
    int sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) return i + 9 < n ? p[i + 9] : 0;
    if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) {
      i += 2;
      continue;
    }
    i += 2 + len;
  }
  return 0;
}

int ns_encoded_is_grey(const unsigned char *p, size_t n) {
  if (n >= 26 && p[0] == 0x89 && p[1] == 'P') return p[25] == 0 || p[25] == 4;
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8) return jpeg_components(p, n) == 1;
  return 0;
}

static ns_status decode_encoded(ns_ctx *ctx, const Caffe__Datum *d, const char *name, int mode,
                                ns_datum_sample *out) {
  const unsigned char *bytes = d->data.data;
  size_t size = d->data.len;
  int color = mode == NS_DATUM_COLOR || (mode == NS_DATUM_NATIVE && !ns_encoded_is_grey(bytes, size));
  ns_image im;
  if (ns_image_decode(ctx, bytes, size, name, 0, &im) != NS_OK) return ctx->status;
  ns_status st = ns_caffe_image(ctx, &im, color, 0, 0, &out->height, &out->width, &out->data);
  ns_image_free(ctx, &im);
  out->channels = color ? 3 : 1;
  return st;
}

static ns_status decode_raw(ns_ctx *ctx, const Caffe__Datum *d, const char *name,
                            ns_datum_sample *out) {
  int64_t count;
  if (d->channels < 1 || d->height < 1 || d->width < 1 ||
      !ns_mul_i64((int64_t)d->channels * d->height, d->width, &count))
    return ns_fail(ctx, NS_ERR_INPUT, "Datum %s: bad shape %d x %d x %d", name, d->channels,
                   d->height, d->width);
  int bytes = d->has_data && d->data.len > 0;
  if (bytes ? (int64_t)d->data.len != count : (int64_t)d->n_float_data != count)
    return ns_fail(ctx, NS_ERR_INPUT, "Datum %s: %zu %s for %d x %d x %d", name,
                   bytes ? d->data.len : d->n_float_data, bytes ? "bytes" : "float_data values",
                   d->channels, d->height, d->width);
  /* count now equals a length inside the record: no huge allocation */
  out->data = ns_floats_alloc(ctx, count);
  if (!out->data) return ctx->status;
  for (int64_t i = 0; i < count; i++) out->data[i] = bytes ? d->data.data[i] : d->float_data[i];
  out->channels = d->channels, out->height = d->height, out->width = d->width;
  return NS_OK;
}

ns_status ns_datum_decode(ns_ctx *ctx, const void *bytes, size_t size, const char *name, int mode,
                          ns_datum_sample *out) {
  memset(out, 0, sizeof *out);
  Caffe__Datum *d = caffe__datum__unpack(NULL, size, bytes);
  if (!d) return ns_fail(ctx, NS_ERR_INPUT, "Datum %s: not a Datum record (%zu bytes)", name, size);
  out->label = d->label;
  ns_status st = d->encoded ? decode_encoded(ctx, d, name, mode, out)
                            : decode_raw(ctx, d, name, out);
  caffe__datum__free_unpacked(d, NULL);
  if (st != NS_OK) ns_datum_sample_free(ctx, out);
  return st;
}

void ns_datum_sample_free(ns_ctx *ctx, ns_datum_sample *s) {
  ns_floats_free(ctx, s->data);
  s->data = NULL;
}
