/* ArgMax's ONNX forms.  Caffe orders (value, index) pairs greatest first,
 * so that among equal values the larger index comes first:
 * - top_k 1, indices: ONNX ArgMax with select_last_index (opset 12 on);
 * - top_k 1, values along an axis: ReduceMax;
 * - otherwise TopK, whose ties put the smaller index first, run on the
 *   input reversed along the axis (Slice with step -1): there the smaller
 *   index is the larger original one, D - 1 - i.
 * Without axis: over each item's flattened dims, top (N, 1, top_k, 1...)
 * of indices, or (N, 2, top_k, 1...) of indices then values with
 * out_max_val (at least 3 axes, as many as the bottom's). */
#include <stdint.h>
#include <stdio.h>

#include "export/onnx_graph.h"
#include "export/onnx_layers.h"

/* (N, K) into the top's shape with one row: (N, 1, K, 1...), Caffe's
 * top having at least 3 axes; into `out`, or the value "<layer>/<tag>". */
static const char *as_row(ns_onnx *g, const ns_layer *l, const char *tag, const char *x,
                          const char *out) {
  const ns_blob *y = l->top[0];
  int64_t shape[NS_MAX_AXES];
  for (int i = 0; i < y->num_axes; i++) shape[i] = y->shape[i];
  shape[1] = 1;
  if (ns_onnx_dynamic_batch(g)) shape[0] = 0;
  const char *name = out ? out : ns_onnx_tmp(g, l, tag);
  char shape_tag[64];
  snprintf(shape_tag, sizeof shape_tag, "%s_shape", tag);
  const char *in[2] = {x, ns_onnx_int64s(g, l, shape_tag, y->num_axes, shape)};
  ns_onnx_node(g, l, out ? NULL : name, "Reshape", 2, in, 1, &name);
  return name;
}

static ns_status argmax_top1(ns_onnx *g, const ns_layer *l, const char *x, int axis, int has_axis,
                             const char *out) {
  const char *idx = ns_onnx_tmp(g, l, "index"), *cast = has_axis ? out : ns_onnx_tmp(g, l, "float");
  Onnx__NodeProto *am = ns_onnx_node1(g, l, idx, "ArgMax", x, idx);
  ns_onnx_attr_int(g, am, "axis", axis);
  ns_onnx_attr_int(g, am, "keepdims", 1);
  if (ns_onnx_opset(g) >= 12) ns_onnx_attr_int(g, am, "select_last_index", 1);
  Onnx__NodeProto *c = ns_onnx_node1(g, l, has_axis ? NULL : cast, "Cast", idx, cast);
  ns_onnx_attr_int(g, c, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  if (!has_axis) as_row(g, l, "row", cast, out);
  return ns_onnx_status(g);
}

static ns_status argmax_topk(ns_onnx *g, const ns_layer *l, const char *x, int axis, int has_axis,
                             int64_t top_k, int out_max_val, int64_t depth, const char *out) {
  int64_t start = -1, end = INT64_MIN, step = -1, ax = axis;
  const char *sin[5] = {
      x, ns_onnx_int64s(g, l, "rev_start", 1, &start), ns_onnx_int64s(g, l, "rev_end", 1, &end),
      ns_onnx_int64s(g, l, "rev_axis", 1, &ax), ns_onnx_int64s(g, l, "rev_step", 1, &step)};
  const char *rev = ns_onnx_tmp(g, l, "reversed");
  ns_onnx_node(g, l, rev, "Slice", 5, sin, 1, &rev);
  const char *values_only = has_axis && out_max_val ? out : NULL;
  const char *tk_out[2] = {values_only ? out : ns_onnx_tmp(g, l, "values"),
                           ns_onnx_tmp(g, l, "reversed_index")};
  const char *tk_in[2] = {rev, ns_onnx_int64s(g, l, "k", 1, &top_k)};
  Onnx__NodeProto *tk = ns_onnx_node(g, l, values_only ? NULL : ns_onnx_tmp(g, l, "topk"), "TopK",
                                     2, tk_in, 2, tk_out);
  ns_onnx_attr_int(g, tk, "axis", axis);
  if (values_only) return ns_onnx_status(g);
  int64_t last = depth - 1;
  const char *sub[2] = {ns_onnx_int64s(g, l, "last", 1, &last), tk_out[1]};
  const char *index = ns_onnx_tmp(g, l, "index"),
             *fidx = has_axis ? out : ns_onnx_tmp(g, l, "float");
  ns_onnx_node(g, l, index, "Sub", 2, sub, 1, &index);
  Onnx__NodeProto *c = ns_onnx_node1(g, l, has_axis ? NULL : fidx, "Cast", index, fidx);
  ns_onnx_attr_int(g, c, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  if (has_axis) return ns_onnx_status(g);
  if (!out_max_val) {
    as_row(g, l, "row", fidx, out);
    return ns_onnx_status(g);
  }
  const char *cat[2] = {as_row(g, l, "index_row", fidx, NULL),
                        as_row(g, l, "value_row", tk_out[0], NULL)};
  ns_onnx_attr_int(g, ns_onnx_node(g, l, NULL, "Concat", 2, cat, 1, &out), "axis", 1);
  return ns_onnx_status(g);
}

NS_ONNX_HOOK(argmax) {
  const Caffe__ArgMaxParameter *p = l->param->argmax_param;
  const ns_blob *b = l->bottom[0];
  int64_t top_k = p && p->has_top_k ? p->top_k : 1;
  int out_max_val = p && p->has_out_max_val && p->out_max_val, has_axis = p && p->has_axis;
  int axis = has_axis ? p->axis : 1;
  if (axis < 0) axis += b->num_axes;
  const char *in = ns_onnx_in(g, l, 0), *out = ns_onnx_out(g, l, 0);
  if (top_k == 1 && out_max_val && has_axis) {
    int64_t axes[1] = {axis};
    ns_onnx_reduce(g, l, "max", "ReduceMax", in, 1, axes, 1, out);
    return ns_onnx_status(g);
  }
  const char *x = in;
  int64_t depth = has_axis ? b->shape[axis] : (b->shape[0] ? b->count / b->shape[0] : 0);
  if (!has_axis) {
    x = ns_onnx_tmp(g, l, "flatten");
    ns_onnx_attr_int(g, ns_onnx_node1(g, l, x, "Flatten", in, x), "axis", 1);
  }
  if (top_k == 1 && !out_max_val) return argmax_top1(g, l, x, axis, has_axis, out);
  return argmax_topk(g, l, x, axis, has_axis, top_k, out_max_val, depth, out);
}
