/* Data layers and the IDX reader: NpyData batches in order and wrapping,
 * shuffles as permutations per epoch, Caffe's transform (scale, mean
 * values, centre crop at TEST, random crop/mirror at TRAIN); IdxData on
 * plain and gzipped IDX files written here; ImageData on PNGs written
 * here (BGR 0..255, grey, bilinear resize by hand); Fashion-MNIST's files
 * when installed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

typedef tu_fixture fixture;

static const char *path_in(fixture *f, const char *name) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  return tu_path(buf[k], sizeof buf[k], f->dir, name);
}

static ns_net *load_phase(fixture *f, const char *text, ns_phase phase, ns_status want) {
  const char *p = path_in(f, "net.prototxt");
  assert_int_equal(tu_write_file(p, text, strlen(text)), 0);
  ns_net *net = NULL;
  ns_status st = ns_net_load(f->ctx, p, &(ns_net_opts){phase, 3, NULL}, &net);
  if (st != want) fail_msg("status %d, wanted %d: %s", st, want, ns_ctx_error(f->ctx));
  return net;
}

/* N samples of 1 x 2 x 3 with sample i holding 100 i + position; labels i. */
static void write_npy(fixture *f, int n) {
  float *d = malloc(sizeof(float) * (size_t)n * 6), *l = malloc(sizeof(float) * (size_t)n);
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < 6; k++) d[i * 6 + k] = (float)(100 * i + k);
    l[i] = (float)i;
  }
  int64_t shape[4] = {n, 1, 2, 3};
  assert_int_equal(ns_npy_save_f32(f->ctx, path_in(f, "x.npy"), 4, shape, d), NS_OK);
  assert_int_equal(ns_npy_save_f32(f->ctx, path_in(f, "y.npy"), 1, shape, l), NS_OK);
  free(d);
  free(l);
}

static ns_net *npy_net(fixture *f, int batch, int shuffle, const char *transform, ns_phase phase) {
  char text[4096];
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'NpyData' top: 'data' top: 'label' %s\n"
           "  array_data_param { source: '%s' label_source: '%s' batch_size: %d shuffle: %s } }\n",
           transform, path_in(f, "x.npy"), path_in(f, "y.npy"), batch, shuffle ? "true" : "false");
  return load_phase(f, text, phase, NS_OK);
}

static void test_npy_batches_wrap(void **state) {
  fixture *f = *state;
  write_npy(f, 5);
  ns_net *net = npy_net(f, 2, 0, "", NS_PHASE_TRAIN);
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, "label"));
  assert_int_equal(x.num_axes, 4);
  assert_int_equal(x.shape[0], 2);
  assert_int_equal(x.shape[3], 3);
  assert_int_equal(y.count, 2);
  const int expect[4][2] = {{0, 1}, {2, 3}, {4, 0}, {1, 2}};
  for (int b = 0; b < 4; b++) {
    assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
    x = ns_net_blob(net, ns_net_find_blob(net, "data"));
    y = ns_net_blob(net, ns_net_find_blob(net, "label"));
    for (int i = 0; i < 2; i++) {
      assert_float_equal(y.data[i], expect[b][i], 0);
      for (int k = 0; k < 6; k++) assert_float_equal(x.data[i * 6 + k], 100 * expect[b][i] + k, 0);
    }
  }
  ns_net_destroy(net);
}

/* shuffle: every epoch is a permutation of the samples, each one in
 * another order than the epoch before (reshuffled at every epoch, as the
 * README says), none the file's order.  Batches of 3 over 7 samples: the
 * epochs end inside batches.  Two random orders of 7 agree with
 * probability 1 / 5040, and the seed is fixed. */
