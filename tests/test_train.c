/* Training end to end on a tiny synthetic two-class set (.npy, NpyData):
 * `netsurg train` makes the loss drop and the test accuracy high; Ctrl-C
 * snapshots and exits 130; a resumed run equals the uninterrupted one bit
 * for bit (one thread, full-batch data so that the data order does not
 * depend on where the run started); fine-tuning from a caffemodel leaves
 * the lr_mult 0 layers untouched. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

static char cli[1024];

typedef tu_fixture fixture;

static int setup(void **state) {
  const char *build = getenv("NS_BUILD");
  snprintf(cli, sizeof cli, "%s/netsurg", build && *build ? build : "build");
  return tu_fixture_setup(state);
}


static const char *path_in(fixture *f, const char *name) {
  static char buf[8][1024];
  static int k;
  k = (k + 1) % 8;
  return tu_path(buf[k], sizeof buf[k], f->dir, name);
}

#define N 64
#define D 4

/* Two Gaussian-ish clouds (a fixed LCG, no library RNG): class i % 2 around
 * +-(1, 1, -1, 0.5). */
static void write_dataset(fixture *f) {
  float x[N * D], y[N];
  uint32_t r = 12345;
  for (int i = 0; i < N; i++) {
    float sgn = i % 2 ? -1.0f : 1.0f;
    const float mean[D] = {1, 1, -1, 0.5f};
    for (int k = 0; k < D; k++) {
      r = r * 1664525u + 1013904223u;
      float noise = ((float)(r >> 8) / 16777216.0f - 0.5f) * 1.2f;
      x[i * D + k] = sgn * mean[k] + noise;
    }
    y[i] = (float)(i % 2);
  }
  int64_t xs[2] = {N, D}, ys[1] = {N};
  assert_int_equal(ns_npy_save_f32(f->ctx, path_in(f, "x.npy"), 2, xs, x), NS_OK);
  assert_int_equal(ns_npy_save_f32(f->ctx, path_in(f, "y.npy"), 1, ys, y), NS_OK);
}

/* A train/test net and a solver; settings are added to the solver. */
static const char *write_solver(fixture *f, int batch, int shuffle, const char *ip1_params,
                                const char *settings) {
  char net[4096], solver[4096];
  snprintf(
      net, sizeof net,
      "name: 'tiny'\n"
      "layer { name: 'd' type: 'NpyData' top: 'data' top: 'label'\n"
      "  array_data_param { source: '%s' label_source: '%s' batch_size: %d shuffle: %s } }\n"
      "layer { name: 'ip1' type: 'InnerProduct' bottom: 'data' top: 'h' %s\n"
      "  inner_product_param { num_output: 8 weight_filler { type: 'xavier' } } }\n"
      "layer { name: 'relu' type: 'ReLU' bottom: 'h' top: 'h' }\n"
      "layer { name: 'ip2' type: 'InnerProduct' bottom: 'h' top: 'out'\n"
      "  inner_product_param { num_output: 2 weight_filler { type: 'xavier' } } }\n"
      "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'out' bottom: 'label' top: 'loss' }\n"
      "layer { name: 'acc' type: 'Accuracy' bottom: 'out' bottom: 'label' top: 'acc'\n"
      "  include { phase: TEST } }\n",
      path_in(f, "x.npy"), path_in(f, "y.npy"), batch, shuffle ? "true" : "false", ip1_params);
  assert_int_equal(tu_write_file(path_in(f, "net.prototxt"), net, strlen(net)), 0);
  snprintf(solver, sizeof solver,
           "net: '%s'\nbase_lr: 0.1\nmomentum: 0.9\nlr_policy: 'fixed'\nweight_decay: 0.001\n"
           "snapshot_prefix: '%s'\nrandom_seed: 1\n%s\n",
           path_in(f, "net.prototxt"), path_in(f, "snap"), settings);
  const char *p = path_in(f, "solver.prototxt");
  assert_int_equal(tu_write_file(p, solver, strlen(solver)), 0);
  return p;
}

static char *read_text(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  fclose(fp);
  buf[n] = 0;
  return buf;
}

