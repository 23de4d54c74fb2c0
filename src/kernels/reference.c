#include "kernels/reference.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

void ns_ref_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a,
                 const float *b, float *c) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double acc = 0;
      for (int64_t p = 0; p < k; p++) {
        double av = trans_a ? a[p * m + i] : a[i * k + p];
        double bv = trans_b ? b[j * k + p] : b[p * n + j];
        acc += av * bv;
      }
      c[i * n + j] = (float)acc;
    }
}

/* x value at (c, h, w), 0 outside the image. */
static double pixel(const float *x, int64_t height, int64_t width, int64_t c, int64_t h,
                    int64_t w) {
  if (h < 0 || h >= height || w < 0 || w >= width) return 0.0;
  return x[(c * height + h) * width + w];
}

void ns_ref_conv2d(const ns_conv2d_shape *s, const float *w, const float *bias, const float *x,
                   float *y) {
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  for (int64_t o = 0; o < s->num_output; o++) {
    int64_t g = o / og;
    for (int64_t oh = 0; oh < s->out_h; oh++)
      for (int64_t ow = 0; ow < s->out_w; ow++) {
        double acc = bias ? bias[o] : 0.0;
        for (int64_t ci = 0; ci < cg; ci++)
          for (int ki = 0; ki < s->kernel_h; ki++)
            for (int kj = 0; kj < s->kernel_w; kj++) {
              int64_t h = oh * s->stride_h - s->pad_h + (int64_t)ki * s->dilation_h;
              int64_t ww = ow * s->stride_w - s->pad_w + (int64_t)kj * s->dilation_w;
              double wv = w[((o * cg + ci) * s->kernel_h + ki) * s->kernel_w + kj];
              acc += wv * pixel(x, s->height, s->width, g * cg + ci, h, ww);
            }
        y[(o * s->out_h + oh) * s->out_w + ow] = (float)acc;
      }
  }
}

/* Every (output, tap) pair once, as in ns_ref_conv2d, its product's
 * derivatives scattered: d/dx of w x is w, d/dw is x.  Taps in the
 * padding carry nothing. */
void ns_ref_conv2d_backward(const ns_conv2d_shape *s, const float *w, const float *x,
                            const float *dy, float *dx, float *dw) {
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  int64_t taps = (int64_t)s->kernel_h * s->kernel_w;
  int64_t xcount = s->channels * s->height * s->width, wcount = s->num_output * cg * taps;
  double *ax = calloc((size_t)xcount, sizeof *ax), *aw = calloc((size_t)wcount, sizeof *aw);
  if (!ax || !aw) { /* NaN fails every comparison: the test reports it */
    for (int64_t i = 0; i < xcount; i++) dx[i] = NAN;
    for (int64_t i = 0; i < wcount; i++) dw[i] = NAN;
    free(ax);
    free(aw);
    return;
  }
  for (int64_t o = 0; o < s->num_output; o++)
    for (int64_t oh = 0; oh < s->out_h; oh++)
      for (int64_t ow = 0; ow < s->out_w; ow++) {
        double g = dy[(o * s->out_h + oh) * s->out_w + ow];
        for (int64_t ci = 0; ci < cg; ci++)
          for (int ki = 0; ki < s->kernel_h; ki++)
            for (int kj = 0; kj < s->kernel_w; kj++) {
              int64_t h = oh * s->stride_h - s->pad_h + (int64_t)ki * s->dilation_h;
              int64_t ww = ow * s->stride_w - s->pad_w + (int64_t)kj * s->dilation_w;
              if (h < 0 || h >= s->height || ww < 0 || ww >= s->width) continue;
              int64_t xi = ((o / og * cg + ci) * s->height + h) * s->width + ww;
              int64_t wi = (o * cg + ci) * taps + (int64_t)ki * s->kernel_w + kj;
              ax[xi] += w[wi] * g;
              aw[wi] += x[xi] * g;
            }
      }
  for (int64_t i = 0; i < xcount; i++) dx[i] = (float)ax[i];
  for (int64_t i = 0; i < wcount; i++) dw[i] = (float)aw[i];
  free(ax);
  free(aw);
}