static void test_npy_shuffle_is_permutation(void **state) {
  fixture *f = *state;
  enum { SAMPLES = 7, BATCH = 3, EPOCHS = 4 };
  write_npy(f, SAMPLES);
  ns_net *net = npy_net(f, BATCH, 1, "", NS_PHASE_TRAIN);
  int order[EPOCHS * SAMPLES + BATCH];
  int got = 0;
  while (got < EPOCHS * SAMPLES) {
    assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
    ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, "label"));
    ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
    for (int i = 0; i < BATCH; i++) {
      int lab = (int)y.data[i];
      assert_true(lab >= 0 && lab < SAMPLES);
      assert_float_equal(x.data[i * 6], 100 * lab, 0); /* sample and label stay paired */
      order[got++] = lab;
    }
  }
  for (int e = 0; e < EPOCHS; e++) {
    const int *epoch = order + e * SAMPLES;
    int seen[SAMPLES] = {0}, in_file_order = 1;
    for (int i = 0; i < SAMPLES; i++) {
      seen[epoch[i]]++;
      in_file_order &= epoch[i] == i;
    }
    for (int i = 0; i < SAMPLES; i++) assert_int_equal(seen[i], 1);
    assert_false(in_file_order);
    if (e > 0 && memcmp(epoch, epoch - SAMPLES, sizeof(int) * SAMPLES) == 0)
      fail_msg("epoch %d is in the same order as epoch %d", e, e - 1);
  }
  ns_net_destroy(net);
}

static void test_transform_test_phase(void **state) {
  fixture *f = *state;
  write_npy(f, 2);
  /* crop 2 of 2 x 3 at TEST: rows 0..1, columns 0..1 ((3 - 2) / 2 = 0);
   * (x - 10) * 0.5; mirror ignored at TEST */
  ns_net *net =
      npy_net(f, 1, 0, "transform_param { scale: 0.5 mean_value: 10 crop_size: 2 mirror: true }",
              NS_PHASE_TEST);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK); /* sample 1 */
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  assert_int_equal(x.shape[2], 2);
  assert_int_equal(x.shape[3], 2);
  const float src[2][2] = {{100, 101}, {103, 104}};
  for (int r = 0; r < 2; r++)
    for (int c = 0; c < 2; c++) assert_float_equal(x.data[r * 2 + c], (src[r][c] - 10) * 0.5f, 0);
  ns_net_destroy(net);
}

static void test_transform_train_random(void **state) {
  fixture *f = *state;
  write_npy(f, 1);
  ns_net *net = npy_net(f, 1, 0, "transform_param { crop_size: 2 mirror: true }", NS_PHASE_TRAIN);
  int offsets_seen[2] = {0}, mirrored = 0, plain = 0;
  for (int it = 0; it < 40; it++) {
    assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
    ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
    /* sample 0: value = 3 row + col; a 2x2 crop at (0, w_off) */
    float a = x.data[0], b = x.data[1];
    int mirror = b < a;
    int w_off = (int)(mirror ? b : a);
    assert_true(w_off == 0 || w_off == 1);
    offsets_seen[w_off]++;
    mirror ? mirrored++ : plain++;
    float left = (float)w_off, right = (float)w_off + 1;
    assert_float_equal(x.data[0], mirror ? right : left, 0);
    assert_float_equal(x.data[1], mirror ? left : right, 0);
    assert_float_equal(x.data[2], (mirror ? right : left) + 3, 0);
  }
  assert_true(offsets_seen[0] && offsets_seen[1] && mirrored && plain);
  ns_net_destroy(net);
}

static void test_npy_errors(void **state) {
  fixture *f = *state;
  write_npy(f, 3);
  char text[2048];
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'NpyData' top: 'data' top: 'label'\n"
           "  array_data_param { source: '%s' } }\n",
           path_in(f, "x.npy"));
  ns_net_destroy(load_phase(f, text, NS_PHASE_TRAIN, NS_ERR_NET)); /* label top, no labels */
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'NpyData' top: 'data' top: 'label'\n"
           "  array_data_param { source: '%s' label_source: '%s' } }\n",
           path_in(f, "x.npy"), path_in(f, "missing.npy"));
  ns_net_destroy(load_phase(f, text, NS_PHASE_TRAIN, NS_ERR_IO));
  /* 5 labels for 3 samples */
  float l[5] = {0};
  int64_t n = 5;
  assert_int_equal(ns_npy_save_f32(f->ctx, path_in(f, "y5.npy"), 1, &n, l), NS_OK);
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'NpyData' top: 'data' top: 'label'\n"
           "  array_data_param { source: '%s' label_source: '%s' } }\n",
           path_in(f, "x.npy"), path_in(f, "y5.npy"));
  ns_net_destroy(load_phase(f, text, NS_PHASE_TRAIN, NS_ERR_INPUT));
}

