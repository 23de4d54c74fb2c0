/* src/io: .npy files, image decoding, resizing, preprocessing steps, mean
 * files, PNG output, heatmaps and labels.  Expected values come from hand
 * computation, the definitions load_image follows (written out here),
 * naive reference code, and numpy / OpenCV through /usr/bin/python3 where
 * installed (those tests skip otherwise). */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>
#include <jpeglib.h>
#include <png.h>

#include "netsurg.h"
#include "support/testutil.h"

/* ---- helpers ------------------------------------------------------------- */

static unsigned char *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t cap = 1 << 16, n = 0, got;
  unsigned char *buf = malloc(cap);
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  *size = n;
  return buf;
}

static int python_has(const char *module) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import %s' >/dev/null 2>&1", module);
  return tu_run(cmd) == 0;
}

/* Runs a Python script with the folder as argv[1]; returns its status. */
static int run_python(const char *dir, const char *script) {
  char path[512], cmd[1200];
  tu_path(path, sizeof path, dir, "script.py");
  if (tu_write_file(path, script, strlen(script)) != 0) return -1;
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", path, dir);
  return tu_run(cmd);
}

/* A .npy file: prelude (version 1 or 2), dict, padding, '\n', data. */
static unsigned char *make_npy(int version, const char *dict, const void *data, size_t n,
                               size_t *size) {
  size_t pre = version == 1 ? 10 : 12, dl = strlen(dict);
  size_t hlen = (pre + dl + 1 + 63) / 64 * 64 - pre;
  unsigned char *f = malloc(pre + hlen + n + 1);
  memcpy(f, "\x93NUMPY", 6);
  f[6] = (unsigned char)version, f[7] = 0;
  for (size_t i = 0; i < pre - 8; i++) f[8 + i] = (unsigned char)(hlen >> (8 * i));
  memset(f + pre, ' ', hlen);
  memcpy(f + pre, dict, dl);
  f[pre + hlen - 1] = '\n';
  if (n) memcpy(f + pre + hlen, data, n);
  *size = pre + hlen + n;
  return f;
}

static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static struct rlimit saved_fsize;

/* Makes writes past `bytes` fail with EFBIG instead of SIGXFSZ. */
static void with_file_size_limit(rlim_t bytes) {
  signal(SIGXFSZ, SIG_IGN);
  getrlimit(RLIMIT_FSIZE, &saved_fsize);
  struct rlimit r = saved_fsize;
  r.rlim_cur = bytes;
  setrlimit(RLIMIT_FSIZE, &r);
}

static void without_file_size_limit(void) { setrlimit(RLIMIT_FSIZE, &saved_fsize); }

/* ---- test images written with libpng / libjpeg directly ------------------- */

enum {
  TP_GREY = PNG_COLOR_TYPE_GRAY,
  TP_GREY_ALPHA = PNG_COLOR_TYPE_GRAY_ALPHA,
  TP_RGB = PNG_COLOR_TYPE_RGB,
  TP_RGBA = PNG_COLOR_TYPE_RGB_ALPHA,
  TP_PALETTE = PNG_COLOR_TYPE_PALETTE
};

typedef struct membuf {
  unsigned char *data;
  size_t len, cap;
} membuf;

static void membuf_write(png_structp png, png_bytep d, size_t n) {
  membuf *m = png_get_io_ptr(png);
  while (m->len + n > m->cap) m->data = realloc(m->data, m->cap = m->cap ? m->cap * 2 : 4096);
  memcpy(m->data + m->len, d, n);
  m->len += n;
}

static void membuf_flush(png_structp png) { (void)png; }

static int png_channels(int type) {
  return type == TP_GREY_ALPHA ? 2 : type == TP_RGB ? 3 : type == TP_RGBA ? 4 : 1;
}

/* px: one byte per sample (depth <= 8; 1-bit as 0/1) or two big-endian
 * bytes per sample (depth 16). */
static unsigned char *write_png(int h, int w, int type, int depth, const unsigned char *px,
                                int interlace, const unsigned char (*palette)[3], int npal,
                                int trns, size_t *n) {
  membuf m = {NULL, 0, 0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) fail_msg("libpng could not write the test image");
  png_set_write_fn(png, &m, membuf_write, membuf_flush);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type,
               interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (palette) {
    png_color colors[256];
    png_byte alpha[256];
    for (int i = 0; i < npal; i++) {
      colors[i].red = palette[i][0], colors[i].green = palette[i][1],
      colors[i].blue = palette[i][2];
      alpha[i] = (png_byte)(i == 2 && trns >= 0 ? trns : 255);
    }
    png_set_PLTE(png, info, colors, npal);
    if (trns >= 0) png_set_tRNS(png, info, alpha, npal, NULL);
  }
  png_write_info(png, info);
  if (depth < 8) png_set_packing(png);
  size_t row = (size_t)w * png_channels(type) * (depth == 16 ? 2 : 1);
  png_bytep *rows = malloc(sizeof(png_bytep) * (size_t)h);
  for (int y = 0; y < h; y++) rows[y] = (png_bytep)px + row * (size_t)y;
  png_write_image(png, rows);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(rows);
  *n = m.len;
  return m.data;
}

static unsigned char *make_png(int h, int w, int type, int depth, const unsigned char *px,
                               int interlace, size_t *n) {
  return write_png(h, w, type, depth, px, interlace, NULL, 0, -1, n);
}

/* trns >= 0: palette entry 2 gets that alpha (a tRNS chunk). */
static unsigned char *make_png_palette(int h, int w, const unsigned char (*palette)[3], int npal,
                                       const unsigned char *index, int trns, size_t *n) {
  return write_png(h, w, TP_PALETTE, 8, index, 0, palette, npal, trns, n);
}

static unsigned char *write_jpeg(int h, int w, int comps, const unsigned char *px, int quality,
                                 int progressive, const unsigned char *app1, size_t app1_len,
                                 size_t *n) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  unsigned char *out = NULL;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &out, &size);
  c.image_width = (JDIMENSION)w;
  c.image_height = (JDIMENSION)h;
  c.input_components = comps;
  c.in_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  if (app1) jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)app1_len);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW)px + (size_t)c.next_scanline * (size_t)w * (size_t)comps;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  *n = size;
  return out;
}

static unsigned char *make_jpeg(int h, int w, int comps, const unsigned char *px, int quality,
                                const unsigned char *app1, size_t app1_len, size_t *n) {
  return write_jpeg(h, w, comps, px, quality, 0, app1, app1_len, n);
}

static unsigned char *make_jpeg_ex(int h, int w, int comps, const unsigned char *px, int quality,
                                   int progressive, size_t *n) {
  return write_jpeg(h, w, comps, px, quality, progressive, NULL, 0, n);
}

/* An APP1 payload: "Exif\0\0", a TIFF header, IFD0 with one entry
 * (0x0112 orientation, SHORT, 1 value), no next IFD. */
static size_t make_exif_orientation(unsigned char *b, int orientation, int big_endian) {
  memcpy(b, "Exif\0\0", 6);
  unsigned char *t = b + 6;
#define PUT16(p, v)                                     \
  ((p)[big_endian ? 0 : 1] = (unsigned char)((v) >> 8), \
   (p)[big_endian ? 1 : 0] = (unsigned char)(v))
  memcpy(t, big_endian ? "MM\0\x2a" : "II\x2a\0", 4);
  memset(t + 4, 0, 28);
  t[big_endian ? 7 : 4] = 8; /* IFD0 at offset 8 */
  PUT16(t + 8, 1);           /* one entry */
  PUT16(t + 10, 0x0112);
  PUT16(t + 12, 3);
  t[big_endian ? 17 : 14] = 1; /* count 1 */
  PUT16(t + 18, orientation);
#undef PUT16
  return 6 + 8 + 2 + 12 + 4;
}

/* Pixel at a corner: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right. */
static const float *corner(const ns_image *im, int id) {
  int y = id >= 2 ? im->height - 1 : 0, x = id % 2 ? im->width - 1 : 0;
  return im->data + ((size_t)y * im->width + x) * im->channels;
}

/* imageio 2.4's JPEG reader steps (np.rot90 / np.fliplr) on the stored
 * pixels must give the displayed image. */
