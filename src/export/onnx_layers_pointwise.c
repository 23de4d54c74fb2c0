/* ONNX forms of the element-wise and per-channel layers.  Caffe's
 * parameters are read with Caffe's defaults; operands that broadcast
 * from an axis get trailing 1s so that ONNX's numpy broadcasting lines
 * them up where Caffe does. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "export/onnx_graph.h"
#include "export/onnx_layers.h"

/* x -> op(x), one node named as the layer. */
static ns_status unary(ns_onnx *g, const ns_layer *l, const char *op) {
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  ns_onnx_node1(g, l, NULL, op, in, out);
  return ns_onnx_status(g);
}

/* The value a helper node makes with the constant "<layer>/<tag>":
 * "<layer>/<tag>_out", apart from the constant's own name. */
static const char *output_of(ns_onnx *g, const ns_layer *l, const char *tag) {
  char name[64];
  snprintf(name, sizeof name, "%s_out", tag);
  return ns_onnx_tmp(g, l, name);
}

/* x * a (skipped when a is 1; into `out` when given). */
static const char *mul_const(ns_onnx *g, const ns_layer *l, const char *x, float a,
                             const char *tag, const char *out) {
  if (a == 1.0f && !out) return x;
  const char *in[2] = {x, ns_onnx_scalar(g, l, tag, a)};
  const char *y = out ? out : output_of(g, l, tag);
  ns_onnx_node(g, l, out ? NULL : y, "Mul", 2, in, 1, &y);
  return y;
}

static const char *add_const(ns_onnx *g, const ns_layer *l, const char *x, float a,
                             const char *tag) {
  if (a == 0.0f) return x;
  const char *in[2] = {x, ns_onnx_scalar(g, l, tag, a)};
  const char *y = output_of(g, l, tag);
  ns_onnx_node(g, l, y, "Add", 2, in, 1, &y);
  return y;
}

NS_ONNX_HOOK(relu) {
  const Caffe__ReLUParameter *p = l->param->relu_param;
  float slope = p && p->has_negative_slope ? p->negative_slope : 0.0f;
  if (slope == 0.0f) return unary(g, l, "Relu");
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  ns_onnx_attr_float(g, ns_onnx_node1(g, l, NULL, "LeakyRelu", in, out), "alpha", slope);
  return ns_onnx_status(g);
}

NS_ONNX_HOOK(sigmoid) { return unary(g, l, "Sigmoid"); }
NS_ONNX_HOOK(tanh) { return unary(g, l, "Tanh"); }
NS_ONNX_HOOK(absval) { return unary(g, l, "Abs"); }
NS_ONNX_HOOK(bnll) { return unary(g, l, "Softplus"); } /* log(1 + e^x) */
/* Dropout computes nothing at test time (Caffe scales while training). */
NS_ONNX_HOOK(dropout) { return unary(g, l, "Identity"); }

NS_ONNX_HOOK(elu) {
  const Caffe__ELUParameter *p = l->param->elu_param;
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  ns_onnx_attr_float(g, ns_onnx_node1(g, l, NULL, "Elu", in, out), "alpha",
                     p && p->has_alpha ? p->alpha : 1.0f);
  return ns_onnx_status(g);
}

/* (shift + scale x)^power */
NS_ONNX_HOOK(power) {
  const Caffe__PowerParameter *p = l->param->power_param;
  float power = p && p->has_power ? p->power : 1.0f, scale = p && p->has_scale ? p->scale : 1.0f;
  float shift = p && p->has_shift ? p->shift : 0.0f;
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  const char *x = add_const(g, l, mul_const(g, l, in, scale, "scale", NULL), shift, "shift");
  const char *pw[2] = {x, ns_onnx_scalar(g, l, "power", power)};
  ns_onnx_node(g, l, NULL, power == 1.0f ? "Identity" : "Pow", power == 1.0f ? 1 : 2, pw, 1, &out);
  return ns_onnx_status(g);
}

/* base^(shift + scale x) = base^shift * e^(ln(base) scale x), as Caffe
 * computes it; base -1 is e. */
NS_ONNX_HOOK(exp) {
  const Caffe__ExpParameter *p = l->param->exp_param;
  float base = p && p->has_base ? p->base : -1.0f, scale = p && p->has_scale ? p->scale : 1.0f;
  float shift = p && p->has_shift ? p->shift : 0.0f;
  double log_base = base == -1.0f ? 1.0 : log(base);
  float outer = shift == 0.0f ? 1.0f : (float)(base == -1.0f ? exp(shift) : pow(base, shift));
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  const char *x = mul_const(g, l, in, (float)(log_base * scale), "inner_scale", NULL);
  const char *e = outer == 1.0f ? out : ns_onnx_tmp(g, l, "exp");
  ns_onnx_node1(g, l, outer == 1.0f ? NULL : e, "Exp", x, e);
  if (outer != 1.0f) mul_const(g, l, e, outer, "outer_scale", out);
  return ns_onnx_status(g);
}

