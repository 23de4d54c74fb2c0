/* The ONNX graph under construction, as the layers' export hooks see it
 * (ns_layer_ops.export_onnx): value names for their bottoms and tops,
 * nodes with attributes, and initializers.  Everything it hands out lives
 * until the export ends.  Errors are sticky: after a failed allocation
 * every call returns a placeholder and ns_onnx_status() reports it, so a
 * hook builds its nodes and returns ns_onnx_status(g) once. */
#ifndef NS_EXPORT_ONNX_GRAPH_H
#define NS_EXPORT_ONNX_GRAPH_H

#include "core/layer.h"
#include "onnx.pb-c.h"

typedef struct ns_onnx ns_onnx;

int ns_onnx_opset(const ns_onnx *g);
/* The export's context (for a hook that runs its layer's forward). */
ns_ctx *ns_onnx_ctx(ns_onnx *g);
/* 1 when the graph's batch axis is symbolic: shapes written into nodes
 * (Reshape) must copy axis 0 (0) instead of naming the batch. */
int ns_onnx_dynamic_batch(const ns_onnx *g);
ns_status ns_onnx_status(const ns_onnx *g);
/* Records an error naming the layer (its name and type) and why. */
ns_status ns_onnx_fail(ns_onnx *g, const ns_layer *l, const char *fmt, ...) NS_PRINTF(3, 4);

/* The value that bottom i holds now. */
const char *ns_onnx_in(ns_onnx *g, const ns_layer *l, int i);
/* A new value for top i, made current: Caffe's blob name for the blob's
 * last writer, "<blob>@<layer>" for the earlier ones (in place).  Read
 * the inputs first; call once per top. */
const char *ns_onnx_out(ns_onnx *g, const ns_layer *l, int i);
/* "<layer>/<tag>": an intermediate value or a helper node's name. */
const char *ns_onnx_tmp(ns_onnx *g, const ns_layer *l, const char *tag);

/* A node; name NULL: the layer's name. */
Onnx__NodeProto *ns_onnx_node(ns_onnx *g, const ns_layer *l, const char *name, const char *op,
                              int n_in, const char *const *in, int n_out, const char *const *out);
/* The common case: one input, one output. */
Onnx__NodeProto *ns_onnx_node1(ns_onnx *g, const ns_layer *l, const char *name, const char *op,
                               const char *in, const char *out);
void ns_onnx_attr_int(ns_onnx *g, Onnx__NodeProto *n, const char *name, int64_t v);
void ns_onnx_attr_float(ns_onnx *g, Onnx__NodeProto *n, const char *name, float v);
void ns_onnx_attr_ints(ns_onnx *g, Onnx__NodeProto *n, const char *name, int count,
                       const int64_t *v);
void ns_onnx_attr_string(ns_onnx *g, Onnx__NodeProto *n, const char *name, const char *v);

/* Reduce<op> of `in` over axes (keepdims 0 or 1) into `out`, or, out NULL,
 * into the value "<layer>/<tag>" (also the node's name); returns the
 * output.  The axes go where the opset wants them: an input from opset
 * 18 (13 for ReduceSum), an attribute before. */
const char *ns_onnx_reduce(ns_onnx *g, const ns_layer *l, const char *tag, const char *op,
                           const char *in, int n_axes, const int64_t *axes, int keepdims,
                           const char *out);

/* Initializers, named "<layer>/<tag>"; each returns its value name.
 * The blob's data is borrowed (written as it is at save time). */
const char *ns_onnx_blob(ns_onnx *g, const ns_layer *l, const char *tag, const ns_blob *b,
                         int num_dims, const int64_t *dims);
/* A float tensor of product(dims) values to fill, owned by the graph. */
float *ns_onnx_floats(ns_onnx *g, const ns_layer *l, const char *tag, int num_dims,
                      const int64_t *dims, const char **value);
/* A 0-D float and a 1-D int64 constant. */
const char *ns_onnx_scalar(ns_onnx *g, const ns_layer *l, const char *tag, float v);
const char *ns_onnx_int64s(ns_onnx *g, const ns_layer *l, const char *tag, int count,
                           const int64_t *v);

#endif