static int check_orientation_with_numpy(ns_ctx *ctx, const ns_image *raw, const ns_image *shown,
                                        int o) {
  char *dir = tu_mkdtemp(), path[512], script[1024];
  int64_t s1[3] = {raw->height, raw->width, 3}, s2[3] = {shown->height, shown->width, 3};
  if (ns_npy_save_f32(ctx, tu_path(path, sizeof path, dir, "raw.npy"), 3, s1, raw->data) != NS_OK ||
      ns_npy_save_f32(ctx, tu_path(path, sizeof path, dir, "shown.npy"), 3, s2, shown->data) !=
          NS_OK)
    return -1;
  snprintf(script, sizeof script,
           "import sys, numpy as np\n"
           "d, o = sys.argv[1], %d\n"
           "im, shown = np.load(d + '/raw.npy'), np.load(d + '/shown.npy')\n"
           "if o in [3, 4]: im = np.rot90(im, 2)\n"
           "if o in [5, 6]: im = np.rot90(im, 3)\n"
           "if o in [7, 8]: im = np.rot90(im)\n"
           "if o in [2, 4, 5, 7]: im = np.fliplr(im)\n"
           "assert im.shape == shown.shape and (im == shown).all()\n",
           o);
  int rc = run_python(dir, script);
  tu_rmtree(dir);
  free(dir);
  return rc;
}

/* Naive caffe.io.resize_image in double precision, written from the
 * definitions: min/max normalisation; optional Gaussian (sigma = (in/out -
 * 1) / 2, radius round(4 sigma), zeros outside); bilinear as a tent
 * function max(0, 1 - |s - i|) around source s = (o + 0.5) in/out - 0.5
 * with zeros outside; clip to [0, 1]; scale back.  Returns malloc'd HWC. */
static void naive_smooth(double *u, int h, int w, int c, int axis, double sigma) {
  if (sigma <= 0) return;
  int r = (int)(4 * sigma + 0.5), len = axis == 0 ? h : w;
  double *g = malloc(sizeof(double) * (2 * r + 1)), sum = 0;
  for (int k = -r; k <= r; k++) sum += g[k + r] = exp(-(double)k * k / (2 * sigma * sigma));
  double *copy = malloc(sizeof(double) * (size_t)h * w * c);
  memcpy(copy, u, sizeof(double) * (size_t)h * w * c);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int ch = 0; ch < c; ch++) {
        double acc = 0;
        for (int k = -r; k <= r; k++) {
          int p = (axis == 0 ? y : x) + k;
          if (p < 0 || p >= len) continue;
          int yy = axis == 0 ? p : y, xx = axis == 0 ? x : p;
          acc += g[k + r] / sum * copy[((size_t)yy * w + xx) * c + ch];
        }
        u[((size_t)y * w + x) * c + ch] = acc;
      }
  free(g);
  free(copy);
}

static double tent(double d) { return d < 0 ? (d > -1 ? 1 + d : 0) : (d < 1 ? 1 - d : 0); }

static float *naive_resize(const ns_image *in, int oh, int ow, int aa) {
  int h = in->height, w = in->width, c = in->channels;
  size_t n = (size_t)h * w * c;
  double lo = in->data[0], hi = in->data[0];
  for (size_t i = 0; i < n; i++) lo = fmin(lo, in->data[i]), hi = fmax(hi, in->data[i]);
  float *out = malloc(sizeof(float) * (size_t)oh * ow * c);
  double *u = malloc(sizeof(double) * n);
  for (size_t i = 0; i < n; i++) u[i] = hi > lo ? (in->data[i] - lo) / (hi - lo) : 0;
  if (aa) {
    naive_smooth(u, h, w, c, 0, fmax(0, ((double)h / oh - 1) / 2));
    naive_smooth(u, h, w, c, 1, fmax(0, ((double)w / ow - 1) / 2));
  }
  for (int oy = 0; oy < oh; oy++)
    for (int ox = 0; ox < ow; ox++)
      for (int ch = 0; ch < c; ch++) {
        double sy = (oy + 0.5) * h / oh - 0.5, sx = (ox + 0.5) * w / ow - 0.5, v = 0;
        for (int i = 0; i < h; i++)
          for (int j = 0; j < w; j++)
            v += tent(sy - i) * tent(sx - j) * u[((size_t)i * w + j) * c + ch];
        v = fmin(1, fmax(0, v));
        out[((size_t)oy * ow + ox) * c + ch] = (float)(hi > lo ? v * (hi - lo) + lo : lo);
      }
  free(u);
  return out;
}

/* ---- .npy ---------------------------------------------------------------- */

static void test_npy_roundtrip_f32(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), path[512];
  tu_path(path, sizeof path, dir, "a.npy");
  const int64_t shapes[][4] = {{2, 3, 4, 0}, {5, 0, 0, 0}, {0, 0, 0, 0}, {0, 3, 0, 0}};
  const int axes[] = {3, 1, 0, 2};
  for (int s = 0; s < 4; s++) {
    int64_t count = 1;
    for (int i = 0; i < axes[s]; i++) count *= shapes[s][i];
    float data[24];
    for (int64_t i = 0; i < count; i++) data[i] = (float)i * 0.25f - 3.0f;
    assert_int_equal(ns_npy_save_f32(ctx, path, axes[s], shapes[s], data), NS_OK);
    ns_ndarray a;
    assert_int_equal(ns_npy_load(ctx, path, &a), NS_OK);
    assert_int_equal(a.num_axes, axes[s]);
    assert_int_equal(a.count, count);
    for (int i = 0; i < axes[s]; i++) assert_int_equal(a.shape[i], shapes[s][i]);
    for (int64_t i = 0; i < count; i++) assert_true(a.data[i] == data[i]);
    ns_ndarray_free(ctx, &a);
  }
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

/* The header numpy itself writes: magic, version 1.0, dict, spaces, '\n',
 * data aligned to 64 bytes. */
static void test_npy_header_layout(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), path[512];
  tu_path(path, sizeof path, dir, "h.npy");
  int64_t shape[3] = {2, 3, 4};
  float data[24] = {0};
  data[1] = 1.0f;
  assert_int_equal(ns_npy_save_f32(ctx, path, 3, shape, data), NS_OK);
  size_t size;
  unsigned char *bytes = read_all(path, &size);
  assert_memory_equal(bytes, "\x93NUMPY\x01\x00", 8);
  size_t hlen = bytes[8] | (size_t)bytes[9] << 8;
  assert_int_equal((10 + hlen) % 64, 0);
  assert_int_equal(size, 10 + hlen + 24 * 4);
  const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }";
  assert_memory_equal(bytes + 10, dict, strlen(dict));
  for (size_t i = 10 + strlen(dict); i < 10 + hlen - 1; i++) assert_int_equal(bytes[i], ' ');
  assert_int_equal(bytes[10 + hlen - 1], '\n');
  /* 1.0f little-endian is 00 00 80 3f */
  assert_memory_equal(bytes + 10 + hlen + 4, "\x00\x00\x80\x3f", 4);
  free(bytes);
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

static void test_npy_save_i32(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), path[512];
  tu_path(path, sizeof path, dir, "i.npy");
  int64_t shape[2] = {2, 2};
  int32_t data[4] = {281, -1, 0, 65536};
  assert_int_equal(ns_npy_save_i32(ctx, path, 2, shape, data), NS_OK);
  size_t size;
  unsigned char *bytes = read_all(path, &size);
  assert_int_equal(size, 128 + 16);
  assert_non_null(strstr((const char *)bytes + 10, "'descr': '<i4'"));
  assert_memory_equal(bytes + 128,
                      "\x19\x01\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x01\x00", 16);
  free(bytes);
  /* Reading is for floats only: the error names the dtype. */
  ns_ndarray a;
  assert_int_equal(ns_npy_load(ctx, path, &a), NS_ERR_UNSUPPORTED);
  assert_non_null(strstr(ns_ctx_error(ctx), "'<i4'"));
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

/* Files written by numpy (all header versions, both byte orders, float64)
 * read back as the same values; numpy reads ours. */
