#include "format/pbreflect.h"

#include <stdint.h>
#include <string.h>

const char *ns_pb_type_name(ProtobufCType t) {
  switch (t) {
    case PROTOBUF_C_TYPE_INT32:
      return "int32";
    case PROTOBUF_C_TYPE_SINT32:
      return "sint32";
    case PROTOBUF_C_TYPE_SFIXED32:
      return "sfixed32";
    case PROTOBUF_C_TYPE_INT64:
      return "int64";
    case PROTOBUF_C_TYPE_SINT64:
      return "sint64";
    case PROTOBUF_C_TYPE_SFIXED64:
      return "sfixed64";
    case PROTOBUF_C_TYPE_UINT32:
      return "uint32";
    case PROTOBUF_C_TYPE_FIXED32:
      return "fixed32";
    case PROTOBUF_C_TYPE_UINT64:
      return "uint64";
    case PROTOBUF_C_TYPE_FIXED64:
      return "fixed64";
    case PROTOBUF_C_TYPE_FLOAT:
      return "float";
    case PROTOBUF_C_TYPE_DOUBLE:
      return "double";
    case PROTOBUF_C_TYPE_BOOL:
      return "bool";
    case PROTOBUF_C_TYPE_ENUM:
      return "enum";
    case PROTOBUF_C_TYPE_STRING:
      return "string";
    case PROTOBUF_C_TYPE_BYTES:
      return "bytes";
    case PROTOBUF_C_TYPE_MESSAGE:
      return "message";
  }
  return "?";
}

size_t ns_pb_element_size(ProtobufCType t) {
  switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
      return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return 8;
    case PROTOBUF_C_TYPE_FLOAT:
      return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
      return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
      return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
      return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
      return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
      return sizeof(ProtobufCMessage *);
  }
  return 0;
}

int ns_pb_is_pointer_type(ProtobufCType t) {
  return t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE;
}

pbfield *ns_pb_field_named(const ProtobufCMessageDescriptor *d, const char *name, size_t len) {
  unsigned lo = 0, hi = d->n_fields;
  while (lo < hi) {
    unsigned mid = lo + (hi - lo) / 2;
    pbfield *f = &d->fields[d->fields_sorted_by_name[mid]];
    int c = strncmp(name, f->name, len);
    if (c == 0 && f->name[len] != '\0') c = -1;
    if (c == 0) return f;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

/* protobuf-c's field_is_zeroish, for proto3 fields without presence. */
static int is_zeroish(pbfield *f, const void *member) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
      return *(const float *)member == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
      return *(const double *)member == 0;
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(const char *const *)member;
      return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
      return ((const ProtobufCBinaryData *)member)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
      return *(const void *const *)member == NULL;
    default:
      break;
  }
  static const unsigned char zero[8];
  return memcmp(member, zero, ns_pb_element_size(f->type)) == 0;
}

int ns_pb_field_present(const pbmsg *m, pbfield *f) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED) return *(const size_t *)ns_pb_quantifier(m, f) > 0;
  const void *member = ns_pb_member(m, f);
  if (ns_pb_is_pointer_type(f->type)) {
    const void *ptr = *(const void *const *)member;
    if (!ptr || (f->label != PROTOBUF_C_LABEL_REQUIRED && ptr == f->default_value)) return 0;
  }
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    return *(const uint32_t *)ns_pb_quantifier(m, f) == f->id;
  switch (f->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
      return 1;
    case PROTOBUF_C_LABEL_OPTIONAL:
      return ns_pb_is_pointer_type(f->type) || *(const protobuf_c_boolean *)ns_pb_quantifier(m, f);
    case PROTOBUF_C_LABEL_NONE:
      return !is_zeroish(f, member);
    case PROTOBUF_C_LABEL_REPEATED:
      break;
  }
  return 0;
}

void ns_pb_mark_present(pbmsg *m, pbfield *f) {
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    *(uint32_t *)ns_pb_quantifier(m, f) = f->id;
  else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && !ns_pb_is_pointer_type(f->type))
    *(protobuf_c_boolean *)ns_pb_quantifier(m, f) = 1;
}

double ns_pb_scalar_get(const void *p, ProtobufCType t) {
  switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
      return *(const int32_t *)p;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      return *(const uint32_t *)p;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      return (double)*(const int64_t *)p;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return (double)*(const uint64_t *)p;
    case PROTOBUF_C_TYPE_BOOL:
      return *(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_FLOAT:
      return *(const float *)p;
    case PROTOBUF_C_TYPE_DOUBLE:
      return *(const double *)p;
    default:
      return 0;
  }
}

size_t ns_pb_scalar_put(void *p, ProtobufCType t, double v) {
  switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
      *(int32_t *)p = (int32_t)v;
      return 4;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      *(uint32_t *)p = (uint32_t)(int64_t)v;
      return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      *(int64_t *)p = (int64_t)v;
      return 8;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      *(uint64_t *)p = (uint64_t)v;
      return 8;
    case PROTOBUF_C_TYPE_BOOL:
      *(protobuf_c_boolean *)p = v != 0;
      return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_FLOAT:
      *(float *)p = (float)v;
      return 4;
    case PROTOBUF_C_TYPE_DOUBLE:
      *(double *)p = v;
      return 8;
    default:
      return 0;
  }
}

ns_status ns_pb_scalar_append(ns_ctx *ctx, pbmsg *m, pbfield *f, double v) {
  size_t *n = ns_pb_quantifier(m, f);
  void **arr = ns_pb_member(m, f);
  unsigned char tmp[8];
  size_t size = ns_pb_scalar_put(tmp, f->type, v);
  if (size == 0) return ns_fail(ctx, NS_ERR_INTERNAL, "field %s is not a scalar", f->name);
  unsigned char *grown = ns_realloc_array(ctx, *arr, *n + 1, size);
  if (!grown) return ctx->status;
  memcpy(grown + *n * size, tmp, size);
  *arr = grown;
  (*n)++;
  return NS_OK;
}

pbmsg *ns_pb_message_new(ns_ctx *ctx, const ProtobufCMessageDescriptor *d) {
  pbmsg *m = ns_alloc(ctx, d->sizeof_message);
  if (m) protobuf_c_message_init(d, m);
  return m;
}
