/* ONNX forms of the forks' layers (Interp, Upsample, ShuffleChannel,
 * Axpy, BN, ReLU6) and of the SSD fork's Normalize, Permute and PriorBox.
 * Each follows the formula in its layer's header comment in src/layers;
 * the layers whose outputs ONNX cannot compute the same way fail naming
 * the layer (SegNet's mask unpooling, BN with batch statistics). */
#include <stdio.h>
#include <string.h>

#include "export/onnx_graph.h"
#include "export/onnx_layers.h"

/* Reshape x to `dims` (rank n), axis 0 copied (0) for a dynamic batch. */
static const char *reshape(ns_onnx *g, const ns_layer *l, const char *tag, const char *x, int n,
                           const int64_t *dims, const char *out) {
  int64_t d[NS_MAX_AXES + 2];
  memcpy(d, dims, sizeof *d * (size_t)n);
  if (ns_onnx_dynamic_batch(g)) d[0] = 0;
  char shape_tag[64];
  snprintf(shape_tag, sizeof shape_tag, "%s_shape", tag);
  const char *in[2] = {x, ns_onnx_int64s(g, l, shape_tag, n, d)};
  const char *y = out ? out : ns_onnx_tmp(g, l, tag);
  ns_onnx_node(g, l, out ? NULL : y, "Reshape", 2, in, 1, &y);
  return y;
}

/* Bilinear with the corners of both grids aligned: ONNX Resize, linear,
 * coordinate_transformation_mode align_corners (x_in = x_out (in - 1) /
 * (out - 1)), after Slice crops the fork's pad_beg / pad_end (<= 0).  The
 * output size goes in as `sizes`, the batch and channels read by Shape
 * so that the batch may stay symbolic. */
NS_ONNX_HOOK(interp) {
  const Caffe__InterpParameter *p = l->param->interp_param;
  const ns_blob *x = l->bottom[0], *y = l->top[0];
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  if (p->pad_beg != 0 || p->pad_end != 0) {
    int64_t starts[2] = {-p->pad_beg, -p->pad_beg};
    int64_t ends[2] = {x->shape[2] + p->pad_end, x->shape[3] + p->pad_end}, axes[2] = {2, 3};
    const char *sin[4] = {in, ns_onnx_int64s(g, l, "starts", 2, starts),
                          ns_onnx_int64s(g, l, "ends", 2, ends),
                          ns_onnx_int64s(g, l, "axes", 2, axes)};
    const char *cropped = ns_onnx_tmp(g, l, "cropped");
    ns_onnx_node(g, l, cropped, "Slice", 4, sin, 1, &cropped);
    in = cropped;
  }
  const char *shape = ns_onnx_tmp(g, l, "shape"), *nc = ns_onnx_tmp(g, l, "batch_channels");
  const char *sizes = ns_onnx_tmp(g, l, "sizes");
  ns_onnx_node1(g, l, shape, "Shape", in, shape);
  int64_t zero = 0, two = 2, hw[2] = {y->shape[2], y->shape[3]};
  const char *sl[3] = {shape, ns_onnx_int64s(g, l, "zero", 1, &zero),
                       ns_onnx_int64s(g, l, "two", 1, &two)};
  ns_onnx_node(g, l, nc, "Slice", 3, sl, 1, &nc);
  const char *cat[2] = {nc, ns_onnx_int64s(g, l, "out_hw", 2, hw)};
  ns_onnx_attr_int(g, ns_onnx_node(g, l, sizes, "Concat", 2, cat, 1, &sizes), "axis", 0);
  int64_t none = 0;
  const char *empty = NULL;
  ns_onnx_floats(g, l, "no_scales", 1, &none, &empty);
  const char *rin[4] = {in, empty, empty, sizes};
  Onnx__NodeProto *n = ns_onnx_node(g, l, NULL, "Resize", 4, rin, 1, &out);
  ns_onnx_attr_string(g, n, "mode", "linear");
  ns_onnx_attr_string(g, n, "coordinate_transformation_mode", "align_corners");
  return ns_onnx_status(g);
}

/* YOLO's nearest neighbour by an integer scale s: each value repeated in
 * an s x s block, built exactly as (N, C, H, 1, W, 1) times ones
 * (1, 1, 1, s, 1, s), reshaped to (N, C, H s, W s); no coordinate
 * arithmetic that could round. */