static void test_npy_numpy_interop(void **state) {
  (void)state;
  if (!python_has("numpy")) skip();
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), path[512];
  int64_t shape[2] = {3, 5};
  float ours[15];
  for (int i = 0; i < 15; i++) ours[i] = (float)i * 0.5f - 2.0f;
  assert_int_equal(
      ns_npy_save_f32(ctx, tu_path(path, sizeof path, dir, "ours.npy"), 2, shape, ours), NS_OK);
  const char *script =
      "import sys, numpy as np\n"
      "from numpy.lib import format as F\n"
      "d = sys.argv[1]\n"
      "a = np.arange(15, dtype=np.float64).reshape(3, 5) * 0.5 - 2.0\n"
      "np.save(d + '/f4le.npy', a.astype('<f4'))\n"
      "np.save(d + '/f4be.npy', a.astype('>f4'))\n"
      "np.save(d + '/f8le.npy', a.astype('<f8'))\n"
      "np.save(d + '/f8be.npy', a.astype('>f8'))\n"
      "for v in ((2, 0), (3, 0)):\n"
      "    with open(d + '/v%d.npy' % v[0], 'wb') as f: F.write_array(f, a.astype('<f4'), "
      "version=v)\n"
      "np.save(d + '/fortran.npy', np.asfortranarray(a.astype('<f4')))\n"
      "np.save(d + '/i8.npy', np.arange(4, dtype='<i8'))\n"
      "np.save(d + '/scalar.npy', np.float32(7.5))\n"
      "b = np.load(d + '/ours.npy')\n"
      "assert b.dtype == np.float32 and b.shape == (3, 5) and (b == a).all(), b\n";
  assert_int_equal(run_python(dir, script), 0);
  const char *good[] = {"f4le.npy", "f4be.npy", "f8le.npy", "f8be.npy", "v2.npy", "v3.npy"};
  for (size_t f = 0; f < sizeof good / sizeof *good; f++) {
    ns_ndarray a;
    if (ns_npy_load(ctx, tu_path(path, sizeof path, dir, good[f]), &a) != NS_OK)
      fail_msg("%s: %s", good[f], ns_ctx_error(ctx));
    assert_int_equal(a.num_axes, 2);
    assert_int_equal(a.shape[0], 3);
    assert_int_equal(a.shape[1], 5);
    for (int i = 0; i < 15; i++) assert_true(a.data[i] == ours[i]);
    ns_ndarray_free(ctx, &a);
  }
  ns_ndarray a;
  assert_int_equal(ns_npy_load(ctx, tu_path(path, sizeof path, dir, "scalar.npy"), &a), NS_OK);
  assert_int_equal(a.num_axes, 0);
  assert_int_equal(a.count, 1);
  assert_true(a.data[0] == 7.5f);
  ns_ndarray_free(ctx, &a);
  assert_int_equal(ns_npy_load(ctx, tu_path(path, sizeof path, dir, "fortran.npy"), &a),
                   NS_ERR_UNSUPPORTED);
  assert_non_null(strstr(ns_ctx_error(ctx), "Fortran"));
  assert_int_equal(ns_npy_load(ctx, tu_path(path, sizeof path, dir, "i8.npy"), &a),
                   NS_ERR_UNSUPPORTED);
  assert_non_null(strstr(ns_ctx_error(ctx), "'<i8'"));
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

typedef struct hostile_case {
  const char *header; /* dict text; "\n" and padding are added */
  ns_status expect;
  const char *says; /* part of the error message */
} hostile_case;

static void test_npy_hostile_headers(void **state) {
  (void)state;
  const hostile_case cases[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", NS_OK, ""},
      {"{'shape': (2,), 'fortran_order': False, 'descr': '>f4'}", NS_OK, ""},
      {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L,)}", NS_OK, ""},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", NS_ERR_INPUT, "comma"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", NS_ERR_INPUT, "tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", NS_ERR_INPUT, "integer"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (2,), }", NS_ERR_INPUT, "True or False"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", NS_ERR_UNSUPPORTED, "Fortran"},
      {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", NS_ERR_UNSUPPORTED, "'<i8'"},
      {"{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", NS_ERR_UNSUPPORTED, "'|u1'"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", NS_ERR_UNSUPPORTED, "'<f2'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", NS_ERR_UNSUPPORTED,
       "structured"},
      {"{'descr': '<f4', 'fortran_order': False}", NS_ERR_INPUT, "shape"},
      {"{'descr': '<f4', 'shape': (2,), 'fortran_order': False, 'x': 1}", NS_ERR_INPUT, "'x'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", NS_ERR_INPUT,
       "duplicate"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", NS_ERR_INPUT, "after"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", NS_ERR_INPUT, "','"},
      {"{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}", NS_ERR_INPUT, "npy header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296,)}",
       NS_ERR_INPUT, "overflow"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", NS_ERR_INPUT,
       "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': "
       "(1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1)}",
       NS_ERR_INPUT, "axes"},
      {"", NS_ERR_INPUT, "'{'"},
      {"{'descr': '\xc3\xa9', 'fortran_order': False, 'shape': (2,)}", NS_ERR_INPUT, "character"},
  };
  ns_ctx *ctx = ns_ctx_create();
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t size;
    unsigned char *f = make_npy(1, cases[i].header, "\x00\x00\x80\x3f\x00\x00\x00\x40", 8, &size);
    ns_ndarray a;
    ns_status st = ns_npy_parse(ctx, f, size, "h.npy", &a);
    if (st != cases[i].expect || (st != NS_OK && !strstr(ns_ctx_error(ctx), cases[i].says)))
      fail_msg("case %zu: status %d, error '%s'", i, st, ns_ctx_error(ctx));
    if (st == NS_OK) {
      assert_int_equal(a.count, 2);
      ns_ndarray_free(ctx, &a);
    }
    free(f);
  }
  ns_ctx_destroy(ctx);
}

static void test_npy_bad_prelude(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
  size_t size;
  ns_ndarray a;
  unsigned char *f = make_npy(1, dict, "\0\0\0\0", 4, &size);
  f[1] = 'M';
  assert_int_equal(ns_npy_parse(ctx, f, size, "x", &a), NS_ERR_INPUT);
  assert_non_null(strstr(ns_ctx_error(ctx), "magic"));
  f[1] = 'N';
  f[6] = 4; /* version 4.0 */
  assert_int_equal(ns_npy_parse(ctx, f, size, "x", &a), NS_ERR_INPUT);
  f[6] = 1;
  f[7] = 1; /* version 1.1 */
  assert_int_equal(ns_npy_parse(ctx, f, size, "x", &a), NS_ERR_INPUT);
  f[7] = 0;
  f[8] = 0xff; /* header longer than the file */
  f[9] = 0xff;
  assert_int_equal(ns_npy_parse(ctx, f, size, "x", &a), NS_ERR_INPUT);
  free(f);
  /* Version 2.0 with a 4-byte length claiming 3 GB. */
  f = make_npy(2, dict, "\0\0\0\0", 4, &size);
  f[11] = 0xc0;
  assert_int_equal(ns_npy_parse(ctx, f, size, "x", &a), NS_ERR_INPUT);
  assert_non_null(strstr(ns_ctx_error(ctx), "too long"));
  free(f);
  for (size_t n = 0; n < 12; n++) /* shorter than any prelude */
    assert_int_equal(ns_npy_parse(ctx, "\x93NUMPY\x02\x00\x00\x00\x00", n, "x", &a), NS_ERR_INPUT);
  ns_ctx_destroy(ctx);
}

/* Data must fill the file exactly: truncated or extended files fail, from
 * memory and from disk (where the size is checked before allocating). */
