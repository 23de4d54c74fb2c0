/* LSTM, as BVLC's LSTMLayer (src/caffe/layers/lstm_layer.cpp, unrolled by
 * recurrent_layer.cpp; see recurrent.h for bottoms, tops and the carried
 * state).  With H = recurrent_param.num_output, per step t:
 *   gate_input_t = W_xc x_t + b_c + W_hc (cont_t h_{t-1}) [+ W_xc_static x_static]
 *   (c_t, h_t) = LSTMUnit(c_{t-1}, gate_input_t, cont_t)
 * gates in Caffe's order i, f, o, g (PyTorch's is i, f, g, o).  The top is
 * h (T, N, H).  Params, in Caffe's order: W_xc (4H, D), b_c (4H),
 * W_xc_static (4H, S) with x_static, W_hc (4H, H); weight_filler and
 * bias_filler as Caffe's unrolled InnerProducts.
 * Backward: through time to x, x_static and the params.  Where Caffe
 * differs: its unrolled net shares only the data of the exposed h_0/c_0
 * bottoms and h_T/c_T tops, so it neither uses the tops' gradients nor
 * writes the bottoms'; here both are the true gradients (the same when
 * nothing above reads h_T and c_T).  T may change between forwards
 * (Caffe refuses). */
#include <string.h>

#include "layers/recurrent.h"

/* Work areas: 0 gate inputs (later their gradient) (T, N, 4H), 1 the
 * activated gates (T, N, 4H), 2 c_0..c_T (T + 1, N, H), 3 cont_t h_{t-1}
 * (T, N, H), 4 h_0 (N, H), 5 the static gates (N, 4H), 6..9 (N, H) each
 * for backward. */
enum { GATES, ACTS, CELLS, HCONT, H0, STATIC, DH, DC, TMP, TMP2 };

static ns_status lstm_setup(ns_ctx *ctx, ns_layer *l) {
  ns_recurrent *r = ns_calloc(ctx, 1, sizeof *r);
  if (!r) return ctx->status;
  l->priv = r;
  if (ns_recurrent_setup(ctx, l, r, 2, 4) != NS_OK ||
      ns_recurrent_add_param(ctx, l, r->G, r->D) != NS_OK ||
      ns_recurrent_add_param(ctx, l, r->G, 0) != NS_OK ||
      (r->has_static && ns_recurrent_add_param(ctx, l, r->G, r->S) != NS_OK) ||
      ns_recurrent_add_param(ctx, l, r->G, r->H) != NS_OK)
    return ctx->status;
  return NS_OK;
}

static ns_status lstm_reshape(ns_ctx *ctx, ns_layer *l) {
  ns_recurrent *r = l->priv;
  if (ns_recurrent_check(ctx, l, r) != NS_OK) return ctx->status;
  const int64_t T = r->T, N = r->N;
  const int64_t nh = N * r->H, tng = T * N * r->G;
  const int64_t sizes[] = {tng, tng, (T + 1) * nh, T * nh, nh, N * r->G, nh, nh, nh, nh};
  return ns_recurrent_reshape(ctx, l, r, sizes, (int)(sizeof sizes / sizeof *sizes));
}

static ns_status lstm_forward(ns_ctx *ctx, ns_layer *l) {
  (void)ctx;
  ns_recurrent *r = l->priv;
  float **b = r->buf;
  const int64_t N = r->N, H = r->H, G = r->G, nh = N * H;
  const float *w_hc = l->params[2 + r->has_static]->data, *cont = l->bottom[1]->data;
  float *h = l->top[0]->data;
  ns_recurrent_inputs(l, r, b[GATES], b[STATIC]);
  ns_recurrent_initial(l, r, 0, b[H0]);
  ns_recurrent_initial(l, r, 1, b[CELLS]);
  for (int64_t t = 0; t < r->T; t++) {
    const float *h_prev = t ? h + (t - 1) * nh : b[H0];
    float *hc = b[HCONT] + t * nh, *gates = b[GATES] + t * N * G;
    ns_recurrent_cont(r, h_prev, cont + t * N, hc);
    ns_rec_gemm_xwt(N, G, H, hc, w_hc, 1, gates);
    for (int64_t k = 0; r->has_static && k < N * G; k++) gates[k] += b[STATIC][k];
    ns_lstm_unit_forward(N, H, b[CELLS] + t * nh, gates, cont + t * N, b[ACTS] + t * N * G,
                         b[CELLS] + (t + 1) * nh, h + t * nh);
  }
  ns_recurrent_final(l, r, 0, r->T ? h + (r->T - 1) * nh : b[H0]);
  ns_recurrent_final(l, r, 1, b[CELLS] + r->T * nh);
  return NS_OK;
}

