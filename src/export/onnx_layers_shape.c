/* ONNX forms of the layers that move values around, combine several
 * bottoms: Concat, Split, Eltwise, Flatten, Reshape, Slice, Crop (ArgMax:
 * onnx_layers_argmax.c). */
#include <stdio.h>
#include <string.h>

#include "export/onnx_graph.h"
#include "export/onnx_layers.h"

NS_ONNX_HOOK(concat) {
  const Caffe__ConcatParameter *p = l->param->concat_param;
  int axis = p && p->has_axis ? p->axis : (p && p->has_concat_dim ? (int)p->concat_dim : 1);
  if (axis < 0) axis += l->bottom[0]->num_axes;
  const char *in[64];
  if (l->n_bottom > 64) return ns_onnx_fail(g, l, "more than 64 bottoms");
  for (int i = 0; i < l->n_bottom; i++) in[i] = ns_onnx_in(g, l, i);
  const char *out = ns_onnx_out(g, l, 0);
  ns_onnx_attr_int(g, ns_onnx_node(g, l, NULL, "Concat", l->n_bottom, in, 1, &out), "axis", axis);
  return ns_onnx_status(g);
}

/* Caffe's Split copies its bottom to every top: one Identity per top. */
NS_ONNX_HOOK(split) {
  const char *in = ns_onnx_in(g, l, 0);
  for (int i = 0; i < l->n_top; i++) {
    const char *out = ns_onnx_out(g, l, i);
    ns_onnx_node1(g, l, ns_onnx_tmp(g, l, l->top[i]->name), "Identity", in, out);
  }
  return ns_onnx_status(g);
}

/* SUM: sum of coeff_i x_i (Mul only where coeff_i is not 1); PROD and
 * MAX: ONNX's variadic Max, a chain of Mul. */
NS_ONNX_HOOK(eltwise) {
  const Caffe__EltwiseParameter *p = l->param->eltwise_param;
  int op = p && p->has_operation ? (int)p->operation : CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM;
  const char *in[64];
  if (l->n_bottom > 64) return ns_onnx_fail(g, l, "more than 64 bottoms");
  for (int i = 0; i < l->n_bottom; i++) {
    in[i] = ns_onnx_in(g, l, i);
    float c = p && p->n_coeff ? p->coeff[i] : 1.0f;
    if (op != CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM || c == 1.0f) continue;
    char tag[32];
    snprintf(tag, sizeof tag, "coeff%d", i);
    const char *mul[2] = {in[i], ns_onnx_scalar(g, l, tag, c)};
    snprintf(tag, sizeof tag, "scaled%d", i);
    in[i] = ns_onnx_tmp(g, l, tag);
    ns_onnx_node(g, l, in[i], "Mul", 2, mul, 1, &in[i]);
  }
  const char *out = ns_onnx_out(g, l, 0);
  if (op == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD) {
    const char *acc = in[0];
    for (int i = 1; i < l->n_bottom; i++) {
      char tag[32];
      snprintf(tag, sizeof tag, "product%d", i);
      const char *y = i == l->n_bottom - 1 ? out : ns_onnx_tmp(g, l, tag);
      const char *mul[2] = {acc, in[i]};
      ns_onnx_node(g, l, y == out ? NULL : y, "Mul", 2, mul, 1, &y);
      acc = y;
    }
    if (l->n_bottom == 1) ns_onnx_node1(g, l, NULL, "Identity", acc, out);
    return ns_onnx_status(g);
  }
  const char *kind = op == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX ? "Max" : "Sum";
  ns_onnx_node(g, l, NULL, kind, l->n_bottom, in, 1, &out);
  return ns_onnx_status(g);
}

/* Reshape to the top's shape, axis 0 copied (0) where the batch is
 * symbolic; a net whose layer folds the batch into another axis needs a
 * fixed batch. */
