/* Shared params (ParamSpec name), as Caffe's Net::AppendParam: two
 * InnerProducts x -> a -> c share one 3x3 weight matrix and one bias.
 * Forward against the composition worked by hand in double; the shared
 * gradient against central differences of the loss (perturbing the one
 * blob perturbs both uses, so the difference sees the summed gradient);
 * one solver update moves the one blob once; saving writes the blob under
 * both layers; shape and lr_mult mismatches name both layers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

typedef tu_fixture fixture;

#define LAYERS(b_out, b_param)                                                          \
  "layer { name: 'in' type: 'Input' top: 'x' top: 'y'\n"                                \
  "  input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: " b_out                  \
  " } } }\n"                                                                            \
  "layer { name: 'ip_a' type: 'InnerProduct' bottom: 'x' top: 'a'\n"                    \
  "  param { name: 'w' } param { name: 'b' lr_mult: 2 }\n"                              \
  "  inner_product_param { num_output: 3 weight_filler { type: 'gaussian' std: 0.5 }\n" \
  "    bias_filler { type: 'uniform' min: -0.5 max: 0.5 } } }\n"                        \
  "layer { name: 'ip_b' type: 'InnerProduct' bottom: 'a' top: 'c'\n"                    \
  "  param { name: 'w' } " b_param                                                      \
  "\n"                                                                                  \
  "  inner_product_param { num_output: " b_out                                          \
  " weight_filler { type: 'gaussian' std: 0.5 }\n"                                      \
  "    bias_filler { type: 'constant' value: 0.1 } } }\n"                               \
  "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'c' bottom: 'y' top: 'loss' }\n"

static const char *shared_net = "name: 'shared'\n" LAYERS("3", "param { name: 'b' }");

static const char *write_net(fixture *f, const char *name, const char *text) {
  static char path[1024];
  tu_path(path, sizeof path, f->dir, name);
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  return path;
}

static ns_net *load(fixture *f, const char *text, ns_phase phase) {
  ns_net_opts o;
  ns_net_opts_init(&o);
  o.phase = phase;
  ns_net *net = NULL;
  if (ns_net_load(f->ctx, write_net(f, "net.prototxt", text), &o, &net) != NS_OK)
    fail_msg("%s", ns_ctx_error(f->ctx));
  return net;
}

static const float x_in[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};
static const float y_in[6] = {0.2f, -0.3f, 0.4f, 1.0f, 0.0f, -1.0f};

static void set_inputs(ns_net *net) {
  memcpy(ns_net_blob(net, ns_net_find_blob(net, "x")).data, x_in, sizeof x_in);
  memcpy(ns_net_blob(net, ns_net_find_blob(net, "y")).data, y_in, sizeof y_in);
}

/* c = W (W x + b) + b and the Euclidean loss, in double. */
static double hand_forward(const float *w, const float *b, double c[6]) {
  double loss = 0;
  for (int n = 0; n < 2; n++) {
    double a[3];
    for (int i = 0; i < 3; i++) {
      a[i] = b[i];
      for (int k = 0; k < 3; k++) a[i] += (double)w[i * 3 + k] * x_in[n * 3 + k];
    }
    for (int i = 0; i < 3; i++) {
      double v = b[i];
      for (int k = 0; k < 3; k++) v += (double)w[i * 3 + k] * a[k];
      c[n * 3 + i] = v;
      loss += (v - y_in[n * 3 + i]) * (v - y_in[n * 3 + i]);
    }
  }
  return loss / (2.0 * 2);
}

static void test_forward_one_blob(void **state) {
  fixture *f = *state;
  ns_net *net = load(f, shared_net, NS_PHASE_TRAIN);
  int la = ns_net_find_layer(net, "ip_a"), lb = ns_net_find_layer(net, "ip_b");
  ns_tensor wa = ns_net_param(net, la, 0), wb = ns_net_param(net, lb, 0);
  ns_tensor ba = ns_net_param(net, la, 1), bb = ns_net_param(net, lb, 1);
  assert_ptr_equal(wa.data, wb.data); /* one blob, not two copies */
  assert_ptr_equal(ba.data, bb.data);
  /* ip_a's uniform filler wins over ip_b's constant: the owner's values */
  int not_constant = 0;
  for (int i = 0; i < 3; i++) not_constant |= fabsf(ba.data[i] - 0.1f) > 1e-6f;
  assert_true(not_constant);
  set_inputs(net);
  float loss = 0;
  assert_int_equal(ns_net_forward_loss(f->ctx, net, &loss), NS_OK);
  double c[6];
  double want = hand_forward(wa.data, ba.data, c);
  const float *got = ns_net_blob(net, ns_net_find_blob(net, "c")).data;
  for (int i = 0; i < 6; i++) assert_float_equal(got[i], c[i], 1e-5);
  assert_float_equal(loss, want, 1e-5 * (1 + fabs(want)));
  ns_net_destroy(net);
}

