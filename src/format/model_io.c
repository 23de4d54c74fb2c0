#include "format/model_io.h"

#include <stdio.h>
#include <string.h>

#include "core/fileio.h"
#include "format/binary_fields.h"
#include "format/textformat.h"
#include "format/upgrade.h"

ns_status ns_read_file(ns_ctx *ctx, const char *path, unsigned char **data, size_t *len) {
  /* Caffemodels reach 2 GB and beyond: no cap but the address space. */
  return ns_io_read_file(ctx, path, UINT64_MAX, data, len);
}

ns_status ns_write_file_atomic(ns_ctx *ctx, const char *path, const void *data, size_t len) {
  ns_atomic_file af;
  if (ns_atomic_open(ctx, path, &af) != NS_OK) return ctx->status;
  if (ns_atomic_write(ctx, &af, data, len) != NS_OK) {
    ns_atomic_abort(ctx, &af);
    return ctx->status;
  }
  return ns_atomic_commit(ctx, &af);
}

/* ---- reading nets ----------------------------------------------------- */

/* Inside a layer, a name caffe.proto lacks is nearly always a field of a
 * Caffe fork (SSD's norm_param, DenseNet's ceil_mode): an unsupported
 * model feature, exit 3, named with its layer.  Elsewhere in a net (its
 * top level) it stays bad input.  V0 layers sit inside V1 ones. */
static const ProtobufCMessageDescriptor *const layer_messages[] = {
    &caffe__layer_parameter__descriptor,
    &caffe__v1_layer_parameter__descriptor,
    &caffe__v0_layer_parameter__descriptor,
    NULL,
};

/* Forks' fields our caffe.proto lacks that, skipped, would leave a layer
 * computing something else: refused even with --allow-unknown.  (Intel
 * Caffe's Dropout: scale_train false scales at test time instead of
 * training; sample_weights_test drops units at test time.)  A fork field
 * that changes results belongs in caffe.proto with its layer honouring it,
 * as Pooling's ceil_mode does; this list is for the rest. */
static const ns_text_field_ref results_changing_fields[] = {
    {"caffe.DropoutParameter", "scale_train", "Intel Caffe's Dropout then scales at test time"},
    {"caffe.DropoutParameter", "sample_weights_test",
     "Intel Caffe's Dropout then drops units at test time"},
    {NULL, NULL, NULL},
};

static const ns_text_rules net_rules = {
    .feature_scopes = layer_messages,
    .field_note = "a Caffe fork's field netsurg does not know",
    .value_note = "a value netsurg does not know",
    .hint = "--allow-unknown (ns_ctx_set_allow_unknown) skips unknown fields and values",
    .refused = results_changing_fields,
};

static const ns_text_rules solver_rules = {
    .hint = "--allow-unknown (ns_ctx_set_allow_unknown) skips unknown fields and values",
};

int ns_looks_like_text(const unsigned char *data, size_t len) {
  size_t n = len < 4096 ? len : 4096;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = data[i];
    if (c == 0 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v'))
      return 0;
  }
  return 1;
}

ns_status ns_parse_net_param(ns_ctx *ctx, const unsigned char *data, size_t len,
                             const char *filename, Caffe__NetParameter **out, int *what) {
  *out = NULL;
  if (what) *what = 0;
  Caffe__NetParameter *net = NULL;
  int text = ns_looks_like_text(data, len);
  if (text) {
    ProtobufCMessage *m = NULL;
    if (ns_text_parse_with(ctx, (const char *)data, len, filename,
                           &caffe__net_parameter__descriptor, &net_rules, &m) != NS_OK)
      return ctx->status;
    net = (Caffe__NetParameter *)m;
  } else {
    if (ns_binary_check_clashes(ctx, data, len, filename) != NS_OK) return ctx->status;
    net = caffe__net_parameter__unpack(&ctx->pb_alloc, len, data);
    if (!net) {
      if (ctx->status == NS_ERR_NOMEM) return ns_fail(ctx, NS_ERR_NOMEM, "%s: out of memory", filename);
      return ns_fail(ctx, NS_ERR_INPUT,
                     "%s: not a valid binary NetParameter (truncated or corrupt caffemodel)",
                     filename);
    }
  }
  if (ns_upgrade_net(ctx, &net, filename, what) != NS_OK) {
    ns_net_param_free(ctx, net);
    return ctx->status;
  }
  /* after the upgrade, which reports a legacy layer's unknown fields itself */
  if (!text) ns_binary_warn_unknown(ctx, net, filename);
  *out = net;
  return NS_OK;
}

