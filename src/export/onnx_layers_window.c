/* ONNX forms of the window and matrix layers: Convolution, Deconvolution,
 * InnerProduct, Pooling and LRN, with Caffe's arithmetic kept exact
 * (pooling's output size and AVE divisor in particular). */
#include <string.h>

#include "export/onnx_graph.h"
#include "export/onnx_layers.h"

/* kernel_shape, strides, pads (begin and end) and dilations of a 2-D window. */
static void window_attrs(ns_onnx *g, Onnx__NodeProto *n, const int64_t kernel[2],
                         const int64_t stride[2], const int64_t pad_begin[2],
                         const int64_t pad_end[2], const int64_t *dilation) {
  int64_t pads[4] = {pad_begin[0], pad_begin[1], pad_end[0], pad_end[1]};
  ns_onnx_attr_ints(g, n, "kernel_shape", 2, kernel);
  ns_onnx_attr_ints(g, n, "strides", 2, stride);
  ns_onnx_attr_ints(g, n, "pads", 4, pads);
  if (dilation) ns_onnx_attr_ints(g, n, "dilations", 2, dilation);
}

static const char *bias_of(ns_onnx *g, const ns_layer *l, int index) {
  if (l->n_params <= index) return NULL;
  const ns_blob *b = l->params[index];
  return ns_onnx_blob(g, l, "bias", b, 1, &b->count);
}

/* One node per bottom (Caffe's Convolution maps bottom i to top i with
 * the same weights); the first is named as the layer. */
static const char *node_name(ns_onnx *g, const ns_layer *l, int i) {
  return i == 0 ? NULL : ns_onnx_tmp(g, l, l->top[i]->name);
}

NS_ONNX_HOOK(convolution) {
  ns_layer_geometry geo;
  memset(&geo, 0, sizeof geo);
  if (l->ops->geometry) l->ops->geometry(l, &geo);
  if (geo.grid != NS_GRID_WINDOW)
    return ns_onnx_fail(g, l, "only 2-D convolutions over (N, C, H, W) at axis 1 are exported");
  const ns_blob *w = l->params[0];
  const char *in[3] = {NULL, ns_onnx_blob(g, l, "weight", w, w->num_axes, w->shape),
                       bias_of(g, l, 1)};
  for (int i = 0; i < l->n_bottom; i++) {
    in[0] = ns_onnx_in(g, l, i);
    const char *out = ns_onnx_out(g, l, i);
    Onnx__NodeProto *n = ns_onnx_node(g, l, node_name(g, l, i), "Conv", in[2] ? 3 : 2, in, 1, &out);
    window_attrs(g, n, geo.kernel, geo.stride, geo.pad, geo.pad, geo.dilation);
    /* from the shapes: ConvolutionDepthwise sets its own group */
    ns_onnx_attr_int(g, n, "group", l->bottom[i]->shape[1] / w->shape[1]);
  }
  return ns_onnx_status(g);
}

/* One spatial value of a ConvolutionParameter field: the _h/_w pair, or
 * the repeated field given once or per axis, or the default. */
static int64_t conv_field(size_t n, const uint32_t *v, int has_hw, uint32_t h, uint32_t w,
                          int axis, int64_t dflt) {
  if (has_hw) return axis ? w : h;
  if (n == 0) return dflt;
  return v[n == 1 ? 0 : axis];
}

NS_ONNX_HOOK(deconv) {
  const Caffe__ConvolutionParameter *p = l->param->convolution_param;
  const ns_blob *w = l->params[0];
  if (!p || w->num_axes != 4 || l->bottom[0]->num_axes != 4 || (p->has_axis && p->axis != 1))
    return ns_onnx_fail(g, l, "only 2-D deconvolutions over (N, C, H, W) are exported");
  int64_t kernel[2] = {w->shape[2], w->shape[3]}, stride[2], pad[2], dil[2];
  for (int a = 0; a < 2; a++) {
    stride[a] = conv_field(p->n_stride, p->stride, p->has_stride_h, p->stride_h, p->stride_w, a, 1);
    pad[a] = conv_field(p->n_pad, p->pad, p->has_pad_h, p->pad_h, p->pad_w, a, 0);
    dil[a] = conv_field(p->n_dilation, p->dilation, 0, 0, 0, a, 1);
  }
  const char *in[3] = {NULL, ns_onnx_blob(g, l, "weight", w, 4, w->shape), bias_of(g, l, 1)};
  for (int i = 0; i < l->n_bottom; i++) {
    in[0] = ns_onnx_in(g, l, i);
    const char *out = ns_onnx_out(g, l, i);
    Onnx__NodeProto *n =
        ns_onnx_node(g, l, node_name(g, l, i), "ConvTranspose", in[2] ? 3 : 2, in, 1, &out);
    window_attrs(g, n, kernel, stride, pad, pad, dil);
    ns_onnx_attr_int(g, n, "group", p->has_group ? p->group : 1);
  }
  return ns_onnx_status(g);
}

