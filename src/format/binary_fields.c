#include "format/binary_fields.h"

#include <stdint.h>
#include <string.h>

/* ---- the wire format, read-only ----------------------------------------- */

typedef struct wire {
  const uint8_t *p, *end;
} wire;

enum { WT_VARINT = 0, WT_64 = 1, WT_LEN = 2, WT_32 = 5 };

static int wire_varint(wire *w, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64 && w->p < w->end; shift += 7) {
    uint8_t b = *w->p++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 1;
    }
  }
  return 0;
}

/* The next field: its number, wire type, and a varint's value or a
 * length-delimited field's payload.  0 at the end or on bad bytes. */
static int wire_next(wire *w, uint32_t *field, int *wt, uint64_t *value, wire *payload) {
  uint64_t tag, len;
  if (w->p >= w->end || !wire_varint(w, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
    return 0;
  *field = (uint32_t)(tag >> 3);
  *wt = (int)(tag & 7);
  size_t skip = 0;
  switch (*wt) {
    case WT_VARINT:
      return wire_varint(w, value);
    case WT_64:
      skip = 8;
      break;
    case WT_32:
      skip = 4;
      break;
    case WT_LEN:
      if (!wire_varint(w, &len) || len > (uint64_t)(w->end - w->p)) return 0;
      payload->p = w->p;
      payload->end = w->p + len;
      skip = (size_t)len;
      break;
    default:
      return 0; /* groups: never in Caffe's files */
  }
  if ((size_t)(w->end - w->p) < skip) return 0;
  w->p += skip;
  return 1;
}

/* ---- clashes ------------------------------------------------------------- */

enum {
  NET_LAYER = 100, /* NetParameter.layer */
  LAYER_NAME = 1,
  LAYER_TYPE = 2,
  LAYER_POOLING = 121,
  POOLING_ROUND_MODE = 13
};

/* Whether a payload can be BVLC's message at that number. */
static int fits_input_param(wire w) { /* repeated BlobShape shape = 1 */
  uint32_t f;
  int wt;
  uint64_t v;
  wire sub;
  while (wire_next(&w, &f, &wt, &v, &sub))
    if (f != 1 || wt != WT_LEN) return 0;
  return 1;
}

static int fits_embed_param(wire w) { /* uint32 1, 2; bool 3; fillers 4, 5 */
  uint32_t f;
  int wt;
  uint64_t v;
  wire sub;
  while (wire_next(&w, &f, &wt, &v, &sub))
    if (f > 5 || wt != (f <= 3 ? WT_VARINT : WT_LEN)) return 0;
  return 1;
}

static int fits_unknown(wire w) {
  (void)w;
  return 1;
}

/* A LayerParameter number a fork uses for another field.  The layer
 * holds the fork's field when its type is the fork's layer, or when the
 * bytes cannot be ours. */
typedef struct clash {
  uint32_t number;
  const char *ours;      /* what the number is in caffe.proto here */
  const char *fork_type; /* the fork's layer type using the field */
  const char *theirs;    /* the fork's field, and where it is here */
  int (*fits)(wire payload);
} clash;

static const clash clashes[] = {
    {143, "BVLC's input_param", "Interp",
     "PSPNet / DeepLab v2's interp_param (netsurg's number 7143)", fits_input_param},
    {137, "BVLC's embed_param", "Upsample", "SegNet's upsample_param (netsurg's number 7137)",
     fits_embed_param},
    {201, "SSD's multibox_loss_param (not read here)", "Proposal",
     "OpenCV's proposal_param (netsurg's number 7201)", fits_unknown},
};

typedef struct layer_bytes {
  wire body;
  char name[128], type[64];
} layer_bytes;

static void copy_text(char *dst, size_t cap, wire s) {
  size_t n = (size_t)(s.end - s.p);
  if (n >= cap) n = cap - 1;
  memcpy(dst, s.p, n);
  dst[n] = '\0';
}

static void read_name_type(layer_bytes *l) {
  wire w = l->body, sub;
  uint32_t f;
  int wt;
  uint64_t v;
  strcpy(l->name, "?");
  strcpy(l->type, "?");
  while (wire_next(&w, &f, &wt, &v, &sub)) {
    if (f == LAYER_NAME && wt == WT_LEN) copy_text(l->name, sizeof l->name, sub);
    if (f == LAYER_TYPE && wt == WT_LEN) copy_text(l->type, sizeof l->type, sub);
  }
}

static ns_status check_layer(ns_ctx *ctx, const layer_bytes *l, const char *file) {
  wire w = l->body, sub;
  uint32_t f;
  int wt;
  uint64_t v;
  while (wire_next(&w, &f, &wt, &v, &sub)) {
    for (size_t i = 0; i < sizeof clashes / sizeof *clashes; i++) {
      const clash *c = &clashes[i];
      if (f != c->number) continue;
      if (strcmp(l->type, c->fork_type) && wt == WT_LEN && c->fits(sub)) continue;
      return ns_fail(ctx, NS_ERR_UNSUPPORTED,
                     "%s: layer '%s' (type %s): field %u is %s in this binary file, but %s "
                     "here; a fork's binary net definition does not decode: give the net as a "
                     "prototxt, where the field's name reads right",
                     file, l->name, l->type, f, c->theirs, c->ours);
    }
  }
  return NS_OK;
}

/* PR #3057's ceil_mode and BVLC's round_mode share PoolingParameter's 13
 * with the same wire type, inverse meanings (ceil_mode false = 0 = CEIL):
 * no byte tells them apart.  Returns the value, or -1 when unset. */
static int64_t pooling_field_13(const layer_bytes *l) {
  wire w = l->body, sub, p;
  uint32_t f, g;
  int wt, pwt;
  uint64_t v, pv;
  int64_t found = -1;
  while (wire_next(&w, &f, &wt, &v, &sub)) {
    if (f != LAYER_POOLING || wt != WT_LEN) continue;
    while (wire_next(&sub, &g, &pwt, &pv, &p))
      if (g == POOLING_ROUND_MODE && pwt == WT_VARINT) found = (int64_t)(pv & 0xff);
  }
  return found;
}

ns_status ns_binary_check_clashes(ns_ctx *ctx, const unsigned char *data, size_t len,
                                  const char *file) {
  wire net = {data, data + len}, sub;
  uint32_t f;
  int wt;
  uint64_t v;
  size_t rounded = 0;
  layer_bytes first_rounded = {{NULL, NULL}, "", ""};
  int64_t first_value = 0;
  while (wire_next(&net, &f, &wt, &v, &sub)) {
    if (f != NET_LAYER || wt != WT_LEN) continue;
    layer_bytes l = {sub, "", ""};
    read_name_type(&l);
    if (check_layer(ctx, &l, file) != NS_OK) return ctx->status;
    int64_t mode = pooling_field_13(&l);
    if (mode >= 0 && rounded++ == 0) first_rounded = l, first_value = mode;
  }
  if (rounded)
    ns_warn(ctx,
            "%s: layer '%s'%s: pooling_param field 13 = %lld read as BVLC's round_mode %s; "
            "forks with Caffe PR #3057 (DenseNet-Caffe, OpenCV) write ceil_mode: %s there, the "
            "other rounding: if the file is theirs, give the net as a prototxt",
            file, first_rounded.name, rounded > 1 ? " and more Pooling layers" : "",
            (long long)first_value, first_value ? "FLOOR" : "CEIL", first_value ? "true" : "false");
  return NS_OK;
}

/* ---- unknown fields ------------------------------------------------------ */

enum { UNKNOWN_KEPT = 64, MAX_DEPTH = 32 };

typedef struct unknown_field {
  const ProtobufCMessageDescriptor *message;
  uint32_t number;
  const char *layer; /* the first layer it was met in, or NULL */
  size_t count;
} unknown_field;

typedef struct unknown_log {
  unknown_field seen[UNKNOWN_KEPT];
  size_t n, dropped;
} unknown_log;

static void note_unknown(unknown_log *log, const ProtobufCMessageDescriptor *d, uint32_t number,
                         const char *layer) {
  for (size_t i = 0; i < log->n; i++)
    if (log->seen[i].message == d && log->seen[i].number == number) {
      log->seen[i].count++;
      return;
    }
  if (log->n == UNKNOWN_KEPT) {
    log->dropped++;
    return;
  }
  log->seen[log->n++] = (unknown_field){d, number, layer, 1};
}

static void walk(unknown_log *log, const ProtobufCMessage *m, const char *layer, int depth) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  if (d == &caffe__layer_parameter__descriptor) {
    const char *name = ((const Caffe__LayerParameter *)m)->name;
    if (name) layer = name;
  }
  for (unsigned i = 0; i < m->n_unknown_fields; i++)
    note_unknown(log, d, m->unknown_fields[i].tag, layer);
  if (depth >= MAX_DEPTH) return;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    const char *member = (const char *)m + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
      ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)member;
      for (size_t j = 0; j < n; j++)
        if (items[j]) walk(log, items[j], layer, depth + 1);
    } else {
      const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
      if (sub && sub != f->default_value) walk(log, sub, layer, depth + 1);
    }
  }
}