/* log_base(shift + scale x) = ln(shift + scale x) / ln(base). */
NS_ONNX_HOOK(log) {
  const Caffe__LogParameter *p = l->param->log_param;
  float base = p && p->has_base ? p->base : -1.0f, scale = p && p->has_scale ? p->scale : 1.0f;
  float shift = p && p->has_shift ? p->shift : 0.0f;
  float base_scale = base == -1.0f ? 1.0f : (float)(1.0 / log(base));
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  const char *x = add_const(g, l, mul_const(g, l, in, scale, "scale", NULL), shift, "shift");
  const char *y = base_scale == 1.0f ? out : ns_onnx_tmp(g, l, "ln");
  ns_onnx_node1(g, l, base_scale == 1.0f ? NULL : y, "Log", x, y);
  if (base_scale != 1.0f) mul_const(g, l, y, base_scale, "base_scale", out);
  return ns_onnx_status(g);
}

NS_ONNX_HOOK(clip) {
  const Caffe__ClipParameter *p = l->param->clip_param;
  const char *in[3] = {ns_onnx_in(g, l, 0), ns_onnx_scalar(g, l, "min", p->min),
                       ns_onnx_scalar(g, l, "max", p->max)};
  const char *out = ns_onnx_out(g, l, 0);
  ns_onnx_node(g, l, NULL, "Clip", 3, in, 1, &out);
  return ns_onnx_status(g);
}

/* An operand of `n` axes applied at `axis` of x: its dims, then 1s to
 * x's last axis.  Returns the rank. */
static int broadcast_dims(const ns_blob *x, int axis, const ns_blob *op, int64_t *dims) {
  int rank = 0;
  if (op->num_axes == 0) return 0; /* a scalar broadcasts everywhere */
  for (int i = 0; i < op->num_axes; i++) dims[rank++] = op->shape[i];
  for (int i = axis + op->num_axes; i < x->num_axes; i++) dims[rank++] = 1;
  return rank;
}

NS_ONNX_HOOK(prelu) {
  const ns_blob *x = l->bottom[0], *slope = l->params[0];
  int64_t dims[NS_MAX_AXES];
  int rank = slope->count == 1 ? 1 : broadcast_dims(x, 1, slope, dims);
  if (slope->count == 1) dims[0] = 1;
  const char *in[2] = {ns_onnx_in(g, l, 0), ns_onnx_blob(g, l, "slope", slope, rank, dims)};
  const char *out = ns_onnx_out(g, l, 0);
  ns_onnx_node(g, l, NULL, "PRelu", 2, in, 1, &out);
  return ns_onnx_status(g);
}

NS_ONNX_HOOK(softmax) {
  const Caffe__SoftmaxParameter *p = l->param->softmax_param;
  int axis = p && p->has_axis ? p->axis : 1, rank = l->bottom[0]->num_axes;
  if (axis < 0) axis += rank;
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  if (ns_onnx_opset(g) >= 13 || axis == rank - 1) {
    ns_onnx_attr_int(g, ns_onnx_node1(g, l, NULL, "Softmax", in, out), "axis", axis);
    return ns_onnx_status(g);
  }
  /* Before opset 13 Softmax normalises over all the axes from `axis` on:
   * the axis goes last, and back. */
  int64_t perm[NS_MAX_AXES], back[NS_MAX_AXES];
  for (int i = 0, k = 0; i < rank; i++)
    if (i != axis) perm[k++] = i;
  perm[rank - 1] = axis;
  for (int i = 0; i < rank; i++) back[perm[i]] = i;
  const char *moved = ns_onnx_tmp(g, l, "axis_last"), *sm = ns_onnx_tmp(g, l, "softmax");
  ns_onnx_attr_ints(g, ns_onnx_node1(g, l, moved, "Transpose", in, moved), "perm", rank, perm);
  ns_onnx_attr_int(g, ns_onnx_node1(g, l, sm, "Softmax", moved, sm), "axis", rank - 1);
  ns_onnx_attr_ints(g, ns_onnx_node1(g, l, NULL, "Transpose", sm, out), "perm", rank, back);
  return ns_onnx_status(g);
}

/* Caffe keeps sums and a scale factor: the statistics are the sums
 * divided by it (0 when it is 0). */
