/* The surgery and classify verbs through the real binary ($NS_BUILD/netsurg,
 * default build/netsurg): exit codes, printed figures, written files.
 * Expected values come from Caffe's conformance figures, the library's own
 * tested pieces (preprocessing, forward) or the inputs themselves. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

static char *tmp_dir;
static char cli[1024];

/* ---- running the binary -------------------------------------------------- */

typedef struct run_result {
  int code;
  char *out; /* stdout and stderr together */
} run_result;

static run_result run(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char full[8192 + 1100];
  snprintf(full, sizeof full, "%s %s 2>&1", cli, cmd);
  run_result r = {-1, NULL};
  FILE *p = popen(full, "r");
  assert_non_null(p);
  size_t cap = 4096, len = 0;
  r.out = malloc(cap);
  size_t n;
  while ((n = fread(r.out + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (cap - len < 2) r.out = realloc(r.out, cap *= 2);
  }
  r.out[len] = '\0';
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

static void expect(run_result r, int code, const char *needle) {
  if (r.code != code || (needle && !strstr(r.out, needle)))
    fail_msg("exit %d (want %d), output lacks '%s':\n%s", r.code, code, needle ? needle : "",
             r.out);
  free(r.out);
}

static const char *tmp(char *buf, size_t size, const char *name) {
  return tu_path(buf, size, tmp_dir, name);
}

/* A file of Caffe's conformance case NAME; skips the test without ../shared
 * (the callers ask for it before they make anything). */
static const char *conf(char *buf, size_t size, const char *name, const char *file) {
  const char *root = tu_conformance_dir();
  if (!root) skip();
  snprintf(buf, size, "%s/%s/%s", root, name, file);
  return buf;
}

static ns_ndarray load_npy(ns_ctx *ctx, const char *path) {
  ns_ndarray a;
  if (ns_npy_load(ctx, path, &a) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  return a;
}

static void expect_close(const ns_ndarray *got, const ns_ndarray *want, double abs_tol,
                         double rel_tol) {
  assert_int_equal(got->num_axes, want->num_axes);
  for (int i = 0; i < got->num_axes; i++) assert_int_equal(got->shape[i], want->shape[i]);
  double max_abs;
  if (tu_excess(got->data, want->data, got->count, abs_tol, rel_tol, &max_abs) > 0)
    fail_msg("max |diff| %g over tolerance", max_abs);
}

static unsigned char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)n + 1);
  *len = fread(buf, 1, (size_t)n, f);
  buf[*len] = '\0';
  fclose(f);
  return buf;
}

static int setup(void **state) {
  (void)state;
  const char *build = getenv("NS_BUILD");
  snprintf(cli, sizeof cli, "%s/netsurg", build && *build ? build : "build");
  tmp_dir = tu_mkdtemp();
  return tmp_dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tu_rmtree(tmp_dir);
  free(tmp_dir);
  return 0;
}

/* ---- help and exit codes --------------------------------------------------- */

static void test_help(void **state) {
  (void)state;
  run_result r = run("--help");
  assert_int_equal(r.code, 0);
  for (const char *v = "edit\0transplant\0fcn\0classify\0"; *v; v += strlen(v) + 1)
    if (!strstr(r.out, v)) fail_msg("--help lacks %s", v);
  assert_non_null(strstr(r.out, "exit status"));
  free(r.out);
  expect(run("edit --help"), 0, "usage: netsurg edit NET WEIGHTS");
  expect(run("transplant --help"), 0, "usage: netsurg transplant SRC_NET");
  expect(run("fcn --help"), 0, "usage: netsurg fcn NET WEIGHTS");
  expect(run("classify --help"), 0, "usage: netsurg classify NET WEIGHTS IMAGE");
  expect(run("info --help"), 0, "--receptive-field");
  expect(run("edit"), 1, "expected NET WEIGHTS");
  expect(run("fcn a b"), 1, "--out PREFIX is required");
  expect(run("classify a b"), 1, "expected NET WEIGHTS IMAGE");
  expect(run("transplant a b c --out x"), 1, "--map");
  expect(run("edit a b --bogus"), 1, NULL);
}

/* ---- edit ----------------------------------------------------------------- */

static void test_edit(void **state) {
  (void)state;
  char net[1024], w[1024], orig[1024], after[1024], out[1024], bias[1024], x[1024];
  conf(net, sizeof net, "mini_caffenet", "net.prototxt");
  conf(w, sizeof w, "mini_caffenet", "weights.caffemodel");
  tmp(orig, sizeof orig, "orig.npy");
  tmp(after, sizeof after, "after.npy");
  tmp(out, sizeof out, "edited.caffemodel");
  tmp(bias, sizeof bias, "bias.npy");
  size_t len0, len1;
  unsigned char *before = read_all(w, &len0);

  expect(run("edit %s %s --dump 'fc7[0]=%s'", net, w, orig), 0, "dumped fc7[0] (10, 32)");
  expect(run("edit %s %s --set 'conv1[1][0]=1.5' --set 'fc7[0][2,3]=-2' --dump 'fc7[0]=%s' "
             "--out %s",
             net, w, after, out),
         0, "wrote");
  ns_ctx *ctx = ns_ctx_create();
  ns_ndarray a = load_npy(ctx, orig), b = load_npy(ctx, after);
  assert_int_equal(a.count, 320);
  for (int64_t i = 0; i < a.count; i++)
    if (i == 2 * 32 + 3)
      assert_true(b.data[i] == -2.0f);
    else
      assert_true(a.data[i] == b.data[i]);
  ns_ndarray_free(ctx, &b);

  /* the saved file has exactly those two changes */
  ns_net *n0 = NULL, *n1 = NULL;
  assert_int_equal(ns_net_load(ctx, net, &(ns_net_opts){NS_PHASE_TEST, 0, w}, &n0), NS_OK);
  assert_int_equal(ns_net_load(ctx, net, &(ns_net_opts){NS_PHASE_TEST, 0, out}, &n1), NS_OK);
  int changed = 0;
  for (int l = 0; l < ns_net_layer_count(n0); l++)
    for (int j = 0; j < ns_net_param_count(n0, l); j++) {
      ns_tensor p = ns_net_param(n0, l, j), q = ns_net_param(n1, l, j);
      for (int64_t i = 0; i < p.count; i++) changed += p.data[i] != q.data[i];
    }
  assert_int_equal(changed, 2);
  assert_true(ns_net_param(n1, ns_net_find_layer(n1, "conv1"), 1).data[0] == 1.5f);
  ns_net_destroy(n0);
  ns_net_destroy(n1);
  unsigned char *now = read_all(w, &len1); /* the source is untouched */
  assert_int_equal(len0, len1);
  assert_memory_equal(before, now, len0);
  free(before);
  free(now);

  /* --load: the param's shape, or any shape with the same count under --flat */
  tmp(x, sizeof x, "x.caffemodel");
  expect(run("edit %s %s --load 'fc7[0]=%s' --out %s", net, w, orig, x), 0, "loaded fc7[0]");
  expect(run("edit %s %s --dump 'conv1[1]=%s'", net, w, bias), 0, "dumped");
  expect(run("edit %s %s --load 'fc7[0]=%s' --out %s", net, w, bias, x), 1, "(10, 32)");
  int64_t shape[1] = {320};
  char flat[1024];
  tmp(flat, sizeof flat, "flat.npy");
  assert_int_equal(ns_npy_save_f32(ctx, flat, 1, shape, a.data), NS_OK);
  expect(run("edit %s %s --load 'fc7[0]=%s' --out %s", net, w, flat, x), 1, "--flat");
  expect(run("edit %s %s --flat --load 'fc7[0]=%s' --out %s", net, w, flat, x), 0, "loaded");
  ns_ndarray_free(ctx, &a);

  /* errors */
  expect(run("edit %s %s --set 'conv1[x][0]=1' --out %s", net, w, x), 1, "LAYER[P][I]=V");
  expect(run("edit %s %s --set 'conv1[1][0]=abc' --out %s", net, w, x), 1, "not a number");
  expect(run("edit %s %s --set 'nope[0][0]=1' --out %s", net, w, x), 1, "nope");
  expect(run("edit %s %s --set 'conv1[1][8]=1' --out %s", net, w, x), 1, "(8,)");
  expect(run("edit %s %s --set 'conv1[2][0]=1' --out %s", net, w, x), 1, "no param 2");
  expect(run("edit %s %s --set 'conv1[1][0]=1'", net, w), 1, "--out");
  expect(run("edit %s %s/missing.caffemodel --dump 'conv1[1]=%s'", net, tmp_dir, bias), 4, NULL);
  expect(run("edit %s %s --set 'conv1[1][0]=1' --out %s", net, w, tmp_dir), 4, NULL);
  expect(run("info %s %s", net, out), 0, "conv1");
  ns_ctx_destroy(ctx);
}

/* ---- transplant ------------------------------------------------------------ */

static void test_transplant(void **state) {
  (void)state;
  char net[1024], w[1024], fcn_net[1024], in[1024], ref[1024], out[1024], prob[1024];
  conf(net, sizeof net, "mini_caffenet", "net.prototxt");
  conf(w, sizeof w, "mini_caffenet", "weights.caffemodel");
  conf(fcn_net, sizeof fcn_net, "mini_caffenet_fcn", "net.prototxt");
  conf(in, sizeof in, "mini_caffenet_fcn", "in_data.npy");
  conf(ref, sizeof ref, "mini_caffenet_fcn", "blob_prob.npy");
  tmp(out, sizeof out, "transplanted.caffemodel");
  tmp(prob, sizeof prob, "prob.npy");
  run_result r = run("transplant %s %s %s --map fc6=fc6-conv --map fc7=fc7-conv --out %s", net, w,
                     fcn_net, out);
  if (r.code != 0 ||
      !strstr(r.out, "copied fc6 -> fc6-conv: weights (32, 192) -> (32, 12, 4, 4)") ||
      !strstr(r.out, "by name from") || !strstr(r.out, "conv1 conv2"))
    fail_msg("%s", r.out);
  free(r.out);
  expect(run("forward %s %s --input data=%s --output prob=%s", fcn_net, out, in, prob), 0, NULL);
  ns_ctx *ctx = ns_ctx_create();
  ns_ndarray got = load_npy(ctx, prob), want = load_npy(ctx, ref);
  expect_close(&got, &want, 1e-5, 1e-4);
  ns_ndarray_free(ctx, &got);
  ns_ndarray_free(ctx, &want);
  ns_ctx_destroy(ctx);

  expect(run("transplant %s %s %s --map conv1=fc6-conv --out %s", net, w, fcn_net, out), 6,
         "(32, 12, 4, 4)");
  expect(run("transplant %s %s %s --map conv1=fc6-conv --out %s", net, w, fcn_net, out), 6,
         "(8, 3, 5, 5)");
  expect(run("transplant %s %s %s --map fc6=nope --out %s", net, w, fcn_net, out), 1, "nope");
  expect(run("transplant %s %s %s --map fc6 --out %s", net, w, fcn_net, out), 1, "SRC=DST");
}

/* ---- fcn ------------------------------------------------------------------ */

static void fcn_and_compare(const char *case_name) {
  char net[1024], w[1024], in[1024], ref[1024], prefix[1024], prob[1024];
  conf(net, sizeof net, case_name, "net.prototxt");
  conf(w, sizeof w, case_name, "weights.caffemodel");
  conf(in, sizeof in, "mini_caffenet_fcn", "in_data.npy");
  conf(ref, sizeof ref, "mini_caffenet_fcn", "blob_prob.npy");
  tmp(prefix, sizeof prefix, "cast");
  tmp(prob, sizeof prob, "fcn_prob.npy");
  run_result r = run("fcn %s %s --size 71x71 --out %s", net, w, prefix);
  if (r.code != 0 || !strstr(r.out, "5x5 map") || !strstr(r.out, "71 = 39 + 4*8") ||
      !strstr(r.out, "fc6 -> fc6-conv: (32, 192) -> (32, 12, 4, 4)") || !strstr(r.out, "stride 8"))
    fail_msg("%s", r.out);
  free(r.out);
  expect(run("forward %s.prototxt %s.caffemodel --input data=%s --output prob=%s", prefix, prefix,
             in, prob),
         0, NULL);
  ns_ctx *ctx = ns_ctx_create();
  ns_ndarray got = load_npy(ctx, prob), want = load_npy(ctx, ref);
  expect_close(&got, &want, 1e-5, 1e-4);
  ns_ndarray_free(ctx, &got);
  ns_ndarray_free(ctx, &want);
  ns_ctx_destroy(ctx);
}

static void test_fcn(void **state) {
  (void)state;
  fcn_and_compare("mini_caffenet");
  fcn_and_compare("mini_caffenet_v1");
  char net[1024], w[1024], prefix[1024];
  conf(net, sizeof net, "mini_caffenet", "net.prototxt");
  conf(w, sizeof w, "mini_caffenet", "weights.caffemodel");
  tmp(prefix, sizeof prefix, "other");
  /* default: an 8x8 map, 39 + 7*8 = 95 */
  expect(run("fcn %s %s --out %s", net, w, prefix), 0, "95 = 39 + 7*8");
  /* a size that whole windows do not tile is explained */
  run_result r = run("fcn %s %s --size 70 --out %s", net, w, prefix);
  if (r.code != 0 || !strstr(r.out, "70 = 39 + 3*8 + 7") || !strstr(r.out, "63x63") ||
      !strstr(r.out, "71x71"))
    fail_msg("%s", r.out);
  free(r.out);
  expect(run("fcn %s %s --size 30 --out %s", net, w, prefix), 1, "window");
  expect(run("fcn %s %s --size 0x5 --out %s", net, w, prefix), 1, "HxW");
  expect(run("fcn %s %s --suffix _fc --size 47x55 --out %s", net, w, prefix), 0, "fc7 -> fc7_fc");
  expect(run("fcn %s/none.prototxt %s --out %s", tmp_dir, w, prefix), 4, NULL);
}

/* ---- classify ------------------------------------------------------------ */

/* An 80x100 RGB image with structure (gradients and a bright square). */
static void write_test_png(ns_ctx *ctx, const char *path, int seed) {
  int h = 80, w = 100;
  unsigned char *rgb = malloc((size_t)h * w * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      unsigned char *p = rgb + ((size_t)y * w + x) * 3;
      int in_square = y > 20 && y < 50 && x > 30 + seed && x < 70;
      p[0] = (unsigned char)(in_square ? 250 : (x * 255) / w);
      p[1] = (unsigned char)((y * 255) / h);
      p[2] = (unsigned char)(((x + y) * 7 + seed * 40) & 255);
    }
  assert_int_equal(ns_png_save_rgb8(ctx, path, h, w, rgb), NS_OK);
  free(rgb);
}

/* The numbers after "KEY": in a JSON line, flattened (nested lists);
 * returns how many, with the number of inner lists in *rows (if given). */
static int json_numbers(const char *json, const char *key, float *vals, int max, int *rows) {
  char want[64];
  snprintf(want, sizeof want, "\"%s\": [", key);
  const char *p = json ? strstr(json, want) : NULL;
  if (!p) return -1;
  p += strlen(want);
  int depth = 1, n = 0, inner = 0;
  while (*p && depth > 0) {
    if (*p == '[' || *p == ']') {
      inner += *p == '[';
      depth += *p == '[' ? 1 : -1;
      p++;
    } else if ((*p >= '0' && *p <= '9') || *p == '-') {
      char *end;
      float v = strtof(p, &end);
      if (n < max) vals[n] = v;
      n++;
      p = end;
    } else {
      p++;
    }
  }
  if (rows) *rows = inner;
  return n;
}

static int json_floats(const char *json, const char *key, float *vals, int max) {
  return json_numbers(json, key, vals, max, NULL);
}

/* The ints of "argmax": [[...], ...] in a JSON line; returns how many,
 * with the number of rows in *rows. */
static int json_argmax(const char *json, int *vals, int max, int *rows) {
  float f[256];
  int n = json_numbers(json, "argmax", f, max < 256 ? max : 256, rows);
  for (int i = 0; i < n && i < max && i < 256; i++) vals[i] = (int)f[i];
  return n;
}

static void test_classify_map(void **state) {
  (void)state;
  char net[1024], w[1024], img[1024], heat[1024], in_npy[1024], labels[1024];
  conf(net, sizeof net, "mini_caffenet_fcn", "net.prototxt");
  conf(w, sizeof w, "mini_caffenet_fcn", "weights.caffemodel");
  tmp(img, sizeof img, "img.png");
  tmp(heat, sizeof heat, "heat.png");
  tmp(in_npy, sizeof in_npy, "input.npy");
  tmp(labels, sizeof labels, "labels.txt");
  ns_ctx *ctx = ns_ctx_create();
  write_test_png(ctx, img, 0);
  FILE *f = fopen(labels, "w");
  for (int i = 0; i < 10; i++) fprintf(f, "n%08d thing number %d\n", i, i);
  fclose(f);

  run_result r =
      run("classify %s %s %s --mean 100,110,120 --json --heatmap %s --save-input %s "
          "--top 3 --labels %s",
          net, w, img, heat, in_npy, labels);
  if (r.code != 0 || !strstr(r.out, "\"confidence\": [[") || !strstr(r.out, "\"top\": [[[") ||
      !strstr(r.out, "\"label\": \"thing number"))
    fail_msg("%s", r.out);
  int argmax[64], rows;
  assert_int_equal(json_argmax(strstr(r.out, "{"), argmax, 64, &rows), 25);
  assert_int_equal(rows, 5);

  /* the saved input is pycaffe's preprocessing with classify.py's defaults
   * (channel swap 2,1,0, raw scale 255) and the given mean */
  ns_ndarray input = load_npy(ctx, in_npy);
  assert_int_equal(input.num_axes, 4);
  assert_int_equal(input.shape[1], 3);
  assert_int_equal(input.shape[2], 71);
  ns_image im;
  assert_int_equal(ns_image_load(ctx, img, 0, &im), NS_OK);
  ns_transform t;
  ns_transform_init(&t);
  t.num_swap = 3;
  t.channel_swap[0] = 2, t.channel_swap[1] = 1, t.channel_swap[2] = 0;
  t.raw_scale = 255;
  t.num_mean_values = 3;
  t.mean_values[0] = 100, t.mean_values[1] = 110, t.mean_values[2] = 120;
  float *want = malloc(3 * 71 * 71 * sizeof *want);
  assert_int_equal(ns_transform_preprocess(ctx, &t, &im, 71, 71, want, 3 * 71 * 71), NS_OK);
  assert_memory_equal(want, input.data, 3 * 71 * 71 * sizeof *want);
  free(want);

  /* the argmax is the net's on that input */
  ns_net *n = NULL;
  assert_int_equal(ns_net_load(ctx, net, &(ns_net_opts){NS_PHASE_TEST, 0, w}, &n), NS_OK);
  assert_int_equal(ns_net_reshape_input(ctx, n, "data", 4, input.shape), NS_OK);
  memcpy(ns_net_blob(n, ns_net_find_blob(n, "data")).data, input.data,
         (size_t)input.count * sizeof(float));
  assert_int_equal(ns_net_forward(ctx, n), NS_OK);
  ns_tensor prob = ns_net_blob(n, ns_net_find_blob(n, "prob"));
  for (int cell = 0; cell < 25; cell++) {
    int best = 0;
    for (int k = 1; k < 10; k++)
      if (prob.data[k * 25 + cell] > prob.data[best * 25 + cell]) best = k;
    assert_int_equal(argmax[cell], best);
  }
  ns_net_destroy(n);
  free(r.out);

  /* the heatmap: input | map | colour bar, as tall as the input enlarged
   * by a whole factor to at least 256 rows (71 x 4) */
  ns_image h;
  assert_int_equal(ns_image_load(ctx, heat, 0, &h), NS_OK);
  assert_int_equal(h.height, 284);
  assert_true(h.width > 2 * 284 + 24);
  ns_image_free(ctx, &h);

  /* human output: the seed's numpy layout, labels */
  r = run("classify %s %s %s --mean 100,110,120 --labels %s --class 3", net, w, img, labels);
  if (r.code != 0 || !strstr(r.out, "5x5 map") || !strstr(r.out, "argmax:\n[[") ||
      !strstr(r.out, "probability of class 3") || !strstr(r.out, "thing number"))
    fail_msg("%s", r.out);
  free(r.out);

  /* several images: one result each, numbered outputs */
  char img2[1024], heat1[1024], heat2[1024];
  tmp(img2, sizeof img2, "img2.png");
  write_test_png(ctx, img2, 9);
  r = run("classify %s %s %s %s --json --heatmap %s", net, w, img, img2, heat);
  int lines = 0;
  for (const char *p = r.out; (p = strstr(p, "{\"image\"")); p++) lines++;
  if (r.code != 0 || lines != 2) fail_msg("%s", r.out);
  free(r.out);
  struct stat sb;
  assert_int_equal(stat(tmp(heat1, sizeof heat1, "heat-1.png"), &sb), 0);
  assert_int_equal(stat(tmp(heat2, sizeof heat2, "heat-2.png"), &sb), 0);

  /* errors */
  expect(run("classify %s %s %s --class 10", net, w, img), 1, "10 classes");
  expect(run("classify %s %s %s --mean 1,2", net, w, img), 1, "3 channels");
  expect(run("classify %s %s %s --channel-swap 0,1", net, w, img), 1, "3 channels");
  expect(run("classify %s %s %s --channel-mean", net, w, img), 1, "--mean-file");
  expect(run("classify %s %s %s/none.png", net, w, tmp_dir), 4, NULL);
  expect(run("classify %s %s %s", net, w, labels), 3, "not a JPEG or PNG");
  ns_ndarray_free(ctx, &input);
  ns_image_free(ctx, &im);
  ns_ctx_destroy(ctx);
}

/* --blob NAME --channel C maps any blob's channel, not only a softmax's
 * classes: channel 17 of fc6-conv (32 channels; prob has 10) against
 * that blob from the library's own forward on the input classify saved.
 * --class is the older name of the same option. */
static void test_classify_blob_channel(void **state) {
  (void)state;
  char net[1024], w[1024], img[1024], heat[1024], in_npy[1024];
  conf(net, sizeof net, "mini_caffenet_fcn", "net.prototxt");
  conf(w, sizeof w, "mini_caffenet_fcn", "weights.caffemodel");
  tmp(img, sizeof img, "chan.png");
  tmp(heat, sizeof heat, "chan_heat.png");
  tmp(in_npy, sizeof in_npy, "chan_input.npy");
  ns_ctx *ctx = ns_ctx_create();
  write_test_png(ctx, img, 3);
  run_result r = run("classify %s %s %s --json --blob fc6-conv --channel 17 --heatmap %s "
                     "--save-input %s",
                     net, w, img, heat, in_npy);
  float got[25];
  if (r.code != 0 || json_floats(r.out, "confidence", got, 25) != 25) fail_msg("%s", r.out);
  free(r.out);
  struct stat sb;
  assert_int_equal(stat(heat, &sb), 0);

  ns_ndarray input = load_npy(ctx, in_npy);
  ns_net *n = NULL;
  assert_int_equal(ns_net_load(ctx, net, &(ns_net_opts){NS_PHASE_TEST, 0, w}, &n), NS_OK);
  assert_int_equal(ns_net_reshape_input(ctx, n, "data", 4, input.shape), NS_OK);
  memcpy(ns_net_blob(n, ns_net_find_blob(n, "data")).data, input.data,
         (size_t)input.count * sizeof(float));
  assert_int_equal(ns_net_forward(ctx, n), NS_OK);
  ns_tensor fc6 = ns_net_blob(n, ns_net_find_blob(n, "fc6-conv"));
  assert_int_equal(fc6.shape[1], 32);
  int nonzero = 0;
  for (int cell = 0; cell < 25; cell++) {
    float want = fc6.data[17 * 25 + cell];
    nonzero += want != 0;
    if (fabsf(got[cell] - want) > 1e-5f * (1 + fabsf(want)))
      fail_msg("cell %d: %g, fc6-conv channel 17 has %g", cell, (double)got[cell], (double)want);
  }
  assert_true(nonzero > 0);
  ns_net_destroy(n);
  ns_ndarray_free(ctx, &input);

  /* --class is the same option */
  run_result a = run("classify %s %s %s --json --blob fc6-conv --channel 17", net, w, img);
  run_result b = run("classify %s %s %s --json --blob fc6-conv --class 17", net, w, img);
  assert_int_equal(a.code, 0);
  assert_string_equal(a.out, b.out);
  free(a.out);
  free(b.out);
  expect(run("classify %s %s %s --blob fc6-conv --channel 32", net, w, img), 1, "channels 0 to 31");
  ns_ctx_destroy(ctx);
}

/* The input classify saved against ns_transform_preprocess with
 * classify.py's defaults (channel swap 2,1,0, raw scale 255) and the
 * given mean (an image when mean_image is set), within 1e-4; the mean
 * moves that input by over 100 grey levels, so ignoring it fails. */
static void expect_saved_input(ns_ctx *ctx, const char *img, const char *saved,
                               const ns_ndarray *mean_image, const double *mean_values) {
  ns_ndarray input = load_npy(ctx, saved);
  assert_int_equal(input.num_axes, 4);
  assert_int_equal(input.shape[1], 3);
  int h = (int)input.shape[2], w = (int)input.shape[3];
  ns_image im;
  assert_int_equal(ns_image_load(ctx, img, 0, &im), NS_OK);
  ns_transform t;
  ns_transform_init(&t);
  t.num_swap = 3;
  t.channel_swap[0] = 2, t.channel_swap[1] = 1, t.channel_swap[2] = 0;
  t.raw_scale = 255;
  float *plain = malloc(sizeof(float) * (size_t)input.count);
  float *want = malloc(sizeof(float) * (size_t)input.count);
  assert_int_equal(ns_transform_preprocess(ctx, &t, &im, h, w, plain, input.count), NS_OK);
  t.mean_image = mean_image;
  if (mean_values) {
    t.num_mean_values = 3;
    for (int c = 0; c < 3; c++) t.mean_values[c] = mean_values[c];
  }
  assert_int_equal(ns_transform_preprocess(ctx, &t, &im, h, w, want, input.count), NS_OK);
  double off = 0, mean_effect = 0;
  for (int64_t i = 0; i < input.count; i++) {
    off = fmax(off, fabs((double)input.data[i] - want[i]));
    mean_effect = fmax(mean_effect, fabs((double)plain[i] - want[i]));
  }
  if (!(off <= 1e-4) || !(mean_effect > 1))
    fail_msg("%s: %.3g from the expected input, whose mean moves it by %.3g", saved, off,
             mean_effect);
  free(plain);
  free(want);
  ns_image_free(ctx, &im);
  ns_ndarray_free(ctx, &input);
}

static void test_classify_plain(void **state) {
  (void)state;
  char net[1024], w[1024], img[1024], mean[1024], saved[1024];
  conf(net, sizeof net, "mini_caffenet", "net.prototxt");
  conf(w, sizeof w, "mini_caffenet", "weights.caffemodel");
  tmp(img, sizeof img, "plain.png");
  tmp(mean, sizeof mean, "mean.npy");
  tmp(saved, sizeof saved, "plain_input.npy");
  ns_ctx *ctx = ns_ctx_create();
  write_test_png(ctx, img, 3);
  /* a (3, 50, 60) mean image, and its per-channel averages by hand */
  static float m[3 * 50 * 60];
  double average[3] = {0, 0, 0};
  for (int i = 0; i < 3 * 50 * 60; i++) {
    m[i] = (float)(100 + (i % 97));
    average[i / (50 * 60)] += m[i] / (50.0 * 60.0);
  }
  int64_t shape[3] = {3, 50, 60};
  assert_int_equal(ns_npy_save_f32(ctx, mean, 3, shape, m), NS_OK);
  run_result r =
      run("classify %s %s %s --mean-file %s --top 4 --save-input %s", net, w, img, mean, saved);
  if (r.code != 0 || !strstr(r.out, "prob (1, 10)")) fail_msg("%s", r.out);
  int lines = 0;
  for (const char *p = r.out; (p = strstr(p, "\n  ")); p++) lines++;
  assert_int_equal(lines, 4);
  free(r.out);
  /* the mean image, resized to the input by the library's set_mean */
  ns_ndarray mean_image = {.data = m, .num_axes = 3, .shape = {3, 50, 60}, .count = 3 * 50 * 60};
  expect_saved_input(ctx, img, saved, &mean_image, NULL);
  r = run("classify %s %s %s --mean-file %s --channel-mean --json --save-input %s", net, w, img,
          mean, saved);
  int argmax[4], rows;
  if (r.code != 0 || json_argmax(strstr(r.out, "{"), argmax, 4, &rows) != 1 || rows != 1)
    fail_msg("%s", r.out);
  free(r.out);
  expect_saved_input(ctx, img, saved, NULL, average);
  ns_ctx_destroy(ctx);
}

/* ---- info --receptive-field ------------------------------------------------ */

static void test_info_receptive_field(void **state) {
  (void)state;
  char net[1024];
  conf(net, sizeof net, "mini_caffenet", "net.prototxt");
  run_result r = run("info %s --receptive-field", net);
  assert_int_equal(r.code, 0);
  /* by hand: conv1 k5 s2 -> 5/2; pool1 k3 s2 -> 9/4; conv2 k3 p1 -> 17/4
   * from -4; pool2 k3 s2 -> 25/8; fc6 over pool2's 4x4 -> 25 + 3*8 = 49 */
  const char *want[] = {"conv1", "5",        "2",   "(0, 0)", "pool2", "25",
                        "8",     "(-4, -4)", "fc6", "49",     "8",     "(-4, -4)"};
  for (int i = 0; i < 12; i += 4) {
    char line[256];
    snprintf(line, sizeof line, "\n%-32s %-12s %-12s %s\n", want[i], want[i + 1], want[i + 2],
             want[i + 3]);
    if (!strstr(r.out, line)) fail_msg("lacks '%s':\n%s", line, r.out);
  }
  free(r.out);
  r = run("info %s --receptive-field --json", net);
  if (r.code != 0 || !strstr(r.out, "\"receptive_field\": {\"size\": [49, 49], \"stride\": [8, 8]"))
    fail_msg("%s", r.out);
  free(r.out);
}

/* ---- the examples ---------------------------------------------------------- */

static void test_examples(void **state) {
  (void)state;
  const char *build = getenv("NS_BUILD");
  char exe[1024], proto[1024], in[1024], out[1024], cmd[8192];
  snprintf(exe, sizeof exe, "%s/examples/designer_filters", build && *build ? build : "build");
  conf(proto, sizeof proto, "designer_filters", "net.prototxt");
  conf(in, sizeof in, "designer_filters", "in_data.npy");
  tmp(out, sizeof out, "designer");
  snprintf(cmd, sizeof cmd, "%s %s %s %s 2>&1", exe, proto, in, out);
  FILE *p = popen(cmd, "r");
  char text[8192] = {0};
  size_t n = fread(text, 1, sizeof text - 1, p);
  text[n] = '\0';
  assert_int_equal(pclose(p), 0);
  /* Caffe's output means for the three designed filters */
  if (!strstr(text, "1.494440") || !strstr(text, "0.013326") || !strstr(text, "0.003287") ||
      !strstr(text, "rises by 1.000000"))
    fail_msg("%s", text);
  struct stat sb;
  for (int i = 0; i < 3; i++) {
    char png[1200];
    snprintf(png, sizeof png, "%s-%d.png", out, i);
    assert_int_equal(stat(png, &sb), 0);
  }

  char net[1024], w[1024], fcn[1024], model[1024];
  snprintf(exe, sizeof exe, "%s/examples/net_surgery", build && *build ? build : "build");
  conf(net, sizeof net, "mini_caffenet", "net.prototxt");
  conf(w, sizeof w, "mini_caffenet", "weights.caffemodel");
  conf(fcn, sizeof fcn, "mini_caffenet_fcn", "net.prototxt");
  tmp(model, sizeof model, "by_hand.caffemodel");
  snprintf(cmd, sizeof cmd, "%s %s %s %s %s 2>&1", exe, net, w, fcn, model);
  p = popen(cmd, "r");
  n = fread(text, 1, sizeof text - 1, p);
  text[n] = '\0';
  assert_int_equal(pclose(p), 0);
  if (!strstr(text, "fc6 weights are (32, 192) dimensional and biases are (32,) dimensional") ||
      !strstr(text, "fc6-conv weights are (32, 12, 4, 4) dimensional"))
    fail_msg("%s", text);
  /* the hand-made transplant equals the reference weights Caffe ran */
  char ref_w[1024], in71[1024], ref_prob[1024], prob[1024];
  conf(ref_w, sizeof ref_w, "mini_caffenet_fcn", "weights.caffemodel");
  conf(in71, sizeof in71, "mini_caffenet_fcn", "in_data.npy");
  conf(ref_prob, sizeof ref_prob, "mini_caffenet_fcn", "blob_prob.npy");
  tmp(prob, sizeof prob, "by_hand_prob.npy");
  expect(run("forward %s %s --input data=%s --output prob=%s", fcn, model, in71, prob), 0, NULL);
  ns_ctx *ctx = ns_ctx_create();
  ns_ndarray got = load_npy(ctx, prob), want = load_npy(ctx, ref_prob);
  expect_close(&got, &want, 1e-5, 1e-4);
  ns_ndarray_free(ctx, &got);
  ns_ndarray_free(ctx, &want);
  ns_ctx_destroy(ctx);
}

/* ---- unknown names and what info does with a net it cannot shape -------- */

static size_t count_of(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

static const char *put(char *buf, size_t size, const char *name, const char *text) {
  tmp(buf, size, name);
  if (tu_write_file(buf, text, strlen(text)) != 0) fail_msg("cannot write %s", buf);
  return buf;
}

/* Every verb reads a model, so every verb takes --allow-unknown and says
 * so in its --help. */
static void test_allow_unknown_everywhere(void **state) {
  (void)state;
  for (const char *v = "info\0upgrade\0init\0forward\0bench\0edit\0transplant\0fcn\0classify\0"
                       "train\0test\0";
       *v; v += strlen(v) + 1) {
    run_result r = run("%s --help", v);
    if (r.code != 0 || count_of(r.out, "--allow-unknown") < 2 ||
        !strstr(r.out, "one warning per\nname"))
      fail_msg("netsurg %s --help: exit %d, usage or paragraph on --allow-unknown missing:\n%s",
               v, r.code, r.out);
    free(r.out);
  }
}

/* A legacy-input net with a layer type netsurg lacks: info lists the
 * definition, warns once (not once per read), exits 3 naming the layer. */
static void test_info_unshaped(void **state) {
  (void)state;
  char net[1024];
  put(net, sizeof net, "unshaped.prototxt",
      "input: \"data\"\ninput_dim: 1\ninput_dim: 1\ninput_dim: 4\ninput_dim: 4\n"
      "layer { name: \"f\" type: \"Frobnicate\" bottom: \"data\" top: \"f\" }\n");
  run_result r = run("info %s", net);
  assert_int_equal(r.code, 3);
  if (count_of(r.out, "deprecated input fields turned into an Input layer") != 1 ||
      !strstr(r.out, "1    f                    Frobnicate     data") ||
      !strstr(r.out, "layer 'f': layer type 'Frobnicate' is not supported"))
    fail_msg("info: one warning, the listing and the layer expected:\n%s", r.out);
  free(r.out);
  r = run("info %s --json", net);
  assert_int_equal(r.code, 3);
  assert_non_null(strstr(r.out, "\"type\": \"Frobnicate\""));
  free(r.out);
}

/* A fork's field in three layers: without the flag exit 3 naming the first
 * layer and the flag; with it one warning for the three. */
static void test_fork_field_once(void **state) {
  (void)state;
  char net[1024];
  put(net, sizeof net, "fork.prototxt",
      "layer { name: \"data\" type: \"Input\" top: \"data\"\n"
      "  input_param { shape { dim: 1 dim: 2 dim: 3 dim: 3 } } }\n"
      "layer { name: \"r1\" type: \"ReLU\" bottom: \"data\" top: \"a\" frob_param { k: 1 } }\n"
      "layer { name: \"r2\" type: \"ReLU\" bottom: \"a\" top: \"b\" frob_param { k: 2 } }\n"
      "layer { name: \"r3\" type: \"ReLU\" bottom: \"b\" top: \"c\" frob_param { k: 3 } }\n");
  expect(run("info %s", net), 3,
         "fork.prototxt:3:57: layer 'r1' (type ReLU): unknown field 'frob_param' in message "
         "caffe.LayerParameter: a Caffe fork's field netsurg does not know; --allow-unknown");
  run_result r = run("info %s --allow-unknown", net);
  assert_int_equal(r.code, 0);
  if (count_of(r.out, "frob_param") != 1 || !strstr(r.out, "(3 times, first here)") ||
      !strstr(r.out, "(1, 2, 3, 3)"))
    fail_msg("one warning for three occurrences, and the shapes, expected:\n%s", r.out);
  free(r.out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_edit),
      cmocka_unit_test(test_transplant),
      cmocka_unit_test(test_fcn),
      cmocka_unit_test(test_classify_map),
      cmocka_unit_test(test_classify_blob_channel),
      cmocka_unit_test(test_classify_plain),
      cmocka_unit_test(test_info_receptive_field),
      cmocka_unit_test(test_examples),
      cmocka_unit_test(test_allow_unknown_everywhere),
      cmocka_unit_test(test_info_unshaped),
      cmocka_unit_test(test_fork_field_once),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
