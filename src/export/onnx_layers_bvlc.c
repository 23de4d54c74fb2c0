/* ONNX forms of the rest of BVLC Caffe's compute layers: Threshold, Tile,
 * Reduction, MVN, Swish, Parameter, Embed and Silence.  Each is written
 * from the layer's forward in src/layers (the formula in its header
 * comment); none needs an approximation. */
#include <string.h>

#include "export/onnx_graph.h"
#include "export/onnx_layers.h"

/* x > threshold as 1 or 0 (a NaN compares false: 0, as Caffe). */
NS_ONNX_HOOK(threshold) {
  const Caffe__ThresholdParameter *p = l->param->threshold_param;
  const char *in[2] = {ns_onnx_in(g, l, 0),
                       ns_onnx_scalar(g, l, "threshold", p && p->has_threshold ? p->threshold : 0)};
  const char *above = ns_onnx_tmp(g, l, "above"), *out = ns_onnx_out(g, l, 0);
  ns_onnx_node(g, l, above, "Greater", 2, in, 1, &above);
  Onnx__NodeProto *c = ns_onnx_node1(g, l, NULL, "Cast", above, out);
  ns_onnx_attr_int(g, c, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  return ns_onnx_status(g);
}

/* Caffe repeats each block from `axis` on `tiles` times in a row, which
 * is ONNX Tile with that repeat on the axis and 1 elsewhere. */
NS_ONNX_HOOK(tile) {
  const Caffe__TileParameter *p = l->param->tile_param;
  const ns_blob *x = l->bottom[0];
  int axis = p->has_axis ? p->axis : 1;
  if (axis < 0) axis += x->num_axes;
  int64_t repeats[NS_MAX_AXES];
  for (int i = 0; i < x->num_axes; i++) repeats[i] = i == axis ? p->tiles : 1;
  const char *in[2] = {ns_onnx_in(g, l, 0), ns_onnx_int64s(g, l, "repeats", x->num_axes, repeats)};
  const char *out = ns_onnx_out(g, l, 0);
  ns_onnx_node(g, l, NULL, "Tile", 2, in, 1, &out);
  return ns_onnx_status(g);
}

/* coeff times the SUM, ASUM (L1), SUMSQ or MEAN of the axes from `axis`
 * on, which go (keepdims 0). */
NS_ONNX_HOOK(reduction) {
  const Caffe__ReductionParameter *p = l->param->reduction_param;
  const ns_blob *x = l->bottom[0];
  int axis = p && p->has_axis ? p->axis : 0;
  if (axis < 0) axis += x->num_axes;
  int op =
      p && p->has_operation ? (int)p->operation : CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__SUM;
  const char *kind = op == CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__ASUM    ? "ReduceL1"
                     : op == CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__SUMSQ ? "ReduceSumSquare"
                     : op == CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__MEAN  ? "ReduceMean"
                                                                             : "ReduceSum";
  float coeff = p && p->has_coeff ? p->coeff : 1.0f;
  int64_t axes[NS_MAX_AXES];
  int n = 0;
  for (int i = axis; i < x->num_axes; i++) axes[n++] = i;
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  if (n == 0) /* nothing to reduce: ONNX would reduce every axis */
    return ns_onnx_fail(g, l, "axis %d is past the bottom's last axis", axis);
  const char *r = ns_onnx_reduce(g, l, "reduced", kind, in, n, axes, 0, coeff == 1.0f ? out : NULL);
  if (coeff != 1.0f) {
    const char *mul[2] = {r, ns_onnx_scalar(g, l, "coeff", coeff)};
    ns_onnx_node(g, l, NULL, "Mul", 2, mul, 1, &out);
  }
  return ns_onnx_status(g);
}

/* Caffe's MVN: the bottom seen as (N, C, H, W) (the top's shape), rows of
 * (H, W) or, across channels, (C, H, W); y = x - mean, then divided by
 * the standard deviation plus eps (eps outside the root). */
NS_ONNX_HOOK(mvn) {
  const Caffe__MVNParameter *p = l->param->mvn_param;
  int across = p && p->has_across_channels && p->across_channels;
  int normalize = p && p->has_normalize_variance ? p->normalize_variance : 1;
  float eps = p && p->has_eps ? p->eps : 1e-9f;
  const ns_blob *y = l->top[0];
  int64_t shape[4], axes[3] = {1, 2, 3};
  for (int i = 0; i < 4; i++) shape[i] = y->shape[i];
  if (ns_onnx_dynamic_batch(g)) shape[0] = 0;
  const char *rin[2] = {ns_onnx_in(g, l, 0), ns_onnx_int64s(g, l, "shape", 4, shape)};
  const char *x = ns_onnx_tmp(g, l, "nchw"), *out = ns_onnx_out(g, l, 0);
  ns_onnx_node(g, l, x, "Reshape", 2, rin, 1, &x);
  const int64_t *row = across ? axes : axes + 1;
  int n_row = across ? 3 : 2;
  const char *mean = ns_onnx_reduce(g, l, "mean", "ReduceMean", x, n_row, row, 1, NULL);
  const char *sub[2] = {x, mean}, *d = normalize ? ns_onnx_tmp(g, l, "centred") : out;
  ns_onnx_node(g, l, normalize ? d : NULL, "Sub", 2, sub, 1, &d);
  if (!normalize) return ns_onnx_status(g);
  const char *sq[2] = {d, d}, *d2 = ns_onnx_tmp(g, l, "squared");
  ns_onnx_node(g, l, d2, "Mul", 2, sq, 1, &d2);
  const char *var = ns_onnx_reduce(g, l, "variance", "ReduceMean", d2, n_row, row, 1, NULL);
  const char *sd = ns_onnx_tmp(g, l, "sd"), *sde = ns_onnx_tmp(g, l, "sd_eps");
  ns_onnx_node1(g, l, sd, "Sqrt", var, sd);
  const char *add[2] = {sd, ns_onnx_scalar(g, l, "eps", eps)};
  ns_onnx_node(g, l, sde, "Add", 2, add, 1, &sde);
  const char *div[2] = {d, sde};
  ns_onnx_node(g, l, NULL, "Div", 2, div, 1, &out);
  return ns_onnx_status(g);
}

/* x sigmoid(beta x). */
NS_ONNX_HOOK(swish) {
  const Caffe__SwishParameter *p = l->param->swish_param;
  float beta = p && p->has_beta ? p->beta : 1.0f;
  const char *x = ns_onnx_in(g, l, 0), *bx = x;
  if (beta != 1.0f) {
    const char *mul[2] = {x, ns_onnx_scalar(g, l, "beta", beta)};
    bx = ns_onnx_tmp(g, l, "beta_x");
    ns_onnx_node(g, l, bx, "Mul", 2, mul, 1, &bx);
  }
  const char *sig = ns_onnx_tmp(g, l, "sigmoid"), *out = ns_onnx_out(g, l, 0);
  ns_onnx_node1(g, l, sig, "Sigmoid", bx, sig);
  const char *mul[2] = {x, sig};
  ns_onnx_node(g, l, NULL, "Mul", 2, mul, 1, &out);
  return ns_onnx_status(g);
}

/* The layer's one param as its top: an initializer. */
NS_ONNX_HOOK(parameter) {
  const ns_blob *w = l->params[0];
  const char *in = ns_onnx_blob(g, l, "value", w, w->num_axes, w->shape);
  ns_onnx_node1(g, l, NULL, "Identity", in, ns_onnx_out(g, l, 0));
  return ns_onnx_status(g);
}

/* Row (int)x of the (input_dim, num_output) weights, plus the bias: the
 * float indices cast to int64 (truncation, as Caffe's static_cast). */
NS_ONNX_HOOK(embed) {
  const Caffe__EmbedParameter *p = l->param->embed_param;
  int bias = p->has_bias_term ? p->bias_term : 1;
  const ns_blob *w = l->params[0];
  const char *idx = ns_onnx_tmp(g, l, "index"), *out = ns_onnx_out(g, l, 0);
  Onnx__NodeProto *c = ns_onnx_node1(g, l, idx, "Cast", ns_onnx_in(g, l, 0), idx);
  ns_onnx_attr_int(g, c, "to", ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
  const char *gin[2] = {ns_onnx_blob(g, l, "weight", w, 2, w->shape), idx};
  const char *rows = bias ? ns_onnx_tmp(g, l, "rows") : out;
  ns_onnx_attr_int(g, ns_onnx_node(g, l, bias ? rows : NULL, "Gather", 2, gin, 1, &rows), "axis",
                   0);
  if (bias) {
    const ns_blob *b = l->params[1];
    const char *add[2] = {rows, ns_onnx_blob(g, l, "bias", b, 1, &b->count)};
    ns_onnx_node(g, l, NULL, "Add", 2, add, 1, &out);
  }
  return ns_onnx_status(g);
}

/* Silence computes nothing and has no top: no node. */
NS_ONNX_HOOK(silence) {
  (void)l;
  return ns_onnx_status(g);
}
