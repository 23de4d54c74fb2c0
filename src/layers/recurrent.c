/* The plumbing LSTM and RNN share (see recurrent.h), and the LSTM unit
 * that LSTM and LSTMUnit share.  Shapes and bottom order follow BVLC's
 * RecurrentLayer::LayerSetUp and Reshape: x (T, N, ...), cont exactly
 * (T, N), x_static (N, ...), exposed states (1, N, num_output). */
#include <string.h>

#include "core/filler.h"
#include "kernels/gemm.h"
#include "layers/recurrent.h"

ns_status ns_recurrent_setup(ns_ctx *ctx, ns_layer *l, ns_recurrent *r, int n_states,
                             int gates_per_unit) {
  const Caffe__RecurrentParameter *p = l->param->recurrent_param;
  if (!p || !p->has_num_output || p->num_output == 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "recurrent_param.num_output must be positive");
  r->n_states = n_states;
  r->H = p->num_output;
  r->G = gates_per_unit * r->H;
  r->expose_hidden = p->has_expose_hidden && p->expose_hidden;
  const int exposed = r->expose_hidden ? n_states : 0;
  r->has_static = l->n_bottom > 2 + exposed;
  if (l->n_bottom != 2 + r->has_static + exposed || l->n_top != 1 + exposed)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "takes x, cont, optionally x_static%s and gives the output%s "
                         "(expose_hidden %s); got %d bottoms and %d tops",
                         exposed ? " and the initial states" : "",
                         exposed ? " and the final states" : "", exposed ? "true" : "false",
                         l->n_bottom, l->n_top);
  r->first_state_bottom = 2 + r->has_static;
  const ns_blob *x = l->bottom[0];
  if (x->num_axes < 2)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "x must have at least 2 axes (T, N, ...)");
  r->D = ns_blob_count_range(x, 2, x->num_axes);
  r->S = r->has_static ? ns_blob_count_range(l->bottom[2], 1, l->bottom[2]->num_axes) : 0;
  if (!ns_gemm_fits(r->G, r->G, r->D > r->S ? r->D : r->S))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "num_output or the input width is too large");
  return NS_OK;
}

ns_status ns_recurrent_add_param(ns_ctx *ctx, ns_layer *l, int64_t rows, int64_t cols) {
  const Caffe__RecurrentParameter *p = l->param->recurrent_param;
  const int64_t shape[2] = {rows, cols};
  int index = l->n_params;
  if (ns_layer_add_param(ctx, l, cols ? 2 : 1, shape) != NS_OK) return ctx->status;
  return ns_filler_fill(ctx, l->params[index], cols ? p->weight_filler : p->bias_filler, l->rng);
}

static ns_status check_shape(ns_ctx *ctx, const ns_layer *l, int i, int num_axes,
                             const int64_t *shape, const char *what) {
  const ns_blob *b = l->bottom[i];
  char want[96], got[96];
  int ok = b->num_axes == num_axes;
  for (int a = 0; ok && a < num_axes; a++) ok = shape[a] < 0 || b->shape[a] == shape[a];
  if (ok) return NS_OK;
  return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom %d (%s, '%s') is %s; expected %s", i, what,
                       b->name, ns_shape_str(b->shape, b->num_axes, got, sizeof got),
                       ns_shape_str(shape, num_axes, want, sizeof want));
}

/* (T + 1) N max(G, D) and N G fit in 64 bits once this passes, so the
 * work areas' sizes may be multiplied out plainly. */
static ns_status check_bottoms(ns_ctx *ctx, ns_layer *l, ns_recurrent *r) {
  const ns_blob *x = l->bottom[0];
  if (x->num_axes < 2 || ns_blob_count_range(x, 2, x->num_axes) != r->D)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "x '%s' must be (T, N, ...) with %lld values per step and stream, as "
                         "the weights take",
                         x->name, (long long)r->D);
  const int64_t T = x->shape[0], N = x->shape[1];
  const int64_t cont[2] = {T, N}, state[3] = {1, N, r->H};
  if (check_shape(ctx, l, 1, 2, cont, "cont") != NS_OK) return ctx->status;
  if (r->has_static) {
    const ns_blob *s = l->bottom[2];
    if (s->num_axes < 1 || s->shape[0] != N || ns_blob_count_range(s, 1, s->num_axes) != r->S)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "x_static '%s' must be (N = %lld, ...) with %lld values per stream",
                           s->name, (long long)N, (long long)r->S);
  }
  for (int s = 0; r->expose_hidden && s < r->n_states; s++)
    if (check_shape(ctx, l, r->first_state_bottom + s, 3, state, "an initial state") != NS_OK)
      return ctx->status;
  int64_t cells = 0, state_cells = 0;
  if (!ns_mul_i64(T + 1, N, &cells) || !ns_mul_i64(cells, r->G > r->D ? r->G : r->D, &cells) ||
      !ns_mul_i64(N, r->G, &state_cells) || !ns_gemm_fits(T * N, r->G, r->D > r->H ? r->D : r->H))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "x '%s' is too large", x->name);
  r->T = T;
  if (N != r->N) { /* new streams: nothing carried over */
    r->N = N;
    r->carried_n = 0;
  }
  return NS_OK;
}

