/* Protobuf text format (.prototxt): one generic reader and one generic writer
 * driven by protobuf-c descriptors, so every message and field of the schema
 * works without per-field code.  The reader accepts what protobuf's own
 * TextFormat::Parse accepts (comments, `:` optional before `{`, `{ }` or
 * `< >`, `[a, b]` lists, enums by name or number, every integer and float
 * spelling, C escapes); the writer lays messages out as TextFormat::Print
 * does, which is how Caffe's prototxts look. */
#ifndef NS_FORMAT_TEXTFORMAT_H
#define NS_FORMAT_TEXTFORMAT_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "core/ctx.h"
#include "core/strbuf.h"

/* Messages nested deeper than this are refused (by the reader and the
 * writer), so hostile input cannot overflow the stack. */
#define NS_TEXT_MAX_DEPTH 100

/* Parses text (len bytes, need not be NUL-terminated) into a new message of
 * type desc, allocated with ctx->pb_alloc so that
 * protobuf_c_message_free_unpacked(msg, &ctx->pb_alloc) frees it, exactly like
 * a message from protobuf_c_message_unpack.  Errors read
 * "FILE:LINE:COL: <found>, expected <what>" (status NS_ERR_INPUT); on any
 * error nothing stays allocated and *out is NULL.  Unknown field names are an
 * error unless ctx->allow_unknown is set, in which case they are skipped
 * with one warning per name (at the end of the read); so are enum values
 * that are not in their enum (the field keeps its default).  filename (may
 * be NULL) names the input in messages. */
ns_status ns_text_parse(ns_ctx *ctx, const char *text, size_t len, const char *filename,
                        const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);

/* A field named by its message's full name and its own. */
typedef struct ns_text_field_ref {
  const char *message, *field;
  const char *why; /* what skipping it would change */
} ns_text_field_ref;

/* What a reader of one kind of file makes of names its schema lacks (see
 * format/text_unknown.h).  Every member may be NULL. */
typedef struct ns_text_rules {
  /* Messages (with all they nest) where an unknown field or enum value is
   * a feature of a schema netsurg does not know rather than a mistake:
   * NS_ERR_UNSUPPORTED, reported after the whole text was read (a syntax
   * error anywhere is still NS_ERR_INPUT), labelled with the message's
   * `name` and `type` fields.  NULL-terminated. */
  const ProtobufCMessageDescriptor *const *feature_scopes;
  const char *field_note; /* what an unknown field there is, for the error */
  const char *value_note; /* what an unknown enum value there is */
  const char *hint;       /* how to read the file anyway */
  /* Unknown fields refused even with ctx->allow_unknown, because skipping
   * them changes results; {NULL} terminated. */
  const ns_text_field_ref *refused;
} ns_text_rules;

/* ns_text_parse with rules for unknown names (NULL: ns_text_parse's). */
ns_status ns_text_parse_with(ns_ctx *ctx, const char *text, size_t len, const char *filename,
                             const ProtobufCMessageDescriptor *desc, const ns_text_rules *rules,
                             ProtobufCMessage **out);

/* Appends msg in text format to out: two-space indent, `field: value` lines,
 * `name {` ... `}` blocks, fields in field-number order, repeated fields as
 * repeated keys, enums by name, strings double-quoted with C escapes, floats
 * in the shortest form that reads back to the same value.  Optional fields
 * are written only when present (has_ flag, or a pointer that is neither NULL
 * nor the default), as protobuf-c's packer decides; unknown binary fields are
 * not written. */
ns_status ns_text_write(ns_ctx *ctx, const ProtobufCMessage *msg, ns_strbuf *out);

#endif
