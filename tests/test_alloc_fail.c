/* Allocation failure, as ncnn and Lua test it: an allocator hook (through
 * ns_ctx_create_with) that fails the k-th allocation, for k = 1, 2, ...
 * until a run needs fewer than k.  Every run must either succeed or return
 * NS_ERR_NOMEM with a message, and, once the net and the context are
 * destroyed, every block the hook handed out must be back (counted here, so
 * that a leak fails the test in any build, not only under LeakSanitizer).
 * A run that succeeds although an allocation failed (a cache or a fast
 * path given up) must give the same output as a run where none fails:
 * each scenario records what it produced in a digest, compared byte for
 * byte with that of an undisturbed run. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "format/textformat.h"
#include "netsurg.h"
#include "support/testutil.h"

/* ---- the failing allocator ------------------------------------------------- */

typedef struct heap {
  long calls;   /* allocations and reallocations so far */
  long fail_at; /* the call that fails (1-based); 0 = never */
  int failed;   /* the failure was injected during this run */
  long live;    /* blocks handed out and not yet freed */
} heap;

static void *h_alloc(void *user, size_t size) {
  heap *h = user;
  if (++h->calls == h->fail_at) {
    h->failed = 1;
    return NULL;
  }
  void *p = malloc(size);
  if (p) h->live++;
  return p;
}

static void *h_realloc(void *user, void *ptr, size_t size) {
  heap *h = user;
  if (!ptr) return h_alloc(user, size);
  if (++h->calls == h->fail_at) {
    h->failed = 1;
    return NULL; /* ptr stays valid, as realloc's contract says */
  }
  return realloc(ptr, size);
}

static void h_free(void *user, void *ptr) {
  heap *h = user;
  if (!ptr) return;
  h->live--;
  free(ptr);
}

/* ---- what a run produced ------------------------------------------------------ */

/* Bytes that must match exactly (shapes, names, files) and floats (blob
 * values) that may differ by rounding: a run that could not allocate a
 * cache takes another, equally right path (the Winograd cache: GEMM). */
typedef struct digest {
  unsigned char bytes[1 << 16];
  size_t len;
  float floats[1 << 14];
  size_t n_floats;
} digest;

static void digest_add(digest *d, const void *p, size_t n) {
  if (n == 0) return; /* p may be NULL then */
  assert_true(n <= sizeof d->bytes - d->len);
  memcpy(d->bytes + d->len, p, n);
  d->len += n;
}

static void digest_tensor(digest *d, ns_tensor t) {
  digest_add(d, t.shape, sizeof(int64_t) * (size_t)t.num_axes);
  assert_true((size_t)t.count <= sizeof d->floats / sizeof(float) - d->n_floats);
  if (t.count > 0) memcpy(d->floats + d->n_floats, t.data, sizeof(float) * (size_t)t.count);
  d->n_floats += (size_t)t.count;
}

static void digest_string(digest *d, const char *s) { digest_add(d, s, strlen(s) + 1); }

static void digest_file(digest *d, const char *path) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  unsigned char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, fp)) > 0) digest_add(d, buf, n);
  fclose(fp);
}

/* The bytes equal and the floats within 1e-5 + 1e-4 relative (the
 * conformance tolerance; the Winograd and GEMM paths differ by 1.1e-5 on
 * values near 4). */
static int same_output(const digest *got, const digest *want) {
  if (got->len != want->len || memcmp(got->bytes, want->bytes, want->len) != 0) return 0;
  if (got->n_floats != want->n_floats) return 0;
  for (size_t i = 0; i < want->n_floats; i++) {
    double g = got->floats[i], w = want->floats[i];
    if (!(fabs(g - w) <= 1e-5 + 1e-4 * fabs(w))) return 0;
  }
  return 1;
}

/* One scenario: runs on ctx, returns its status and records its output
 * in *out; frees what it made. */
typedef ns_status (*scenario)(ns_ctx *ctx, void *arg, digest *out);