static void test_npy_size_mismatch(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), path[512];
  tu_path(path, sizeof path, dir, "t.npy");
  const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
  unsigned char data[25] = {0};
  size_t size;
  ns_ndarray a;
  for (size_t n = 0; n <= 25; n++) {
    unsigned char *f = make_npy(1, dict, data, n, &size);
    ns_status want = n == 24 ? NS_OK : NS_ERR_INPUT;
    assert_int_equal(ns_npy_parse(ctx, f, size, "t.npy", &a), want);
    if (want == NS_OK) ns_ndarray_free(ctx, &a);
    if (n < 24) assert_non_null(strstr(ns_ctx_error(ctx), "truncated"));
    if (n > 24) assert_non_null(strstr(ns_ctx_error(ctx), "trailing"));
    assert_int_equal(tu_write_file(path, f, size), 0);
    assert_int_equal(ns_npy_load(ctx, path, &a), want);
    if (want == NS_OK) ns_ndarray_free(ctx, &a);
    free(f);
  }
  /* A huge shape with no data: refused before any allocation. */
  ns_ctx_set_memory_limit(ctx, 1 << 20);
  unsigned char *f = make_npy(
      1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", data, 4, &size);
  assert_int_equal(tu_write_file(path, f, size), 0);
  assert_int_equal(ns_npy_load(ctx, path, &a), NS_ERR_INPUT);
  free(f);
  assert_int_equal(ns_npy_load(ctx, "/nonexistent/x.npy", &a), NS_ERR_IO);
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

static void test_npy_memory_limit(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  size_t size;
  unsigned char data[400] = {0};
  unsigned char *f =
      make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", data, 400, &size);
  ns_ctx_set_memory_limit(ctx, 100);
  ns_ndarray a;
  assert_int_equal(ns_npy_parse(ctx, f, size, "m.npy", &a), NS_ERR_NOMEM);
  free(f);
  ns_ctx_destroy(ctx);
}

/* ---- atomic writes ------------------------------------------------------- */

/* A write that fails half-way (file size limit) leaves the old file and no
 * temporary file behind. */
static void test_atomic_write_failure(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), npy[512], png[512];
  tu_path(npy, sizeof npy, dir, "old.npy");
  tu_path(png, sizeof png, dir, "old.png");
  assert_int_equal(tu_write_file(npy, "old contents", 12), 0);
  assert_int_equal(tu_write_file(png, "old contents", 12), 0);
  int64_t shape[1] = {100000};
  float *big = calloc(100000, sizeof(float));
  unsigned char *noise = malloc(300 * 300 * 3);
  for (int i = 0; i < 300 * 300 * 3; i++) noise[i] = (unsigned char)(i * 2654435761u >> 13);
  with_file_size_limit(4096);
  ns_status st1 = ns_npy_save_f32(ctx, npy, 1, shape, big);
  ns_status st2 = ns_png_save_rgb8(ctx, png, 300, 300, noise);
  without_file_size_limit();
  assert_int_equal(st1, NS_ERR_IO);
  assert_int_equal(st2, NS_ERR_IO);
  size_t size;
  unsigned char *bytes = read_all(npy, &size);
  assert_int_equal(size, 12);
  free(bytes);
  bytes = read_all(png, &size);
  assert_int_equal(size, 12);
  free(bytes);
  assert_int_equal(count_files(dir), 2);
  /* An impossible folder: an error, nothing created. */
  assert_int_equal(ns_npy_save_f32(ctx, "/nonexistent/dir/x.npy", 1, shape, big), NS_ERR_IO);
  assert_int_equal(ns_png_save_rgb8(ctx, "/nonexistent/dir/x.png", 2, 2, noise), NS_ERR_IO);
  /* Success replaces the old file. */
  assert_int_equal(ns_npy_save_f32(ctx, npy, 1, shape, big), NS_OK);
  bytes = read_all(npy, &size);
  assert_int_equal(size, 128 + 400000);
  free(bytes);
  assert_int_equal(count_files(dir), 2);
  free(big);
  free(noise);
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

/* ---- image decoding ------------------------------------------------------ */

static void assert_image(const ns_image *im, int h, int w, int c) {
  assert_non_null(im->data);
  assert_int_equal(im->height, h);
  assert_int_equal(im->width, w);
  assert_int_equal(im->channels, c);
}

/* Our own PNG writer, then our decoder: v / 255 exactly. */
static void test_png_roundtrip(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), path[512];
  tu_path(path, sizeof path, dir, "rgb.png");
  enum { H = 7, W = 11 };
  unsigned char rgb[H * W * 3];
  for (int i = 0; i < H * W * 3; i++) rgb[i] = (unsigned char)(i * 37 + 11);
  assert_int_equal(ns_png_save_rgb8(ctx, path, H, W, rgb), NS_OK);
  ns_image im;
  assert_int_equal(ns_image_load(ctx, path, 0, &im), NS_OK);
  assert_image(&im, H, W, 3);
  for (int i = 0; i < H * W * 3; i++) assert_true(im.data[i] == (float)(rgb[i] / 255.0));
  ns_image_free(ctx, &im);
  /* An independent decoder reads the same bytes (without OpenCV the test
   * reports a skip once the checks above have passed). */
  int have_cv2 = python_has("cv2");
  if (have_cv2) {
    char script[1024];
    snprintf(script, sizeof script,
             "import sys, cv2, numpy as np\n"
             "im = cv2.imread(sys.argv[1] + '/rgb.png', cv2.IMREAD_UNCHANGED)\n"
             "want = ((np.arange(%d * %d * 3) * 37 + 11) %% 256).reshape(%d, %d, 3)\n"
             "assert im.shape == (%d, %d, 3) and (im[:, :, ::-1] == want).all()\n",
             H, W, H, W, H, W);
    assert_int_equal(run_python(dir, script), 0);
  }
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
  if (!have_cv2) skip();
}

/* skimage.color.rgb2gray weights, written out as the definition. */
static double grey_of(double r, double g, double b) { return 0.2125 * r + 0.7154 * g + 0.0721 * b; }

/* Each PNG colour type as load_image sees it through imageio + Pillow. */
static void test_png_colour_types(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  enum { H = 3, W = 5 };
  unsigned char px[H * W * 8];
  for (int i = 0; i < H * W * 8; i++) px[i] = (unsigned char)(i * 53 + 7);
  ns_image im;
  size_t n;
  unsigned char *png;

  /* grey 8: v/255; colour: tiled */
  png = make_png(H, W, TP_GREY, 8, px, 0, &n);
  assert_int_equal(ns_image_decode(ctx, png, n, "g8", 0, &im), NS_OK);
  assert_image(&im, H, W, 3);
  for (int i = 0; i < H * W; i++)
    for (int c = 0; c < 3; c++) assert_true(im.data[i * 3 + c] == (float)(px[i] / 255.0));
  ns_image_free(ctx, &im);
  assert_int_equal(ns_image_decode(ctx, png, n, "g8", NS_IMAGE_GREY, &im), NS_OK);
  assert_image(&im, H, W, 1);
  for (int i = 0; i < H * W; i++) assert_true(im.data[i] == (float)(px[i] / 255.0));
  ns_image_free(ctx, &im);
  free(png);

  /* grey 16: v/65535, all 16 bits kept */
  png = make_png(H, W, TP_GREY, 16, px, 0, &n);
  assert_int_equal(ns_image_decode(ctx, png, n, "g16", NS_IMAGE_GREY, &im), NS_OK);
  for (int i = 0; i < H * W; i++)
    assert_true(im.data[i] == (float)((px[2 * i] * 256 + px[2 * i + 1]) / 65535.0));
  ns_image_free(ctx, &im);
  free(png);

  /* RGB 16: the high byte of each channel / 255 */
  png = make_png(H, W, TP_RGB, 16, px, 0, &n);
  assert_int_equal(ns_image_decode(ctx, png, n, "rgb16", 0, &im), NS_OK);
  for (int i = 0; i < H * W * 3; i++) assert_true(im.data[i] == (float)(px[2 * i] / 255.0));
  ns_image_free(ctx, &im);
  free(png);

  /* RGBA: alpha dropped; grey: blended onto white, then weighed */
  png = make_png(H, W, TP_RGBA, 8, px, 0, &n);
  assert_int_equal(ns_image_decode(ctx, png, n, "rgba", 0, &im), NS_OK);
  assert_image(&im, H, W, 3);
  for (int i = 0; i < H * W; i++)
    for (int c = 0; c < 3; c++) assert_true(im.data[i * 3 + c] == (float)(px[i * 4 + c] / 255.0));
  ns_image_free(ctx, &im);
  assert_int_equal(ns_image_decode(ctx, png, n, "rgba", NS_IMAGE_GREY, &im), NS_OK);
  for (int i = 0; i < H * W; i++) {
    double a = px[i * 4 + 3] / 255.0, v[3];
    for (int c = 0; c < 3; c++) v[c] = (1 - a) + a * (px[i * 4 + c] / 255.0);
    assert_float_equal(im.data[i], grey_of(v[0], v[1], v[2]), 1e-6);
  }
  ns_image_free(ctx, &im);
  free(png);

  /* grey + alpha: colour drops alpha */
  png = make_png(H, W, TP_GREY_ALPHA, 8, px, 0, &n);
  assert_int_equal(ns_image_decode(ctx, png, n, "ga", 0, &im), NS_OK);
  for (int i = 0; i < H * W; i++) assert_true(im.data[i * 3 + 1] == (float)(px[i * 2] / 255.0));
  ns_image_free(ctx, &im);
  free(png);

  /* RGB to grey */
  png = make_png(H, W, TP_RGB, 8, px, 0, &n);
  assert_int_equal(ns_image_decode(ctx, png, n, "rgb", NS_IMAGE_GREY, &im), NS_OK);
  assert_image(&im, H, W, 1);
  for (int i = 0; i < H * W; i++)
    assert_float_equal(
        im.data[i], grey_of(px[3 * i] / 255.0, px[3 * i + 1] / 255.0, px[3 * i + 2] / 255.0), 1e-6);
  ns_image_free(ctx, &im);
  free(png);

  /* interlaced RGB: same pixels */
  png = make_png(H, W, TP_RGB, 8, px, 1, &n);
  assert_int_equal(ns_image_decode(ctx, png, n, "adam7", 0, &im), NS_OK);
  for (int i = 0; i < H * W * 3; i++) assert_true(im.data[i] == (float)(px[i] / 255.0));
  ns_image_free(ctx, &im);
  free(png);

  /* 1-bit grey: 0 or 1 */
  unsigned char bits[H * W];
  for (int i = 0; i < H * W; i++) bits[i] = (unsigned char)(i % 3 == 0);
  png = make_png(H, W, TP_GREY, 1, bits, 0, &n);
  assert_int_equal(ns_image_decode(ctx, png, n, "g1", NS_IMAGE_GREY, &im), NS_OK);
  for (int i = 0; i < H * W; i++) assert_true(im.data[i] == (i % 3 == 0 ? 1.0f : 0.0f));
  ns_image_free(ctx, &im);
  free(png);
  ns_ctx_destroy(ctx);
}

