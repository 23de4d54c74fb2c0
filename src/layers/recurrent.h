/* What Caffe's recurrent layers share (BVLC src/caffe/layers/
 * recurrent_layer.cpp, lstm_layer.cpp, rnn_layer.cpp, lstm_unit_layer.cpp).
 * Caffe unrolls LSTM and RNN into an internal net of InnerProduct, Scale,
 * Eltwise, LSTMUnit/TanH and Concat layers; here each is one time loop over
 * the same formulas, with the same params in the same order and shapes, so
 * that a Caffe-trained caffemodel loads by layer name and gives Caffe's
 * outputs.
 *
 * Bottoms: x (T, N, ...) flattened from axis 2 to D, cont (T, N) sequence
 * markers (0 at the first step of a sequence: the previous h is multiplied
 * by cont, and LSTM's forget gate is 0), optionally x_static (N, ...)
 * flattened from axis 1 to S, then, with recurrent_param.expose_hidden,
 * the initial states (1, N, num_output) (h_0; LSTM also c_0).  Tops: the
 * output (T, N, num_output), then with expose_hidden the final states
 * (h_T; LSTM also c_T).  Without expose_hidden the final states of one
 * forward are the initial states of the next (Caffe copies h_T into h_0
 * before running the unrolled net), zeros at first and whenever N
 * changes. */
#ifndef NS_LAYERS_RECURRENT_H
#define NS_LAYERS_RECURRENT_H

#include <math.h>

#include "core/layer.h"

enum { REC_MAX_STATES = 2, REC_BUFS = 12, REC_CARRIED = REC_BUFS - REC_MAX_STATES };

typedef struct ns_recurrent {
  int64_t T, N, H, D, S; /* steps, streams, num_output, x and x_static widths */
  int64_t G;             /* gate width: 4H (LSTM) or H (RNN) */
  int n_states;          /* 2 (h, c) for LSTM, 1 (h) for RNN */
  int has_static, expose_hidden;
  int first_state_bottom; /* bottom index of h_0 when exposed */
  /* The carried states (N * H each) when not exposed; NULL until the
   * first forward. */
  float *carried[REC_MAX_STATES];
  int64_t carried_n;
  /* Work areas owned by the layer, grown at reshape; the last
   * REC_MAX_STATES hold the carried states. */
  float *buf[REC_BUFS];
  int64_t cap[REC_BUFS];
} ns_recurrent;

/* Reads recurrent_param and the bottoms: checks the bottom and top counts
 * against expose_hidden and fills the sizes; G from gates_per_unit. */
ns_status ns_recurrent_setup(ns_ctx *ctx, ns_layer *l, ns_recurrent *r, int n_states,
                             int gates_per_unit);
/* Adds param `index` of shape (rows, cols) (cols 0: a vector), filled by
 * recurrent_param's weight_filler, or bias_filler for a vector. */
ns_status ns_recurrent_add_param(ns_ctx *ctx, ns_layer *l, int64_t rows, int64_t cols);
/* Checks the bottoms against the sizes fixed at setup (T and N may change)
 * and sets r->T and r->N; then (T + 1) N max(G, D) and N G fit in 64 bits. */
ns_status ns_recurrent_check(ns_ctx *ctx, ns_layer *l, ns_recurrent *r);
/* After ns_recurrent_check: shapes the tops and grows work area i to
 * sizes[i] floats (n of them). */
ns_status ns_recurrent_reshape(ns_ctx *ctx, ns_layer *l, ns_recurrent *r, const int64_t *sizes,
                               int n);
/* The initial state s (N * H) of this forward into dst: the exposed bottom,
 * or the carried one (zeros at first). */
void ns_recurrent_initial(const ns_layer *l, const ns_recurrent *r, int s, float *dst);
/* Keeps the final state s (N * H) for the next forward, or writes it to
 * its exposed top. */
void ns_recurrent_final(ns_layer *l, ns_recurrent *r, int s, const float *src);
/* The error when backward is asked for cont (Caffe's CHECK). */
ns_status ns_recurrent_check_down(ns_ctx *ctx, const ns_layer *l, const int *down);
void ns_recurrent_free(ns_ctx *ctx, ns_recurrent *r);

/* The input side both layers share, params 0 (W_x, (G, D)), 1 (b, (G)) and,
 * with x_static, 2 (W_static, (G, S)): gates (T * N, G) = x W_x^T + b, and
 * static_gates (N, G) = x_static W_static^T. */
void ns_recurrent_inputs(const ns_layer *l, const ns_recurrent *r, float *gates,
                         float *static_gates);
/* Its backward from the gates' gradient dgates (T * N, G): the params'
 * gradients, x's and x_static's where asked; static_work holds N * G. */
void ns_recurrent_inputs_back(ns_layer *l, const ns_recurrent *r, const float *dgates,
                              float *static_work, const int *down);
/* h_conted = h_prev * cont (N streams of H), Caffe's Scale on axis 0. */
void ns_recurrent_cont(const ns_recurrent *r, const float *h_prev, const float *cont, float *out);

/* y[m, n] (+)= x[m, k] W^T, W [n, k] (beta 0: overwrite, 1: add). */
void ns_rec_gemm_xwt(int64_t m, int64_t n, int64_t k, const float *x, const float *w, float beta,
                     float *y);
/* Backward of ns_rec_gemm_xwt: dW [n, k] += dy^T x, and dx [m, k] (+)= dy W
 * when dx is not NULL. */
void ns_rec_gemm_back(int64_t m, int64_t n, int64_t k, const float *dy, const float *x,
                      const float *w, float *dw, float *dx, float dx_beta);
/* db[n] += the column sums of dy [m, n]. */
void ns_rec_bias_back(int64_t m, int64_t n, const float *dy, float *db);

/* Caffe's activations (lstm_unit_layer.cpp writes tanh through sigmoid). */
static inline float ns_rec_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline float ns_rec_tanh(float x) { return 2.0f * ns_rec_sigmoid(2.0f * x) - 1.0f; }

/* One LSTM unit (Caffe's LSTMUnitLayer) over n streams of h cells.  x: the
 * gate inputs (n, 4h) in Caffe's order i, f, o, g; acts receives the
 * activated gates i = sigmoid, f = cont * sigmoid (0 where cont == 0),
 * o = sigmoid, g = tanh; c = f c_prev + i g, h = o tanh(c). */
void ns_lstm_unit_forward(int64_t n, int64_t h, const float *c_prev, const float *x,
                          const float *cont, float *acts, float *c, float *hout);
/* Its backward, from the activated gates: dx (n, 4h) the gate inputs'
 * gradient, dc_prev (may be NULL).  As Caffe, the forget gate's derivative
 * is f (1 - f), which is cont * sigmoid' for cont in {0, 1}. */
void ns_lstm_unit_backward(int64_t n, int64_t h, const float *c_prev, const float *acts,
                           const float *c, const float *dc, const float *dh, float *dx,
                           float *dc_prev);

#endif