static ns_status lstm_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  ns_recurrent *r = l->priv;
  if (ns_recurrent_check_down(ctx, l, down) != NS_OK) return ctx->status;
  float **b = r->buf;
  const int64_t N = r->N, H = r->H, G = r->G, nh = N * H;
  const int w_hc = 2 + r->has_static;
  const float *cont = l->bottom[1]->data, *dtop = l->top[0]->diff;
  /* DH and DC: the gradients reaching h_t and c_t from later steps. */
  if (r->expose_hidden) {
    memcpy(b[DH], l->top[1]->diff, (size_t)nh * sizeof(float));
    memcpy(b[DC], l->top[2]->diff, (size_t)nh * sizeof(float));
  } else {
    memset(b[DH], 0, (size_t)nh * sizeof(float));
    memset(b[DC], 0, (size_t)nh * sizeof(float));
  }
  for (int64_t t = r->T - 1; t >= 0; t--) {
    float *dgates = b[GATES] + t * N * G;
    for (int64_t k = 0; k < nh; k++) b[TMP][k] = dtop[t * nh + k] + b[DH][k];
    ns_lstm_unit_backward(N, H, b[CELLS] + t * nh, b[ACTS] + t * N * G, b[CELLS] + (t + 1) * nh,
                          b[DC], b[TMP], dgates, b[TMP2]);
    memcpy(b[DC], b[TMP2], (size_t)nh * sizeof(float));
    ns_rec_gemm_back(N, G, H, dgates, NULL, l->params[w_hc]->data, NULL, b[TMP], 0);
    ns_recurrent_cont(r, b[TMP], cont + t * N, b[DH]);
  }
  if (ns_layer_param_grad(l, w_hc))
    ns_rec_gemm_back(r->T * N, G, H, b[GATES], b[HCONT], NULL, l->params[w_hc]->diff, NULL, 0);
  ns_recurrent_inputs_back(l, r, b[GATES], b[STATIC], down);
  const int h0 = r->first_state_bottom;
  if (r->expose_hidden && down[h0])
    memcpy(l->bottom[h0]->diff, b[DH], (size_t)nh * sizeof(float));
  if (r->expose_hidden && down[h0 + 1])
    memcpy(l->bottom[h0 + 1]->diff, b[DC], (size_t)nh * sizeof(float));
  return NS_OK;
}

static void lstm_destroy(ns_ctx *ctx, ns_layer *l) {
  if (l->priv) ns_recurrent_free(ctx, l->priv);
}

static double lstm_flops(const ns_layer *l) {
  const ns_recurrent *r = l->priv;
  return 2.0 * (double)(r->T * r->N) * (double)r->G * (double)(r->D + r->H) +
         2.0 * (double)r->N * (double)r->G * (double)r->S;
}

const ns_layer_ops ns_lstm_ops = {
    .type = "LSTM",
    .min_bottoms = 2,
    .max_bottoms = 5,
    .min_tops = 1,
    .max_tops = 3,
    .setup = lstm_setup,
    .reshape = lstm_reshape,
    .forward = lstm_forward,
    .backward = lstm_backward,
    .destroy = lstm_destroy,
    .flops = lstm_flops,
    .weight_rank = 2,
};