ns_status ns_load_net_param(ns_ctx *ctx, const char *path, Caffe__NetParameter **out, int *what) {
  unsigned char *data;
  size_t len;
  *out = NULL;
  if (ns_read_file(ctx, path, &data, &len) != NS_OK) return ctx->status;
  if (len == 0) {
    ns_free(ctx, data);
    return ns_fail(ctx, NS_ERR_INPUT, "%s: empty file", path);
  }
  ns_status st = ns_parse_net_param(ctx, data, len, path, out, what);
  ns_free(ctx, data);
  return st;
}

ns_status ns_load_solver_param(ns_ctx *ctx, const char *path, Caffe__SolverParameter **out) {
  unsigned char *data;
  size_t len;
  *out = NULL;
  if (ns_read_file(ctx, path, &data, &len) != NS_OK) return ctx->status;
  ProtobufCMessage *m = NULL;
  ns_status st = ns_text_parse_with(ctx, (const char *)data, len, path,
                                    &caffe__solver_parameter__descriptor, &solver_rules, &m);
  ns_free(ctx, data);
  if (st != NS_OK) return st;
  if (ns_upgrade_solver(ctx, (Caffe__SolverParameter *)m, path, NULL) != NS_OK) {
    protobuf_c_message_free_unpacked(m, &ctx->pb_alloc);
    return ctx->status;
  }
  *out = (Caffe__SolverParameter *)m;
  return NS_OK;
}

void ns_net_param_free(ns_ctx *ctx, Caffe__NetParameter *net) {
  if (net) protobuf_c_message_free_unpacked(&net->base, &ctx->pb_alloc);
}

/* ---- writing nets ----------------------------------------------------- */

/* Hides every layer's blobs while fn runs (text output carries no weights).
 * The message is const to callers; the blobs are restored before return. */
ns_status ns_net_param_to_text(ns_ctx *ctx, const Caffe__NetParameter *cnet, ns_strbuf *out) {
  Caffe__NetParameter *net = (Caffe__NetParameter *)cnet;
  size_t *saved = ns_calloc(ctx, net->n_layer + 1, sizeof *saved);
  if (!saved) return ctx->status;
  for (size_t i = 0; i < net->n_layer; i++) {
    saved[i] = net->layer[i]->n_blobs;
    net->layer[i]->n_blobs = 0;
  }
  ns_status st = ns_text_write(ctx, &net->base, out);
  for (size_t i = 0; i < net->n_layer; i++) net->layer[i]->n_blobs = saved[i];
  ns_free(ctx, saved);
  return st;
}

ns_status ns_save_net_text(ns_ctx *ctx, const char *path, const Caffe__NetParameter *net) {
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  ns_status st = ns_net_param_to_text(ctx, net, &sb);
  if (st == NS_OK) st = ns_strbuf_status(&sb);
  if (st == NS_OK) st = ns_write_file_atomic(ctx, path, sb.data ? sb.data : "", sb.len);
  ns_strbuf_free(&sb);
  return st;
}

/* protobuf-c packs into a ProtobufCBuffer; ours appends straight to the
 * (stdio-buffered) temp file, so no packed copy is held in memory. */
typedef struct file_sink {
  ProtobufCBuffer base;
  ns_ctx *ctx;
  ns_atomic_file *af;
  ns_status status;
} file_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
  file_sink *s = (file_sink *)b;
  if (s->status == NS_OK) s->status = ns_atomic_write(s->ctx, s->af, data, len);
}

ns_status ns_save_net_binary(ns_ctx *ctx, const char *path, const Caffe__NetParameter *net) {
  ns_atomic_file af;
  if (ns_atomic_open(ctx, path, &af) != NS_OK) return ctx->status;
  file_sink sink = {{sink_append}, ctx, &af, NS_OK};
  protobuf_c_message_pack_to_buffer(&net->base, &sink.base);
  if (sink.status != NS_OK) {
    ns_atomic_abort(ctx, &af);
    return sink.status;
  }
  return ns_atomic_commit(ctx, &af);
}