static void test_png_palette_expansion(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  size_t n;
  ns_image im;
  /* 4 entries; entry 2 half transparent when trns is used */
  const unsigned char palette[4][3] = {{0, 0, 0}, {255, 0, 0}, {10, 200, 30}, {255, 255, 255}};
  const unsigned char index[6] = {0, 1, 2, 3, 2, 1};
  for (int trns = 0; trns < 2; trns++) {
    unsigned char *png = make_png_palette(2, 3, palette, 4, index, trns ? 128 : -1, &n);
    assert_int_equal(ns_image_decode(ctx, png, n, "pal", 0, &im), NS_OK);
    assert_image(&im, 2, 3, 3);
    for (int i = 0; i < 6; i++)
      for (int c = 0; c < 3; c++)
        assert_true(im.data[i * 3 + c] == (float)(palette[index[i]][c] / 255.0));
    ns_image_free(ctx, &im);
    assert_int_equal(ns_image_decode(ctx, png, n, "pal", NS_IMAGE_GREY, &im), NS_OK);
    /* pixel 2 has entry 2: alpha 128/255 when trns, blended onto white */
    double a = trns ? 128 / 255.0 : 1.0, v[3];
    for (int c = 0; c < 3; c++) v[c] = (1 - a) + a * (palette[2][c] / 255.0);
    assert_float_equal(im.data[2], grey_of(v[0], v[1], v[2]), 1e-6);
    ns_image_free(ctx, &im);
    free(png);
  }
  ns_ctx_destroy(ctx);
}

/* Every prefix of a valid PNG, and corrupted bytes, give errors. */
static void test_png_truncated_and_corrupt(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), path[512];
  tu_path(path, sizeof path, dir, "ok.png");
  unsigned char rgb[6 * 9 * 3];
  for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (unsigned char)(i * 7);
  assert_int_equal(ns_png_save_rgb8(ctx, path, 6, 9, rgb), NS_OK);
  size_t size;
  unsigned char *bytes = read_all(path, &size);
  ns_image im;
  assert_int_equal(ns_image_decode(ctx, bytes, size, "ok.png", 0, &im), NS_OK);
  ns_image_free(ctx, &im);
  for (size_t n = 0; n < size; n++) {
    ns_status st = ns_image_decode(ctx, bytes, n, "cut.png", 0, &im);
    if (st == NS_OK) fail_msg("prefix of %zu bytes decoded", n);
    assert_null(im.data);
  }
  assert_non_null(strstr(ns_ctx_error(ctx), "cut.png"));
  /* Flip one byte anywhere after the signature: CRCs catch it. */
  for (size_t at = 8; at < size; at++) {
    bytes[at] ^= 0x5a;
    ns_status st = ns_image_decode(ctx, bytes, size, "flip.png", 0, &im);
    if (st == NS_OK) fail_msg("corrupt byte %zu went unnoticed", at);
    bytes[at] ^= 0x5a;
  }
  free(bytes);
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

static void test_jpeg_decode(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  enum { H = 16, W = 24 };
  unsigned char rgb[H * W * 3];
  for (int i = 0; i < H * W; i++) rgb[i * 3] = 200, rgb[i * 3 + 1] = 40, rgb[i * 3 + 2] = 90;
  size_t n;
  unsigned char *jpg = make_jpeg(H, W, 3, rgb, 100, NULL, 0, &n);
  ns_image im;
  assert_int_equal(ns_image_decode(ctx, jpg, n, "flat.jpg", 0, &im), NS_OK);
  assert_image(&im, H, W, 3);
  for (int i = 0; i < H * W; i++) { /* a flat colour survives JPEG within 2 levels */
    assert_float_equal(im.data[i * 3] * 255.0, 200, 2.0);
    assert_float_equal(im.data[i * 3 + 1] * 255.0, 40, 2.0);
    assert_float_equal(im.data[i * 3 + 2] * 255.0, 90, 2.0);
  }
  ns_image_free(ctx, &im);
  free(jpg);
  /* grey JPEG: one component, tiled for colour, as is for grey */
  unsigned char grey[H * W];
  memset(grey, 77, sizeof grey);
  jpg = make_jpeg(H, W, 1, grey, 100, NULL, 0, &n);
  assert_int_equal(ns_image_decode(ctx, jpg, n, "grey.jpg", 0, &im), NS_OK);
  assert_image(&im, H, W, 3);
  assert_true(im.data[0] == im.data[1] && im.data[1] == im.data[2]);
  assert_float_equal(im.data[0] * 255.0, 77, 1.0);
  ns_image_free(ctx, &im);
  assert_int_equal(ns_image_decode(ctx, jpg, n, "grey.jpg", NS_IMAGE_GREY, &im), NS_OK);
  assert_image(&im, H, W, 1);
  ns_image_free(ctx, &im);
  free(jpg);
  ns_ctx_destroy(ctx);
}

/* The same pixels as OpenCV's decoder (which, like Pillow, runs
 * libjpeg-turbo with its defaults), for a generated file and, when the
 * shared data is there, for fish-bike.jpg. */
static void test_jpeg_matches_opencv(void **state) {
  (void)state;
  if (!python_has("cv2")) skip();
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), generated[512], shared[1024], npy[512];
  enum { H = 45, W = 61 };
  unsigned char rgb[H * W * 3];
  for (int i = 0; i < H * W * 3; i++) rgb[i] = (unsigned char)((i * 31) ^ (i >> 4));
  size_t n;
  unsigned char *jpg = make_jpeg(H, W, 3, rgb, 75, NULL, 0, &n);
  assert_int_equal(tu_write_file(tu_path(generated, sizeof generated, dir, "gen.jpg"), jpg, n), 0);
  free(jpg);
  tu_path(npy, sizeof npy, dir, "cv.npy");
  const char *files[2] = {generated, NULL};
  const char *sd = tu_shared_dir();
  if (sd) files[1] = tu_path(shared, sizeof shared, sd, "data/fish-bike.jpg");
  for (int f = 0; f < 2 && files[f]; f++) {
    char script[2048];
    snprintf(script, sizeof script,
             "import sys, cv2, numpy as np\n"
             "im = cv2.imread('%s', cv2.IMREAD_COLOR)[:, :, ::-1]\n"
             "np.save(sys.argv[1] + '/cv.npy', im.astype(np.float32))\n",
             files[f]);
    assert_int_equal(run_python(dir, script), 0);
    ns_ndarray cv;
    ns_image im;
    assert_int_equal(ns_npy_load(ctx, npy, &cv), NS_OK);
    assert_int_equal(ns_image_load(ctx, files[f], 0, &im), NS_OK);
    assert_int_equal(cv.count, (int64_t)im.height * im.width * 3);
    int64_t differ = 0;
    for (int64_t i = 0; i < cv.count; i++) differ += (float)(cv.data[i] / 255.0) != im.data[i];
    print_message("%s: %lld of %lld values differ from OpenCV\n", files[f], (long long)differ,
                  (long long)cv.count);
    assert_int_equal(differ, 0);
    ns_ndarray_free(ctx, &cv);
    ns_image_free(ctx, &im);
  }
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

/* EXIF orientation: where the stored top-left and top-right pixels end up
 * on display (EXIF 2.3, tag 0x0112), in a four-quadrant image. */
