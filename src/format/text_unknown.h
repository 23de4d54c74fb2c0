/* The text reader's record of the names and values its schema lacks:
 * unknown fields, and enum values that are not in their enum.
 *
 * What such a name means depends on where it stands.  Inside a Caffe
 * layer it is almost always a field of a Caffe fork (SSD's norm_param,
 * DenseNet's ceil_mode): a model feature netsurg lacks, NS_ERR_UNSUPPORTED,
 * reported with the layer's name and type once the whole file has been
 * read (so that a syntax error anywhere still wins, as NS_ERR_INPUT).
 * Elsewhere (a solver file, the net's top level) it stays bad input,
 * reported at once.  With ctx->allow_unknown the name is skipped and
 * reported once per name at the end of the read, not once per occurrence,
 * except for the fields the rules name as changing results, which are
 * refused all the same. */
#ifndef NS_FORMAT_TEXT_UNKNOWN_H
#define NS_FORMAT_TEXT_UNKNOWN_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "core/ctx.h"
#include "format/textformat.h"

/* One unknown name (or value), and where it first appeared. */
typedef struct ns_unknown_seen {
  const ProtobufCMessageDescriptor *message; /* the message it appeared in */
  char field[64];   /* the unknown field, or the field whose value is unknown */
  int is_value;     /* 1: an enum value the field's enum lacks */
  char detail[640]; /* "unknown field 'x' in message M", or the value's text */
  char keeps[64];   /* a skipped value: the field's default it keeps, or "" */
  size_t line, col;
  const ProtobufCMessage *scope; /* the feature-scope message around it, or NULL */
  size_t count;                  /* occurrences (filled in by the log) */
} ns_unknown_seen;

/* Distinct names kept for the warnings; more are only counted, so a
 * hostile file of a million different names costs no memory. */
#define NS_UNKNOWN_NAMES_KEPT 64

typedef struct ns_unknown_log {
  ns_ctx *ctx;
  const char *file;
  const ns_text_rules *rules; /* may be NULL */
  ns_unknown_seen *seen;      /* distinct names, in order of first appearance */
  size_t n_seen, names_dropped;
  int has_fatal;             /* a name in a scope stops the read at its end: */
  ns_unknown_seen fatal;     /* the first such */
  const char *fatal_refused; /* its rules' why, if refused despite allow_unknown */
} ns_unknown_log;

void ns_unknown_log_init(ns_unknown_log *log, ns_ctx *ctx, const char *file,
                         const ns_text_rules *rules);
/* Records one occurrence.  NS_OK: the reader skips it and reads on (the
 * read may still fail at the end); otherwise the error that stops the
 * read now. */
ns_status ns_unknown_note(ns_unknown_log *log, const ns_unknown_seen *occurrence);
/* After the whole text was read: the deferred error, or else one warning
 * per skipped name.  Call while the scope messages are still alive (their
 * name and type fields label the messages). */
ns_status ns_unknown_finish(ns_unknown_log *log);
void ns_unknown_log_free(ns_unknown_log *log);

#endif