static void test_cli_loss_drops(void **state) {
  fixture *f = *state;
  write_dataset(f);
  const char *solver =
      write_solver(f, 16, 1, "", "display: 10\nmax_iter: 100\ntest_iter: 4\ntest_interval: 50");
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s train %s --threads 1 > %s 2>&1", cli, solver,
           path_in(f, "log.txt"));
  int rc = tu_run(cmd);
  char *log = read_text(path_in(f, "log.txt"));
  assert_non_null(log);
  if (rc != 0) fail_msg("exit %d:\n%s", rc, log);
  float first = -1, last = -1, acc = -1;
  for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
    int it, max;
    float loss, a;
    if (sscanf(line, "iter %d/%d loss %f", &it, &max, &loss) == 3) {
      if (first < 0) first = loss;
      last = loss;
    }
    char *p = strstr(line, "acc = ");
    if (strncmp(line, "test net 0 at iter 100", 22) == 0 && p && sscanf(p, "acc = %f", &a) == 1)
      acc = a;
  }
  if (!(first > 0.3f && last < 0.2f * first))
    fail_msg("loss %.4g -> %.4g: expected a drop of more than 80%%", first, last);
  assert_true(acc >= 0.95f);
  FILE *fp = fopen(path_in(f, "snap_iter_100.caffemodel"), "rb");
  assert_non_null(fp);
  fclose(fp);
  /* `netsurg test` on the snapshot: 4 batches of 16 = the whole set, in
   * any order, so the same accuracy as the solver's last test */
  snprintf(cmd, sizeof cmd, "%s test %s %s --iterations 4 --threads 1 > %s 2>&1", cli,
           path_in(f, "net.prototxt"), path_in(f, "snap_iter_100.caffemodel"),
           path_in(f, "test.txt"));
  rc = tu_run(cmd);
  log = read_text(path_in(f, "test.txt"));
  if (rc != 0) fail_msg("netsurg test: exit %d:\n%s", rc, log);
  char *p = strstr(log, "\nacc = ");
  assert_non_null(p);
  assert_float_equal(atof(p + 7), acc, 1e-5);
  fp = fopen(path_in(f, "snap_iter_100.solverstate"), "rb");
  assert_non_null(fp);
  fclose(fp);
}

static void test_cli_sigint_snapshots(void **state) {
  fixture *f = *state;
  write_dataset(f);
  const char *solver = write_solver(f, 16, 1, "", "display: 0\nmax_iter: 100000000");
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "%s train %s --threads 1 > %s 2>&1 & p=$!; sleep 1; kill -INT $p; wait $p; "
           "echo $? > %s",
           cli, solver, path_in(f, "log.txt"), path_in(f, "rc.txt"));
  assert_int_equal(tu_run(cmd), 0);
  char *rc = read_text(path_in(f, "rc.txt"));
  assert_non_null(rc);
  assert_int_equal(atoi(rc), 130);
  char *log = read_text(path_in(f, "log.txt"));
  char *snap = strstr(log, "snapshot at iter ");
  if (!snap) fail_msg("no snapshot line:\n%s", log);
  int iter = atoi(snap + strlen("snapshot at iter "));
  assert_true(iter > 0);
  char name[64];
  snprintf(name, sizeof name, "snap_iter_%d.solverstate", iter);
  FILE *fp = fopen(path_in(f, name), "rb");
  assert_non_null(fp);
  fclose(fp);
  assert_non_null(strstr(log, "stopped at iter"));
}

static void params_of(ns_net *net, float *out, int *n) {
  *n = 0;
  for (int i = 0; i < ns_net_learnable_count(net); i++) {
    ns_learnable L;
    assert_int_equal(ns_net_learnable(net, i, &L), NS_OK);
    memcpy(out + *n, L.data.data, sizeof(float) * (size_t)L.data.count);
    *n += (int)L.data.count;
  }
}

/* How far training moved the params: the root mean square of the change
 * over that of the start.  Runs that must agree (resumed and whole,
 * iter_size and full batch) agree trivially when the update does nothing;
 * this tells them apart. */
static double moved_by(const float *before, const float *after, int n) {
  double change = 0, start = 0;
  for (int i = 0; i < n; i++) {
    change += ((double)after[i] - before[i]) * ((double)after[i] - before[i]);
    start += (double)before[i] * before[i];
  }
  assert_true(start > 0);
  return sqrt(change / start);
}