static void test_jpeg_exif_orientation(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  enum { H = 32, W = 48 };
  unsigned char rgb[H * W * 3];
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      unsigned char *p = rgb + (y * W + x) * 3;
      int q = (y >= H / 2) * 2 + (x >= W / 2);
      p[0] = q == 1 ? 250 : 10, p[1] = q == 2 ? 250 : 10, p[2] = q == 3 ? 250 : 10;
    }
  /* corner ids: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right */
  const int tl_goes[9] = {0, 0, 1, 3, 2, 0, 1, 3, 2};
  const int tr_goes[9] = {0, 1, 0, 2, 3, 2, 3, 1, 0};
  int have_numpy = python_has("numpy");
  ns_image stored;
  size_t n;
  unsigned char *jpg = make_jpeg(H, W, 3, rgb, 95, NULL, 0, &n);
  assert_int_equal(ns_image_decode(ctx, jpg, n, "plain.jpg", 0, &stored), NS_OK);
  free(jpg);
  for (int o = 1; o <= 8; o++) {
    unsigned char exif[64];
    size_t exif_len = make_exif_orientation(exif, o, o % 2); /* both byte orders */
    jpg = make_jpeg(H, W, 3, rgb, 95, exif, exif_len, &n);
    ns_image shown, raw;
    assert_int_equal(ns_image_decode(ctx, jpg, n, "o.jpg", 0, &shown), NS_OK);
    assert_int_equal(ns_image_decode(ctx, jpg, n, "o.jpg", NS_IMAGE_IGNORE_EXIF, &raw), NS_OK);
    free(jpg);
    assert_image(&raw, H, W, 3);
    assert_memory_equal(raw.data, stored.data, sizeof(float) * H * W * 3);
    if (o >= 5)
      assert_image(&shown, W, H, 3);
    else
      assert_image(&shown, H, W, 3);
    assert_memory_equal(corner(&shown, tl_goes[o]), corner(&stored, 0), 3 * sizeof(float));
    assert_memory_equal(corner(&shown, tr_goes[o]), corner(&stored, 1), 3 * sizeof(float));
    /* numpy applies imageio's steps to the stored pixels: same array
     * (without numpy the test reports a skip once the rest has passed) */
    if (have_numpy) assert_int_equal(check_orientation_with_numpy(ctx, &raw, &shown, o), 0);
    ns_image_free(ctx, &shown);
    ns_image_free(ctx, &raw);
  }
  ns_image_free(ctx, &stored);
  ns_ctx_destroy(ctx);
  if (!have_numpy) skip();
}

static void test_jpeg_truncated_and_garbage(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  enum { H = 24, W = 40 };
  unsigned char rgb[H * W * 3];
  for (int i = 0; i < H * W * 3; i++) rgb[i] = (unsigned char)(i * 13);
  for (int progressive = 0; progressive < 2; progressive++) {
    size_t n;
    unsigned char *jpg = make_jpeg_ex(H, W, 3, rgb, 80, progressive, &n);
    ns_image im;
    assert_int_equal(ns_image_decode(ctx, jpg, n, "ok.jpg", 0, &im), NS_OK);
    ns_image_free(ctx, &im);
    /* Cut before the EOI marker (the last two bytes): always an error. */
    for (size_t cut = 0; cut + 2 < n; cut++) {
      ns_status st = ns_image_decode(ctx, jpg, cut, "cut.jpg", 0, &im);
      if (st == NS_OK) fail_msg("prefix of %zu bytes of %zu decoded", cut, n);
      assert_null(im.data);
    }
    /* Random bytes after the SOI marker: an error, never a crash. */
    unsigned char junk[600];
    memcpy(junk, jpg, 4);
    uint32_t x = 12345;
    for (size_t i = 4; i < sizeof junk; i++)
      junk[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 16);
    assert_int_not_equal(ns_image_decode(ctx, junk, sizeof junk, "junk.jpg", 0, &im), NS_OK);
    free(jpg);
  }
  ns_ctx_destroy(ctx);
}

static void test_image_format_and_limits(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  ns_image im;
  assert_int_equal(ns_image_decode(ctx, "GIF89a....", 10, "x.gif", 0, &im), NS_ERR_UNSUPPORTED);
  assert_int_equal(ns_image_decode(ctx, "", 0, "empty", 0, &im), NS_ERR_UNSUPPORTED);
  assert_int_equal(ns_image_load(ctx, "/nonexistent/x.png", 0, &im), NS_ERR_IO);
  /* Wider than NS_IMAGE_MAX_DIM: refused before decoding. */
  size_t n;
  unsigned char *row = calloc(NS_IMAGE_MAX_DIM + 1, 1);
  unsigned char *png = make_png(1, NS_IMAGE_MAX_DIM + 1, TP_GREY, 8, row, 0, &n);
  assert_int_equal(ns_image_decode(ctx, png, n, "wide.png", 0, &im), NS_ERR_INPUT);
  free(png);
  free(row);
  /* The memory limit counts the float image. */
  unsigned char px[100 * 100];
  memset(px, 9, sizeof px);
  png = make_png(100, 100, TP_GREY, 8, px, 0, &n);
  ns_ctx_set_memory_limit(ctx, 100 * 100 * 3 * 4 - 1);
  assert_int_equal(ns_image_decode(ctx, png, n, "big.png", 0, &im), NS_ERR_NOMEM);
  ns_ctx_set_memory_limit(ctx, 100 * 100 * 3 * 4);
  assert_int_equal(ns_image_decode(ctx, png, n, "big.png", 0, &im), NS_OK);
  ns_image_free(ctx, &im);
  free(png);
  ns_ctx_destroy(ctx);
}

/* ---- resize -------------------------------------------------------------- */

/* 1x2 -> 1x4, hand computed: source x = (o + 0.5) / 2 - 0.5 = -0.25, 0.25,
 * 0.75, 1.25; outside samples are 0 (the minimum), so the ends darken:
 * [0, 0.25, 0.75, 0.75] in the unit scale, here with min 10, max 20. */
static void test_resize_by_hand(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  float src[2] = {10, 20};
  ns_image in = {1, 2, 1, src}, out;
  for (int aa = 0; aa < 2; aa++) {
    assert_int_equal(ns_image_resize(ctx, &in, 1, 4, aa, &out), NS_OK);
    const float want[4] = {10, 12.5f, 17.5f, 17.5f};
    for (int i = 0; i < 4; i++) assert_float_equal(out.data[i], want[i], 1e-5);
    ns_image_free(ctx, &out);
  }
  /* constant image: filled with its value */
  float flat[6] = {3, 3, 3, 3, 3, 3};
  ns_image c = {2, 1, 3, flat};
  assert_int_equal(ns_image_resize(ctx, &c, 5, 4, 1, &out), NS_OK);
  assert_image(&out, 5, 4, 3);
  for (int i = 0; i < 60; i++) assert_true(out.data[i] == 3.0f);
  ns_image_free(ctx, &out);
  /* same size without smoothing: the values come back */
  float v[6] = {0, 1, 2, 3, 4, 5};
  ns_image same = {2, 3, 1, v};
  assert_int_equal(ns_image_resize(ctx, &same, 2, 3, 0, &out), NS_OK);
  for (int i = 0; i < 6; i++) assert_float_equal(out.data[i], v[i], 1e-6);
  ns_image_free(ctx, &out);
  assert_int_equal(ns_image_resize(ctx, &same, 0, 3, 0, &out), NS_ERR_USAGE);
  ns_ctx_destroy(ctx);
}

/* Random images of odd sizes against the naive reference
 * above (double precision, direct formulas). */
static void test_resize_vs_naive(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  const int sizes[][5] = {{7, 5, 3, 13, 3}, {10, 10, 1, 3, 4}, {33, 17, 3, 8, 8},
                          {5, 6, 2, 5, 6},  {64, 9, 1, 7, 20}, {1, 1, 3, 4, 4}};
  uint32_t seed = 7;
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    int h = sizes[s][0], w = sizes[s][1], c = sizes[s][2], oh = sizes[s][3], ow = sizes[s][4];
    ns_image in;
    assert_int_equal(ns_image_alloc(ctx, h, w, c, &in), NS_OK);
    for (int i = 0; i < h * w * c; i++)
      in.data[i] = (float)((seed = seed * 1664525u + 1013904223u) >> 8) / (1 << 24) * 50 - 20;
    for (int aa = 0; aa < 2; aa++) {
      ns_image out;
      assert_int_equal(ns_image_resize(ctx, &in, oh, ow, aa, &out), NS_OK);
      float *want = naive_resize(&in, oh, ow, aa);
      double max_abs;
      if (tu_excess(out.data, want, (int64_t)oh * ow * c, 1e-4, 1e-5, &max_abs) > 0)
        fail_msg("case %zu aa %d: max error %g", s, aa, max_abs);
      free(want);
      ns_image_free(ctx, &out);
    }
    ns_image_free(ctx, &in);
  }
  ns_ctx_destroy(ctx);
}

/* ---- preprocessing and means --------------------------------------------- */

