/* ONNX's external data: the large initializers' bytes in a side file
 * next to the model (TensorProto.data_location EXTERNAL, with the
 * key/value entries location, offset and length), so that a model over
 * protobuf's 2 GB limit can still be written, and a small .onnx can be
 * read without its weights.  Both files are written through temporary
 * files and renamed only when both are complete. */
#include <stdio.h>
#include <string.h>

#include "core/fileio.h"
#include "export/onnx_graph_internal.h"

/* ONNX's own converter keeps tensors under 1 KB inline; offsets are
 * aligned to a page so that a runtime may map each tensor in place. */
enum { EXTERNAL_MIN_BYTES = 1024, EXTERNAL_ALIGN = 4096 };

static Onnx__StringStringEntryProto *entry(ns_onnx *g, const char *key, const char *value) {
  Onnx__StringStringEntryProto *e = ns_onnx_alloc(g, sizeof *e);
  if (!e) return NULL;
  onnx__string_string_entry_proto__init(e);
  e->key = (char *)key;
  e->value = ns_onnx_strdup(g, value);
  return e->value ? e : NULL;
}

/* Points t at [offset, offset + length) of the side file `location`. */
static ns_status point_outside(ns_onnx *g, Onnx__TensorProto *t, const char *location,
                               uint64_t offset) {
  char off[32], len[32];
  snprintf(off, sizeof off, "%llu", (unsigned long long)offset);
  snprintf(len, sizeof len, "%llu", (unsigned long long)t->raw_data.len);
  Onnx__StringStringEntryProto **entries = ns_onnx_alloc(g, sizeof *entries * 3);
  if (!entries) return g->status;
  entries[0] = entry(g, "location", location);
  entries[1] = entry(g, "offset", off);
  entries[2] = entry(g, "length", len);
  if (!entries[0] || !entries[1] || !entries[2]) return g->status;
  t->n_external_data = 3;
  t->external_data = entries;
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  t->has_raw_data = 0;
  t->raw_data.len = 0;
  t->raw_data.data = NULL;
  return NS_OK;
}

static ns_status write_zeros(ns_ctx *ctx, ns_atomic_file *af, size_t n) {
  static const unsigned char zeros[EXTERNAL_ALIGN];
  return n ? ns_atomic_write(ctx, af, zeros, n) : NS_OK;
}

/* The location entry: the side file's name relative to the model's
 * folder, as ONNX resolves it. */
static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

ns_status ns_onnx_write_external(ns_onnx *g, const char *data_path, ns_atomic_file *af,
                                 uint64_t *bytes) {
  const char *location = base_name(data_path);
  uint64_t offset = 0;
  for (size_t i = 0; i < g->n_inits && g->status == NS_OK; i++) {
    Onnx__TensorProto *t = g->inits[i];
    if (!t->has_raw_data || t->raw_data.len < EXTERNAL_MIN_BYTES) continue;
    size_t pad = (size_t)((EXTERNAL_ALIGN - offset % EXTERNAL_ALIGN) % EXTERNAL_ALIGN);
    if (write_zeros(g->ctx, af, pad) != NS_OK) return g->status = g->ctx->status;
    offset += pad;
    size_t len = t->raw_data.len;
    if (ns_atomic_write(g->ctx, af, t->raw_data.data, len) != NS_OK)
      return g->status = g->ctx->status;
    if (point_outside(g, t, location, offset) != NS_OK) return g->status;
    offset += len;
  }
  *bytes = offset;
  return g->status;
}