/* The run with no allocation failing; its output is the reference. */
static void reference_run(scenario run, void *arg, digest *out) {
  heap h = {0, 0, 0, 0};
  ns_allocator a = {h_alloc, h_realloc, h_free, &h};
  ns_ctx *ctx = ns_ctx_create_with(&a);
  assert_non_null(ctx);
  ns_ctx_set_threads(ctx, 1);
  out->len = out->n_floats = 0;
  ns_status st = run(ctx, arg, out);
  if (st != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  ns_ctx_destroy(ctx);
  assert_int_equal(h.live, 0);
  assert_true(out->len + out->n_floats > 0);
}

/* Runs the scenario failing allocation k = 1, 2, ... until a run completes
 * without reaching k; returns the number of runs, and in *swallowed those
 * that succeeded although an allocation failed. */
static long fail_each_allocation_counting(scenario run, void *arg, const char *what,
                                          long *swallowed_out) {
  static digest want, got;
  reference_run(run, arg, &want);
  long k, swallowed = 0;
  for (k = 1;; k++) {
    got.len = got.n_floats = 0;
    heap h = {0, k, 0, 0};
    ns_allocator a = {h_alloc, h_realloc, h_free, &h};
    ns_ctx *ctx = ns_ctx_create_with(&a);
    if (!ctx) {
      assert_int_equal(h.failed, 1);
      assert_int_equal(h.live, 0);
      continue;
    }
    ns_ctx_set_threads(ctx, 1);
    ns_status st = run(ctx, arg, &got);
    if (st == NS_OK) {
      swallowed += h.failed;
      if (!same_output(&got, &want))
        fail_msg("%s, allocation %ld failing: succeeded with another output", what, k);
    } else {
      if (st != NS_ERR_NOMEM || !h.failed)
        fail_msg("%s, allocation %ld failing: status %d (%s), want NS_ERR_NOMEM: %s", what, k,
                 (int)st, ns_status_name(st), ns_ctx_error(ctx));
      if (!ns_ctx_error(ctx)[0]) fail_msg("%s, allocation %ld failing: no message", what, k);
    }
    int injected = h.failed;
    ns_ctx_destroy(ctx);
    if (h.live != 0)
      fail_msg("%s, allocation %ld failing (status %d): %ld blocks leaked", what, k, (int)st,
               h.live);
    if (!injected) {
      assert_int_equal(st, NS_OK);
      break; /* the run needed fewer than k allocations */
    }
  }
  print_message("%s: %ld runs, %ld succeeded despite the failure\n", what, k, swallowed);
  *swallowed_out = swallowed;
  return k;
}

static long fail_each_allocation(scenario run, void *arg, const char *what) {
  long swallowed;
  return fail_each_allocation_counting(run, arg, what, &swallowed);
}

/* ---- scenarios ------------------------------------------------------------------- */

/* Conv, ReLU, pooling, a blob read twice (a Split is inserted), Concat,
 * LRN, InnerProduct, Softmax: most of what building allocates. */
static const char *net_text =
    "name: \"small\"\n"
    "layer { name: \"data\" type: \"Input\" top: \"data\"\n"
    "  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n"
    "layer { name: \"conv\" type: \"Convolution\" bottom: \"data\" top: \"conv\"\n"
    "  convolution_param { num_output: 4 kernel_size: 3 pad: 1\n"
    "    weight_filler { type: \"gaussian\" std: 0.1 } } }\n"
    "layer { name: \"relu\" type: \"ReLU\" bottom: \"conv\" top: \"conv\" }\n"
    "layer { name: \"pool\" type: \"Pooling\" bottom: \"conv\" top: \"pool\"\n"
    "  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n"
    "layer { name: \"a\" type: \"Sigmoid\" bottom: \"pool\" top: \"a\" }\n"
    "layer { name: \"b\" type: \"TanH\" bottom: \"pool\" top: \"b\" }\n"
    "layer { name: \"cat\" type: \"Concat\" bottom: \"a\" bottom: \"b\" top: \"cat\" }\n"
    "layer { name: \"norm\" type: \"LRN\" bottom: \"cat\" top: \"norm\" lrn_param { local_size: 3 "
    "} }\n"
    "layer { name: \"ip\" type: \"InnerProduct\" bottom: \"norm\" top: \"ip\"\n"
    "  inner_product_param { num_output: 5 } }\n"
    "layer { name: \"prob\" type: \"Softmax\" bottom: \"ip\" top: \"prob\" }\n";

/* A convolution large enough for Winograd with cached weights (16 channels
 * in and out, 144 outputs): a failure to allocate the cache is swallowed
 * (the weights are transformed per call instead). */
static const char *winograd_text =
    "layer { name: \"data\" type: \"Input\" top: \"data\"\n"
    "  input_param { shape { dim: 1 dim: 16 dim: 12 dim: 12 } } }\n"
    "layer { name: \"conv\" type: \"Convolution\" bottom: \"data\" top: \"conv\"\n"
    "  convolution_param { num_output: 16 kernel_size: 3 pad: 1\n"
    "    weight_filler { type: \"gaussian\" std: 0.1 } bias_filler { type: \"gaussian\" } } }\n";

/* The same kind of net in the legacy V1 format with input_dim: the upgrade
 * allocates a new definition. */
static const char *v1_text =
    "name: \"v1\"\n"
    "input: \"data\"\n"
    "input_dim: 1 input_dim: 2 input_dim: 6 input_dim: 6\n"
    "layers { name: \"conv\" type: CONVOLUTION bottom: \"data\" top: \"conv\"\n"
    "  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0\n"
    "  convolution_param { num_output: 3 kernel_size: 3 } }\n"
    "layers { name: \"relu\" type: RELU bottom: \"conv\" top: \"conv\" }\n"
    "layers { name: \"ip\" type: INNER_PRODUCT bottom: \"conv\" top: \"ip\"\n"
    "  inner_product_param { num_output: 2 } }\n"
    "layers { name: \"prob\" type: SOFTMAX bottom: \"ip\" top: \"prob\" }\n";

typedef struct files {
  char net[4096], weights[4096], v1[4096], saved[4096], saved_text[4096], winograd[4096];
  char onnx[4096];
} files;

/* The prob blob after each forward. */
typedef ns_status (*net_loader)(ns_ctx *, const char *, const ns_net_opts *, ns_net **);

/* Load with LOAD, forward, reshape to a batch of 2, forward again. */
static ns_status forward_twice(ns_ctx *ctx, net_loader load, const files *f, digest *out) {
  ns_net *net = NULL;
  ns_status st = load(ctx, f->net, &(ns_net_opts){NS_PHASE_TEST, 1, f->weights}, &net);
  if (st != NS_OK) return st;
  int prob = ns_net_find_blob(net, "prob");
  st = ns_net_forward(ctx, net);
  if (st == NS_OK) {
    digest_tensor(out, ns_net_blob(net, prob));
    int64_t shape[4] = {2, 3, 8, 8};
    st = ns_net_reshape_input(ctx, net, "data", 4, shape);
  }
  if (st == NS_OK) st = ns_net_forward(ctx, net);
  if (st == NS_OK) digest_tensor(out, ns_net_blob(net, prob));
  ns_net_destroy(net);
  return st;
}

static ns_status load_forward(ns_ctx *ctx, void *arg, digest *out) {
  return forward_twice(ctx, ns_net_load, arg, out);
}

/* load_forward with activation reuse on from the build (its plan and
 * shared buffers made at the build and again at the reshape). */
static ns_status load_reusing_forward(ns_ctx *ctx, void *arg, digest *out) {
  return forward_twice(ctx, ns_net_load_reusing, arg, out);
}

/* The convolution's output, twice (the second forward reuses the cache),
 * for an input that is not all zero. */
static ns_status winograd_forward(ns_ctx *ctx, void *arg, digest *out) {
  const files *f = arg;
  ns_net *net = NULL;
  ns_status st = ns_net_load(ctx, f->winograd, NULL, &net);
  if (st != NS_OK) return st;
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  for (int64_t i = 0; i < x.count; i++) x.data[i] = (float)(i % 7) - 3.0f;
  for (int pass = 0; pass < 2 && st == NS_OK; pass++) {
    st = ns_net_forward(ctx, net);
    if (st == NS_OK) digest_tensor(out, ns_net_blob(net, ns_net_find_blob(net, "conv")));
  }
  ns_net_destroy(net);
  return st;
}

/* The upgraded layers' names and types, and the output. */
static ns_status load_v1(ns_ctx *ctx, void *arg, digest *out) {
  const files *f = arg;
  ns_net *net = NULL;
  ns_status st = ns_net_load(ctx, f->v1, NULL, &net);
  if (st != NS_OK) return st;
  st = ns_net_forward(ctx, net);
  if (st == NS_OK) {
    for (int i = 0; i < ns_net_layer_count(net); i++) {
      digest_string(out, ns_net_layer_name(net, i));
      digest_string(out, ns_net_layer_type(net, i));
    }
    digest_tensor(out, ns_net_blob(net, ns_net_find_blob(net, "prob")));
  }
  ns_net_destroy(net);
  return st;
}

/* The files written. */
static ns_status load_save(ns_ctx *ctx, void *arg, digest *out) {
  const files *f = arg;
  ns_net *net = NULL;
  ns_status st = ns_net_load(ctx, f->net, &(ns_net_opts){NS_PHASE_TEST, 1, f->weights}, &net);
  if (st != NS_OK) return st;
  st = ns_net_save_weights(ctx, net, f->saved);
  if (st == NS_OK) st = ns_net_save_prototxt(ctx, net, f->saved_text);
  if (st == NS_OK) {
    digest_file(out, f->saved);
    digest_file(out, f->saved_text);
  }
  ns_net_destroy(net);
  return st;
}

/* The ONNX model written (the graph builder's arena, its node and
 * initializer arrays, the atomic file). */
static ns_status export_onnx(ns_ctx *ctx, void *arg, digest *out) {
  const files *f = arg;
  ns_net *net = NULL;
  ns_status st = ns_net_load(ctx, f->net, &(ns_net_opts){NS_PHASE_TEST, 1, f->weights}, &net);
  if (st != NS_OK) return st;
  st = ns_net_export_onnx(ctx, net, f->onnx, NULL, NULL);
  if (st == NS_OK) digest_file(out, f->onnx);
  ns_net_destroy(net);
  return st;
}

/* The same with the weights in ONNX's external data: both files, each
 * written through its own temporary file. */
static ns_status export_onnx_external(ns_ctx *ctx, void *arg, digest *out) {
  const files *f = arg;
  ns_net *net = NULL;
  ns_status st = ns_net_load(ctx, f->net, &(ns_net_opts){NS_PHASE_TEST, 1, f->weights}, &net);
  if (st != NS_OK) return st;
  ns_onnx_options o = {0, 0, 1};
  st = ns_net_export_onnx(ctx, net, f->onnx, &o, NULL);
  if (st == NS_OK) {
    char data[4200];
    snprintf(data, sizeof data, "%s.data", f->onnx);
    digest_file(out, f->onnx);
    digest_file(out, data);
  }
  ns_net_destroy(net);
  return st;
}

/* The definition read from the weights: layers, their blobs' shapes. */
static ns_status netdef(ns_ctx *ctx, void *arg, digest *out) {
  const files *f = arg;
  ns_netdef *d = NULL;
  ns_status st = ns_netdef_load(ctx, f->weights, &d);
  if (st != NS_OK) return st;
  digest_string(out, ns_netdef_name(d));
  for (int i = 0; i < ns_netdef_layer_count(d); i++) {
    digest_string(out, ns_netdef_layer_name(d, i));
    digest_string(out, ns_netdef_layer_type(d, i));
    for (int j = 0; j < ns_netdef_layer_blob_count(d, i); j++) {
      int64_t shape[32]; /* the room the call needs */
      int axes = ns_netdef_layer_blob_shape(d, i, j, shape);
      digest_add(out, shape, sizeof(int64_t) * (size_t)(axes > 0 ? axes : 0));
    }
  }
  ns_netdef_destroy(d);
  return st;
}

/* Every construct of the text format once. */
static const char *parser_text =
    "# comment\n"
    "name: 'p\\x41\\101\\n\\'q' input: \"a\" input: \"b\"\n"
    "input_shape < dim: [1, 0x2, 03, 4] > input_shape { dim: 5 }\n"
    "state { phase: TEST level: -1 stage: \"s1\" stage: \"s2\" }\n"
    "layer { name: \"c\" type: \"Convolution\" bottom: \"a\" top: \"c\";\n"
    "  param { lr_mult: 1.5e0 } param: { decay_mult: inf }\n"
    "  convolution_param { num_output: 2 kernel_size: [3, 3] pad: 1\n"
    "    weight_filler { type: \"xavier\" } bias_term: false }\n"
    "  include { phase: TRAIN } exclude { stage: \"x\" } }\n"
    "layers { name: \"v1\" type: RELU blobs_lr: 1 }\n";

/* The text written back. */
static ns_status parse_text(ns_ctx *ctx, void *arg, digest *out) {
  (void)arg;
  ProtobufCMessage *m = NULL;
  ns_status st = ns_text_parse(ctx, parser_text, strlen(parser_text), "parser.prototxt",
                               &caffe__net_parameter__descriptor, &m);
  if (st != NS_OK) return st;
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  st = ns_text_write(ctx, m, &sb);
  if (st == NS_OK) st = ns_strbuf_status(&sb);
  if (st == NS_OK) digest_add(out, sb.data, sb.len);
  ns_strbuf_free(&sb);
  protobuf_c_message_free_unpacked(m, &ctx->pb_alloc);
  return st;
}

/* Unknown fields and an unknown enum value skipped under allow_unknown:
 * the record of their names is allocated too; the text written back. */
static ns_status parse_unknown(ns_ctx *ctx, void *arg, digest *out) {
  (void)arg;
  static const char text[] =
      "layer { name: \"p\" frob: 1 pooling_param { pool: MEDIAN frob { x: 1 } } }\n"
      "layer { name: \"q\" frob: [1, 2] }\n";
  ProtobufCMessage *m = NULL;
  ns_ctx_set_allow_unknown(ctx, 1);
  ns_status st =
      ns_text_parse(ctx, text, strlen(text), "u.prototxt", &caffe__net_parameter__descriptor, &m);
  if (st != NS_OK) return st;
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  st = ns_text_write(ctx, m, &sb);
  if (st == NS_OK) st = ns_strbuf_status(&sb);
  if (st == NS_OK) digest_add(out, sb.data, sb.len);
  ns_strbuf_free(&sb);
  protobuf_c_message_free_unpacked(m, &ctx->pb_alloc);
  return st;
}

static ns_status load_npy(ns_ctx *ctx, void *arg, digest *out) {
  const char *path = arg;
  ns_ndarray a;
  ns_status st = ns_npy_load(ctx, path, &a);
  if (st != NS_OK) return st;
  digest_add(out, a.shape, sizeof(int64_t) * (size_t)a.num_axes);
  digest_tensor(out, (ns_tensor){NULL, 0, NULL, a.count, a.data});
  ns_ndarray_free(ctx, &a);
  return st;
}

static void digest_image(digest *d, const ns_image *im) {
  int dims[3] = {im->height, im->width, im->channels};
  digest_add(d, dims, sizeof dims);
  digest_tensor(
      d, (ns_tensor){NULL, 0, NULL, (int64_t)im->height * im->width * im->channels, im->data});
}

static ns_status load_png(ns_ctx *ctx, void *arg, digest *out) {
  const char *path = arg;
  ns_image im, small;
  ns_status st = ns_image_load(ctx, path, 0, &im);
  if (st != NS_OK) return st;
  digest_image(out, &im);
  st = ns_image_resize(ctx, &im, 5, 4, 1, &small);
  if (st == NS_OK) {
    digest_image(out, &small);
    ns_image_free(ctx, &small);
  }
  ns_image_free(ctx, &im);
  return st;
}

/* ---- tests ----------------------------------------------------------------------- */

static char *dir;
static files f;

static int setup(void **state) {
  (void)state;
  dir = tu_mkdtemp();
  if (!dir) return -1;
  tu_path(f.net, sizeof f.net, dir, "small.prototxt");
  tu_path(f.weights, sizeof f.weights, dir, "small.caffemodel");
  tu_path(f.v1, sizeof f.v1, dir, "v1.prototxt");
  tu_path(f.saved, sizeof f.saved, dir, "saved.caffemodel");
  tu_path(f.saved_text, sizeof f.saved_text, dir, "saved.prototxt");
  tu_path(f.winograd, sizeof f.winograd, dir, "winograd.prototxt");
  tu_path(f.onnx, sizeof f.onnx, dir, "small.onnx");
  if (tu_write_file(f.net, net_text, strlen(net_text)) ||
      tu_write_file(f.v1, v1_text, strlen(v1_text)) ||
      tu_write_file(f.winograd, winograd_text, strlen(winograd_text)))
    return -1;
  /* The weights: the net's own fillers, saved with a plain context. */
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = NULL;
  int bad = !ctx ||
            ns_net_load(ctx, f.net, &(ns_net_opts){NS_PHASE_TEST, 5, NULL}, &net) != NS_OK ||
            ns_net_save_weights(ctx, net, f.weights) != NS_OK;
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return bad ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  tu_rmtree(dir);
  free(dir);
  return 0;
}

static void test_load_build_forward(void **state) {
  (void)state;
  long runs = fail_each_allocation(load_forward, &f, "load + build + forward");
  assert_true(runs > 50); /* the scenario does allocate */
}

static void test_load_reusing_forward(void **state) {
  (void)state;
  long runs = fail_each_allocation(load_reusing_forward, &f, "load with reuse + forward");
  assert_true(runs > 50);
}

static void test_winograd_cache(void **state) {
  (void)state;
  long swallowed = 0;
  long runs = fail_each_allocation_counting(winograd_forward, &f, "Winograd forward", &swallowed);
  assert_true(runs > 50);      /* measured 96 */
  assert_true(swallowed >= 1); /* the cache's allocation */
}

static void test_legacy_upgrade(void **state) {
  (void)state;
  long runs = fail_each_allocation(load_v1, &f, "V1 load + upgrade + forward");
  assert_true(runs > 100); /* measured 172: the upgrade does allocate */
}

static void test_save(void **state) {
  (void)state;
  long runs = fail_each_allocation(load_save, &f, "load + save weights and prototxt");
  assert_true(runs > 100); /* measured 329 */
  /* a failed save leaves no temporary file behind */
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 6", dir);
  assert_int_equal(tu_run(cmd), 0);
}

static void test_netdef_of_caffemodel(void **state) {
  (void)state;
  long runs = fail_each_allocation(netdef, &f, "caffemodel as a definition");
  assert_true(runs > 50); /* measured 106 */
}

static void test_text_parser(void **state) {
  (void)state;
  long runs = fail_each_allocation(parse_text, NULL, "text parse + write");
  assert_true(runs > 20);
  runs = fail_each_allocation(parse_unknown, NULL, "text parse skipping unknown names");
  assert_true(runs > 5);
}

static void test_npy_and_image(void **state) {
  (void)state;
  char npy[4096], png[4096];
  tu_path(npy, sizeof npy, dir, "a.npy");
  tu_path(png, sizeof png, dir, "a.png");
  ns_ctx *ctx = ns_ctx_create();
  int64_t shape[3] = {2, 3, 4};
  float data[24] = {0};
  assert_int_equal(ns_npy_save_f32(ctx, npy, 3, shape, data), NS_OK);
  unsigned char rgb[6 * 7 * 3] = {0};
  assert_int_equal(ns_png_save_rgb8(ctx, png, 6, 7, rgb), NS_OK);
  ns_ctx_destroy(ctx);
  assert_true(fail_each_allocation(load_npy, npy, ".npy load") > 3);         /* measured 5 */
  assert_true(fail_each_allocation(load_png, png, "PNG load + resize") > 8); /* measured 14 */
}

/* Training: a solver with a train and a test net (NpyData, InnerProduct,
 * SoftmaxWithLoss, Accuracy), two Adam steps with a test, a snapshot and a
 * restore from it. */
static ns_status train_snapshot_restore(ns_ctx *ctx, void *arg, digest *out) {
  const char *solver = arg;
  char state[4200], model[4300];
  snprintf(state, sizeof state, "%s", solver);
  *strrchr(state, '/') = 0;
  snprintf(model, sizeof model, "%s/snap_iter_2.caffemodel", state);
  strcat(state, "/snap_iter_2.solverstate");
  ns_solver *s = NULL;
  ns_status st = ns_solver_create(ctx, solver, NULL, &s);
  if (st == NS_OK) st = ns_solver_step(ctx, s, 2);
  if (st == NS_OK) st = ns_solver_snapshot(ctx, s);
  if (st == NS_OK) st = ns_solver_restore(ctx, s, state);
  if (st == NS_OK) { /* the snapshot and the params restored from it */
    digest_file(out, model);
    digest_file(out, state);
    ns_net *net = ns_solver_net(s);
    for (int i = 0; i < ns_net_learnable_count(net); i++) {
      ns_learnable lr;
      st = ns_net_learnable(net, i, &lr);
      if (st != NS_OK) break;
      digest_tensor(out, lr.data);
    }
  }
  ns_solver_destroy(s);
  return st;
}

static void test_solver(void **state) {
  (void)state;
  char x[4096], y[4096], net[4096], solver[4096], text[16384];
  tu_path(x, sizeof x, dir, "x.npy");
  tu_path(y, sizeof y, dir, "y.npy");
  tu_path(net, sizeof net, dir, "train.prototxt");
  tu_path(solver, sizeof solver, dir, "solver.prototxt");
  ns_ctx *ctx = ns_ctx_create();
  int64_t xs[2] = {4, 3}, ys[1] = {4};
  float xd[12] = {1, 2, 3, -1, -2, -3, 0.5f, 1, 0, -1, 0, 2}, yd[4] = {0, 1, 0, 1};
  assert_int_equal(ns_npy_save_f32(ctx, x, 2, xs, xd), NS_OK);
  assert_int_equal(ns_npy_save_f32(ctx, y, 1, ys, yd), NS_OK);
  ns_ctx_destroy(ctx);
  snprintf(
      text, sizeof text,
      "layer { name: 'd' type: 'NpyData' top: 'data' top: 'label'\n"
      "  array_data_param { source: '%s' label_source: '%s' batch_size: 2 shuffle: true } }\n"
      "layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'out'\n"
      "  inner_product_param { num_output: 2 weight_filler { type: 'xavier' } } }\n"
      "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'out' bottom: 'label' top: 'loss' }\n"
      "layer { name: 'acc' type: 'Accuracy' bottom: 'out' bottom: 'label' top: 'acc'\n"
      "  include { phase: TEST } }\n",
      x, y);
  assert_int_equal(tu_write_file(net, text, strlen(text)), 0);
  snprintf(text, sizeof text,
           "net: '%s'\ntype: 'Adam'\nbase_lr: 0.01\nlr_policy: 'fixed'\nmax_iter: 2\n"
           "test_iter: 1\ntest_interval: 1\ndisplay: 1\nrandom_seed: 1\n"
           "snapshot_prefix: '%s/snap'\n",
           net, dir);
  assert_int_equal(tu_write_file(solver, text, strlen(text)), 0);
  long runs = fail_each_allocation(train_snapshot_restore, solver, "solver + step + snapshot");
  assert_true(runs > 50);
}

static void test_export_onnx(void **state) {
  (void)state;
  long runs = fail_each_allocation(export_onnx, &f, "load + ONNX export");
  assert_true(runs > 50);
  /* a failed export leaves no temporary file behind */
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' | grep '[.]tmp[.]')\"", dir);
  assert_int_equal(tu_run(cmd), 0);
}

static void test_export_onnx_external(void **state) {
  (void)state;
  long runs = fail_each_allocation(export_onnx_external, &f, "load + ONNX external data");
  assert_true(runs > 50);
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' | grep '[.]tmp[.]')\"", dir);
  assert_int_equal(tu_run(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_build_forward),
      cmocka_unit_test(test_load_reusing_forward),
      cmocka_unit_test(test_winograd_cache),
      cmocka_unit_test(test_legacy_upgrade),
      cmocka_unit_test(test_save),
      cmocka_unit_test(test_netdef_of_caffemodel),
      cmocka_unit_test(test_text_parser),
      cmocka_unit_test(test_npy_and_image),
      cmocka_unit_test(test_solver),
      cmocka_unit_test(test_export_onnx),
      cmocka_unit_test(test_export_onnx_external),
  };
  return cmocka_run_group_tests_name("alloc_fail", tests, setup, teardown);
}