static void test_transform_steps(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  /* 1x2 RGB image, no resize: swap to BGR, * 255, - mean, * 0.5 */
  float px[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  ns_image im = {1, 2, 3, px};
  ns_transform t;
  ns_transform_init(&t);
  t.num_swap = 3;
  t.channel_swap[0] = 2, t.channel_swap[1] = 1, t.channel_swap[2] = 0;
  t.raw_scale = 255;
  t.num_mean_values = 3;
  t.mean_values[0] = 100, t.mean_values[1] = 110, t.mean_values[2] = 120;
  t.input_scale = 0.5;
  float out[6];
  assert_int_equal(ns_transform_preprocess(ctx, &t, &im, 1, 2, out, 6), NS_OK);
  /* out[c][x] = (px[x][2 - c] * 255 - mean[c]) * 0.5 */
  const float want[6] = {(76.5f - 100) / 2,  (153 - 100) / 2.0f, (51 - 110) / 2.0f,
                         (127.5f - 110) / 2, (25.5f - 120) / 2,  (102 - 120) / 2.0f};
  for (int i = 0; i < 6; i++) assert_float_equal(out[i], want[i], 1e-4);
  /* a mean image of the input's size: elementwise */
  float mean_px[6] = {1, 2, 3, 4, 5, 6};
  ns_ndarray mean = {3, {3, 1, 2}, 6, mean_px};
  t.num_mean_values = 0;
  t.mean_image = &mean;
  assert_int_equal(ns_transform_preprocess(ctx, &t, &im, 1, 2, out, 6), NS_OK);
  for (int i = 0; i < 6; i++)
    assert_float_equal(out[i], (want[i] * 2 + t.mean_values[i / 2] - mean_px[i]) / 2, 1e-4);
  /* errors */
  assert_int_equal(ns_transform_preprocess(ctx, &t, &im, 1, 2, out, 5), NS_ERR_USAGE);
  t.num_swap = 2;
  assert_int_equal(ns_transform_preprocess(ctx, &t, &im, 1, 2, out, 6), NS_ERR_USAGE);
  t.num_swap = 3;
  t.channel_swap[0] = 3;
  assert_int_equal(ns_transform_preprocess(ctx, &t, &im, 1, 2, out, 6), NS_ERR_USAGE);
  t.channel_swap[0] = 2;
  t.num_mean_values = 2;
  assert_int_equal(ns_transform_preprocess(ctx, &t, &im, 1, 2, out, 6), NS_ERR_USAGE);
  ns_ctx_destroy(ctx);
}

/* A mean image of another size is resized as Caffe 1.0's set_mean did:
 * the same as resizing it as an image (naive reference). */
static void test_transform_mean_resized(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  float mean_px[3 * 6 * 5];
  for (int i = 0; i < 90; i++) mean_px[i] = 100 + (float)((i * 37) % 23);
  ns_ndarray mean = {3, {3, 6, 5}, 90, mean_px};
  ns_image hwc;
  assert_int_equal(ns_image_alloc(ctx, 6, 5, 3, &hwc), NS_OK);
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 30; i++) hwc.data[i * 3 + c] = mean_px[c * 30 + i];
  float *want = naive_resize(&hwc, 4, 4, 1);
  ns_image zero;
  assert_int_equal(ns_image_alloc(ctx, 4, 4, 3, &zero), NS_OK);
  ns_transform t;
  ns_transform_init(&t);
  t.mean_image = &mean;
  float out[48];
  assert_int_equal(ns_transform_preprocess(ctx, &t, &zero, 4, 4, out, 48), NS_OK);
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 16; i++) assert_float_equal(-out[c * 16 + i], want[i * 3 + c], 1e-3);
  free(want);
  ns_image_free(ctx, &hwc);
  ns_image_free(ctx, &zero);
  ns_ctx_destroy(ctx);
}

static void test_mean_files(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), path[512];
  tu_path(path, sizeof path, dir, "m.npy");
  float v[24];
  for (int i = 0; i < 24; i++) v[i] = (float)i;
  ns_ndarray m;
  /* .npy: (3, 2, 4) as is, (1, 3, 2, 4) squeezed, (2, 3, 2, 2) refused */
  const int64_t s3[3] = {3, 2, 4}, s4[4] = {1, 3, 2, 4}, bad[4] = {2, 3, 2, 2}, s1[1] = {3};
  assert_int_equal(ns_npy_save_f32(ctx, path, 3, s3, v), NS_OK);
  assert_int_equal(ns_mean_load(ctx, path, &m), NS_OK);
  assert_int_equal(m.num_axes, 3);
  ns_ndarray_free(ctx, &m);
  assert_int_equal(ns_npy_save_f32(ctx, path, 4, s4, v), NS_OK);
  assert_int_equal(ns_mean_load(ctx, path, &m), NS_OK);
  assert_int_equal(m.num_axes, 3);
  assert_int_equal(m.shape[0], 3);
  assert_int_equal(m.shape[2], 4);
  assert_true(m.data[23] == 23.0f);
  ns_ndarray_free(ctx, &m);
  assert_int_equal(ns_npy_save_f32(ctx, path, 4, bad, v), NS_OK);
  assert_int_equal(ns_mean_load(ctx, path, &m), NS_ERR_INPUT);
  assert_int_equal(ns_npy_save_f32(ctx, path, 1, s1, v), NS_OK);
  assert_int_equal(ns_mean_load(ctx, path, &m), NS_OK);
  assert_int_equal(m.num_axes, 1);
  ns_ndarray_free(ctx, &m);

  /* .binaryproto, encoded by hand (field numbers from caffe.proto):
   * num 1 (08 01), channels 1 (10 01), height 1 (18 01), width 2 (20 02),
   * data packed (2a 08, 1.0f, 2.0f). */
  const unsigned char legacy[] = {0x08, 0x01, 0x10, 0x01, 0x18, 0x01, 0x20, 0x02, 0x2a,
                                  0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40};
  assert_int_equal(ns_mean_parse_binaryproto(ctx, legacy, sizeof legacy, "l", &m), NS_OK);
  assert_int_equal(m.num_axes, 3);
  assert_int_equal(m.shape[0], 1);
  assert_int_equal(m.shape[1], 1);
  assert_int_equal(m.shape[2], 2);
  assert_true(m.data[0] == 1.0f && m.data[1] == 2.0f);
  ns_ndarray_free(ctx, &m);
  /* shape {dim: 2 dim: 1 dim: 1} (3a 05 0a 03 02 01 01), double_data packed
   * (42 10, 0.5, -1.5) */
  const unsigned char shaped[] = {0x3a, 0x05, 0x0a, 0x03, 0x02, 0x01, 0x01, 0x42, 0x10,
                                  0,    0,    0,    0,    0,    0,    0xe0, 0x3f, 0,
                                  0,    0,    0,    0,    0,    0xf8, 0xbf};
  assert_int_equal(ns_mean_parse_binaryproto(ctx, shaped, sizeof shaped, "s", &m), NS_OK);
  assert_int_equal(m.num_axes, 3);
  assert_int_equal(m.shape[0], 2);
  assert_true(m.data[0] == 0.5f && m.data[1] == -1.5f);
  ns_ndarray_free(ctx, &m);
  /* width 3 but two values: the count must match */
  unsigned char wrong[sizeof legacy];
  memcpy(wrong, legacy, sizeof legacy);
  wrong[7] = 3;
  assert_int_equal(ns_mean_parse_binaryproto(ctx, wrong, sizeof wrong, "w", &m), NS_ERR_INPUT);
  assert_non_null(strstr(ns_ctx_error(ctx), "2 values"));
  /* garbage, on disk */
  tu_path(path, sizeof path, dir, "bad.binaryproto");
  assert_int_equal(tu_write_file(path, "\xff\xff\xff\xff\xff", 5), 0);
  assert_int_equal(ns_mean_load(ctx, path, &m), NS_ERR_INPUT);
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

/* ---- heatmaps ------------------------------------------------------------ */

static void test_heatmap_render(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  const float map[4] = {0, 1, 2, 3};
  unsigned char rgb[4 * 4 * 3];
  ns_heatmap_opts o;
  ns_heatmap_opts_init(&o);
  /* nearest: each cell a 2x2 block; min and max take the colormap ends */
  assert_int_equal(ns_heatmap_render(ctx, map, 2, 2, &o, 4, 4, rgb), NS_OK);
  assert_memory_equal(rgb, "\x44\x01\x54", 3);            /* viridis(0) = 68, 1, 84 */
  assert_memory_equal(rgb + 3, "\x44\x01\x54", 3);        /* same cell */
  assert_memory_equal(rgb + (15 * 3), "\xfd\xe7\x25", 3); /* viridis(1) = 253, 231, 37 */
  o.colormap = NS_COLORMAP_HOT;
  assert_int_equal(ns_heatmap_render(ctx, map, 2, 2, &o, 4, 4, rgb), NS_OK);
  assert_memory_equal(rgb, "\x00\x00\x00", 3);
  assert_memory_equal(rgb + 15 * 3, "\xff\xff\xff", 3);
  assert_memory_equal(rgb + 2 * 3, "\xff\x00\x00", 3); /* 1/3: pure red */
  /* fixed range, values clamped */
  o.fixed_range = 1, o.lo = 1, o.hi = 2;
  assert_int_equal(ns_heatmap_render(ctx, map, 2, 2, &o, 4, 4, rgb), NS_OK);
  assert_memory_equal(rgb, "\x00\x00\x00", 3);
  assert_memory_equal(rgb + 15 * 3, "\xff\xff\xff", 3);
  /* bilinear in grey: 1x2 -> 1x4 samples at 0, 0.25, 0.75, 1 */
  ns_heatmap_opts_init(&o);
  o.colormap = NS_COLORMAP_GREY;
  o.bilinear = 1;
  const float row[2] = {5, 6};
  assert_int_equal(ns_heatmap_render(ctx, row, 1, 2, &o, 1, 4, rgb), NS_OK);
  const unsigned char want[4] = {0, 64, 191, 255};
  for (int i = 0; i < 4; i++) assert_int_equal(rgb[i * 3], want[i]);
  assert_int_equal(ns_heatmap_render(ctx, row, 0, 2, &o, 1, 4, rgb), NS_ERR_USAGE);
  ns_ctx_destroy(ctx);
}