/* ---- IDX ---- */

static void write_idx(const char *path, int gz, const unsigned char *bytes, size_t n) {
  if (gz) {
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, bytes, (unsigned)n), (int)n);
    gzclose(g);
  } else {
    assert_int_equal(tu_write_file(path, bytes, n), 0);
  }
}

static void test_idx_reader(void **state) {
  fixture *f = *state;
  /* u8, 3 axes (2, 2, 3) */
  unsigned char img[4 + 12 + 12] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
  for (int i = 0; i < 12; i++) img[16 + i] = (unsigned char)(i * 20);
  for (int gz = 0; gz < 2; gz++) {
    const char *p = path_in(f, gz ? "i.idx.gz" : "i.idx");
    write_idx(p, gz, img, sizeof img);
    ns_ndarray a;
    assert_int_equal(ns_idx_load(f->ctx, p, &a), NS_OK);
    assert_int_equal(a.num_axes, 3);
    assert_int_equal(a.shape[0], 2);
    assert_int_equal(a.shape[2], 3);
    for (int i = 0; i < 12; i++) assert_float_equal(a.data[i], i * 20, 0);
    ns_ndarray_free(f->ctx, &a);
  }
  /* i32 big-endian, and f32 */
  unsigned char i32[] = {0, 0, 0x0C, 1, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFE, 0, 0, 1, 0};
  write_idx(path_in(f, "i32.idx"), 0, i32, sizeof i32);
  ns_ndarray a;
  assert_int_equal(ns_idx_load(f->ctx, path_in(f, "i32.idx"), &a), NS_OK);
  assert_float_equal(a.data[0], -2, 0);
  assert_float_equal(a.data[1], 256, 0);
  ns_ndarray_free(f->ctx, &a);
  unsigned char f32[] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3F, 0xC0, 0, 0}; /* 1.5f */
  write_idx(path_in(f, "f32.idx"), 1, f32, sizeof f32);
  assert_int_equal(ns_idx_load(f->ctx, path_in(f, "f32.idx"), &a), NS_OK);
  assert_float_equal(a.data[0], 1.5, 0);
  ns_ndarray_free(f->ctx, &a);
  /* truncated data, trailing bytes, bad magic, unknown type, huge dims */
  write_idx(path_in(f, "t.idx"), 1, img, sizeof img - 1);
  assert_int_equal(ns_idx_load(f->ctx, path_in(f, "t.idx"), &a), NS_ERR_INPUT);
  assert_null(a.data);
  unsigned char longer[sizeof img + 1];
  memcpy(longer, img, sizeof img);
  longer[sizeof img] = 7;
  write_idx(path_in(f, "l.idx"), 0, longer, sizeof longer);
  assert_int_equal(ns_idx_load(f->ctx, path_in(f, "l.idx"), &a), NS_ERR_INPUT);
  unsigned char bad[] = {1, 0, 8, 1, 0, 0, 0, 1, 5};
  write_idx(path_in(f, "b.idx"), 0, bad, sizeof bad);
  assert_int_equal(ns_idx_load(f->ctx, path_in(f, "b.idx"), &a), NS_ERR_INPUT);
  unsigned char type[] = {0, 0, 7, 1, 0, 0, 0, 1, 5};
  write_idx(path_in(f, "ty.idx"), 0, type, sizeof type);
  assert_int_equal(ns_idx_load(f->ctx, path_in(f, "ty.idx"), &a), NS_ERR_INPUT);
  unsigned char huge[] = {0,    0,    8,    3,    0x7F, 0xFF, 0xFF, 0xFF,
                          0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF};
  write_idx(path_in(f, "h.idx"), 0, huge, sizeof huge);
  assert_int_not_equal(ns_idx_load(f->ctx, path_in(f, "h.idx"), &a), NS_OK);
  assert_int_equal(ns_idx_load(f->ctx, path_in(f, "absent.idx"), &a), NS_ERR_IO);
  /* a lying header (a billion bytes, 10 stored) fails before any allocation:
   * no memory limit is set, so only the size check stands in the way */
  unsigned char lie[16 + 10] = {0, 0, 8, 3, 0, 0, 0x03, 0xE8, 0, 0, 0x03, 0xE8, 0, 0, 0x03, 0xE8};
  for (int gz = 0; gz < 2; gz++) {
    const char *p = path_in(f, gz ? "lie.idx.gz" : "lie.idx");
    write_idx(p, gz, lie, sizeof lie);
    assert_int_equal(ns_idx_load(f->ctx, p, &a), NS_ERR_INPUT);
    assert_non_null(strstr(ns_ctx_error(f->ctx), "needs"));
  }
}

