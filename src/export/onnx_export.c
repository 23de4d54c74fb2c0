/* ns_net_export_onnx: the net as an ONNX model.  Inputs from the Input
 * layers, each layer's nodes from its ops' export_onnx hook, outputs from
 * the net's output blobs; the model is packed straight into the file
 * (weights are not copied: their raw data points into the blobs). */
#include <stdint.h>
#include <string.h>

#include "core/fileio.h"
#include "core/net.h"
#include "export/onnx_graph_internal.h"

/* ONNX's IR version that goes with each opset (onnx/helper.py's table). */
static int64_t ir_version_for(int opset) {
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  return 8;
}

static ns_status add_inputs(ns_onnx *g, const ns_layer *l, Onnx__GraphProto *graph) {
  for (int j = 0; j < l->n_top; j++) {
    int b = ns_net_find_blob(g->net, l->top[j]->name);
    Onnx__ValueInfoProto *v = ns_onnx_value_info(g, ns_onnx_strdup(g, l->top[j]->name), l->top[j]);
    if (!v) return g->status;
    graph->input[graph->n_input++] = v;
    g->value[b] = v->name;
    g->name_taken[b] = 1;
    g->writes_left[b]--;
  }
  return NS_OK;
}

/* Layer types netsurg runs whose numbers no ONNX node sequence is known
 * to reproduce, and why. */
static const struct {
  const char *type, *why;
} refused[] = {
    {"DetectionOutput", "its per-class non-maximum suppression with top_k and keep_top_k and its "
                        "(1, 1, kept, 7) rows have no exact ONNX form (NonMaxSuppression returns "
                        "indices and breaks ties its own way); export the net without it and "
                        "decode the boxes outside"},
    {"Proposal", "anchor decoding, non-maximum suppression and a data-dependent number of boxes "
                 "have no exact ONNX form"},
    {"Python", "a Python layer's code is not part of the model"},
    {"ROIPooling", "ONNX MaxRoiPool rounds the boxes and splits the bins by its own rule, not "
                   "shown equal to Caffe's"},
    {"PSROIPooling", "ONNX has no position-sensitive ROI pooling"},
    {"SPP", "not exported yet (its poolings and Concat would be)"},
    {"Im2col", "ONNX has no im2col node"},
    {"Filter", "its top's size depends on the data; not exported yet"},
    {"BatchReindex", "not exported yet"},
};

static ns_status no_hook(ns_onnx *g, const ns_layer *l) {
  if (l->n_bottom == 0)
    return ns_onnx_fail(g, l, "a data layer has no ONNX form; export a deploy net whose inputs "
                              "are Input layers (or input: / input_shape)");
  if (l->ops->is_loss)
    return ns_onnx_fail(g, l, "a loss layer has no place in an inference graph; export the "
                              "deploy net");
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    if (strcmp(l->ops->type, refused[i].type) == 0) return ns_onnx_fail(g, l, "%s", refused[i].why);
  return ns_onnx_fail(g, l, "no ONNX mapping for this layer type yet");
}

static ns_status add_layers(ns_onnx *g, Onnx__GraphProto *graph, int *exported) {
  const ns_net *net = g->net;
  for (int i = 0; i < net->n_layers; i++) {
    const ns_layer *l = &net->layers[i];
    if (l->ops->is_net_input) {
      if (add_inputs(g, l, graph) != NS_OK) return g->status;
      continue;
    }
    if (!l->ops->export_onnx) return no_hook(g, l);
    if (l->ops->export_onnx(g, l) != NS_OK || g->status != NS_OK) {
      if (g->status == NS_OK) g->status = g->ctx->status;
      return g->status;
    }
    ++*exported;
  }
  return NS_OK;
}

static ns_status add_outputs(ns_onnx *g, Onnx__GraphProto *graph) {
  const ns_net *net = g->net;
  int *outs = ns_calloc(g->ctx, (size_t)net->n_blobs + 1, sizeof *outs);
  if (!outs) return g->status = g->ctx->status;
  int n = ns_net_output_blobs(net, outs);
  graph->output = ns_onnx_alloc(g, sizeof *graph->output * (size_t)(n + 1));
  for (int k = 0; k < n && graph->output; k++) {
    int b = outs[k];
    Onnx__ValueInfoProto *v = ns_onnx_value_info(g, g->value[b], net->blobs[b]);
    if (!v) break;
    graph->output[graph->n_output++] = v;
  }
  ns_free(g->ctx, outs);
  if (g->status == NS_OK && n == 0)
    g->status = ns_fail(g->ctx, NS_ERR_NET, "the net has no output blob to export");
  return g->status;
}

typedef struct file_sink {
  ProtobufCBuffer base;
  ns_ctx *ctx;
  ns_atomic_file *af;
  ns_status status;
  uint64_t bytes;
} file_sink;

static void sink_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data) {
  file_sink *s = (file_sink *)buf;
  if (s->status != NS_OK) return;
  s->status = ns_atomic_write(s->ctx, s->af, data, len);
  s->bytes += len;
}

static ns_status pack_into(ns_ctx *ctx, const Onnx__ModelProto *m, ns_atomic_file *af,
                           uint64_t *bytes) {
  file_sink sink = {{sink_append}, ctx, af, NS_OK, 0};
  protobuf_c_message_pack_to_buffer(&m->base, &sink.base);
  *bytes = sink.bytes;
  return sink.status;
}