static void test_gradient_summed(void **state) {
  fixture *f = *state;
  ns_net *net = load(f, shared_net, NS_PHASE_TRAIN);
  assert_int_equal(ns_net_learnable_count(net), 2); /* w and b, listed once */
  set_inputs(net);
  ns_net_clear_param_diffs(net);
  float loss;
  assert_int_equal(ns_net_forward_loss(f->ctx, net, &loss), NS_OK);
  assert_int_equal(ns_net_backward(f->ctx, net), NS_OK);
  for (int p = 0; p < 2; p++) {
    ns_learnable l;
    assert_int_equal(ns_net_learnable(net, p, &l), NS_OK);
    assert_string_equal(l.layer_name, "ip_a");
    assert_float_equal(l.lr_mult, p == 0 ? 1.0f : 2.0f, 0);
    for (int64_t k = 0; k < l.data.count; k++) {
      float keep = l.data.data[k];
      const double h = 1e-3;
      double c[6];
      const float *w = ns_net_param(net, ns_net_find_layer(net, "ip_a"), 0).data;
      const float *b = ns_net_param(net, ns_net_find_layer(net, "ip_a"), 1).data;
      l.data.data[k] = keep + (float)h;
      double up = hand_forward(w, b, c);
      l.data.data[k] = keep - (float)h;
      double down = hand_forward(w, b, c);
      l.data.data[k] = keep;
      double fd = (up - down) / (2 * h);
      assert_float_equal(l.diff[k], fd, 2e-3 * (1 + fabs(fd)));
    }
  }
  ns_net_destroy(net);
}