static void test_idx_data_layer(void **state) {
  fixture *f = *state;
  unsigned char img[16 + 3 * 4] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2};
  for (int i = 0; i < 12; i++) img[16 + i] = (unsigned char)(i * 10);
  unsigned char lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9};
  write_idx(path_in(f, "img.gz"), 1, img, sizeof img);
  write_idx(path_in(f, "lab.gz"), 1, lab, sizeof lab);
  char text[2048];
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'IdxData' top: 'data' top: 'label'\n"
           "  transform_param { scale: 0.1 }\n"
           "  array_data_param { source: '%s' label_source: '%s' batch_size: 2 } }\n",
           path_in(f, "img.gz"), path_in(f, "lab.gz"));
  ns_net *net = load_phase(f, text, NS_PHASE_TEST, NS_OK);
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  assert_int_equal(x.num_axes, 4);
  assert_int_equal(x.shape[1], 1); /* N x H x W gets a channel axis */
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, "label"));
  for (int i = 0; i < 8; i++) assert_float_equal(x.data[i], i * 1.0, 1e-6);
  assert_float_equal(y.data[0], 7, 0);
  assert_float_equal(y.data[1], 8, 0);
  ns_net_destroy(net);
}

/* Debian's dataset-fashion-mnist, when installed. */
static void test_fashion_mnist_files(void **state) {
  fixture *f = *state;
  const char *dir = "/usr/share/datasets/fashion-mnist";
  char p[1024];
  tu_path(p, sizeof p, dir, "t10k-labels-idx1-ubyte.gz");
  FILE *fp = fopen(p, "rb");
  if (!fp) skip();
  fclose(fp);
  ns_ndarray lab, img;
  assert_int_equal(ns_idx_load(f->ctx, p, &lab), NS_OK);
  assert_int_equal(lab.num_axes, 1);
  assert_int_equal(lab.shape[0], 10000);
  int count[10] = {0};
  for (int i = 0; i < 10000; i++) {
    assert_true(lab.data[i] >= 0 && lab.data[i] <= 9);
    count[(int)lab.data[i]]++;
  }
  for (int k = 0; k < 10; k++) assert_int_equal(count[k], 1000); /* balanced test set */
  tu_path(p, sizeof p, dir, "t10k-images-idx3-ubyte.gz");
  assert_int_equal(ns_idx_load(f->ctx, p, &img), NS_OK);
  assert_int_equal(img.num_axes, 3);
  assert_int_equal(img.shape[1], 28);
  assert_int_equal(img.shape[2], 28);
  ns_ndarray_free(f->ctx, &lab);
  ns_ndarray_free(f->ctx, &img);
}