static void test_resume_equals_uninterrupted(void **state) {
  fixture *f = *state;
  write_dataset(f);
  const char *solver = write_solver(f, N, 0, "", "max_iter: 10\nsnapshot: 5\ntype: 'Nesterov'");
  ns_solver *a = NULL, *b = NULL;
  if (ns_solver_create(f->ctx, solver, NULL, &a) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  static float p0[4096], pa[4096], pb[4096];
  int n0, na, nb;
  params_of(ns_solver_net(a), p0, &n0);
  assert_int_equal(ns_solver_step(f->ctx, a, 10), NS_OK);
  params_of(ns_solver_net(a), pa, &na);
  ns_solver_opts o;
  ns_solver_opts_init(&o);
  o.seed = 77; /* other initial weights: everything must come from the state */
  assert_int_equal(ns_solver_create(f->ctx, solver, &o, &b), NS_OK);
  if (ns_solver_restore(f->ctx, b, path_in(f, "snap_iter_5.solverstate")) != NS_OK)
    fail_msg("%s", ns_ctx_error(f->ctx));
  assert_int_equal(ns_solver_step(f->ctx, b, 5), NS_OK);
  assert_int_equal(ns_solver_iter(b), 10);
  params_of(ns_solver_net(b), pb, &nb);
  assert_int_equal(na, nb);
  assert_true(na > 0);
  assert_memory_equal(pa, pb, sizeof(float) * (size_t)na);
  /* and training moved them at all (measured 0.6) */
  assert_int_equal(n0, na);
  double moved = moved_by(p0, pa, na);
  print_message("10 iterations moved the params by %.3g of their size\n", moved);
  assert_true(moved > 0.05);
  ns_solver_destroy(a);
  ns_solver_destroy(b);
}

/* iter_size 2 on half batches = one full batch: the loss averages over
 * the batch and the solver scales accumulated diffs by 1/iter_size. */
static void test_iter_size_equals_full_batch(void **state) {
  fixture *f = *state;
  write_dataset(f);
  static float p0[4096], pa[4096], pb[4096];
  int n0, na, nb;
  ns_solver *s = NULL;
  const char *solver = write_solver(f, N / 2, 0, "", "max_iter: 3\niter_size: 2");
  assert_int_equal(ns_solver_create(f->ctx, solver, NULL, &s), NS_OK);
  params_of(ns_solver_net(s), p0, &n0);
  assert_int_equal(ns_solver_step(f->ctx, s, 3), NS_OK);
  params_of(ns_solver_net(s), pa, &na);
  ns_solver_destroy(s);
  solver = write_solver(f, N, 0, "", "max_iter: 3");
  assert_int_equal(ns_solver_create(f->ctx, solver, NULL, &s), NS_OK);
  assert_int_equal(ns_solver_step(f->ctx, s, 3), NS_OK);
  params_of(ns_solver_net(s), pb, &nb);
  ns_solver_destroy(s);
  assert_int_equal(na, nb);
  for (int i = 0; i < na; i++)
    if (fabsf(pa[i] - pb[i]) > 1e-5f + 1e-4f * fabsf(pb[i]))
      fail_msg("param value %d: %.8g with iter_size 2, %.8g with the full batch", i, pa[i], pb[i]);
  assert_int_equal(n0, na);
  double moved = moved_by(p0, pa, na);
  print_message("3 iterations moved the params by %.3g of their size\n", moved);
  assert_true(moved > 0.01); /* measured 0.12 */
}

/* A loss map for every location (the notebook's closing remark): NpyData
 * gives (N, H, W) label maps, a 1x1 convolution classifies each pixel by
 * which of its two channels is larger, SoftmaxWithLoss averages over all
 * locations; the loss must fall and the per-pixel accuracy rise. */
static void test_loss_map_per_location(void **state) {
  fixture *f = *state;
  enum { M = 32, H = 3, W = 4 };
  static float x[M * 2 * H * W], y[M * H * W];
  uint32_t r = 777;
  for (int i = 0; i < M * 2 * H * W; i++) {
    r = r * 1664525u + 1013904223u;
    x[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
  }
  for (int n = 0; n < M; n++)
    for (int k = 0; k < H * W; k++)
      y[n * H * W + k] = x[(n * 2) * H * W + k] > x[(n * 2 + 1) * H * W + k] ? 1.0f : 0.0f;
  int64_t xs[4] = {M, 2, H, W}, ys[3] = {M, H, W};
  assert_int_equal(ns_npy_save_f32(f->ctx, path_in(f, "mx.npy"), 4, xs, x), NS_OK);
  assert_int_equal(ns_npy_save_f32(f->ctx, path_in(f, "my.npy"), 3, ys, y), NS_OK);
  char net[2048], solver[2048];
  snprintf(net, sizeof net,
           "layer { name: 'd' type: 'NpyData' top: 'data' top: 'label'\n"
           "  array_data_param { source: '%s' label_source: '%s' batch_size: 8 shuffle: true } }\n"
           "layer { name: 'c' type: 'Convolution' bottom: 'data' top: 'score'\n"
           "  convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: 'xavier' } } "
           "}\n"
           "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'score' bottom: 'label' top: "
           "'loss' }\n"
           "layer { name: 'acc' type: 'Accuracy' bottom: 'score' bottom: 'label' top: 'acc'\n"
           "  include { phase: TEST } }\n",
           path_in(f, "mx.npy"), path_in(f, "my.npy"));
  assert_int_equal(tu_write_file(path_in(f, "map.prototxt"), net, strlen(net)), 0);
  snprintf(solver, sizeof solver,
           "net: '%s'\nbase_lr: 0.5\nmomentum: 0.9\nlr_policy: 'fixed'\nmax_iter: 200\n"
           "test_iter: 4\ntest_interval: 200\ntest_initialization: true\n"
           "snapshot_after_train: false\nrandom_seed: 2\n",
           path_in(f, "map.prototxt"));
  assert_int_equal(tu_write_file(path_in(f, "ms.prototxt"), solver, strlen(solver)), 0);
  ns_solver *s = NULL;
  if (ns_solver_create(f->ctx, path_in(f, "ms.prototxt"), NULL, &s) != NS_OK)
    fail_msg("%s", ns_ctx_error(f->ctx));
  ns_net *tn = ns_solver_net(s);
  ns_tensor lab = ns_net_blob(tn, ns_net_find_blob(tn, "label"));
  assert_int_equal(lab.num_axes, 3);
  assert_int_equal(lab.shape[0], 8);
  assert_int_equal(lab.shape[2], W);
  float before, after;
  assert_int_equal(ns_net_forward_loss(f->ctx, tn, &before), NS_OK);
  assert_int_equal(ns_solver_step(f->ctx, s, 200), NS_OK);
  assert_int_equal(ns_net_forward_loss(f->ctx, tn, &after), NS_OK);
  if (!(after < 0.5f * before)) fail_msg("per-location loss %.4g -> %.4g", before, after);
  ns_net *test = ns_solver_test_net(s, 0);
  assert_int_equal(ns_solver_test_all(f->ctx, s), NS_OK);
  ns_tensor acc = ns_net_blob(test, ns_net_find_blob(test, "acc"));
  assert_true(acc.data[0] >= 0.9f);
  ns_solver_destroy(s);
}

static void test_finetune_frozen_layer(void **state) {
  fixture *f = *state;
  write_dataset(f);
  /* weights to start from: 20 iterations of the unfrozen net */
  const char *solver = write_solver(f, 16, 1, "", "max_iter: 20");
  ns_solver *s = NULL;
  assert_int_equal(ns_solver_create(f->ctx, solver, NULL, &s), NS_OK);
  assert_int_equal(ns_solver_solve(f->ctx, s), NS_OK);
  ns_solver_destroy(s);
  char weights[1024];
  snprintf(weights, sizeof weights, "%s", path_in(f, "snap_iter_20.caffemodel"));
  solver = write_solver(f, 16, 1, "param { lr_mult: 0 } param { lr_mult: 0 }", "max_iter: 30");
  ns_solver_opts o;
  ns_solver_opts_init(&o);
  o.weights = weights;
  o.seed = 3;
  if (ns_solver_create(f->ctx, solver, &o, &s) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  ns_net *net = ns_solver_net(s);
  int ip1 = ns_net_find_layer(net, "ip1"), ip2 = ns_net_find_layer(net, "ip2");
  static float w1[32], b1[8], w2[16];
  memcpy(w1, ns_net_param(net, ip1, 0).data, sizeof w1);
  memcpy(b1, ns_net_param(net, ip1, 1).data, sizeof b1);
  memcpy(w2, ns_net_param(net, ip2, 0).data, sizeof w2);
  assert_int_equal(ns_solver_step(f->ctx, s, 30), NS_OK);
  assert_memory_equal(w1, ns_net_param(net, ip1, 0).data, sizeof w1);
  assert_memory_equal(b1, ns_net_param(net, ip1, 1).data, sizeof b1);
  assert_memory_not_equal(w2, ns_net_param(net, ip2, 0).data, sizeof w2);
  ns_solver_destroy(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_cli_loss_drops, setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_cli_sigint_snapshots, setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_resume_equals_uninterrupted, setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_iter_size_equals_full_batch, setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_loss_map_per_location, setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_finetune_frozen_layer, setup, tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
