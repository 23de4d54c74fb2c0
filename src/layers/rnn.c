/* RNN, as BVLC's RNNLayer (src/caffe/layers/rnn_layer.cpp, unrolled by
 * recurrent_layer.cpp; see recurrent.h for bottoms, tops and the carried
 * state).  With H = recurrent_param.num_output (the hidden and the output
 * width), per step t:
 *   h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h [+ W_xh_static x_static])
 *   o_t = tanh(W_ho h_t + b_o)
 * The top is o (T, N, H).  Params, in Caffe's order: W_xh (H, D), b_h (H),
 * W_xh_static (H, S) with x_static, W_hh (H, H), W_ho (H, H), b_o (H).
 * Backward: through time to x, x_static and the params; the exposed h_0
 * and h_T get true gradients where Caffe shares only their data (see
 * lstm.c). */
#include <string.h>

#include "layers/recurrent.h"

/* Work areas: 0 the hidden pre-activations' gradient (T, N, H), 1 h_1..h_T
 * (T, N, H), 2 cont_t h_{t-1} (T, N, H), 3 h_0 (N, H), 4 the output
 * pre-activations' gradient (T, N, H), 5 the static input (N, H), 6..7
 * (N, H) for backward. */
enum { DPRE, HID, HCONT, H0, DOUT, STATIC, DH, TMP };

static ns_status rnn_setup(ns_ctx *ctx, ns_layer *l) {
  ns_recurrent *r = ns_calloc(ctx, 1, sizeof *r);
  if (!r) return ctx->status;
  l->priv = r;
  if (ns_recurrent_setup(ctx, l, r, 1, 1) != NS_OK ||
      ns_recurrent_add_param(ctx, l, r->H, r->D) != NS_OK ||
      ns_recurrent_add_param(ctx, l, r->H, 0) != NS_OK ||
      (r->has_static && ns_recurrent_add_param(ctx, l, r->H, r->S) != NS_OK) ||
      ns_recurrent_add_param(ctx, l, r->H, r->H) != NS_OK ||
      ns_recurrent_add_param(ctx, l, r->H, r->H) != NS_OK ||
      ns_recurrent_add_param(ctx, l, r->H, 0) != NS_OK)
    return ctx->status;
  return NS_OK;
}

static ns_status rnn_reshape(ns_ctx *ctx, ns_layer *l) {
  ns_recurrent *r = l->priv;
  if (ns_recurrent_check(ctx, l, r) != NS_OK) return ctx->status;
  const int64_t T = r->T, N = r->N;
  const int64_t nh = N * r->H, tnh = T * nh;
  const int64_t sizes[] = {tnh, tnh, tnh, nh, tnh, nh, nh, nh};
  return ns_recurrent_reshape(ctx, l, r, sizes, (int)(sizeof sizes / sizeof *sizes));
}

static ns_status rnn_forward(ns_ctx *ctx, ns_layer *l) {
  (void)ctx;
  ns_recurrent *r = l->priv;
  float **b = r->buf;
  const int64_t N = r->N, H = r->H, nh = N * H, tnh = r->T * nh;
  const int st = r->has_static;
  const float *cont = l->bottom[1]->data;
  ns_recurrent_inputs(l, r, b[HID], b[STATIC]);
  ns_recurrent_initial(l, r, 0, b[H0]);
  for (int64_t t = 0; t < r->T; t++) {
    float *h = b[HID] + t * nh, *hc = b[HCONT] + t * nh;
    ns_recurrent_cont(r, t ? h - nh : b[H0], cont + t * N, hc);
    ns_rec_gemm_xwt(N, H, H, hc, l->params[2 + st]->data, 1, h);
    for (int64_t k = 0; k < nh; k++) h[k] = tanhf(h[k] + (st ? b[STATIC][k] : 0));
  }
  float *o = l->top[0]->data;
  const float *b_o = l->params[4 + st]->data;
  ns_rec_gemm_xwt(r->T * N, H, H, b[HID], l->params[3 + st]->data, 0, o);
  for (int64_t k = 0; k < tnh; k++) o[k] = tanhf(o[k] + b_o[k % H]);
  ns_recurrent_final(l, r, 0, r->T ? b[HID] + tnh - nh : b[H0]);
  return NS_OK;
}

static ns_status rnn_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  ns_recurrent *r = l->priv;
  if (ns_recurrent_check_down(ctx, l, down) != NS_OK) return ctx->status;
  float **b = r->buf;
  const int64_t N = r->N, H = r->H, nh = N * H, tnh = r->T * nh;
  const int st = r->has_static, w_hh = 2 + st, w_ho = 3 + st, b_o = 4 + st;
  const float *cont = l->bottom[1]->data, *o = l->top[0]->data, *dout = l->top[0]->diff;
  for (int64_t k = 0; k < tnh; k++) b[DOUT][k] = dout[k] * (1 - o[k] * o[k]);
  if (ns_layer_param_grad(l, b_o)) ns_rec_bias_back(r->T * N, H, b[DOUT], l->params[b_o]->diff);
  ns_rec_gemm_back(r->T * N, H, H, b[DOUT], b[HID], l->params[w_ho]->data,
                   ns_layer_param_grad(l, w_ho) ? l->params[w_ho]->diff : NULL, b[DPRE], 0);
  if (r->expose_hidden)
    memcpy(b[DH], l->top[1]->diff, (size_t)nh * sizeof(float));
  else
    memset(b[DH], 0, (size_t)nh * sizeof(float));
  for (int64_t t = r->T - 1; t >= 0; t--) {
    float *dpre = b[DPRE] + t * nh;
    const float *h = b[HID] + t * nh;
    for (int64_t k = 0; k < nh; k++) dpre[k] = (dpre[k] + b[DH][k]) * (1 - h[k] * h[k]);
    ns_rec_gemm_back(N, H, H, dpre, NULL, l->params[w_hh]->data, NULL, b[TMP], 0);
    ns_recurrent_cont(r, b[TMP], cont + t * N, b[DH]);
  }
  if (ns_layer_param_grad(l, w_hh))
    ns_rec_gemm_back(r->T * N, H, H, b[DPRE], b[HCONT], NULL, l->params[w_hh]->diff, NULL, 0);
  ns_recurrent_inputs_back(l, r, b[DPRE], b[STATIC], down);
  if (r->expose_hidden && down[r->first_state_bottom])
    memcpy(l->bottom[r->first_state_bottom]->diff, b[DH], (size_t)nh * sizeof(float));
  return NS_OK;
}

static void rnn_destroy(ns_ctx *ctx, ns_layer *l) {
  if (l->priv) ns_recurrent_free(ctx, l->priv);
}

static double rnn_flops(const ns_layer *l) {
  const ns_recurrent *r = l->priv;
  return 2.0 * (double)(r->T * r->N) * (double)r->H * (double)(r->D + 2 * r->H) +
         2.0 * (double)r->N * (double)r->H * (double)r->S;
}

const ns_layer_ops ns_rnn_ops = {
    .type = "RNN",
    .min_bottoms = 2,
    .max_bottoms = 4,
    .min_tops = 1,
    .max_tops = 2,
    .setup = rnn_setup,
    .reshape = rnn_reshape,
    .forward = rnn_forward,
    .backward = rnn_backward,
    .destroy = rnn_destroy,
    .flops = rnn_flops,
    .weight_rank = 2,
};
