/* Reflection over protobuf-c's descriptors: where a field's value and its
 * has_ flag, oneof case or repeated count live in a message, whether a
 * field is set, and scalar values read and written by type.  The text
 * format (reader and writer) and the upgrade rules both walk messages this
 * way; protobuf-c's generated code is data, and this is the one place that
 * reads it. */
#ifndef NS_FORMAT_PBREFLECT_H
#define NS_FORMAT_PBREFLECT_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "core/ctx.h"

typedef ProtobufCMessage pbmsg;
typedef const ProtobufCFieldDescriptor pbfield;

/* The field's member (the value, or a repeated field's array pointer). */
static inline void *ns_pb_member(const pbmsg *m, pbfield *f) { return (char *)m + f->offset; }
/* The field's has_ flag (protobuf_c_boolean), oneof case (uint32_t) or
 * repeated count (size_t). */
static inline void *ns_pb_quantifier(const pbmsg *m, pbfield *f) {
  return (char *)m + f->quantifier_offset;
}

/* "int32", "string", ...: the schema's spelling of a type. */
const char *ns_pb_type_name(ProtobufCType t);
/* Size of one value in protobuf-c's layout (an element of a repeated
 * field's array). */
size_t ns_pb_element_size(ProtobufCType t);
/* Strings and sub-messages are held by pointer (NULL or the default when
 * unset); every other type has a has_ flag. */
int ns_pb_is_pointer_type(ProtobufCType t);

/* The field named name[0..len) of d, or NULL (binary search over the
 * descriptor's fields_sorted_by_name). */
pbfield *ns_pb_field_named(const ProtobufCMessageDescriptor *d, const char *name, size_t len);

/* Whether the field is set, by the rule protobuf-c's packer uses to decide
 * what it sends (protobuf's has_*()): a has_ flag, a string or
 * sub-message other than NULL or the default, the oneof case, a non-zero
 * proto3 value, a non-empty repeated field. */
int ns_pb_field_present(const pbmsg *m, pbfield *f);
/* Marks a non-repeated field set after its member was written: its has_
 * flag or oneof case (pointer and required fields need nothing). */
void ns_pb_mark_present(pbmsg *m, pbfield *f);

/* A numeric, bool or enum value at p, as a double (64-bit integers beyond
 * 2^53 round). */
double ns_pb_scalar_get(const void *p, ProtobufCType t);
/* Stores v at p with C's conversion rules (as Caffe's set_x(int32 ->
 * uint32) does); returns the value's size, 0 for non-scalar types. */
size_t ns_pb_scalar_put(void *p, ProtobufCType t, double v);
/* Appends one scalar to a repeated field (its array grown to the exact
 * count, so arrays from protobuf-c's unpacker stay valid). */
ns_status ns_pb_scalar_append(ns_ctx *ctx, pbmsg *m, pbfield *f, double v);

/* A new empty message of type d from the ctx allocator (as
 * protobuf_c_message_free_unpacked with ctx->pb_alloc frees it). */
pbmsg *ns_pb_message_new(ns_ctx *ctx, const ProtobufCMessageDescriptor *d);

#endif
