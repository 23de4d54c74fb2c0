/* Caffe's recurrent layers: LSTMUnit, LSTM and RNN (src/layers/lstm_unit.c,
 * lstm.c, rnn.c).  Forward is compared with a reference written here in
 * double precision, step by step from the formulas of BVLC's
 * lstm_unit_layer.cpp, lstm_layer.cpp and rnn_layer.cpp (the unrolled
 * net's InnerProduct, Scale by cont, Eltwise sum, LSTMUnit or TanH), not
 * with anything the layers compute; backward with central differences
 * (tests/support/grad_check.c) on odd small shapes: T = 3 steps, N = 2
 * streams, x of width 3, x_static of width 2, 4 hidden units, and cont
 * markers with a 0 in the middle of stream 1.  The PyTorch cross-check of
 * LSTM is tests/oracle/test_recurrent_torch.py. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/layer.h"
#include "netsurg.h"
#include "support/grad_check.h"
#include "support/layer_harness.h"
#include "support/testutil.h"

enum { T = 3, N = 2, D = 3, S = 2, H = 4 };

static ns_rng data_rng;

static float urand(float lo, float hi) { return ns_rng_uniform(&data_rng, lo, hi); }

static void assert_floats(const float *got, const double *want, int64_t n, double tol) {
  for (int64_t i = 0; i < n; i++)
    if (!(fabs((double)got[i] - want[i]) <= tol))
      fail_msg("element %lld: got %.7g, want %.7g", (long long)i, (double)got[i], want[i]);
}

static ns_blob *bottom(lh_harness *h, int n, const int64_t *shape, const float *data) {
  ns_blob *b = lh_add_bottom(h, n, shape, data);
  assert_non_null(b);
  if (!data)
    for (int64_t i = 0; i < b->count; i++) b->data[i] = urand(-1, 1);
  return b;
}

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* ---- the reference --------------------------------------------------------- */

/* One recurrent layer's inputs and params, as the test made them. */
typedef struct rec_case {
  const float *x, *cont, *xs, *h0, *c0; /* xs, h0, c0 may be NULL (zeros) */
  const float *w_x, *b_x, *w_s, *w_h;   /* w_s NULL without x_static */
  const float *w_o, *b_o;               /* RNN only */
} rec_case;

/* gates[G] of stream n at step t: W_x x_t + b_x + W_h (cont h_prev) + W_s x_static. */
static void ref_gates(const rec_case *c, int G, int t, int n, const double *h_prev, double *g) {
  for (int j = 0; j < G; j++) {
    double a = c->b_x[j];
    for (int d = 0; d < D; d++) a += (double)c->w_x[j * D + d] * c->x[(t * N + n) * D + d];
    for (int k = 0; k < H; k++) a += (double)c->w_h[j * H + k] * h_prev[k] * c->cont[t * N + n];
    for (int s = 0; c->w_s && s < S; s++) a += (double)c->w_s[j * S + s] * c->xs[n * S + s];
    g[j] = a;
  }
}

/* Caffe's LSTM: h (T, N, H) and the final h and c (N, H). */
static void ref_lstm(const rec_case *c, double *h, double *h_T, double *c_T) {
  for (int n = 0; n < N; n++) {
    double hp[H], cp[H], g[4 * H];
    for (int k = 0; k < H; k++) hp[k] = c->h0 ? c->h0[n * H + k] : 0;
    for (int k = 0; k < H; k++) cp[k] = c->c0 ? c->c0[n * H + k] : 0;
    for (int t = 0; t < T; t++) {
      ref_gates(c, 4 * H, t, n, hp, g);
      const double cont = c->cont[t * N + n];
      for (int k = 0; k < H; k++) {
        double i = sigm(g[k]), f = cont == 0 ? 0 : cont * sigm(g[H + k]);
        double o = sigm(g[2 * H + k]), gg = tanh(g[3 * H + k]);
        cp[k] = f * cp[k] + i * gg;
        hp[k] = o * tanh(cp[k]);
        h[(t * N + n) * H + k] = hp[k];
      }
    }
    for (int k = 0; k < H; k++) h_T[n * H + k] = hp[k], c_T[n * H + k] = cp[k];
  }
}