/* The weights into PATH.data first (they leave the model's raw data for
 * its external data entries), then the model; both renamed into place
 * only when both are written, the data file first. */
static ns_status write_external(ns_onnx *g, const Onnx__ModelProto *m, const char *path,
                                ns_onnx_summary *sum) {
  ns_ctx *ctx = g->ctx;
  size_t n = strlen(path);
  char *data_path = ns_onnx_alloc(g, n + sizeof ".data");
  if (!data_path) return g->status;
  memcpy(data_path, path, n);
  memcpy(data_path + n, ".data", sizeof ".data");
  ns_atomic_file model, data;
  if (ns_atomic_open(ctx, path, &model) != NS_OK) return ctx->status;
  if (model.direct) {
    ns_atomic_abort(ctx, &model);
    return ns_fail(ctx, NS_ERR_USAGE, "%s: external data needs the model to be a file (its "
                   "weights go to %s beside it)", path, data_path);
  }
  if (ns_atomic_open(ctx, data_path, &data) != NS_OK) {
    ns_atomic_abort(ctx, &model);
    return ctx->status;
  }
  ns_status st = ns_onnx_write_external(g, data_path, &data, &sum->external_bytes);
  size_t size = st == NS_OK ? protobuf_c_message_get_packed_size(&m->base) : 0;
  if (st == NS_OK && size > INT32_MAX)
    st = ns_fail(ctx, NS_ERR_UNSUPPORTED, "%s: the graph without its weights is still %zu bytes, "
                 "over protobuf's 2 GB", path, size);
  if (st == NS_OK) st = pack_into(ctx, m, &model, &sum->bytes);
  if (st != NS_OK) {
    ns_atomic_abort(ctx, &model);
    ns_atomic_abort(ctx, &data);
    return st;
  }
  if (ns_atomic_commit(ctx, &data) != NS_OK) {
    ns_atomic_abort(ctx, &model);
    return ctx->status;
  }
  return ns_atomic_commit(ctx, &model);
}

/* Protobuf cannot hold a message over 2 GB: past it the weights go to
 * external data whether asked or not. */
static ns_status write_model(ns_onnx *g, const Onnx__ModelProto *m, const char *path,
                             int external, ns_onnx_summary *sum) {
  ns_ctx *ctx = g->ctx;
  if (external || protobuf_c_message_get_packed_size(&m->base) > INT32_MAX)
    return write_external(g, m, path, sum);
  ns_atomic_file af;
  if (ns_atomic_open(ctx, path, &af) != NS_OK) return ctx->status;
  ns_status st = pack_into(ctx, m, &af, &sum->bytes);
  if (st != NS_OK) {
    ns_atomic_abort(ctx, &af);
    return st;
  }
  return ns_atomic_commit(ctx, &af);
}

static ns_status build_and_write(ns_onnx *g, const char *path, int external,
                                 ns_onnx_summary *sum) {
  Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
  graph.name = g->net->def && g->net->def->name && *g->net->def->name ? g->net->def->name
                                                                        : (char *)"netsurg";
  int n_inputs = 0;
  for (int i = 0; i < g->net->n_layers; i++)
    if (g->net->layers[i].ops->is_net_input) n_inputs += g->net->layers[i].n_top;
  graph.input = ns_onnx_alloc(g, sizeof *graph.input * (size_t)(n_inputs + 1));
  if (!graph.input) return g->status;
  if (add_layers(g, &graph, &sum->layers) != NS_OK || add_outputs(g, &graph) != NS_OK)
    return g->status;
  graph.n_node = g->n_nodes;
  graph.node = g->nodes;
  graph.n_initializer = g->n_inits;
  graph.initializer = g->inits;
  Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
  Onnx__OperatorSetIdProto *opsets[1] = {&opset};
  opset.domain = (char *)"";
  opset.has_version = 1;
  opset.version = g->opset;
  Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
  model.has_ir_version = 1;
  model.ir_version = ir_version_for(g->opset);
  model.n_opset_import = 1;
  model.opset_import = opsets;
  model.producer_name = (char *)"netsurg";
  model.graph = &graph;
  sum->nodes = (int)g->n_nodes;
  sum->initializers = (int)g->n_inits;
  return write_model(g, &model, path, external, sum);
}

ns_status ns_net_export_onnx(ns_ctx *ctx, ns_net *net, const char *path,
                             const ns_onnx_options *opt, ns_onnx_summary *summary) {
  ns_onnx_options defaults = {0, 0, 0};
  if (!opt) opt = &defaults;
  int opset = opt->opset ? opt->opset : 13;
  if (opset < 11 || opset > 18)
    return ns_fail(ctx, NS_ERR_USAGE, "ONNX opset %d: netsurg writes opsets 11 to 18", opset);
  if (!path || !*path) return ns_fail(ctx, NS_ERR_USAGE, "no output path for the ONNX model");
  ns_onnx_summary sum = {0, 0, 0, 0, 0};
  ns_onnx g;
  ns_status st = ns_onnx_init(ctx, &g, net, opset, !opt->fixed_batch);
  if (st == NS_OK) st = build_and_write(&g, path, opt->external_data, &sum);
  ns_onnx_free(&g);
  if (st == NS_OK && summary) *summary = sum;
  return st;
}
