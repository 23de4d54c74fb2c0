/* pycaffe's preprocessing, reproduced against the arrays pycaffe itself
 * made (conformance/preprocess: caffe.io.load_image + Transformer, Caffe
 * 1.0 with scikit-image 0.19.3, settings in settings.json there) from the
 * notebook's cat.jpg and cat_gray.jpg.  Needs the shared folder (NS_SHARED,
 * default ../shared); skips without it.  Pass: at most 1e-3 grey levels
 * (0..255 scale) off anywhere; every element is bit-exact today (December
 * 2026), and float32 rounding of values near 255 is 1.5e-5. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

#define MAX_ABS_TOL 1e-3

/* settings.json, "set_mean (per channel, B G R)": the channel averages
 * of ilsvrc_2012_mean.npy. */
static const double kMeanBGR[3] = {104.0069879317889, 116.66876761696767, 122.6789143406786};

typedef struct pre_case {
  const char *reference; /* in conformance/preprocess */
  const char *image;     /* in data */
  int size;
  int antialias;
  int color;
} pre_case;

static int exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Paths of the shared files; skips the test when any is missing. */
static const char *shared_or_skip(void) {
  const char *sd = tu_shared_dir();
  char p[1024];
  if (!sd || !exists(tu_path(p, sizeof p, sd, "conformance/preprocess/settings.json")) ||
      !exists(tu_path(p, sizeof p, sd, "data/cat.jpg")))
    return NULL;
  return sd;
}

static void run_case(const pre_case *pc) {
  const char *sd = shared_or_skip();
  if (!sd) skip();
  char ref_path[1024], img_path[1024], rel[256];
  snprintf(rel, sizeof rel, "conformance/preprocess/%s", pc->reference);
  tu_path(ref_path, sizeof ref_path, sd, rel);
  snprintf(rel, sizeof rel, "data/%s", pc->image);
  tu_path(img_path, sizeof img_path, sd, rel);
  ns_ctx *ctx = ns_ctx_create();
  ns_ndarray ref;
  ns_image im;
  if (ns_npy_load(ctx, ref_path, &ref) != NS_OK ||
      ns_image_load(ctx, img_path, pc->color ? 0 : NS_IMAGE_GREY, &im) != NS_OK)
    fail_msg("%s", ns_ctx_error(ctx));
  int channels = pc->color ? 3 : 1;
  assert_int_equal(ref.num_axes, 4);
  assert_int_equal(ref.shape[1], channels);
  assert_int_equal(ref.shape[2], pc->size);
  assert_int_equal(ref.shape[3], pc->size);

  ns_transform t;
  ns_transform_init(&t);
  t.antialias = pc->antialias;
  t.raw_scale = 255.0;
  if (pc->color) { /* set_channel_swap (2, 1, 0) and the per-channel mean */
    t.num_swap = 3;
    t.channel_swap[0] = 2, t.channel_swap[1] = 1, t.channel_swap[2] = 0;
    t.num_mean_values = 3;
    for (int c = 0; c < 3; c++) t.mean_values[c] = kMeanBGR[c];
  }
  float *out = malloc(sizeof(float) * (size_t)ref.count);
  if (ns_transform_preprocess(ctx, &t, &im, pc->size, pc->size, out, ref.count) != NS_OK)
    fail_msg("%s", ns_ctx_error(ctx));
  double max_abs = 0, sum = 0;
  int64_t exact = 0;
  for (int64_t i = 0; i < ref.count; i++) {
    double d = fabs((double)out[i] - ref.data[i]);
    if (!(d <= max_abs)) max_abs = d; /* NaN shows as NaN */
    sum += d;
    exact += out[i] == ref.data[i];
  }
  double mean_abs = sum / (double)ref.count;
  print_message("%s: max abs error %.6g, mean abs error %.6g grey levels, %lld of %lld equal\n",
                pc->reference, max_abs, mean_abs, (long long)exact, (long long)ref.count);
  assert_true(max_abs <= MAX_ABS_TOL);
  free(out);
  ns_image_free(ctx, &im);
  ns_ndarray_free(ctx, &ref);
  ns_ctx_destroy(ctx);
}

static void test_cat_227(void **state) {
  (void)state;
  const pre_case pc = {"cat_227_input.npy", "cat.jpg", 227, 1, 1};
  run_case(&pc);
}

static void test_cat_227_no_antialias(void **state) {
  (void)state;
  const pre_case pc = {"cat_227_input_no_antialias.npy", "cat.jpg", 227, 0, 1};
  run_case(&pc);
}

static void test_cat_451(void **state) {
  (void)state;
  const pre_case pc = {"cat_451_input.npy", "cat.jpg", 451, 1, 1};
  run_case(&pc);
}