static ns_status grow(ns_ctx *ctx, ns_recurrent *r, int i, int64_t n) {
  if (n <= r->cap[i]) return NS_OK;
  ns_floats_free(ctx, r->buf[i]);
  r->buf[i] = ns_floats_alloc(ctx, n > 0 ? n : 1);
  r->cap[i] = r->buf[i] ? n : 0;
  return r->buf[i] ? NS_OK : ctx->status;
}

ns_status ns_recurrent_check(ns_ctx *ctx, ns_layer *l, ns_recurrent *r) {
  return check_bottoms(ctx, l, r);
}

ns_status ns_recurrent_reshape(ns_ctx *ctx, ns_layer *l, ns_recurrent *r, const int64_t *sizes,
                               int n) {
  for (int j = 0; j < l->n_top; j++)
    for (int i = 0; i < l->n_bottom; i++)
      if (l->top[j] == l->bottom[i])
        return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot run in place");
  const int64_t out[3] = {r->T, r->N, r->H}, state[3] = {1, r->N, r->H};
  if (ns_check_tensor_size(ctx, r->T * r->N * r->G, "recurrent work area") != NS_OK ||
      ns_blob_reshape(ctx, l->top[0], 3, out) != NS_OK)
    goto fail;
  for (int j = 1; j < l->n_top; j++)
    if (ns_blob_reshape(ctx, l->top[j], 3, state) != NS_OK) goto fail;
  for (int i = 0; i < n; i++)
    if (grow(ctx, r, i, sizes[i]) != NS_OK) goto fail;
  for (int s = 0; s < r->n_states; s++)
    if (grow(ctx, r, REC_CARRIED + s, r->N * r->H) != NS_OK) goto fail;
  return NS_OK;
fail:
  ns_error_prefix(ctx, "layer '%s' (%s): ", l->name, l->ops->type);
  return ctx->status;
}

void ns_recurrent_initial(const ns_layer *l, const ns_recurrent *r, int s, float *dst) {
  const int64_t n = r->N * r->H;
  if (r->expose_hidden)
    memcpy(dst, l->bottom[r->first_state_bottom + s]->data, (size_t)n * sizeof *dst);
  else if (r->carried_n == n)
    memcpy(dst, r->buf[REC_CARRIED + s], (size_t)n * sizeof *dst);
  else
    memset(dst, 0, (size_t)n * sizeof *dst);
}

void ns_recurrent_final(ns_layer *l, ns_recurrent *r, int s, const float *src) {
  const int64_t n = r->N * r->H;
  float *dst = r->expose_hidden ? l->top[1 + s]->data : r->buf[REC_CARRIED + s];
  memcpy(dst, src, (size_t)n * sizeof *dst);
  if (!r->expose_hidden && s == r->n_states - 1) r->carried_n = n;
}

ns_status ns_recurrent_check_down(ns_ctx *ctx, const ns_layer *l, const int *down) {
  if (down[1])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "cannot backpropagate to the sequence markers (cont)");
  return NS_OK;
}

void ns_recurrent_free(ns_ctx *ctx, ns_recurrent *r) {
  for (int i = 0; i < REC_BUFS; i++) ns_floats_free(ctx, r->buf[i]);
}

void ns_recurrent_inputs(const ns_layer *l, const ns_recurrent *r, float *gates,
                         float *static_gates) {
  const int64_t rows = r->T * r->N;
  ns_rec_gemm_xwt(rows, r->G, r->D, l->bottom[0]->data, l->params[0]->data, 0, gates);
  const float *b = l->params[1]->data;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < r->G; j++) gates[i * r->G + j] += b[j];
  if (r->has_static)
    ns_rec_gemm_xwt(r->N, r->G, r->S, l->bottom[2]->data, l->params[2]->data, 0, static_gates);
}

