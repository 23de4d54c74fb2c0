/* make bench-kernels: the forward kernels alone on the zoo's shapes, best
 * of N calls on 1 thread (the figures of the performance work in
 * bench/TRIED.md): our GEMM beside OpenBLAS's on ResNet's and MobileNet's
 * 1x1 products, the depthwise kernel on MobileNet's layers, MAX pooling
 * on the zoo's first pools, and the first convolutions over 3 channels
 * through their plan (bands of rows) beside the whole item's im2col. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/conv2d.h"
#include "kernels/conv_plan.h"
#include "kernels/pgemm.h"
#include "kernels/pool2d.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *filled(int64_t n, unsigned seed) {
  float *p = aligned_alloc(64, (size_t)((n + 16) / 16 * 16) * sizeof(float));
  if (!p) exit(1);
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  return p;
}

/* m x k by k x n (ResNet-50's and MobileNet's 1x1 layers at 224). */
static void gemm_shapes(void) {
  static const int shapes[][3] = {{64, 3136, 64},   {64, 3136, 256}, {256, 3136, 64},
                                  {128, 784, 512},  {512, 784, 128}, {256, 196, 1024},
                                  {1024, 196, 256}, {512, 49, 2048}, {2048, 49, 512},
                                  {64, 12544, 32},  {512, 196, 512}, {1024, 49, 1024}};
  float *scratch = filled(ns_gemm_scratch_floats(1), 1);
  printf("GEMM, 1 thread, best of 20 (GFLOP/s): ours, OpenBLAS\n");
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
    float *a = filled((int64_t)m * k, 2), *b = filled((int64_t)k * n, 3);
    float *c = filled((int64_t)m * n, 4);
    double ours = 1e9, blas = 1e9;
    for (int r = 0; r < 20; r++) {
      double t = now();
      ns_gemm(m, n, k, a, k, b, n, 0, c, n, NULL, scratch, 1);
      t = now() - t;
      ours = t < ours ? t : ours;
      t = now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
      t = now() - t;
      blas = t < blas ? t : blas;
    }
    double gflop = 2e-9 * m * n * k;
    printf("  %4d x %5d x %4d  %6.1f  %6.1f\n", m, n, k, gflop / ours, gflop / blas);
    free(a), free(b), free(c);
  }
  free(scratch);
}

/* A convolution through its plan (as a layer runs it), best of `reps`. */
static double plan_ms(const ns_conv2d_shape *s, int reps, float *whole_ms) {
  int64_t wc = (int64_t)s->num_output * (s->channels / s->group) * s->kernel_h * s->kernel_w;
  int64_t xc = s->channels * s->height * s->width, yc = s->num_output * s->out_h * s->out_w;
  float *w = filled(wc, 5), *x = filled(xc, 6), *y = filled(yc, 7),
        *bias = filled(s->num_output, 8);
  float *sc = filled(ns_conv2d_batch_scratch_count(s, 1, 0, 1), 9);
  ns_conv_epi epi = {NULL, bias, NULL, 1};
  double best = 1e9, whole = 1e9;
  for (int r = 0; r < reps; r++) {
    double t = now();
    ns_conv2d_batch(s, 1, w, NULL, &epi, x, y, sc, 1);
    t = now() - t;
    best = t < best ? t : best;
  }
  if (whole_ms) {
    float *col = filled(ns_conv2d_scratch_count(s, 1), 10);
    for (int r = 0; r < reps; r++) {
      double t = now();
      ns_conv2d(s, w, &epi, x, y, col, 1);
      t = now() - t;
      whole = t < whole ? t : whole;
    }
    *whole_ms = (float)(whole * 1e3);
    free(col);
  }
  free(w), free(x), free(y), free(bias), free(sc);
  return best * 1e3;
}

static ns_conv2d_shape conv_shape(int c, int hw, int out, int group, int k, int pad, int stride) {
  ns_conv2d_shape s = {c, hw, hw, out, group, k, k, pad, pad, stride, stride, 1, 1, 0, 0};
  s.out_h = s.out_w = (hw + 2 * pad - k) / stride + 1;
  return s;
}

/* MobileNet's depthwise layers (3x3, pad 1). */
static void depthwise_shapes(void) {
  static const int shapes[][3] = {{32, 112, 1}, {64, 112, 2}, {128, 56, 1},
                                  {256, 28, 2}, {512, 14, 1}, {1024, 7, 1}};
  printf("depthwise 3x3, 1 thread, best of 200 (us)\n");
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    int c = shapes[i][0], hw = shapes[i][1], st = shapes[i][2];
    ns_conv2d_shape s = conv_shape(c, hw, c, c, 3, 1, st);
    printf("  %4d x %3d x %3d stride %d  %7.1f\n", c, hw, hw, st, 1e3 * plan_ms(&s, 200, NULL));
  }
}

/* The first convolutions over 3 channels: ResNet's and the SSD's conv1
 * (7x7 stride 2), SqueezeNet's and MobileNet's (3x3 stride 2). */
static void first_convs(void) {
  ns_conv2d_shape shapes[] = {
      conv_shape(3, 224, 64, 1, 7, 3, 2), conv_shape(3, 300, 32, 1, 7, 3, 2),
      conv_shape(3, 227, 64, 1, 3, 0, 2), conv_shape(3, 224, 32, 1, 3, 1, 2)};
  printf("first convolutions, 1 thread, best of 30 (ms): plan, whole item's im2col\n");
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    float whole;
    double ms = plan_ms(&shapes[i], 30, &whole);
    printf("  3 x %3lld -> %2lld, %dx%d stride 2  %6.3f  %6.3f\n", (long long)shapes[i].height,
           (long long)shapes[i].num_output, shapes[i].kernel_h, shapes[i].kernel_w, ms, whole);
  }
}

/* MAX pooling without a mask: the zoo's first pools and an inception one. */
static void pools(void) {
  static const int shapes[][5] = {{64, 113, 3, 2, 0},
                                  {64, 112, 3, 2, 1},
                                  {32, 150, 3, 2, 0},
                                  {96, 55, 3, 2, 0},
                                  {480, 28, 3, 1, 1}};
  printf("MAX pooling, 1 thread, best of 200 (us)\n");
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    const int *p = shapes[i];
    ns_pool2d_shape s = {p[0], p[1], p[1], p[2], p[2], p[4], p[4], p[3], p[3], 0, 0};
    s.out_h = s.out_w = ns_pool_out_size(p[1], p[2], p[4], p[3], p[4] > 0, 0);
    float *x = filled(s.planes * s.height * s.width, 11),
          *y = filled(s.planes * s.out_h * s.out_w, 12);
    double best = 1e9;
    for (int r = 0; r < 200; r++) {
      double t = now();
      ns_pool2d(&s, NS_POOL_MAX, x, y, NULL, 1);
      t = now() - t;
      best = t < best ? t : best;
    }
    printf("  %3d x %3d x %3d %dx%d/%d pad %d  %7.1f\n", p[0], p[1], p[1], p[2], p[2], p[3], p[4],
           best * 1e6);
    free(x), free(y);
  }
}

int main(void) {
  openblas_set_num_threads(1);
  gemm_shapes();
  depthwise_shapes();
  first_convs();
  pools();
  return 0;
}