static void test_cat_gray_100(void **state) {
  (void)state;
  const pre_case pc = {"cat_gray_100_input.npy", "cat_gray.jpg", 100, 1, 0};
  run_case(&pc);
}

/* Source coordinate of output index o when n samples become n_out:
 * scipy's zoom with grid_mode=True maps pixel edges onto pixel edges. */
static double source_coordinate(int o, int n, int n_out) {
  return ((double)o + 0.5) * (double)n / (double)n_out - 0.5;
}

/* The sample normalised to [0, 1] by lo and hi; 0 outside the plane. */
static double unit_or_zero(const float *plane, int h, int w, int y, int x, double lo, double hi) {
  if (y < 0 || y >= h || x < 0 || x >= w) return 0.0;
  return ((double)plane[(int64_t)y * w + x] - lo) / (hi - lo);
}

/* caffe.io.resize_image of the (C, H, W) mean, enlarging (no smoothing),
 * in double from its definition: normalise by the array's min and max,
 * ndimage.zoom(order=1, mode='grid-constant'): bilinear, samples outside
 * the image 0 (the border ring darkens), clip to [0, 1], scale back.
 * Compares every element of `resized` with it. */
static void check_enlarged_mean(const ns_ndarray *mean, const ns_ndarray *resized) {
  int c = (int)mean->shape[0], h = (int)mean->shape[1], w = (int)mean->shape[2];
  int oh = (int)resized->shape[1], ow = (int)resized->shape[2];
  assert_true(oh >= h && ow >= w);
  double lo = mean->data[0], hi = mean->data[0];
  for (int64_t i = 0; i < mean->count; i++) {
    lo = fmin(lo, mean->data[i]);
    hi = fmax(hi, mean->data[i]);
  }
  double max_abs = 0;
  for (int ch = 0; ch < c; ch++) {
    const float *plane = mean->data + (int64_t)ch * h * w;
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        double sy = source_coordinate(oy, h, oh), sx = source_coordinate(ox, w, ow);
        int y0 = (int)floor(sy), x0 = (int)floor(sx);
        double fy = sy - y0, fx = sx - x0, v = 0;
        for (int dy = 0; dy < 2; dy++)
          for (int dx = 0; dx < 2; dx++)
            v += (dy ? fy : 1 - fy) * (dx ? fx : 1 - fx) *
                 unit_or_zero(plane, h, w, y0 + dy, x0 + dx, lo, hi);
        double want = fmin(1.0, fmax(0.0, v)) * (hi - lo) + lo;
        double got = resized->data[((int64_t)ch * oh + oy) * ow + ox];
        max_abs = fmax(max_abs, fabs(got - want));
      }
  }
  print_message("resized mean: max abs error %.3g grey levels\n", max_abs);
  assert_true(max_abs <= MAX_ABS_TOL);
}

/* The per-channel values settings.json gives are ilsvrc_2012_mean.npy's
 * channel averages; the mean loader reads that file as (3, 256, 256). */
static void test_mean_file_channel_averages(void **state) {
  (void)state;
  const char *sd = shared_or_skip();
  char p[1024];
  if (!sd || !exists(tu_path(p, sizeof p, sd, "data/ilsvrc_2012_mean.npy"))) skip();
  ns_ctx *ctx = ns_ctx_create();
  ns_ndarray m;
  assert_int_equal(ns_mean_load(ctx, p, &m), NS_OK);
  assert_int_equal(m.num_axes, 3);
  assert_int_equal(m.shape[0], 3);
  assert_int_equal(m.shape[1], 256);
  assert_int_equal(m.shape[2], 256);
  for (int c = 0; c < 3; c++) {
    double sum = 0;
    for (int64_t i = 0; i < 256 * 256; i++) sum += m.data[c * 256 * 256 + i];
    assert_float_equal(sum / (256 * 256), kMeanBGR[c], 1e-4);
  }
  /* The seed's elementwise mean, resized to the 451 x 451 input as
   * Caffe 1.0's set_mean did: same channel averages within a grey level,
   * and every element as the formula below gives it. */
  ns_ndarray r;
  assert_int_equal(ns_mean_resize(ctx, &m, 451, 451, 1, &r), NS_OK);
  assert_int_equal(r.count, 3 * 451 * 451);
  for (int c = 0; c < 3; c++) {
    double sum = 0;
    for (int64_t i = 0; i < 451 * 451; i++) sum += r.data[c * 451 * 451 + i];
    assert_float_equal(sum / (451 * 451), kMeanBGR[c], 1.0);
  }
  check_enlarged_mean(&m, &r);
  ns_ndarray_free(ctx, &r);
  ns_ndarray_free(ctx, &m);
  ns_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cat_227),
      cmocka_unit_test(test_cat_227_no_antialias),
      cmocka_unit_test(test_cat_451),
      cmocka_unit_test(test_cat_gray_100),
      cmocka_unit_test(test_mean_file_channel_averages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
