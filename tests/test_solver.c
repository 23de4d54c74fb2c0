/* The solver against hand computations (in double, from the formulas of
 * Caffe's sgd_solver.cpp and its per-rule files): every update rule with
 * weight decay (L2/L1, decay_mult), lr_mult, clip_gradients and iter_size
 * on synthetic params and diffs (no backward needed); every lr policy;
 * snapshot + restore resuming bit-exactly; solver file errors. */
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

typedef tu_fixture fixture;

/* An Input and an InnerProduct (6 weights, lr_mult 1 decay_mult 1; 2
 * biases, lr_mult 2 decay_mult 0): the learnables of the tests. */
static const char *net_param =
    "net_param {\n"
    "  name: 't'\n"
    "  layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 2 dim: 3 } } }\n"
    "  layer { name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'y'\n"
    "    param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }\n"
    "    inner_product_param { num_output: 2\n"
    "      weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'constant' value: 0.3 "
    "} } }\n"
    "}\n";

static ns_solver *make_solver(fixture *f, const char *settings) {
  char path[1024], text[8192], prefix[1024];
  tu_path(prefix, sizeof prefix, f->dir, "snap");
  snprintf(text, sizeof text, "%s%s\nsnapshot_prefix: '%s'\nrandom_seed: 5\n", net_param, settings,
           prefix);
  tu_path(path, sizeof path, f->dir, "solver.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_solver *s = NULL;
  if (ns_solver_create(f->ctx, path, NULL, &s) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  return s;
}

/* ---- the reference, in double ---- */

enum { SGD, NESTEROV, ADAGRAD, RMSPROP, ADADELTA, ADAM };

typedef struct ref {
  int rule;
  double base_lr, momentum, momentum2, delta, rms_decay, wd, clip;
  int l1, iter_size;
  double w[8], h[8], v[8]; /* params: 6 weights then 2 biases */
} ref;

static const double lr_mult[8] = {1, 1, 1, 1, 1, 1, 2, 2};
static const double decay_mult[8] = {1, 1, 1, 1, 1, 1, 0, 0};

static float synth_diff(int k, int t) { return 0.1f * sinf(1.3f * k + 0.7f * t) + 0.02f; }

static void ref_step(ref *r, int t, double rate) {
  double g[8], sumsq = 0;
  for (int k = 0; k < 8; k++) {
    g[k] = synth_diff(k, t);
    sumsq += g[k] * g[k];
  }
  if (r->clip >= 0 && sqrt(sumsq) > r->clip)
    for (int k = 0; k < 8; k++) g[k] *= r->clip / sqrt(sumsq);
  for (int k = 0; k < 8; k++) {
    g[k] /= r->iter_size;
    double decay = r->wd * decay_mult[k];
    double sgn = (r->w[k] > 0) - (r->w[k] < 0);
    g[k] += decay * (r->l1 ? sgn : r->w[k]);
    double lr = rate * lr_mult[k], u = 0;
    switch (r->rule) {
      case SGD:
        r->h[k] = r->momentum * r->h[k] + lr * g[k];
        u = r->h[k];
        break;
      case NESTEROV: {
        double old = r->h[k];
        r->h[k] = r->momentum * r->h[k] + lr * g[k];
        u = (1 + r->momentum) * r->h[k] - r->momentum * old;
        break;
      }
      case ADAGRAD:
        r->h[k] += g[k] * g[k];
        u = lr * g[k] / (sqrt(r->h[k]) + r->delta);
        break;
      case RMSPROP:
        r->h[k] = r->rms_decay * r->h[k] + (1 - r->rms_decay) * g[k] * g[k];
        u = lr * g[k] / (sqrt(r->h[k]) + r->delta);
        break;
      case ADADELTA: {
        double m = r->momentum;
        r->h[k] = m * r->h[k] + (1 - m) * g[k] * g[k];
        double step = g[k] * sqrt((r->v[k] + r->delta) / (r->h[k] + r->delta));
        r->v[k] = m * r->v[k] + (1 - m) * step * step;
        u = lr * step;
        break;
      }
      case ADAM: {
        double b1 = r->momentum, b2 = r->momentum2;
        r->h[k] = b1 * r->h[k] + (1 - b1) * g[k];
        r->v[k] = b2 * r->v[k] + (1 - b2) * g[k] * g[k];
        double corr = sqrt(1 - pow(b2, t + 1)) / (1 - pow(b1, t + 1));
        u = lr * corr * r->h[k] / (sqrt(r->v[k]) + r->delta);
        break;
      }
    }
    r->w[k] -= u;
  }
}

static void set_diffs(ns_solver *s, int t) {
  ns_net *net = ns_solver_net(s);
  assert_int_equal(ns_net_learnable_count(net), 2);
  int k = 0;
  for (int i = 0; i < 2; i++) {
    ns_learnable L;
    assert_int_equal(ns_net_learnable(net, i, &L), NS_OK);
    for (int64_t j = 0; j < L.data.count; j++) L.diff[j] = synth_diff(k++, t);
  }
}

static void get_params(ns_solver *s, double *w) {
  ns_net *net = ns_solver_net(s);
  int k = 0;
  for (int i = 0; i < 2; i++) {
    ns_learnable L;
    assert_int_equal(ns_net_learnable(net, i, &L), NS_OK);
    for (int64_t j = 0; j < L.data.count; j++) w[k++] = L.data.data[j];
  }
}

/* Runs `steps` updates with the solver and the reference side by side. */
static void check_rule(fixture *f, const char *settings, ref *r, int steps) {
  ns_solver *s = make_solver(f, settings);
  get_params(s, r->w);
  for (int t = 0; t < steps; t++) {
    double rate = r->base_lr; /* fixed policy in these tests */
    set_diffs(s, t);
    assert_int_equal(ns_solver_apply_update(f->ctx, s), NS_OK);
    ref_step(r, t, rate);
    double got[8];
    get_params(s, got);
    for (int k = 0; k < 8; k++)
      if (fabs(got[k] - r->w[k]) > 1e-6 + 1e-5 * fabs(r->w[k]))
        fail_msg("%s\nstep %d param %d: got %.9g, expected %.9g", settings, t, k, got[k], r->w[k]);
  }
  assert_int_equal(ns_solver_iter(s), steps);
  ns_solver_destroy(s);
}

static ref base_ref(int rule) {
  ref r;
  memset(&r, 0, sizeof r);
  r.rule = rule;
  r.base_lr = 0.1;
  r.clip = -1;
  r.iter_size = 1;
  r.delta = 1e-8;
  r.momentum2 = 0.999;
  r.rms_decay = 0.99;
  return r;
}

static void test_sgd_momentum_l2(void **state) {
  ref r = base_ref(SGD);
  r.momentum = 0.9, r.wd = 0.01;
  check_rule(*state, "type: 'SGD' base_lr: 0.1 lr_policy: 'fixed' momentum: 0.9 weight_decay: 0.01",
             &r, 5);
}

static void test_sgd_l1_clip_iter_size(void **state) {
  ref r = base_ref(SGD);
  r.momentum = 0.5, r.wd = 0.03, r.l1 = 1, r.clip = 0.05, r.iter_size = 4;
  check_rule(*state,
             "solver_type: SGD base_lr: 0.1 lr_policy: 'fixed' momentum: 0.5 weight_decay: 0.03\n"
             "regularization_type: 'L1' clip_gradients: 0.05 iter_size: 4",
             &r, 5);
}

static void test_nesterov(void **state) {
  ref r = base_ref(NESTEROV);
  r.momentum = 0.95, r.wd = 0.005;
  check_rule(*state,
             "type: 'Nesterov' base_lr: 0.1 lr_policy: 'fixed' momentum: 0.95 "
             "weight_decay: 0.005",
             &r, 5);
}

static void test_adagrad(void **state) {
  ref r = base_ref(ADAGRAD);
  r.delta = 1e-3, r.wd = 0.01;
  check_rule(*state,
             "type: 'AdaGrad' base_lr: 0.1 lr_policy: 'fixed' delta: 0.001 weight_decay: 0.01", &r,
             5);
}

static void test_rmsprop(void **state) {
  ref r = base_ref(RMSPROP);
  r.rms_decay = 0.9, r.delta = 1e-4;
  check_rule(*state, "type: 'RMSProp' base_lr: 0.1 lr_policy: 'fixed' rms_decay: 0.9 delta: 0.0001",
             &r, 5);
}

static void test_adadelta(void **state) {
  ref r = base_ref(ADADELTA);
  r.momentum = 0.95, r.delta = 1e-6, r.wd = 0.002, r.base_lr = 1;
  check_rule(*state,
             "type: 'AdaDelta' base_lr: 1 lr_policy: 'fixed' momentum: 0.95 delta: 1e-6 "
             "weight_decay: 0.002",
             &r, 6);
}

static void test_adam(void **state) {
  ref r = base_ref(ADAM);
  r.momentum = 0.9, r.momentum2 = 0.99, r.wd = 0.001;
  check_rule(*state,
             "solver_type: ADAM base_lr: 0.1 lr_policy: 'fixed' momentum: 0.9 momentum2: 0.99 "
             "weight_decay: 0.001",
             &r, 6);
}

static void test_adagrad_rejects_momentum(void **state) {
  fixture *f = *state;
  char path[1024], text[4096];
  snprintf(text, sizeof text, "%stype: 'AdaGrad' base_lr: 0.1 lr_policy: 'fixed' momentum: 0.9",
           net_param);
  tu_path(path, sizeof path, f->dir, "bad.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_solver *s = NULL;
  assert_int_equal(ns_solver_create(f->ctx, path, NULL, &s), NS_ERR_INPUT);
  assert_null(s);
  snprintf(text, sizeof text, "%stype: 'LBFGS' base_lr: 0.1 lr_policy: 'fixed'", net_param);
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  assert_int_equal(ns_solver_create(f->ctx, path, NULL, &s), NS_ERR_UNSUPPORTED);
  snprintf(text, sizeof text, "%sbase_lr: 0.1 lr_policy: 'cosine'", net_param);
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  assert_int_equal(ns_solver_create(f->ctx, path, NULL, &s), NS_ERR_UNSUPPORTED);
  assert_non_null(strstr(ns_ctx_error(f->ctx), "cosine"));
}

/* ---- learning rate policies ---- */

static void check_policy(fixture *f, const char *settings, double (*expect)(int), int iters) {
  ns_solver *s = make_solver(f, settings);
  for (int it = 0; it < iters; it++) {
    double e = expect(it);
    double got = ns_solver_learning_rate(s);
    if (fabs(got - e) > 1e-6 * fabs(e) + 1e-12)
      fail_msg("%s: iter %d: rate %.9g, expected %.9g", settings, it, got, e);
    set_diffs(s, it);
    assert_int_equal(ns_solver_apply_update(f->ctx, s), NS_OK);
  }
  ns_solver_destroy(s);
}

static double r_fixed(int it) { return 0.05; }
static double r_step(int it) { return 0.05 * pow(0.5, it / 3); }
static double r_exp(int it) { return 0.05 * pow(0.9, it); }
static double r_inv(int it) { return 0.05 * pow(1 + 0.1 * it, -0.75); }
static double r_multistep(int it) { return 0.05 * pow(0.1, (it >= 2) + (it >= 5) + (it >= 6)); }
static double r_poly(int it) { return 0.05 * pow(1 - it / 10.0, 2.0); }
static double r_sigmoid(int it) { return 0.05 / (1 + exp(-0.5 * (it - 4))); }

static void test_lr_policies(void **state) {
  fixture *f = *state;
  check_policy(f, "base_lr: 0.05 lr_policy: 'fixed'", r_fixed, 9);
  check_policy(f, "base_lr: 0.05 lr_policy: 'step' gamma: 0.5 stepsize: 3", r_step, 9);
  check_policy(f, "base_lr: 0.05 lr_policy: 'exp' gamma: 0.9", r_exp, 9);
  check_policy(f, "base_lr: 0.05 lr_policy: 'inv' gamma: 0.1 power: 0.75", r_inv, 9);
  check_policy(f,
               "base_lr: 0.05 lr_policy: 'multistep' gamma: 0.1 stepvalue: 2 stepvalue: 5 "
               "stepvalue: 6",
               r_multistep, 9);
  check_policy(f, "base_lr: 0.05 lr_policy: 'poly' power: 2 max_iter: 10", r_poly, 9);
  check_policy(f, "base_lr: 0.05 lr_policy: 'sigmoid' gamma: 0.5 stepsize: 4", r_sigmoid, 9);
}

/* ---- snapshot and restore ---- */

static void run_updates(fixture *f, ns_solver *s, int from, int to) {
  for (int t = from; t < to; t++) {
    set_diffs(s, t);
    assert_int_equal(ns_solver_apply_update(f->ctx, s), NS_OK);
  }
}

static void check_resume(fixture *f, const char *settings) {
  ns_solver *a = make_solver(f, settings);
  run_updates(f, a, 0, 4);
  assert_int_equal(ns_solver_snapshot(f->ctx, a), NS_OK);
  run_updates(f, a, 4, 9);
  double wa[8], wb[8];
  get_params(a, wa);
  ns_solver_destroy(a);

  /* Another solver with other initial weights (seed) resumes from iter 4. */
  char path[1024], state[1024];
  tu_path(path, sizeof path, f->dir, "solver.prototxt");
  tu_path(state, sizeof state, f->dir, "snap_iter_4.solverstate");
  ns_solver_opts o;
  ns_solver_opts_init(&o);
  o.seed = 99;
  ns_solver *b = NULL;
  assert_int_equal(ns_solver_create(f->ctx, path, &o, &b), NS_OK);
  if (ns_solver_restore(f->ctx, b, state) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  assert_int_equal(ns_solver_iter(b), 4);
  run_updates(f, b, 4, 9);
  get_params(b, wb);
  ns_solver_destroy(b);
  for (int k = 0; k < 8; k++)
    if (wa[k] != wb[k]) fail_msg("%s: param %d: %.9g resumed vs %.9g", settings, k, wb[k], wa[k]);
}

static void test_resume_bit_exact(void **state) {
  fixture *f = *state;
  check_resume(f,
               "type: 'SGD' base_lr: 0.1 lr_policy: 'multistep' gamma: 0.5 stepvalue: 2 "
               "stepvalue: 6 momentum: 0.9 weight_decay: 0.01");
  check_resume(f, "type: 'Adam' base_lr: 0.01 lr_policy: 'inv' gamma: 0.1 power: 0.5");
  check_resume(f, "type: 'RMSProp' base_lr: 0.01 lr_policy: 'fixed'");
  check_resume(f, "type: 'AdaDelta' base_lr: 1 lr_policy: 'fixed' momentum: 0.9");
}

static void test_restore_rejects_mismatch(void **state) {
  fixture *f = *state;
  ns_solver *a = make_solver(f, "type: 'Adam' base_lr: 0.01 lr_policy: 'fixed'");
  run_updates(f, a, 0, 2);
  assert_int_equal(ns_solver_snapshot(f->ctx, a), NS_OK);
  ns_solver_destroy(a);
  char st[1024], junk[1024];
  tu_path(st, sizeof st, f->dir, "snap_iter_2.solverstate");
  /* An SGD solver has half the history blobs of Adam. */
  ns_solver *b = make_solver(f, "type: 'SGD' base_lr: 0.01 lr_policy: 'fixed'");
  assert_int_equal(ns_solver_restore(f->ctx, b, st), NS_ERR_INPUT);
  assert_non_null(strstr(ns_ctx_error(f->ctx), "history"));
  tu_path(junk, sizeof junk, f->dir, "junk.solverstate");
  assert_int_equal(tu_write_file(junk, "\xff\xff\xff", 3), 0);
  assert_int_equal(ns_solver_restore(f->ctx, b, junk), NS_ERR_INPUT);
  ns_solver_destroy(b);
}

/* Caffe's UpgradeSnapshotPrefixProperty: no prefix = the solver file
 * without its extension; a folder = folder/<solver file stem>. */
static void test_snapshot_prefix_defaults(void **state) {
  fixture *f = *state;
  char path[1024], text[4096], sub[1024], want[1100];
  for (int folder = 0; folder < 2; folder++) {
    tu_path(sub, sizeof sub, f->dir, "snaps");
    if (folder) {
      char cmd[1200];
      snprintf(cmd, sizeof cmd, "mkdir -p '%s'", sub);
      assert_int_equal(tu_run(cmd), 0);
    }
    snprintf(text, sizeof text, "%sbase_lr: 0.1 lr_policy: 'fixed'\n%s%s%s", net_param,
             folder ? "snapshot_prefix: '" : "", folder ? sub : "", folder ? "/'\n" : "");
    tu_path(path, sizeof path, f->dir, "my_solver.prototxt");
    assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
    ns_solver *s = NULL;
    assert_int_equal(ns_solver_create(f->ctx, path, NULL, &s), NS_OK);
    run_updates(f, s, 0, 1);
    assert_int_equal(ns_solver_snapshot(f->ctx, s), NS_OK);
    ns_solver_destroy(s);
    snprintf(want, sizeof want, "%s/my_solver_iter_1.solverstate", folder ? sub : f->dir);
    FILE *fp = fopen(want, "rb");
    if (!fp) fail_msg("no %s", want);
    fclose(fp);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sgd_momentum_l2, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_sgd_l1_clip_iter_size, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_nesterov, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_adagrad, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_rmsprop, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_adadelta, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_adam, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_adagrad_rejects_momentum, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_lr_policies, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_resume_bit_exact, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_restore_rejects_mismatch, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_prefix_defaults, tu_fixture_setup, tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
