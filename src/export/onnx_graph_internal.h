/* The graph builder's state, shared by the builder (onnx_graph.c) and the
 * export driver (onnx_export.c); layers see only onnx_graph.h. */
#ifndef NS_EXPORT_ONNX_GRAPH_INTERNAL_H
#define NS_EXPORT_ONNX_GRAPH_INTERNAL_H

#include "core/fileio.h"
#include "core/net.h"
#include "export/onnx_graph.h"

typedef struct ns_onnx_chunk ns_onnx_chunk;

struct ns_onnx {
  ns_ctx *ctx;
  const ns_net *net;
  int opset, dynamic_batch;
  ns_status status;
  ns_onnx_chunk *chunks; /* every string and message below lives here */
  Onnx__NodeProto **nodes;
  size_t n_nodes, cap_nodes;
  Onnx__TensorProto **inits;
  size_t n_inits, cap_inits;
  /* Per blob of the net: the value it holds now, how many layers still
   * write it, and whether its Caffe name is taken by a graph input. */
  const char **value;
  int *writes_left;
  unsigned char *name_taken;
};

ns_status ns_onnx_init(ns_ctx *ctx, ns_onnx *g, const ns_net *net, int opset, int dynamic_batch);
void ns_onnx_free(ns_onnx *g);
void *ns_onnx_alloc(ns_onnx *g, size_t size); /* zeroed, from the arena */
char *ns_onnx_strdup(ns_onnx *g, const char *s);
Onnx__ValueInfoProto *ns_onnx_value_info(ns_onnx *g, const char *name, const ns_blob *b);
/* Writes the initializers' raw data of 1 KB or more into af (the file
 * data_path) and points them at it; *bytes: the side file's size. */
ns_status ns_onnx_write_external(ns_onnx *g, const char *data_path, ns_atomic_file *af,
                                 uint64_t *bytes);

#endif