/* ---- ImageData ---- */

static void write_png(fixture *f, const char *name, int h, int w, const unsigned char *rgb) {
  assert_int_equal(ns_png_save_rgb8(f->ctx, path_in(f, name), h, w, rgb), NS_OK);
}

static void test_image_data(void **state) {
  fixture *f = *state;
  /* a.png: 2x2, pixel (r, c) = RGB (10 + r, 20 + c, 30); b.png: all (200, 100, 50) */
  unsigned char a[12], b[12];
  for (int r = 0; r < 2; r++)
    for (int c = 0; c < 2; c++) {
      unsigned char *p = a + (r * 2 + c) * 3;
      p[0] = (unsigned char)(10 + r), p[1] = (unsigned char)(20 + c), p[2] = 30;
    }
  for (int i = 0; i < 4; i++) b[i * 3] = 200, b[i * 3 + 1] = 100, b[i * 3 + 2] = 50;
  write_png(f, "a.png", 2, 2, a);
  write_png(f, "b.png", 2, 2, b);
  char list[512], text[2048];
  snprintf(list, sizeof list, "a.png 3\nb.png 5\n");
  assert_int_equal(tu_write_file(path_in(f, "list.txt"), list, strlen(list)), 0);
  char root[1024];
  snprintf(root, sizeof root, "%s/", f->dir);
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'ImageData' top: 'data' top: 'label'\n"
           "  image_data_param { source: '%s' root_folder: '%s' batch_size: 2 } }\n",
           path_in(f, "list.txt"), root);
  ns_net *net = load_phase(f, text, NS_PHASE_TEST, NS_OK);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, "label"));
  assert_int_equal(x.shape[1], 3);
  /* channel 0 is blue (cv::imread's BGR), values 0..255 */
  assert_float_equal(x.data[0], 30, 0);
  assert_float_equal(x.data[4 + 1], 21, 0); /* green at (0, 1) */
  assert_float_equal(x.data[8 + 2], 11, 0); /* red at (1, 0) */
  assert_float_equal(x.data[12], 50, 0);
  assert_float_equal(y.data[0], 3, 0);
  assert_float_equal(y.data[1], 5, 0);
  ns_net_destroy(net);

  /* grey (0.299 R + 0.587 G + 0.114 B) and a 2x2 -> 2x4 bilinear resize:
   * columns at (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped */
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'ImageData' top: 'data' top: 'label'\n"
           "  image_data_param { source: '%s' root_folder: '%s' batch_size: 1 is_color: false\n"
           "    new_height: 2 new_width: 4 } }\n",
           path_in(f, "list.txt"), root);
  net = load_phase(f, text, NS_PHASE_TEST, NS_OK);
  assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
  x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  assert_int_equal(x.shape[1], 1);
  assert_int_equal(x.shape[3], 4);
  double g0 = round(0.299 * 10 + 0.587 * 20 + 0.114 * 30);
  double g1 = round(0.299 * 10 + 0.587 * 21 + 0.114 * 30);
  double expect[4] = {g0, round(0.75 * g0 + 0.25 * g1), round(0.25 * g0 + 0.75 * g1), g1};
  for (int c = 0; c < 4; c++) assert_float_equal(x.data[c], expect[c], 0);
  ns_net_destroy(net);

  /* a bad list line */
  assert_int_equal(tu_write_file(path_in(f, "bad.txt"), "a.png\n", 6), 0);
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'ImageData' top: 'data' top: 'label'\n"
           "  image_data_param { source: '%s' } }\n",
           path_in(f, "bad.txt"));
  ns_net_destroy(load_phase(f, text, NS_PHASE_TEST, NS_ERR_INPUT));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_npy_batches_wrap, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_npy_shuffle_is_permutation, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_transform_test_phase, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_transform_train_random, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_npy_errors, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_idx_reader, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_idx_data_layer, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_fashion_mnist_files, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_image_data, tu_fixture_setup, tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