static void test_solver_updates_once(void **state) {
  fixture *f = *state;
  char text[8192], path[1024];
  snprintf(text, sizeof text,
           "net_param { name: 'shared'\n%s}\ntype: 'SGD' base_lr: 0.1 lr_policy: 'fixed'\n"
           "max_iter: 1 random_seed: 3 snapshot_after_train: false\n",
           LAYERS("3", "param { name: 'b' }"));
  tu_path(path, sizeof path, f->dir, "solver.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_solver *s = NULL;
  if (ns_solver_create(f->ctx, path, NULL, &s) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  ns_net *net = ns_solver_net(s);
  set_inputs(net);
  int la = ns_net_find_layer(net, "ip_a"), lb = ns_net_find_layer(net, "ip_b");
  float w0[9], b0[3], gw[9], gb[3];
  memcpy(w0, ns_net_param(net, la, 0).data, sizeof w0);
  memcpy(b0, ns_net_param(net, la, 1).data, sizeof b0);
  ns_net_clear_param_diffs(net);
  assert_int_equal(ns_net_forward_loss(f->ctx, net, NULL), NS_OK);
  assert_int_equal(ns_net_backward(f->ctx, net), NS_OK);
  ns_learnable l;
  assert_int_equal(ns_net_learnable(net, 0, &l), NS_OK);
  memcpy(gw, l.diff, sizeof gw);
  assert_int_equal(ns_net_learnable(net, 1, &l), NS_OK);
  memcpy(gb, l.diff, sizeof gb);
  assert_int_equal(ns_solver_apply_update(f->ctx, s), NS_OK);
  /* SGD without momentum or decay: data -= lr * lr_mult * diff, once */
  const float *wa = ns_net_param(net, la, 0).data, *wb = ns_net_param(net, lb, 0).data;
  for (int i = 0; i < 9; i++) {
    assert_float_equal(wa[i], w0[i] - 0.1f * gw[i], 1e-6);
    assert_float_equal(wb[i], wa[i], 0);
  }
  const float *ba = ns_net_param(net, la, 1).data;
  for (int i = 0; i < 3; i++) assert_float_equal(ba[i], b0[i] - 0.2f * gb[i], 1e-6);
  ns_solver_destroy(s);
}

/* Saved under both layers, as Caffe; an unshared net reads both back. */
static void test_save_both_layers(void **state) {
  fixture *f = *state;
  ns_net *net = load(f, shared_net, NS_PHASE_TEST);
  char model[1024];
  tu_path(model, sizeof model, f->dir, "w.caffemodel");
  assert_int_equal(ns_net_save_weights(f->ctx, net, model), NS_OK);
  float w[9];
  memcpy(w, ns_net_param(net, ns_net_find_layer(net, "ip_a"), 0).data, sizeof w);
  ns_net_destroy(net);
  ns_net *plain = load(f, "name: 'plain'\n" LAYERS("3", ""), NS_PHASE_TEST);
  assert_int_equal(ns_net_load_weights(f->ctx, plain, model), NS_OK);
  for (int k = 0; k < 2; k++) {
    const float *got = ns_net_param(plain, ns_net_find_layer(plain, k ? "ip_b" : "ip_a"), 0).data;
    for (int i = 0; i < 9; i++) assert_float_equal(got[i], w[i], 0);
  }
  ns_net_destroy(plain);
}

static void expect_error(fixture *f, const char *text, const char *const *needles) {
  ns_net *net = NULL;
  assert_int_not_equal(ns_net_load(f->ctx, write_net(f, "bad.prototxt", text), NULL, &net), NS_OK);
  assert_null(net);
  const char *msg = ns_ctx_error(f->ctx);
  for (; *needles; needles++)
    if (!strstr(msg, *needles)) fail_msg("'%s' lacks '%s'", msg, *needles);
}

static void test_shape_mismatch_names_both(void **state) {
  const char *const needles[] = {"ip_a", "ip_b", "'w'", "shape mismatch", "(3, 3)", "(2, 3)", NULL};
  expect_error(*state, "name: 'bad'\n" LAYERS("2", ""), needles);
}

static void test_permissive_count_mismatch(void **state) {
  /* PERMISSIVE checks counts only: 2x3 against 3x3 still fails */
  const char *text =
      "name: 'bad'\n"
      "layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 2 dim: 3 } } }\n"
      "layer { name: 'ip_a' type: 'InnerProduct' bottom: 'x' top: 'a' param { name: 'w' }\n"
      "  inner_product_param { num_output: 3 } }\n"
      "layer { name: 'ip_b' type: 'InnerProduct' bottom: 'a' top: 'c'\n"
      "  param { name: 'w' share_mode: PERMISSIVE } inner_product_param { num_output: 2 } }\n";
  const char *const needles[] = {"ip_a", "ip_b", "count mismatch", NULL};
  expect_error(*state, text, needles);
}

static void test_lr_mult_mismatch(void **state) {
  const char *const needles[] = {"ip_b", "ip_a", "'b'", "lr_mult", NULL};
  expect_error(*state, "name: 'bad'\n" LAYERS("3", "param { name: 'b' lr_mult: 3 }"), needles);
}

/* The owner leaves decay_mult unset: the sharer's counts (Caffe). */
static void test_sharer_sets_mult(void **state) {
  fixture *f = *state;
  ns_net *net =
      load(f, "name: 's'\n" LAYERS("3", "param { name: 'b' decay_mult: 0.5 }"), NS_PHASE_TRAIN);
  ns_learnable l;
  assert_int_equal(ns_net_learnable(net, 1, &l), NS_OK);
  assert_float_equal(l.lr_mult, 2.0f, 0);
  assert_float_equal(l.decay_mult, 0.5f, 0);
  ns_net_destroy(net);
}

/* ---- Caffe's siamese example, its Data layers replaced by MemoryData ---- */

#define PAIRS 32
#define SIDE 28

/* Two kinds of 28x28 image, a bright square at the top left or at the
 * bottom right, with noise; a pair is similar (sim 1) when both halves
 * are of one kind.  A fixed LCG, no library generator. */
static void make_pairs(float *data, float *sim) {
  uint32_t r = 777;
  for (int p = 0; p < PAIRS; p++) {
    int kind[2] = {p % 2, (p / 2) % 2};
    sim[p] = kind[0] == kind[1];
    for (int h = 0; h < 2; h++)
      for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
          r = r * 1664525u + 1013904223u;
          int lit = kind[h] ? (y >= 16 && x >= 16) : (y < 12 && x < 12);
          data[((p * 2 + h) * SIDE + y) * SIDE + x] =
              (lit ? 0.8f : 0.1f) + 0.2f * (float)(r >> 8) / 16777216.0f;
        }
  }
}

typedef struct losses {
  int n;
  float v[64];
} losses;

static void on_event(void *user, const ns_solver_event *ev) {
  losses *l = user;
  if (ev->kind == NS_SOLVER_DISPLAY && l->n < 64) l->v[l->n++] = ev->loss;
}

/* The example's text from its Slice layer on (every shared param of it). */
static char *siamese_body(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  static char text[32768];
  size_t n = fread(text, 1, sizeof text - 1, fp);
  fclose(fp);
  text[n] = 0;
  char *slice = strstr(text, "\"slice_pair\"");
  assert_non_null(slice);
  while (slice > text && strncmp(slice, "layer", 5) != 0) slice--;
  return slice;
}

static void test_siamese_trains(void **state) {
  fixture *f = *state;
  const char *shared = tu_shared_dir();
  if (!shared) skip();
  char src[1024];
  tu_path(src, sizeof src, shared,
          "data/prototxt/current/siamese__mnist_siamese_train_test.prototxt");
  const char *body = siamese_body(src);
  if (!body) skip();
  static char net[40000], solver[2048];
  snprintf(net, sizeof net,
           "name: 'siamese'\n"
           "layer { name: 'pair_data' type: 'MemoryData' top: 'pair_data' top: 'sim'\n"
           "  memory_data_param { batch_size: 16 channels: 2 height: %d width: %d } }\n%s",
           SIDE, SIDE, body);
  char net_path[1024], solver_path[1024];
  tu_path(net_path, sizeof net_path, f->dir, "siamese.prototxt");
  assert_int_equal(tu_write_file(net_path, net, strlen(net)), 0);
  /* the example's solver settings, with a display every iteration */
  snprintf(solver, sizeof solver,
           "net: '%s'\nbase_lr: 0.01 momentum: 0.9 weight_decay: 0 lr_policy: 'inv'\n"
           "gamma: 0.0001 power: 0.75 display: 1 max_iter: 60 random_seed: 1\n"
           "snapshot_after_train: false\n",
           net_path);
  tu_path(solver_path, sizeof solver_path, f->dir, "solver.prototxt");
  assert_int_equal(tu_write_file(solver_path, solver, strlen(solver)), 0);
  losses seen = {0};
  ns_solver_opts o;
  ns_solver_opts_init(&o);
  o.on_event = on_event;
  o.user = &seen;
  ns_solver *s = NULL;
  if (ns_solver_create(f->ctx, solver_path, &o, &s) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  ns_net *tn = ns_solver_net(s);
  /* 10 shared blobs (5 layers a branch, weights and biases): 20 params, listed once */
  assert_int_equal(ns_net_learnable_count(tn), 10);
  static float data[PAIRS * 2 * SIDE * SIDE];
  float sim[PAIRS];
  make_pairs(data, sim);
  assert_int_equal(ns_net_set_input_arrays(f->ctx, tn, "pair_data", data, sim, PAIRS), NS_OK);
  if (ns_solver_step(f->ctx, s, 60) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  assert_int_equal(seen.n, 60);
  double first = 0, last = 0;
  for (int i = 0; i < 10; i++) first += seen.v[i] / 10.0, last += seen.v[50 + i] / 10.0;
  print_message(
      "siamese contrastive loss: iteration 1 %.4f; mean of the first 10 %.4f, of the last 10 "
      "%.4f\n",
      seen.v[0], first, last);
  assert_true(last < 0.5 * first && last < 0.05 * seen.v[0]);
  int c1 = ns_net_find_layer(tn, "conv1"), c1p = ns_net_find_layer(tn, "conv1_p");
  assert_ptr_equal(ns_net_param(tn, c1, 0).data, ns_net_param(tn, c1p, 0).data);
  ns_solver_destroy(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_forward_one_blob, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_gradient_summed, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_solver_updates_once, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_save_both_layers, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_shape_mismatch_names_both, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_permissive_count_mismatch, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_lr_mult_mismatch, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_sharer_sets_mult, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_siamese_trains, tu_fixture_setup, tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
