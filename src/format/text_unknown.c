/* The text reader's unknown names: which stop a read, which are skipped,
 * and the one message or warning each gets.  See text_unknown.h. */
#include "format/text_unknown.h"

#include <stdio.h>
#include <string.h>

#include "format/pbreflect.h"

void ns_unknown_log_init(ns_unknown_log *log, ns_ctx *ctx, const char *file,
                         const ns_text_rules *rules) {
  memset(log, 0, sizeof *log);
  log->ctx = ctx;
  log->file = file;
  log->rules = rules;
}

void ns_unknown_log_free(ns_unknown_log *log) {
  ns_free(log->ctx, log->seen);
  log->seen = NULL;
  log->n_seen = 0;
}

/* Why the rules refuse to skip this field, or NULL. */
static const char *refused_why(const ns_unknown_log *log, const ns_unknown_seen *s) {
  if (s->is_value || !log->rules || !log->rules->refused) return NULL;
  for (const ns_text_field_ref *r = log->rules->refused; r->message; r++)
    if (!strcmp(r->message, s->message->name) && !strcmp(r->field, s->field)) return r->why;
  return NULL;
}

/* A string field of m (NULL when absent), or an enum's value name. */
static const char *text_field(const ProtobufCMessage *m, const char *name) {
  const ProtobufCFieldDescriptor *f = ns_pb_field_named(m->descriptor, name, strlen(name));
  if (!f || f->label == PROTOBUF_C_LABEL_REPEATED || !ns_pb_field_present(m, f)) return NULL;
  if (f->type == PROTOBUF_C_TYPE_STRING) return *(const char *const *)ns_pb_member(m, f);
  if (f->type != PROTOBUF_C_TYPE_ENUM) return NULL;
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int32_t *)ns_pb_member(m, f));
  return v ? v->name : NULL;
}

/* "layer 'conv4_3_norm' (type Normalize): " from the scope message's name
 * and type fields, as far as they are known; "" outside any scope. */
static void scope_label(const ns_unknown_seen *s, char *out, size_t cap) {
  out[0] = '\0';
  if (!s->scope) return;
  const char *name = text_field(s->scope, "name"), *type = text_field(s->scope, "type");
  if (name && type)
    snprintf(out, cap, "layer '%s' (type %s): ", name, type);
  else if (name)
    snprintf(out, cap, "layer '%s': ", name);
  else if (type)
    snprintf(out, cap, "a layer of type %s: ", type);
  else
    snprintf(out, cap, "a layer without name or type: ");
}

/* " (other unknown names: a, b, ...)" for the names besides `except`. */
static void other_names(const ns_unknown_log *log, const ns_unknown_seen *except, char *out,
                        size_t cap) {
  size_t k = 0;
  out[0] = '\0';
  for (size_t i = 0; i < log->n_seen && k + 8 < cap; i++) {
    const ns_unknown_seen *s = &log->seen[i];
    if (!strcmp(s->field, except->field) && s->message == except->message) continue;
    int w = snprintf(out + k, cap - k, "%s%s", k ? ", " : " (other unknown names: ", s->field);
    if (w < 0) break;
    k += (size_t)w;
  }
  if (k && log->names_dropped && k < cap)
    k += (size_t)snprintf(out + k, cap - k, " and %zu more", log->names_dropped);
  if (k && k < cap) snprintf(out + k, cap - k, ")");
}

/* The error that stops the read at s: with rules, what the name is and
 * how to read on; without, the bare position and detail. */
static ns_status fail_on(ns_unknown_log *log, ns_status st, const ns_unknown_seen *s,
                         const char *refused) {
  const ns_text_rules *r = log->rules;
  char label[300], others[400];
  scope_label(s, label, sizeof label);
  other_names(log, s, others, sizeof others);
  const char *note = r ? (s->is_value ? r->value_note : r->field_note) : NULL;
  if (refused)
    return ns_fail(log->ctx, st,
                   "%s:%zu:%zu: %s%s%s%s; skipping it would change the results (%s), so "
                   "--allow-unknown does not%s",
                   log->file, s->line, s->col, label, s->detail, note ? ": " : "",
                   note ? note : "", refused, others);
  return ns_fail(log->ctx, st, "%s:%zu:%zu: %s%s%s%s%s%s%s", log->file, s->line, s->col, label,
                 s->detail, note ? ": " : "", note ? note : "", r && r->hint ? "; " : "",
                 r && r->hint ? r->hint : "", others);
}

static ns_unknown_seen *find_seen(ns_unknown_log *log, const ns_unknown_seen *o) {
  for (size_t i = 0; i < log->n_seen; i++) {
    ns_unknown_seen *s = &log->seen[i];
    if (s->message == o->message && s->is_value == o->is_value && !strcmp(s->field, o->field))
      return s;
  }
  return NULL;
}

static ns_status keep(ns_unknown_log *log, const ns_unknown_seen *o) {
  ns_unknown_seen *s = find_seen(log, o);
  if (s) {
    s->count++;
    return NS_OK;
  }
  if (log->n_seen == NS_UNKNOWN_NAMES_KEPT) {
    log->names_dropped++;
    return NS_OK;
  }
  if (!log->seen) {
    log->seen = ns_calloc(log->ctx, NS_UNKNOWN_NAMES_KEPT, sizeof *log->seen);
    if (!log->seen) return log->ctx->status;
  }
  s = &log->seen[log->n_seen++];
  *s = *o;
  s->count = 1;
  return NS_OK;
}

ns_status ns_unknown_note(ns_unknown_log *log, const ns_unknown_seen *o) {
  const char *why = refused_why(log, o);
  int stops = why || !log->ctx->allow_unknown;
  if (stops && !o->scope) return fail_on(log, why ? NS_ERR_UNSUPPORTED : NS_ERR_INPUT, o, why);
  if (stops && !log->has_fatal) {
    log->fatal = *o;
    log->fatal_refused = why;
    log->has_fatal = 1;
  }
  return keep(log, o);
}

/* One warning per skipped name: where it first appeared, how often. */
static void warn_skipped(ns_unknown_log *log, const ns_unknown_seen *s) {
  char label[300], times[64] = "", skipped[128] = "";
  scope_label(s, label, sizeof label);
  if (s->count > 1) snprintf(times, sizeof times, " (%zu times, first here)", s->count);
  if (s->keeps[0])
    snprintf(skipped, sizeof skipped, "; skipped: the field keeps its default, %s", s->keeps);
  else if (s->is_value || log->rules)
    snprintf(skipped, sizeof skipped, "; skipped");
  ns_warn(log->ctx, "%s:%zu:%zu: %s%s%s%s", log->file, s->line, s->col, label, s->detail, times,
          skipped);
}

ns_status ns_unknown_finish(ns_unknown_log *log) {
  if (log->has_fatal) return fail_on(log, NS_ERR_UNSUPPORTED, &log->fatal, log->fatal_refused);
  for (size_t i = 0; i < log->n_seen; i++) warn_skipped(log, &log->seen[i]);
  if (log->names_dropped)
    ns_warn(log->ctx, "%s: %zu more unknown names skipped", log->file, log->names_dropped);
  return NS_OK;
}