static ns_status reshape_to_top(ns_onnx *g, const ns_layer *l, int keeps_batch) {
  const ns_blob *y = l->top[0];
  int64_t dims[NS_MAX_AXES];
  for (int i = 0; i < y->num_axes; i++) dims[i] = y->shape[i];
  if (ns_onnx_dynamic_batch(g)) {
    if (!keeps_batch)
      return ns_onnx_fail(g, l, "it moves the batch axis; export with a fixed batch (--batch N)");
    dims[0] = 0;
  }
  const char *in[2] = {ns_onnx_in(g, l, 0), ns_onnx_int64s(g, l, "shape", y->num_axes, dims)};
  const char *out = ns_onnx_out(g, l, 0);
  ns_onnx_node(g, l, NULL, "Reshape", 2, in, 1, &out);
  return ns_onnx_status(g);
}

NS_ONNX_HOOK(flatten) {
  const Caffe__FlattenParameter *p = l->param->flatten_param;
  int axis = p && p->has_axis ? p->axis : 1;
  if (axis < 0) axis += l->bottom[0]->num_axes;
  return reshape_to_top(g, l, axis > 0 && l->top[0]->num_axes > 0);
}

NS_ONNX_HOOK(reshape) {
  const Caffe__ReshapeParameter *p = l->param->reshape_param;
  int axis = p->has_axis ? p->axis : 0;
  if (axis < 0) axis += l->bottom[0]->num_axes + 1;
  int keeps = axis > 0 || (p->shape->n_dim > 0 && p->shape->dim[0] == 0);
  return reshape_to_top(g, l, keeps && l->top[0]->num_axes > 0);
}

/* Slice: ONNX Split with the tops' sizes along the axis (an input from
 * opset 13, an attribute before). */
NS_ONNX_HOOK(slice) {
  const Caffe__SliceParameter *p = l->param->slice_param;
  const ns_blob *x = l->bottom[0];
  int axis = p && p->has_slice_dim ? (int)p->slice_dim : (p && p->has_axis ? p->axis : 1);
  if (axis < 0) axis += x->num_axes;
  int64_t sizes[64];
  const char *out[64];
  if (l->n_top > 64) return ns_onnx_fail(g, l, "more than 64 tops");
  const char *in[2] = {ns_onnx_in(g, l, 0), NULL};
  for (int i = 0; i < l->n_top; i++) sizes[i] = l->top[i]->shape[axis];
  for (int i = 0; i < l->n_top; i++) out[i] = ns_onnx_out(g, l, i);
  int opset13 = ns_onnx_opset(g) >= 13;
  if (opset13) in[1] = ns_onnx_int64s(g, l, "split", l->n_top, sizes);
  Onnx__NodeProto *n = ns_onnx_node(g, l, NULL, "Split", opset13 ? 2 : 1, in, l->n_top, out);
  ns_onnx_attr_int(g, n, "axis", axis);
  if (!opset13) ns_onnx_attr_ints(g, n, "split", l->n_top, sizes);
  return ns_onnx_status(g);
}

/* Crop: bottom 0 cut to bottom 1's dims from `axis` on, at the offsets
 * (one for all axes, or one per axis; 0 when none): ONNX Slice. */
NS_ONNX_HOOK(crop) {
  const Caffe__CropParameter *p = l->param->crop_param;
  const ns_blob *x = l->bottom[0], *like = l->bottom[1];
  int axis = p && p->has_axis ? p->axis : 2;
  if (axis < 0) axis += x->num_axes;
  int n = x->num_axes - axis;
  int64_t starts[NS_MAX_AXES], ends[NS_MAX_AXES], axes[NS_MAX_AXES];
  size_t n_off = p ? p->n_offset : 0;
  for (int i = 0; i < n; i++) {
    starts[i] = n_off == 0 ? 0 : (int64_t)p->offset[n_off == 1 ? 0 : (size_t)i];
    ends[i] = starts[i] + like->shape[axis + i];
    axes[i] = axis + i;
  }
  const char *in[4] = {ns_onnx_in(g, l, 0), ns_onnx_int64s(g, l, "starts", n, starts),
                       ns_onnx_int64s(g, l, "ends", n, ends), ns_onnx_int64s(g, l, "axes", n, axes)};
  const char *out = ns_onnx_out(g, l, 0);
  ns_onnx_node(g, l, NULL, "Slice", 4, in, 1, &out);
  return ns_onnx_status(g);
}