/* Caffe's RNN: o (T, N, H) and the final h (N, H). */
static void ref_rnn(const rec_case *c, double *o, double *h_T) {
  for (int n = 0; n < N; n++) {
    double hp[H], g[H];
    for (int k = 0; k < H; k++) hp[k] = c->h0 ? c->h0[n * H + k] : 0;
    for (int t = 0; t < T; t++) {
      ref_gates(c, H, t, n, hp, g);
      for (int k = 0; k < H; k++) hp[k] = tanh(g[k]);
      for (int j = 0; j < H; j++) {
        double a = c->b_o[j];
        for (int k = 0; k < H; k++) a += (double)c->w_o[j * H + k] * hp[k];
        o[(t * N + n) * H + j] = tanh(a);
      }
    }
    for (int k = 0; k < H; k++) h_T[n * H + k] = hp[k];
  }
}

/* ---- building the layers --------------------------------------------------- */

/* cont: stream 0 starts at t = 0 and runs on; stream 1 starts a new
 * sequence at t = 1 (the 0 in the middle).  With exposed states both
 * continue from h_0 at t = 0. */
static void fill_cont(float *cont, int exposed) {
  const float c[T][N] = {{0, 0}, {1, 0}, {1, 1}};
  memcpy(cont, c, sizeof c);
  if (exposed) cont[0] = cont[1] = 1;
}