NS_ONNX_HOOK(batchnorm) {
  const Caffe__BatchNormParameter *p = l->param->batch_norm_param;
  int global = p && p->has_use_global_stats ? p->use_global_stats : !ns_layer_phase_train(l);
  if (!global)
    return ns_onnx_fail(g, l, "use_global_stats false normalises by the batch's own statistics; "
                              "ONNX BatchNormalization uses stored ones");
  int64_t c = l->params[0]->count;
  float factor = l->params[2]->data[0], inv = factor == 0.0f ? 0.0f : 1.0f / factor;
  const char *names[4];
  float *scale = ns_onnx_floats(g, l, "scale", 1, &c, &names[0]);
  float *bias = ns_onnx_floats(g, l, "bias", 1, &c, &names[1]);
  float *mean = ns_onnx_floats(g, l, "mean", 1, &c, &names[2]);
  float *var = ns_onnx_floats(g, l, "variance", 1, &c, &names[3]);
  if (!scale || !bias || !mean || !var) return ns_onnx_status(g);
  for (int64_t i = 0; i < c; i++) {
    scale[i] = 1.0f;
    bias[i] = 0.0f;
    mean[i] = l->params[0]->data[i] * inv;
    var[i] = l->params[1]->data[i] * inv;
  }
  const char *in[5] = {ns_onnx_in(g, l, 0), names[0], names[1], names[2], names[3]};
  const char *out = ns_onnx_out(g, l, 0);
  Onnx__NodeProto *n = ns_onnx_node(g, l, NULL, "BatchNormalization", 5, in, 1, &out);
  ns_onnx_attr_float(g, n, "epsilon", p && p->has_eps ? p->eps : 1e-5f);
  return ns_onnx_status(g);
}

static int resolve_axis(int axis, const ns_blob *x) { return axis < 0 ? axis + x->num_axes : axis; }

/* An operand as a value broadcasting at `axis`: a param as an
 * initializer of those dims, a bottom through Reshape. */
static const char *operand(ns_onnx *g, const ns_layer *l, const char *tag, int axis,
                           const ns_blob *param, int bottom) {
  const ns_blob *x = l->bottom[0];
  int64_t dims[NS_MAX_AXES];
  if (param) return ns_onnx_blob(g, l, tag, param, broadcast_dims(x, axis, param, dims), dims);
  const ns_blob *op = l->bottom[bottom];
  int rank = broadcast_dims(x, axis, op, dims);
  if (rank == 0) return ns_onnx_in(g, l, bottom);
  if (axis == 0 && ns_onnx_dynamic_batch(g)) dims[0] = 0; /* Reshape's 0: copy the batch */
  const char *in[2] = {ns_onnx_in(g, l, bottom), ns_onnx_int64s(g, l, "operand_shape", rank, dims)};
  const char *y = ns_onnx_tmp(g, l, tag);
  ns_onnx_node(g, l, y, "Reshape", 2, in, 1, &y);
  return y;
}

NS_ONNX_HOOK(scale) {
  const Caffe__ScaleParameter *p = l->param->scale_param;
  const ns_blob *x = l->bottom[0];
  int axis = resolve_axis(p && p->has_axis ? p->axis : 1, x);
  int from_bottom = l->n_bottom > 1;
  const char *s = operand(g, l, "scale", axis, from_bottom ? NULL : l->params[0], 1);
  int bias_index = from_bottom ? 0 : 1;
  const char *b = l->n_params > bias_index
                      ? operand(g, l, "bias", axis, l->params[bias_index], 0)
                      : NULL;
  const char *mul[2] = {ns_onnx_in(g, l, 0), s};
  const char *out = ns_onnx_out(g, l, 0);
  const char *prod = b ? ns_onnx_tmp(g, l, "product") : out;
  ns_onnx_node(g, l, b ? prod : NULL, "Mul", 2, mul, 1, &prod);
  if (b) {
    const char *add[2] = {prod, b};
    ns_onnx_node(g, l, NULL, "Add", 2, add, 1, &out);
  }
  return ns_onnx_status(g);
}

NS_ONNX_HOOK(bias) {
  const Caffe__BiasParameter *p = l->param->bias_param;
  int axis = resolve_axis(p && p->has_axis ? p->axis : 1, l->bottom[0]);
  const char *b = operand(g, l, "bias", axis, l->n_bottom > 1 ? NULL : l->params[0], 1);
  const char *add[2] = {ns_onnx_in(g, l, 0), b};
  const char *out = ns_onnx_out(g, l, 0);
  ns_onnx_node(g, l, NULL, "Add", 2, add, 1, &out);
  return ns_onnx_status(g);
}