NS_ONNX_HOOK(upsample) {
  if (l->n_bottom == 2)
    return ns_onnx_fail(g, l,
                        "SegNet's unpooling reads MAX Pooling's mask top, which is not "
                        "exported");
  const ns_blob *x = l->bottom[0], *y = l->top[0];
  int64_t s_h = y->shape[2] / x->shape[2], s_w = y->shape[3] / x->shape[3];
  int64_t six[6] = {x->shape[0], x->shape[1], x->shape[2], 1, x->shape[3], 1};
  int64_t block[6] = {1, 1, 1, s_h, 1, s_w};
  const char *x6 = reshape(g, l, "split_axes", ns_onnx_in(g, l, 0), 6, six, NULL);
  const char *out = ns_onnx_out(g, l, 0);
  float *ones = NULL;
  const char *ones_name = NULL;
  ones = ns_onnx_floats(g, l, "block", 6, block, &ones_name);
  if (ones)
    for (int64_t i = 0; i < s_h * s_w; i++) ones[i] = 1.0f;
  const char *mul[2] = {x6, ones_name}, *rep = ns_onnx_tmp(g, l, "repeated");
  ns_onnx_node(g, l, rep, "Mul", 2, mul, 1, &rep);
  reshape(g, l, "merged", rep, 4, y->shape, out);
  return ns_onnx_status(g);
}

/* (N, group, C / group, rest) transposed to (N, C / group, group, rest). */
NS_ONNX_HOOK(shuffle_channel) {
  const Caffe__ShuffleChannelParameter *p = l->param->shuffle_channel_param;
  const ns_blob *x = l->bottom[0];
  int64_t group = p && p->has_group ? p->group : 1, rest = 1;
  for (int i = 2; i < x->num_axes; i++) rest *= x->shape[i];
  int64_t grouped[4] = {x->shape[0], group, x->shape[1] / group, rest}, perm[4] = {0, 2, 1, 3};
  const char *xg = reshape(g, l, "grouped", ns_onnx_in(g, l, 0), 4, grouped, NULL);
  const char *t = ns_onnx_tmp(g, l, "transposed"), *out = ns_onnx_out(g, l, 0);
  ns_onnx_attr_ints(g, ns_onnx_node1(g, l, t, "Transpose", xg, t), "perm", 4, perm);
  reshape(g, l, "merged", t, x->num_axes, x->shape, out);
  return ns_onnx_status(g);
}

/* a[n, c] x + y, a reshaped to (N, C, 1, ...) to broadcast over x. */
NS_ONNX_HOOK(axpy) {
  const ns_blob *x = l->bottom[1];
  int64_t dims[NS_MAX_AXES];
  for (int i = 0; i < x->num_axes; i++) dims[i] = i < 2 ? x->shape[i] : 1;
  const char *a = reshape(g, l, "scale", ns_onnx_in(g, l, 0), x->num_axes, dims, NULL);
  const char *mul[2] = {a, ns_onnx_in(g, l, 1)}, *ax = ns_onnx_tmp(g, l, "ax");
  ns_onnx_node(g, l, ax, "Mul", 2, mul, 1, &ax);
  const char *add[2] = {ax, ns_onnx_in(g, l, 2)}, *out = ns_onnx_out(g, l, 0);
  ns_onnx_node(g, l, NULL, "Add", 2, add, 1, &out);
  return ns_onnx_status(g);
}

/* The forks' BN with stored parameters: PSPNet's four (slope, bias,
 * mean, variance; frozen or TEST) as BatchNormalization with its eps,
 * SegNet's two in INFERENCE mode as scale x + shift.  Batch statistics
 * (PSPNet training, SegNet's LEARN mode, which uses them in TEST too)
 * have no ONNX form. */
NS_ONNX_HOOK(bn) {
  static const Caffe__BNParameter defaults = CAFFE__BNPARAMETER__INIT;
  const Caffe__BNParameter *p = l->param->bn_param ? l->param->bn_param : &defaults;
  const ns_blob *x = l->bottom[0];
  int64_t c = x->shape[1], dims[NS_MAX_AXES];
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  if (l->n_params == 2) {
    const Caffe__SegNetBNParameter *q = l->param->segnet_bn_param;
    if ((q ? q->bn_mode : p->bn_mode) != CAFFE__BNPARAMETER__BNMODE__INFERENCE)
      return ns_onnx_fail(g, l,
                          "SegNet's LEARN mode normalises by each batch's own statistics, "
                          "even in TEST; ONNX has no such node");
    int rank = 0;
    dims[rank++] = c;
    for (int i = 2; i < x->num_axes; i++) dims[rank++] = 1;
    const char *mul[2] = {in, ns_onnx_blob(g, l, "scale", l->params[0], rank, dims)};
    const char *scaled = ns_onnx_tmp(g, l, "scaled");
    ns_onnx_node(g, l, scaled, "Mul", 2, mul, 1, &scaled);
    const char *add[2] = {scaled, ns_onnx_blob(g, l, "shift", l->params[1], rank, dims)};
    ns_onnx_node(g, l, NULL, "Add", 2, add, 1, &out);
    return ns_onnx_status(g);
  }
  if (!p->frozen && ns_layer_phase_train(l))
    return ns_onnx_fail(g, l,
                        "a TRAIN-phase BN that is not frozen normalises by the batch's own "
                        "statistics; export the TEST net");
  const char *bin[5] = {in, ns_onnx_blob(g, l, "slope", l->params[0], 1, &c),
                        ns_onnx_blob(g, l, "bias", l->params[1], 1, &c),
                        ns_onnx_blob(g, l, "mean", l->params[2], 1, &c),
                        ns_onnx_blob(g, l, "variance", l->params[3], 1, &c)};
  Onnx__NodeProto *n = ns_onnx_node(g, l, NULL, "BatchNormalization", 5, bin, 1, &out);
  ns_onnx_attr_float(g, n, "epsilon", p->eps);
  return ns_onnx_status(g);
}