/* What the numbers SSD's training files carry are (src/caffe/proto of
 * weiliu89/caffe, branch ssd). */
static const char *known_as(const ProtobufCMessageDescriptor *d, uint32_t number) {
  if (d != &caffe__layer_parameter__descriptor) return "";
  switch (number) {
    case 200:
      return " (SSD's annotated_data_param, training only)";
    case 201:
      return " (SSD's multibox_loss_param, training only)";
    case 205:
      return " (SSD's detection_evaluate_param, training only)";
    case 207:
      return " (SSD's video_data_param, training only)";
    default:
      return "";
  }
}

void ns_binary_warn_unknown(ns_ctx *ctx, const Caffe__NetParameter *net, const char *file) {
  unknown_log *log = ns_calloc(ctx, 1, sizeof *log);
  if (!log) { /* the warnings are lost, not the read */
    ns_ctx_clear_error(ctx);
    return;
  }
  walk(log, &net->base, NULL, 0);
  for (size_t i = 0; i < log->n; i++) {
    const unknown_field *u = &log->seen[i];
    ns_warn(ctx,
            "%s: unknown field %u%s in message %s%s%s%s, %zu time(s): kept as read (written "
            "back unchanged), not used",
            file, u->number, known_as(u->message, u->number), u->message->name,
            u->layer ? " (layer '" : "", u->layer ? u->layer : "", u->layer ? "')" : "", u->count);
  }
  if (log->dropped)
    ns_warn(ctx, "%s: %zu more unknown field numbers, not listed", file, log->dropped);
  ns_free(ctx, log);
}