static void test_heatmap_png_files(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  char *dir = tu_mkdtemp(), path[512];
  const float map[4] = {0, 1, 2, 3};
  ns_heatmap_opts o;
  ns_heatmap_opts_init(&o);
  o.height = 8, o.width = 8;
  o.colormap = NS_COLORMAP_GREY;
  tu_path(path, sizeof path, dir, "heat.png");
  assert_int_equal(ns_heatmap_save_png(ctx, path, map, 2, 2, &o), NS_OK);
  ns_image im;
  assert_int_equal(ns_image_load(ctx, path, 0, &im), NS_OK);
  assert_image(&im, 8, 8, 3);
  assert_true(im.data[0] == 0.0f);
  assert_true(im.data[(8 * 8 - 1) * 3] == 1.0f);
  assert_true(im.data[(3 * 8 + 4) * 3] == (float)(85 / 255.0)); /* cell (0, 1): 1/3 */
  ns_image_free(ctx, &im);
  /* side by side: the image left, a gap, the map right at the image's size */
  ns_image photo;
  assert_int_equal(ns_image_alloc(ctx, 6, 5, 3, &photo), NS_OK);
  for (int i = 0; i < 6 * 5 * 3; i++) photo.data[i] = (float)(i % 256) / 255.0f;
  ns_heatmap_opts_init(&o);
  o.gap = 3;
  tu_path(path, sizeof path, dir, "side.png");
  assert_int_equal(ns_heatmap_save_side_by_side(ctx, path, &photo, map, 2, 2, &o), NS_OK);
  assert_int_equal(ns_image_load(ctx, path, 0, &im), NS_OK);
  assert_image(&im, 6, 5 + 3 + 5, 3);
  for (int y = 0; y < 6; y++)
    for (int x = 0; x < 5; x++)
      for (int c = 0; c < 3; c++)
        assert_float_equal(im.data[(y * 13 + x) * 3 + c], photo.data[(y * 5 + x) * 3 + c], 1e-6);
  for (int x = 5; x < 8; x++) assert_true(im.data[x * 3] == 1.0f); /* white gap */
  assert_float_equal(im.data[8 * 3] * 255, 68, 1e-3);              /* viridis(0) */
  ns_image_free(ctx, &im);
  /* with the colour bar: 24 columns after a second gap, viridis(1) at the
   * top of the bar (below the caption's 18 rows), viridis(0) at the bottom,
   * labels beside it; the figure is at least 36 rows high for them */
  o.colour_bar = 1;
  o.caption = "max p";
  assert_int_equal(ns_heatmap_save_side_by_side(ctx, path, &photo, map, 2, 2, &o), NS_OK);
  assert_int_equal(ns_image_load(ctx, path, 0, &im), NS_OK);
  int fw = 5 + 3 + 5 + 3 + 24 + 6 + 90;
  assert_image(&im, 36, fw, 3);
  int bx = 5 + 3 + 5 + 3 + 12;
  assert_float_equal(im.data[(18 * fw + bx) * 3 + 0] * 255, 253, 1e-3);
  assert_float_equal(im.data[(18 * fw + bx) * 3 + 1] * 255, 231, 1e-3);
  assert_float_equal(im.data[(35 * fw + bx) * 3 + 0] * 255, 68, 1e-3);
  int dark = 0; /* the labels' text: black pixels right of the bar */
  for (int y = 0; y < 36; y++)
    for (int x = bx + 12 + 6; x < fw; x++) dark += im.data[(y * fw + x) * 3] == 0.0f;
  assert_true(dark > 20);
  ns_image_free(ctx, &im);
  ns_image_free(ctx, &photo);
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

/* ---- labels -------------------------------------------------------------- */

static void test_labels(void **state) {
  (void)state;
  ns_ctx *ctx = ns_ctx_create();
  ns_labels l;
  const char text[] = "n01440764 tench, Tinca tinca\r\nn01443537 goldfish\n\njustone\nlast one";
  assert_int_equal(ns_labels_parse(ctx, text, sizeof text - 1, "s.txt", &l), NS_OK);
  assert_int_equal(l.count, 5);
  assert_string_equal(l.ids[0], "n01440764");
  assert_string_equal(l.names[0], "tench, Tinca tinca");
  assert_string_equal(l.names[1], "goldfish");
  assert_string_equal(l.names[2], "");
  assert_string_equal(l.ids[3], "justone");
  assert_string_equal(l.names[3], "justone");
  assert_string_equal(l.names[4], "one");
  ns_labels_free(ctx, &l);
  /* a final newline adds no label; an empty file has none */
  assert_int_equal(ns_labels_parse(ctx, "a b\n", 4, "t", &l), NS_OK);
  assert_int_equal(l.count, 1);
  ns_labels_free(ctx, &l);
  assert_int_equal(ns_labels_parse(ctx, "", 0, "t", &l), NS_OK);
  assert_int_equal(l.count, 0);
  ns_labels_free(ctx, &l);
  /* a 200 000-character line */
  size_t n = 200000;
  char *big = malloc(n + 4);
  memset(big, 'x', n);
  big[3] = ' ';
  memcpy(big + n, "\r\nz", 3);
  assert_int_equal(ns_labels_parse(ctx, big, n + 3, "big", &l), NS_OK);
  assert_int_equal(l.count, 2);
  assert_int_equal(strlen(l.names[0]), n - 4);
  ns_labels_free(ctx, &l);
  free(big);
  /* NUL bytes are refused with the line number */
  assert_int_equal(ns_labels_parse(ctx, "a\nb\0c\n", 6, "nul.txt", &l), NS_ERR_INPUT);
  assert_non_null(strstr(ns_ctx_error(ctx), "nul.txt:2"));
  /* from a file */
  char *dir = tu_mkdtemp(), path[512];
  tu_path(path, sizeof path, dir, "synset_words.txt");
  assert_int_equal(tu_write_file(path, text, sizeof text - 1), 0);
  assert_int_equal(ns_labels_load(ctx, path, &l), NS_OK);
  assert_int_equal(l.count, 5);
  ns_labels_free(ctx, &l);
  assert_int_equal(ns_labels_load(ctx, "/nonexistent/synset_words.txt", &l), NS_ERR_IO);
  tu_rmtree(dir);
  free(dir);
  ns_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_npy_roundtrip_f32),
      cmocka_unit_test(test_npy_header_layout),
      cmocka_unit_test(test_npy_save_i32),
      cmocka_unit_test(test_npy_numpy_interop),
      cmocka_unit_test(test_npy_hostile_headers),
      cmocka_unit_test(test_npy_bad_prelude),
      cmocka_unit_test(test_npy_size_mismatch),
      cmocka_unit_test(test_npy_memory_limit),
      cmocka_unit_test(test_atomic_write_failure),
      cmocka_unit_test(test_png_roundtrip),
      cmocka_unit_test(test_png_colour_types),
      cmocka_unit_test(test_png_palette_expansion),
      cmocka_unit_test(test_png_truncated_and_corrupt),
      cmocka_unit_test(test_jpeg_decode),
      cmocka_unit_test(test_jpeg_matches_opencv),
      cmocka_unit_test(test_jpeg_exif_orientation),
      cmocka_unit_test(test_jpeg_truncated_and_garbage),
      cmocka_unit_test(test_image_format_and_limits),
      cmocka_unit_test(test_resize_by_hand),
      cmocka_unit_test(test_resize_vs_naive),
      cmocka_unit_test(test_transform_steps),
      cmocka_unit_test(test_transform_mean_resized),
      cmocka_unit_test(test_mean_files),
      cmocka_unit_test(test_heatmap_render),
      cmocka_unit_test(test_heatmap_png_files),
      cmocka_unit_test(test_labels),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
