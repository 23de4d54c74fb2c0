/* caffe.io.resize_image(im, new_dims, interp_order=1), as run with
 * scikit-image 0.19 and SciPy 1.10:
 *
 *   std = (im - min) / (max - min)                        float32
 *   resize(std, new_dims, order=1, mode='constant'):
 *     anti-aliasing (when shrinking): ndi.gaussian_filter, per axis
 *       sigma = max(0, (in/out - 1) / 2), truncate 4, zeros outside;
 *     ndi.zoom(order=1, mode='grid-constant', grid_mode=True):
 *       source coordinate (o + 0.5) * in/out - 0.5, linear interpolation,
 *       samples outside the image are 0 (so enlarging darkens the border);
 *     clip to [0, 1]
 *   std * (max - min) + min                               float32
 *
 * The arithmetic follows SciPy's loops (double accumulators, float32
 * between the passes, the same summation order) so results match pycaffe
 * to the last bit or close to it.  pycaffe sends images with other than 1
 * or 3 channels to ndimage.zoom without the normalisation; we use the
 * path above for every channel count. */
#include <math.h>
#include <string.h>

#include "core/blob.h"
#include "core/fileio.h"

#define GAUSS_TRUNCATE 4.0

/* numpy's pairwise summation (np.sum of float64), for the kernel norm. */
static double pairwise_sum(const double *a, int64_t n) {
  if (n < 8) {
    double res = 0.0;
    for (int64_t i = 0; i < n; i++) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    int64_t i;
    for (int k = 0; k < 8; k++) r[k] = a[k];
    for (i = 8; i < n - (n % 8); i += 8)
      for (int k = 0; k < 8; k++) r[k] += a[i + k];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* scipy.ndimage._gaussian_kernel1d(sigma, 0, radius): 2 * radius + 1
 * weights, normalised to sum 1. */
static void gaussian_kernel(double sigma, int radius, double *w) {
  double sigma2 = sigma * sigma, scale = -0.5 / sigma2;
  for (int i = -radius; i <= radius; i++) w[i + radius] = exp(scale * (double)(i * i));
  double sum = pairwise_sum(w, 2 * radius + 1);
  for (int i = 0; i <= 2 * radius; i++) w[i] = w[i] / sum;
}

/* One pass of ndi.correlate1d with a symmetric kernel and zeros outside,
 * over `lines` lines of `len` samples each: sample k of line l is at
 * data[l_offset(l) + k * stride].  Lines are enumerated by (outer, inner):
 * offset = outer * outer_stride + inner. */
typedef struct line_set {
  int64_t len, stride;
  int64_t outer, outer_stride, inner;
} line_set;

static void smooth_lines(float *data, const line_set *ls, const double *w, int radius,
                         double *buf) {
  const double *fw = w + radius; /* centre tap */
  double *line = buf + radius;   /* zero-padded copy of one line */
  double *out = buf + ls->len + 2 * radius;
  for (int i = 0; i < radius; i++) buf[i] = line[ls->len + i] = 0.0;
  for (int64_t o = 0; o < ls->outer; o++)
    for (int64_t in = 0; in < ls->inner; in++) {
      float *p = data + o * ls->outer_stride + in;
      for (int64_t k = 0; k < ls->len; k++) line[k] = p[k * ls->stride];
      for (int64_t k = 0; k < ls->len; k++) {
        const double *x = line + k;
        double acc = x[0] * fw[0];
        for (int j = -radius; j < 0; j++) acc += (x[j] + x[-j]) * fw[j];
        out[k] = acc;
      }
      for (int64_t k = 0; k < ls->len; k++) p[k * ls->stride] = (float)out[k];
    }
}

/* ndi.gaussian_filter1d(sigma, axis, mode='constant', truncate=4) in place
 * on an h x w x c float image, axis 0 (rows) or 1 (columns). */
static ns_status gaussian_axis(ns_ctx *ctx, float *data, int h, int w, int c, int axis,
                               double sigma) {
  if (!(sigma > 1e-15)) return NS_OK; /* SciPy skips such axes */
  int radius = (int)(GAUSS_TRUNCATE * sigma + 0.5);
  line_set ls;
  if (axis == 0)
    ls = (line_set){h, (int64_t)w * c, 1, 0, (int64_t)w * c};
  else
    ls = (line_set){w, c, h, (int64_t)w * c, c};
  double *kernel = ns_calloc(ctx, (size_t)(2 * radius + 1), sizeof(double));
  double *buf = kernel ? ns_calloc(ctx, (size_t)(2 * ls.len + 2 * radius), sizeof(double)) : NULL;
  if (buf) {
    gaussian_kernel(sigma, radius, kernel);
    smooth_lines(data, &ls, kernel, radius, buf);
  }
  ns_free(ctx, kernel);
  ns_free(ctx, buf);
  return buf ? NS_OK : ctx->status;
}

/* Linear interpolation taps for one output index along one axis. */
typedef struct tap {
  int64_t i0;    /* first source index (may be -1) */
  double w0, w1; /* weights of i0 and i0 + 1 */
  int in0, in1;  /* whether i0, i0 + 1 lie inside the image */
} tap;

/* ndi.zoom's coordinate mapping with grid_mode=True and SciPy's order-1
 * spline weights (w1 = 1 - w0, as SciPy computes it). */
static void make_taps(int in, int out, tap *t) {
  double zoom = (double)in / (double)out;
  for (int o = 0; o < out; o++) {
    double cc = (double)o;
    cc += 0.5;
    cc *= zoom;
    cc -= 0.5;
    double fl = floor(cc);
    t[o].i0 = (int64_t)fl;
    t[o].w0 = 1.0 - (cc - fl);
    t[o].w1 = 1.0 - t[o].w0;
    t[o].in0 = t[o].i0 >= 0 && t[o].i0 < in;
    t[o].in1 = t[o].i0 + 1 >= 0 && t[o].i0 + 1 < in;
  }
}

static void interpolate(const float *src, int w, int c, const tap *ty, const tap *tx, int oh,
                        int ow, float *dst) {
  int64_t row = (int64_t)w * c;
  for (int oy = 0; oy < oh; oy++) {
    const tap *y = &ty[oy];
    int64_t r0 = y->i0 * row, r1 = r0 + row; /* used only when inside */
    for (int ox = 0; ox < ow; ox++) {
      const tap *x = &tx[ox];
      int64_t c0 = x->i0 * c, c1 = c0 + c;
      for (int ch = 0; ch < c; ch++) {
        /* Taps in SciPy's order; samples outside the image are 0. */
        double v00 = y->in0 && x->in0 ? src[r0 + c0 + ch] : 0.0;
        double v01 = y->in0 && x->in1 ? src[r0 + c1 + ch] : 0.0;
        double v10 = y->in1 && x->in0 ? src[r1 + c0 + ch] : 0.0;
        double v11 = y->in1 && x->in1 ? src[r1 + c1 + ch] : 0.0;
        double t = 0.0;
        t += v00 * y->w0 * x->w0;
        t += v01 * y->w0 * x->w1;
        t += v10 * y->w1 * x->w0;
        t += v11 * y->w1 * x->w1;
        float f = (float)t;
        dst[((int64_t)oy * ow + ox) * c + ch] = f < 0.0f ? 0.0f : f > 1.0f ? 1.0f : f;
      }
    }
  }
}

/* Smallest and largest value; NaN if any value is NaN (as numpy). */
static void value_range(const float *v, int64_t n, float *lo, float *hi) {
  float mn = v[0], mx = v[0];
  for (int64_t i = 0; i < n; i++) {
    if (isnan(v[i])) {
      *lo = *hi = v[i];
      return;
    }
    if (v[i] < mn) mn = v[i];
    if (v[i] > mx) mx = v[i];
  }
  *lo = mn;
  *hi = mx;
}

/* skimage.transform.resize on values in [0, 1]: smoothing, zoom, clip. */
static ns_status resize_unit(ns_ctx *ctx, float *std, int h, int w, int c, int antialias,
                             ns_image *out) {
  if (antialias) {
    double sy = ((double)h / out->height - 1.0) / 2.0, sx = ((double)w / out->width - 1.0) / 2.0;
    if (gaussian_axis(ctx, std, h, w, c, 0, sy > 0 ? sy : 0) != NS_OK ||
        gaussian_axis(ctx, std, h, w, c, 1, sx > 0 ? sx : 0) != NS_OK)
      return ctx->status;
  }
  tap *ty = ns_calloc(ctx, (size_t)out->height, sizeof(tap));
  tap *tx = ty ? ns_calloc(ctx, (size_t)out->width, sizeof(tap)) : NULL;
  if (tx) {
    make_taps(h, out->height, ty);
    make_taps(w, out->width, tx);
    interpolate(std, w, c, ty, tx, out->height, out->width, out->data);
  }
  ns_free(ctx, ty);
  ns_free(ctx, tx);
  return tx ? NS_OK : ctx->status;
}

ns_status ns_image_resize(ns_ctx *ctx, const ns_image *in, int height, int width, int antialias,
                          ns_image *out) {
  memset(out, 0, sizeof *out);
  if (!in || !in->data || in->height < 1 || in->width < 1 || in->channels < 1)
    return ns_fail(ctx, NS_ERR_USAGE, "resize: empty input image");
  if (height < 1 || width < 1 || height > NS_IMAGE_MAX_DIM || width > NS_IMAGE_MAX_DIM)
    return ns_fail(ctx, NS_ERR_USAGE, "resize: output size %dx%d is outside 1..%d", width, height,
                   NS_IMAGE_MAX_DIM);
  if (ns_image_alloc(ctx, height, width, in->channels, out) != NS_OK) return ctx->status;
  int64_t n = (int64_t)in->height * in->width * in->channels;
  int64_t on = (int64_t)height * width * in->channels;
  float lo, hi;
  value_range(in->data, n, &lo, &hi);
  if (!(hi > lo)) { /* constant image (or NaN): filled, as resize_image does */
    for (int64_t i = 0; i < on; i++) out->data[i] = lo;
    return NS_OK;
  }
  float *std = ns_floats_alloc(ctx, n);
  if (!std) {
    ns_image_free(ctx, out);
    return ctx->status;
  }
  float range = hi - lo;
  for (int64_t i = 0; i < n; i++) std[i] = (in->data[i] - lo) / range;
  ns_status st = resize_unit(ctx, std, in->height, in->width, in->channels, antialias, out);
  ns_floats_free(ctx, std);
  if (st != NS_OK) {
    ns_image_free(ctx, out);
    return st;
  }
  for (int64_t i = 0; i < on; i++) {
    float scaled = out->data[i] * range;
    out->data[i] = scaled + lo;
  }
  return NS_OK;
}