static int inside(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v < hi; }

/* One output of one plane. */
static float pool_one(const ns_pool2d_shape *s, ns_pool_method m, const float *x, int64_t ph,
                      int64_t pw) {
  double best = -DBL_MAX, sum = 0, sumsq = 0;
  int64_t in_padded = 0; /* window positions inside [-pad, size + pad) */
  int any = 0;
  int64_t h0 = ph * s->stride_h - (m == NS_POOL_STOCHASTIC ? 0 : s->pad_h);
  int64_t w0 = pw * s->stride_w - (m == NS_POOL_STOCHASTIC ? 0 : s->pad_w);
  for (int ki = 0; ki < s->kernel_h; ki++)
    for (int kj = 0; kj < s->kernel_w; kj++) {
      int64_t h = h0 + ki, w = w0 + kj;
      if (inside(h, -s->pad_h, s->height + s->pad_h) && inside(w, -s->pad_w, s->width + s->pad_w))
        in_padded++;
      if (!inside(h, 0, s->height) || !inside(w, 0, s->width)) continue;
      double v = x[h * s->width + w];
      if (!any || v > best) best = v;
      any = 1;
      sum += v;
      sumsq += v * v;
    }
  if (m == NS_POOL_MAX) return any ? (float)best : -FLT_MAX;
  if (m == NS_POOL_AVE) return (float)(sum / (double)in_padded);
  return sum == 0 ? 0.0f : (float)(sumsq / sum);
}

void ns_ref_pool2d(const ns_pool2d_shape *s, ns_pool_method m, const float *x, float *y) {
  for (int64_t p = 0; p < s->planes; p++)
    for (int64_t ph = 0; ph < s->out_h; ph++)
      for (int64_t pw = 0; pw < s->out_w; pw++)
        y[(p * s->out_h + ph) * s->out_w + pw] =
            pool_one(s, m, x + p * s->height * s->width, ph, pw);
}

void ns_ref_lrn_across(int64_t channels, int64_t spatial, int size, float alpha, float beta,
                       float k, const float *x, float *y) {
  int64_t half = (size - 1) / 2;
  for (int64_t c = 0; c < channels; c++)
    for (int64_t j = 0; j < spatial; j++) {
      double sum = 0;
      for (int64_t q = c - half; q <= c + half; q++)
        if (inside(q, 0, channels)) sum += (double)x[q * spatial + j] * x[q * spatial + j];
      double scale = k + alpha / size * sum;
      y[c * spatial + j] = (float)(x[c * spatial + j] * pow(scale, -beta));
    }
}

void ns_ref_lrn_within(int64_t planes, int64_t height, int64_t width, int size, float alpha,
                       float beta, const float *x, float *y) {
  int64_t half = (size - 1) / 2;
  for (int64_t p = 0; p < planes; p++)
    for (int64_t h = 0; h < height; h++)
      for (int64_t w = 0; w < width; w++) {
        double sum = 0;
        for (int64_t a = h - half; a <= h + half; a++)
          for (int64_t b = w - half; b <= w + half; b++) {
            double v = pixel(x, height, width, p, a, b);
            sum += v * v;
          }
        double scale = 1.0 + alpha * sum / ((double)size * size);
        int64_t i = (p * height + h) * width + w;
        y[i] = (float)(x[i] * pow(scale, -beta));
      }
}

void ns_ref_softmax(int64_t outer, int64_t channels, int64_t inner, const float *x, float *y) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      const float *xp = x + o * channels * inner + j;
      float *yp = y + o * channels * inner + j;
      double mx = -INFINITY, sum = 0;
      for (int64_t c = 0; c < channels; c++) mx = fmax(mx, xp[c * inner]);
      for (int64_t c = 0; c < channels; c++) sum += exp(xp[c * inner] - mx);
      for (int64_t c = 0; c < channels; c++) yp[c * inner] = (float)(exp(xp[c * inner] - mx) / sum);
    }
}