/* y = x W^T + b over x's axes from `axis` on, flattened.  At axis 1:
 * Flatten + Gemm.  Elsewhere: Reshape keeping the leading axes, MatMul
 * (with W transposed unless Caffe's transpose already stores W^T), Add. */
NS_ONNX_HOOK(inner_product) {
  const Caffe__InnerProductParameter *p = l->param->inner_product_param;
  const ns_blob *x = l->bottom[0], *w = l->params[0];
  int axis = p && p->has_axis ? p->axis : 1;
  if (axis < 0) axis += x->num_axes;
  int transpose = p && p->has_transpose && p->transpose;
  const char *weight = ns_onnx_blob(g, l, "weight", w, 2, w->shape);
  const char *bias = bias_of(g, l, 1);
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  if (axis == 1) {
    const char *flat = ns_onnx_tmp(g, l, "flatten");
    Onnx__NodeProto *f = ns_onnx_node1(g, l, flat, "Flatten", in, flat);
    ns_onnx_attr_int(g, f, "axis", 1);
    const char *gin[3] = {flat, weight, bias};
    Onnx__NodeProto *n = ns_onnx_node(g, l, NULL, "Gemm", bias ? 3 : 2, gin, 1, &out);
    ns_onnx_attr_int(g, n, "transB", !transpose);
    return ns_onnx_status(g);
  }
  int64_t shape[NS_MAX_AXES + 1];
  for (int a = 0; a < axis; a++) shape[a] = 0; /* ONNX Reshape: 0 copies the axis */
  shape[axis] = -1;
  const char *rin[2] = {in, ns_onnx_int64s(g, l, "shape", axis + 1, shape)};
  const char *flat = ns_onnx_tmp(g, l, "reshape");
  ns_onnx_node(g, l, flat, "Reshape", 2, rin, 1, &flat);
  const char *wt = weight;
  if (!transpose) {
    wt = ns_onnx_tmp(g, l, "weight_t");
    ns_onnx_node1(g, l, wt, "Transpose", weight, wt);
  }
  const char *mm[2] = {flat, wt};
  const char *prod = bias ? ns_onnx_tmp(g, l, "matmul") : out;
  ns_onnx_node(g, l, bias ? prod : NULL, "MatMul", 2, mm, 1, &prod);
  if (bias) {
    const char *add[2] = {prod, bias};
    ns_onnx_node(g, l, NULL, "Add", 2, add, 1, &out);
  }
  return ns_onnx_status(g);
}

/* Caffe's AVE divides by the window clipped to the padded image
 * [-pad, size + pad); the ONNX pool below divides by the whole window
 * (its end padding reaches the last window's end).  Where they differ a
 * per-cell factor k_h k_w / Caffe's divisor follows; NULL when all are 1. */
static const char *ave_factor(ns_onnx *g, const ns_layer *l, const ns_layer_geometry *geo) {
  const ns_blob *x = l->bottom[0], *y = l->top[0];
  int64_t oh = y->shape[2], ow = y->shape[3], size[2] = {x->shape[2], x->shape[3]};
  int any = 0;
  for (int a = 0; a < 2; a++) {
    int64_t last = (a ? ow : oh) - 1;
    any |= last * geo->stride[a] - geo->pad[a] + geo->kernel[a] > size[a] + geo->pad[a];
  }
  if (!any) return NULL;
  int64_t dims[4] = {1, 1, oh, ow};
  const char *name;
  float *f = ns_onnx_floats(g, l, "divisor", 4, dims, &name);
  if (!f) return name;
  for (int64_t i = 0; i < oh; i++)
    for (int64_t j = 0; j < ow; j++) {
      int64_t h0 = i * geo->stride[0] - geo->pad[0], w0 = j * geo->stride[1] - geo->pad[1];
      int64_t h1 = h0 + geo->kernel[0], w1 = w0 + geo->kernel[1];
      if (h1 > size[0] + geo->pad[0]) h1 = size[0] + geo->pad[0];
      if (w1 > size[1] + geo->pad[1]) w1 = size[1] + geo->pad[1];
      f[i * ow + j] = (float)((double)(geo->kernel[0] * geo->kernel[1]) /
                              (double)((h1 - h0) * (w1 - w0)));
    }
  return name;
}

/* Caffe's output size (ceil rounding, a last window starting in the
 * padding dropped) is the top's; ONNX gets it with floor rounding and an
 * end padding that makes the last window end where Caffe's does. */