void ns_recurrent_inputs_back(ns_layer *l, const ns_recurrent *r, const float *dgates,
                              float *static_work, const int *down) {
  const int64_t rows = r->T * r->N, ng = r->N * r->G;
  ns_rec_gemm_back(rows, r->G, r->D, dgates, l->bottom[0]->data, l->params[0]->data,
                   ns_layer_param_grad(l, 0) ? l->params[0]->diff : NULL,
                   down[0] ? l->bottom[0]->diff : NULL, 0);
  if (ns_layer_param_grad(l, 1)) ns_rec_bias_back(rows, r->G, dgates, l->params[1]->diff);
  if (!r->has_static) return;
  /* x_static feeds every step: its gate gradient is the sum over steps. */
  memset(static_work, 0, (size_t)ng * sizeof *static_work);
  for (int64_t t = 0; t < r->T; t++)
    for (int64_t k = 0; k < ng; k++) static_work[k] += dgates[t * ng + k];
  ns_rec_gemm_back(r->N, r->G, r->S, static_work, l->bottom[2]->data, l->params[2]->data,
                   ns_layer_param_grad(l, 2) ? l->params[2]->diff : NULL,
                   down[2] ? l->bottom[2]->diff : NULL, 0);
}

void ns_recurrent_cont(const ns_recurrent *r, const float *h_prev, const float *cont, float *out) {
  for (int64_t n = 0; n < r->N; n++)
    for (int64_t d = 0; d < r->H; d++) out[n * r->H + d] = h_prev[n * r->H + d] * cont[n];
}

void ns_rec_gemm_xwt(int64_t m, int64_t n, int64_t k, const float *x, const float *w, float beta,
                     float *y) {
  if (m && n && k) ns_sgemm(0, 1, m, n, k, 1.0f, x, k, w, k, beta, y, n);
  else if (beta == 0) memset(y, 0, (size_t)(m * n) * sizeof *y);
}

void ns_rec_gemm_back(int64_t m, int64_t n, int64_t k, const float *dy, const float *x,
                      const float *w, float *dw, float *dx, float dx_beta) {
  if (!m || !n || !k) {
    if (dx && dx_beta == 0) memset(dx, 0, (size_t)(m * k) * sizeof *dx);
    return;
  }
  if (dw) ns_sgemm(1, 0, n, k, m, 1.0f, dy, n, x, k, 1.0f, dw, k);
  if (dx) ns_sgemm(0, 0, m, k, n, 1.0f, dy, n, w, k, dx_beta, dx, k);
}

void ns_rec_bias_back(int64_t m, int64_t n, const float *dy, float *db) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) db[j] += dy[i * n + j];
}

void ns_lstm_unit_forward(int64_t n, int64_t h, const float *c_prev, const float *x,
                          const float *cont, float *acts, float *c, float *hout) {
  for (int64_t s = 0; s < n; s++, x += 4 * h, acts += 4 * h, c_prev += h, c += h, hout += h) {
    for (int64_t d = 0; d < h; d++) {
      const float i = ns_rec_sigmoid(x[d]);
      const float f = cont[s] == 0 ? 0 : cont[s] * ns_rec_sigmoid(x[h + d]);
      const float o = ns_rec_sigmoid(x[2 * h + d]);
      const float g = ns_rec_tanh(x[3 * h + d]);
      acts[d] = i, acts[h + d] = f, acts[2 * h + d] = o, acts[3 * h + d] = g;
      c[d] = f * c_prev[d] + i * g;
      hout[d] = o * ns_rec_tanh(c[d]);
    }
  }
}

void ns_lstm_unit_backward(int64_t n, int64_t h, const float *c_prev, const float *acts,
                           const float *c, const float *dc, const float *dh, float *dx,
                           float *dc_prev) {
  for (int64_t s = 0; s < n; s++) {
    for (int64_t d = 0; d < h; d++) {
      const int64_t k = s * h + d;
      const float *a = acts + s * 4 * h;
      float *g4 = dx + s * 4 * h;
      const float i = a[d], f = a[h + d], o = a[2 * h + d], g = a[3 * h + d];
      const float tanh_c = ns_rec_tanh(c[k]);
      const float dc_total = dc[k] + dh[k] * o * (1 - tanh_c * tanh_c);
      if (dc_prev) dc_prev[k] = dc_total * f;
      g4[d] = dc_total * g * i * (1 - i);
      g4[h + d] = dc_total * c_prev[k] * f * (1 - f);
      g4[2 * h + d] = dh[k] * tanh_c * o * (1 - o);
      g4[3 * h + d] = dc_total * i * (1 - g * g);
    }
  }
}