static lh_harness *recurrent(const char *type, Caffe__RecurrentParameter *p, int with_static,
                             int exposed, float *cont) {
  lh_harness *h = lh_create(type);
  assert_non_null(h);
  p->has_num_output = 1;
  p->num_output = H;
  p->has_expose_hidden = exposed;
  p->expose_hidden = exposed;
  h->param.recurrent_param = p;
  const int64_t xs[4] = {T, N, 1, D}, cs[2] = {T, N}, ss[2] = {N, S}, hs[3] = {1, N, H};
  fill_cont(cont, exposed);
  bottom(h, 4, xs, NULL); /* (T, N, 1, 3): flattened from axis 2 */
  bottom(h, 2, cs, cont);
  if (with_static) bottom(h, 2, ss, NULL);
  int states = strcmp(type, "LSTM") == 0 ? 2 : 1;
  for (int s = 0; exposed && s < states; s++) bottom(h, 3, hs, NULL);
  for (int s = 0; s < 1 + (exposed ? states : 0); s++) lh_add_top(h);
  if (lh_setup(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
  for (int i = 0; i < h->layer.n_params; i++)
    for (int64_t k = 0; k < h->layer.params[i]->count; k++)
      h->layer.params[i]->data[k] = urand(-0.8f, 0.8f);
  return h;
}

static void assert_param_shapes(const lh_harness *h, int n, const int64_t (*shapes)[2]) {
  assert_int_equal(h->layer.n_params, n);
  for (int i = 0; i < n; i++) {
    const ns_blob *p = h->layer.params[i];
    assert_int_equal(p->num_axes, shapes[i][1] ? 2 : 1);
    assert_int_equal(p->shape[0], shapes[i][0]);
    if (shapes[i][1]) assert_int_equal(p->shape[1], shapes[i][1]);
  }
}

static rec_case case_of(const lh_harness *h, int with_static, int exposed, int rnn) {
  ns_blob *const *b = h->layer.bottom, *const *p = h->layer.params;
  const int st = with_static, first_state = 2 + st;
  rec_case c = {.x = b[0]->data, .cont = b[1]->data, .w_x = p[0]->data, .b_x = p[1]->data};
  c.xs = st ? b[2]->data : NULL;
  c.w_s = st ? p[2]->data : NULL;
  c.w_h = p[2 + st]->data;
  c.h0 = exposed ? b[first_state]->data : NULL;
  c.c0 = exposed && !rnn ? b[first_state + 1]->data : NULL;
  if (rnn) c.w_o = p[3 + st]->data, c.b_o = p[4 + st]->data;
  return c;
}

/* ---- LSTMUnit ---------------------------------------------------------------- */

/* One step by hand: N = 2 streams of H = 1 cell; stream 1 has cont 0, so
 * its forget gate is 0 and c = i g.  Stream 0: X = (0.5, -1, 2, 0.3),
 * c_prev = 0.7: c = sigm(-1) 0.7 + sigm(0.5) tanh(0.3), h = sigm(2) tanh(c). */
static void test_lstm_unit_forward(void **state) {
  lh_harness *h = lh_create("LSTMUnit");
  const int64_t cs[3] = {1, 2, 1}, xs[3] = {1, 2, 4}, ks[2] = {1, 2};
  const float c_prev[2] = {0.7f, -0.4f}, x[8] = {0.5f, -1, 2, 0.3f, -0.2f, 1.5f, 0.1f, -0.9f};
  const float cont[2] = {1, 0};
  bottom(h, 3, cs, c_prev);
  bottom(h, 3, xs, x);
  bottom(h, 2, ks, cont);
  ns_blob *c = lh_add_top(h), *hh = lh_add_top(h);
  if (lh_run(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
  const double c0 = sigm(-1) * 0.7 + sigm(0.5) * tanh(0.3), c1 = sigm(-0.2) * tanh(-0.9);
  const double want_c[2] = {c0, c1}, want_h[2] = {sigm(2) * tanh(c0), sigm(0.1) * tanh(c1)};
  assert_floats(c->data, want_c, 2, 1e-6);
  assert_floats(hh->data, want_h, 2, 1e-6);
  lh_destroy(h);
}

static void test_lstm_unit_backward(void **state) {
  lh_harness *h = lh_create("LSTMUnit");
  const int64_t cs[3] = {1, 3, 5}, xs[3] = {1, 3, 20}, ks[2] = {1, 3};
  const float cont[3] = {1, 0, 1};
  bottom(h, 3, cs, NULL);
  bottom(h, 3, xs, NULL);
  bottom(h, 2, ks, cont);
  lh_add_top(h);
  lh_add_top(h);
  gc_opts o = {.skip_bottoms = 1u << 2};
  grad_check(h, &o);
  const int down[3] = {0, 0, 1};
  assert_int_equal(h->layer.ops->backward(h->ctx, &h->layer, down), NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "cont"));
  lh_destroy(h);
}

static void test_lstm_unit_errors(void **state) {
  lh_harness *h = lh_create("LSTMUnit");
  const int64_t cs[3] = {1, 2, 3}, xs[3] = {1, 2, 11}, ks[2] = {1, 2};
  bottom(h, 3, cs, NULL);
  bottom(h, 3, xs, NULL); /* 11 is not 4 x 3 */
  bottom(h, 2, ks, NULL);
  lh_add_top(h);
  lh_add_top(h);
  assert_int_equal(lh_run(h), NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "(1, N, 4H)"));
  assert_non_null(strstr(ns_ctx_error(h->ctx), "'t'"));
  lh_destroy(h);
}

/* ---- LSTM -------------------------------------------------------------------- */

static void test_lstm_forward(void **state) {
  for (int variant = 0; variant < 4; variant++) {
    const int st = variant & 1, exposed = variant >> 1;
    Caffe__RecurrentParameter p = CAFFE__RECURRENT_PARAMETER__INIT;
    float cont[T * N];
    lh_harness *h = recurrent("LSTM", &p, st, exposed, cont);
    /* Caffe's params: W_xc, b_c, [W_xc_static], W_hc. */
    const int64_t shapes[4][2] = {{4 * H, D}, {4 * H, 0}, {4 * H, st ? S : H}, {4 * H, H}};
    assert_param_shapes(h, 3 + st, shapes);
    if (lh_rerun(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
    double want[T * N * H], h_T[N * H], c_T[N * H];
    rec_case c = case_of(h, st, exposed, 0);
    ref_lstm(&c, want, h_T, c_T);
    assert_int_equal(h->layer.top[0]->num_axes, 3);
    assert_int_equal(h->layer.top[0]->count, T * N * H);
    assert_floats(h->layer.top[0]->data, want, T * N * H, 2e-6);
    if (exposed) {
      assert_floats(h->layer.top[1]->data, h_T, N * H, 2e-6);
      assert_floats(h->layer.top[2]->data, c_T, N * H, 2e-6);
    }
    lh_destroy(h);
  }
}

static void test_lstm_backward(void **state) {
  for (int variant = 0; variant < 4; variant++) {
    const int st = variant & 1, exposed = variant >> 1;
    Caffe__RecurrentParameter p = CAFFE__RECURRENT_PARAMETER__INIT;
    float cont[T * N];
    lh_harness *h = recurrent("LSTM", &p, st, exposed, cont);
    gc_opts o = {.skip_bottoms = 1u << 1, .setup_done = 1};
    grad_check(h, &o);
    int down[5] = {0, 1, 0, 0, 0};
    assert_int_equal(h->layer.ops->backward(h->ctx, &h->layer, down), NS_ERR_NET);
    assert_non_null(strstr(ns_ctx_error(h->ctx), "sequence markers"));
    lh_destroy(h);
  }
}

/* Without expose_hidden, Caffe carries h_T and c_T into the next forward:
 * a sequence of 2 T steps run as two forwards of T steps (cont 1 at the
 * start of the second) gives the reference of the whole.  Here: the first
 * T steps, then the same x again continued; the reference runs the second
 * block from the first's final states. */
static void test_lstm_carries_state(void **state) {
  Caffe__RecurrentParameter p = CAFFE__RECURRENT_PARAMETER__INIT;
  float cont[T * N];
  lh_harness *h = recurrent("LSTM", &p, 0, 0, cont);
  if (lh_rerun(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
  double first[T * N * H], h_T[N * H], c_T[N * H], second[T * N * H], h2[N * H], c2[N * H];
  rec_case c = case_of(h, 0, 0, 0);
  ref_lstm(&c, first, h_T, c_T);
  float h0[N * H], c0[N * H];
  for (int k = 0; k < N * H; k++) h0[k] = (float)h_T[k], c0[k] = (float)c_T[k];
  for (int k = 0; k < T * N; k++) cont[k] = k == 3 ? 0 : 1; /* stream 1 restarts at t = 1 */
  memcpy(h->layer.bottom[1]->data, cont, sizeof cont);
  if (lh_rerun(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
  c.h0 = h0;
  c.c0 = c0;
  ref_lstm(&c, second, h2, c2);
  assert_floats(h->layer.top[0]->data, second, T * N * H, 2e-6);
  /* cont 0 at t = 0 forgets it all: the first forward's values again. */
  fill_cont(cont, 0);
  memcpy(h->layer.bottom[1]->data, cont, sizeof cont);
  if (lh_rerun(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
  assert_floats(h->layer.top[0]->data, first, T * N * H, 2e-6);
  lh_destroy(h);
}

/* ---- RNN --------------------------------------------------------------------- */

static void test_rnn_forward(void **state) {
  for (int variant = 0; variant < 4; variant++) {
    const int st = variant & 1, exposed = variant >> 1;
    Caffe__RecurrentParameter p = CAFFE__RECURRENT_PARAMETER__INIT;
    float cont[T * N];
    lh_harness *h = recurrent("RNN", &p, st, exposed, cont);
    /* Caffe's params: W_xh, b_h, [W_xh_static], W_hh, W_ho, b_o. */
    const int64_t plain[5][2] = {{H, D}, {H, 0}, {H, H}, {H, H}, {H, 0}};
    const int64_t with_s[6][2] = {{H, D}, {H, 0}, {H, S}, {H, H}, {H, H}, {H, 0}};
    assert_param_shapes(h, 5 + st, st ? with_s : plain);
    if (lh_rerun(h) != NS_OK) fail_msg("%s", ns_ctx_error(h->ctx));
    double want[T * N * H], h_T[N * H];
    rec_case c = case_of(h, st, exposed, 1);
    ref_rnn(&c, want, h_T);
    assert_floats(h->layer.top[0]->data, want, T * N * H, 2e-6);
    if (exposed) assert_floats(h->layer.top[1]->data, h_T, N * H, 2e-6);
    lh_destroy(h);
  }
}

static void test_rnn_backward(void **state) {
  for (int variant = 0; variant < 4; variant++) {
    const int st = variant & 1, exposed = variant >> 1;
    Caffe__RecurrentParameter p = CAFFE__RECURRENT_PARAMETER__INIT;
    float cont[T * N];
    lh_harness *h = recurrent("RNN", &p, st, exposed, cont);
    gc_opts o = {.skip_bottoms = 1u << 1, .setup_done = 1};
    grad_check(h, &o);
    lh_destroy(h);
  }
}

/* ---- errors and a net -------------------------------------------------------- */

static void expect_setup_error(const char *type, Caffe__RecurrentParameter *p, int n_bottom,
                               int n_top, const int64_t *cont_shape, const char *needle) {
  lh_harness *h = lh_create(type);
  h->param.recurrent_param = p;
  const int64_t xs[3] = {T, N, D}, ss[2] = {N, S};
  bottom(h, 3, xs, NULL);
  bottom(h, 2, cont_shape, NULL);
  for (int i = 2; i < n_bottom; i++) bottom(h, 2, ss, NULL);
  for (int i = 0; i < n_top; i++) lh_add_top(h);
  ns_status st = lh_run(h);
  if (st != NS_ERR_NET || !strstr(ns_ctx_error(h->ctx), needle) ||
      !strstr(ns_ctx_error(h->ctx), "'t'"))
    fail_msg("status %d, error '%s' (want '%s')", st, ns_ctx_error(h->ctx), needle);
  lh_destroy(h);
}

static void test_recurrent_errors(void **state) {
  const int64_t good[2] = {T, N}, bad[2] = {T, N + 1};
  const char *types[2] = {"LSTM", "RNN"};
  for (int i = 0; i < 2; i++) {
    Caffe__RecurrentParameter p = CAFFE__RECURRENT_PARAMETER__INIT;
    expect_setup_error(types[i], &p, 2, 1, good, "num_output");
    p.has_num_output = 1;
    p.num_output = 3;
    expect_setup_error(types[i], &p, 2, 1, bad, "cont");
    expect_setup_error(types[i], &p, 2, 2, good, "expose_hidden false");
    p.has_expose_hidden = p.expose_hidden = 1;
    expect_setup_error(types[i], &p, 2, 1, good, "expose_hidden true");
  }
}

/* An LSTM and an RNN in a net from text: the params are read from
 * recurrent_param's fillers, in Caffe's order, and T = 1 with cont 0 and
 * constant fillers can be worked by hand.  LSTM: every gate input is
 * 0.1 * (3 x 1) + 0.2 = 0.5 (h_prev is scaled by cont 0): c = sigm(0.5)
 * tanh(0.5), h = sigm(0.5) tanh(c).  RNN: h = tanh(0.5), o = tanh(0.1 * 2
 * h + 0.2). */
static void test_in_a_net(void **state) {
  static const char *text =
      "layer { name: 'x' type: 'Input' top: 'x' top: 'cont'\n"
      "  input_param { shape { dim: 1 dim: 1 dim: 3 } shape { dim: 1 dim: 1 } } }\n"
      "layer { name: 'lstm' type: 'LSTM' bottom: 'x' bottom: 'cont' top: 'h'\n"
      "  recurrent_param { num_output: 2 weight_filler { type: 'constant' value: 0.1 }\n"
      "    bias_filler { type: 'constant' value: 0.2 } } }\n"
      "layer { name: 'rnn' type: 'RNN' bottom: 'x' bottom: 'cont' top: 'o'\n"
      "  recurrent_param { num_output: 2 weight_filler { type: 'constant' value: 0.1 }\n"
      "    bias_filler { type: 'constant' value: 0.2 } } }\n";
  char *dir = tu_mkdtemp(), path[1024];
  assert_non_null(dir);
  tu_path(path, sizeof path, dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = NULL;
  if (ns_net_load(ctx, path, NULL, &net) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "x"));
  for (int i = 0; i < 3; i++) x.data[i] = 1;
  ns_net_blob(net, ns_net_find_blob(net, "cont")).data[0] = 0;
  if (ns_net_forward(ctx, net) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  const double c = sigm(0.5) * tanh(0.5), hh = sigm(0.5) * tanh(c);
  const double want_h[2] = {hh, hh}, rh = tanh(0.5), ro = tanh(0.2 * rh + 0.2);
  const double want_o[2] = {ro, ro};
  assert_floats(ns_net_blob(net, ns_net_find_blob(net, "h")).data, want_h, 2, 1e-6);
  assert_floats(ns_net_blob(net, ns_net_find_blob(net, "o")).data, want_o, 2, 1e-6);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  tu_rmtree(dir);
  free(dir);
}

int main(void) {
  ns_rng_seed(&data_rng, 2027);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lstm_unit_forward),  cmocka_unit_test(test_lstm_unit_backward),
      cmocka_unit_test(test_lstm_unit_errors),   cmocka_unit_test(test_lstm_forward),
      cmocka_unit_test(test_lstm_backward),      cmocka_unit_test(test_lstm_carries_state),
      cmocka_unit_test(test_rnn_forward),        cmocka_unit_test(test_rnn_backward),
      cmocka_unit_test(test_recurrent_errors),   cmocka_unit_test(test_in_a_net),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