/* min(max(x, 0), 6). */
NS_ONNX_HOOK(relu6) {
  const char *in[3] = {ns_onnx_in(g, l, 0), ns_onnx_scalar(g, l, "min", 0.0f),
                       ns_onnx_scalar(g, l, "max", 6.0f)};
  const char *out = ns_onnx_out(g, l, 0);
  ns_onnx_node(g, l, NULL, "Clip", 3, in, 1, &out);
  return ns_onnx_status(g);
}

/* x / sqrt(sum of x^2 + eps) over the image (across_spatial) or over the
 * channels at each position, times the scale (one value, or one per
 * channel). */
NS_ONNX_HOOK(normalize) {
  const Caffe__NormalizeParameter *p = l->param->norm_param;
  const ns_blob *x = l->bottom[0], *scale = l->params[0];
  int across = p && p->has_across_spatial ? p->across_spatial : 1;
  float eps = p && p->has_eps ? p->eps : 1e-10f;
  int64_t axes[NS_MAX_AXES], dims[NS_MAX_AXES];
  int n = 0;
  for (int i = 1; i < (across ? x->num_axes : 2); i++) axes[n++] = i;
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  const char *sq = ns_onnx_reduce(g, l, "sum_sq", "ReduceSumSquare", in, n, axes, 1, NULL);
  const char *add[2] = {sq, ns_onnx_scalar(g, l, "eps", eps)}, *sum = ns_onnx_tmp(g, l, "sum_eps");
  ns_onnx_node(g, l, sum, "Add", 2, add, 1, &sum);
  const char *norm = ns_onnx_tmp(g, l, "norm"), *y = ns_onnx_tmp(g, l, "normalized");
  ns_onnx_node1(g, l, norm, "Sqrt", sum, norm);
  const char *div[2] = {in, norm};
  ns_onnx_node(g, l, y, "Div", 2, div, 1, &y);
  int rank = 0;
  if (scale->num_axes > 0) {
    dims[rank++] = x->shape[1];
    for (int i = 2; i < x->num_axes; i++) dims[rank++] = 1;
  }
  const char *mul[2] = {y, ns_onnx_blob(g, l, "scale", scale, rank, dims)};
  ns_onnx_node(g, l, NULL, "Mul", 2, mul, 1, &out);
  return ns_onnx_status(g);
}

/* Top axis i is bottom axis order[i]; the axes not named follow in their
 * order: ONNX Transpose with that perm. */
NS_ONNX_HOOK(permute) {
  const Caffe__PermuteParameter *p = l->param->permute_param;
  int rank = l->bottom[0]->num_axes, used[NS_MAX_AXES] = {0};
  int64_t perm[NS_MAX_AXES];
  size_t given = p ? p->n_order : 0;
  for (size_t i = 0; i < given; i++) used[perm[i] = p->order[i]] = 1;
  for (int a = 0, k = (int)given; a < rank; a++)
    if (!used[a]) perm[k++] = a;
  if (perm[0] != 0 && ns_onnx_dynamic_batch(g))
    return ns_onnx_fail(g, l, "it moves the batch axis; export with a fixed batch (--batch N)");
  const char *out = ns_onnx_out(g, l, 0);
  ns_onnx_attr_ints(g, ns_onnx_node1(g, l, NULL, "Transpose", ns_onnx_in(g, l, 0), out), "perm",
                    rank, perm);
  return ns_onnx_status(g);
}

/* The boxes depend only on the shapes, which the export fixes (only the
 * batch may vary, and the boxes do not depend on it): netsurg computes
 * them once and writes them as a constant. */
NS_ONNX_HOOK(prior_box) {
  ns_layer *mut = (ns_layer *)l; /* forward writes only the layer's own top */
  ns_ctx *ctx = ns_onnx_ctx(g);
  if (l->ops->forward(ctx, mut) != NS_OK)
    return ns_onnx_fail(g, l, "computing the boxes failed: %s", ns_ctx_error(ctx));
  const ns_blob *y = l->top[0];
  const char *boxes = ns_onnx_blob(g, l, "boxes", y, y->num_axes, y->shape);
  ns_onnx_node1(g, l, NULL, "Identity", boxes, ns_onnx_out(g, l, 0));
  return ns_onnx_status(g);
}