NS_ONNX_HOOK(pooling) {
  const Caffe__PoolingParameter *p = l->param->pooling_param;
  int method = p && p->has_pool ? (int)p->pool : 0;
  if (method != CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX &&
      method != CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE)
    return ns_onnx_fail(g, l, "STOCHASTIC pooling has no ONNX form");
  if (l->n_top > 1) return ns_onnx_fail(g, l, "MAX pooling's mask top has no ONNX form");
  ns_layer_geometry geo;
  memset(&geo, 0, sizeof geo);
  l->ops->geometry(l, &geo);
  int max = method == CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX;
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  if (geo.grid == NS_GRID_GLOBAL) {
    ns_onnx_node1(g, l, NULL, max ? "GlobalMaxPool" : "GlobalAveragePool", in, out);
    return ns_onnx_status(g);
  }
  const ns_blob *x = l->bottom[0], *y = l->top[0];
  int64_t end_pad[2];
  for (int a = 0; a < 2; a++) {
    int64_t last_start = (y->shape[2 + a] - 1) * geo.stride[a] - geo.pad[a];
    if (last_start >= x->shape[2 + a])
      return ns_onnx_fail(g, l, "its last window starts past the input (%s %lld, stride %lld)",
                          a ? "width" : "height", (long long)x->shape[2 + a],
                          (long long)geo.stride[a]);
    end_pad[a] = last_start + geo.kernel[a] - x->shape[2 + a];
    if (end_pad[a] < 0) end_pad[a] = 0; /* floor rounding: the tail is left out */
  }
  const char *factor = max ? NULL : ave_factor(g, l, &geo);
  const char *pooled = factor ? ns_onnx_tmp(g, l, "pool") : out;
  Onnx__NodeProto *n =
      ns_onnx_node1(g, l, factor ? pooled : NULL, max ? "MaxPool" : "AveragePool", in, pooled);
  window_attrs(g, n, geo.kernel, geo.stride, geo.pad, end_pad, NULL);
  if (!max) ns_onnx_attr_int(g, n, "count_include_pad", 1);
  if (factor) {
    const char *mul[2] = {pooled, factor};
    ns_onnx_node(g, l, NULL, "Mul", 2, mul, 1, &out);
  }
  return ns_onnx_status(g);
}

/* ACROSS_CHANNELS is ONNX's LRN exactly (both divide alpha by size).
 * WITHIN_CHANNEL: x / (1 + alpha avg_{size x size}(x^2))^beta, the
 * average over the window zero-padded by (size - 1) / 2, as Caffe's. */
NS_ONNX_HOOK(lrn) {
  const Caffe__LRNParameter *p = l->param->lrn_param;
  int64_t size = p && p->has_local_size ? p->local_size : 5;
  float alpha = p && p->has_alpha ? p->alpha : 1.0f, beta = p && p->has_beta ? p->beta : 0.75f;
  float k = p && p->has_k ? p->k : 1.0f;
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  if (!(p && p->has_norm_region &&
        p->norm_region == CAFFE__LRNPARAMETER__NORM_REGION__WITHIN_CHANNEL)) {
    Onnx__NodeProto *n = ns_onnx_node1(g, l, NULL, "LRN", in, out);
    ns_onnx_attr_int(g, n, "size", size);
    ns_onnx_attr_float(g, n, "alpha", alpha);
    ns_onnx_attr_float(g, n, "beta", beta);
    ns_onnx_attr_float(g, n, "bias", k);
    return ns_onnx_status(g);
  }
  const char *sq = ns_onnx_tmp(g, l, "square"), *avg = ns_onnx_tmp(g, l, "average");
  const char *sc = ns_onnx_tmp(g, l, "scale"), *den = ns_onnx_tmp(g, l, "denominator");
  const char *two[2] = {in, in};
  ns_onnx_node(g, l, sq, "Mul", 2, two, 1, &sq);
  Onnx__NodeProto *pool = ns_onnx_node1(g, l, avg, "AveragePool", sq, avg);
  int64_t kernel[2] = {size, size}, stride[2] = {1, 1}, pad[2] = {(size - 1) / 2, (size - 1) / 2};
  window_attrs(g, pool, kernel, stride, pad, pad, NULL);
  ns_onnx_attr_int(g, pool, "count_include_pad", 1);
  const char *mul[2] = {avg, ns_onnx_scalar(g, l, "alpha", alpha)};
  const char *scaled = ns_onnx_tmp(g, l, "scaled");
  ns_onnx_node(g, l, scaled, "Mul", 2, mul, 1, &scaled);
  const char *add[2] = {scaled, ns_onnx_scalar(g, l, "one", 1.0f)};
  ns_onnx_node(g, l, sc, "Add", 2, add, 1, &sc);
  const char *pw[2] = {sc, ns_onnx_scalar(g, l, "beta", beta)};
  ns_onnx_node(g, l, den, "Pow", 2, pw, 1, &den);
  const char *div[2] = {in, den};
  ns_onnx_node(g, l, NULL, "Div", 2, div, 1, &out);
  return ns_onnx_status(g);
}
