/* Class labels from synset_words.txt: line i names class i.  Lines may be
 * long, end in CRLF, or lack the final newline; a NUL byte is an error
 * (it would silently cut the name short). */
#include <string.h>

#include "core/fileio.h"

#define LABELS_MAX_FILE_BYTES (64u << 20)
#define LABELS_MAX_COUNT 10000000

void ns_labels_free(ns_ctx *ctx, ns_labels *labels) {
  if (!labels) return;
  for (int i = 0; i < labels->count; i++) {
    ns_free(ctx, labels->ids ? labels->ids[i] : NULL);
    ns_free(ctx, labels->names ? labels->names[i] : NULL);
  }
  ns_free(ctx, labels->ids);
  ns_free(ctx, labels->names);
  memset(labels, 0, sizeof *labels);
}

/* Number of lines: a final line without '\n' counts, an empty tail not. */
static int64_t count_lines(const char *text, size_t size) {
  int64_t n = 0;
  for (size_t i = 0; i < size; i++) n += text[i] == '\n';
  if (size > 0 && text[size - 1] != '\n') n++;
  return n;
}

/* Splits one line (without its '\n') into id and name. */
static ns_status add_line(ns_ctx *ctx, const char *line, size_t len, ns_labels *out) {
  if (len > 0 && line[len - 1] == '\r') len--;
  const char *space = memchr(line, ' ', len);
  size_t id_len = space ? (size_t)(space - line) : len;
  const char *name = space ? space + 1 : line;
  size_t name_len = space ? len - id_len - 1 : len;
  char *id_copy = ns_strndup(ctx, line, id_len);
  char *name_copy = id_copy ? ns_strndup(ctx, name, name_len) : NULL;
  if (!name_copy) {
    ns_free(ctx, id_copy);
    return ctx->status;
  }
  out->ids[out->count] = id_copy;
  out->names[out->count] = name_copy;
  out->count++;
  return NS_OK;
}

ns_status ns_labels_parse(ns_ctx *ctx, const char *text, size_t size, const char *name,
                          ns_labels *out) {
  memset(out, 0, sizeof *out);
  if (!name) name = "<memory>";
  const char *nul = memchr(text, '\0', size);
  if (nul) {
    int64_t line = 1;
    for (const char *p = text; p < nul; p++) line += *p == '\n';
    return ns_fail(ctx, NS_ERR_INPUT, "%s:%lld: NUL byte in label file", name, (long long)line);
  }
  int64_t lines = count_lines(text, size);
  if (lines > LABELS_MAX_COUNT)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: more than %d labels", name, LABELS_MAX_COUNT);
  out->ids = ns_calloc(ctx, (size_t)(lines ? lines : 1), sizeof(char *));
  out->names = out->ids ? ns_calloc(ctx, (size_t)(lines ? lines : 1), sizeof(char *)) : NULL;
  if (!out->names) {
    ns_labels_free(ctx, out);
    return ctx->status;
  }
  size_t start = 0;
  while (start < size) {
    const char *nl = memchr(text + start, '\n', size - start);
    size_t len = nl ? (size_t)(nl - (text + start)) : size - start;
    if (add_line(ctx, text + start, len, out) != NS_OK) {
      ns_labels_free(ctx, out);
      return ctx->status;
    }
    start += len + 1;
  }
  return NS_OK;
}

ns_status ns_labels_load(ns_ctx *ctx, const char *path, ns_labels *out) {
  unsigned char *bytes;
  size_t size;
  memset(out, 0, sizeof *out);
  if (ns_io_read_file(ctx, path, LABELS_MAX_FILE_BYTES, &bytes, &size) != NS_OK) return ctx->status;
  ns_status st = ns_labels_parse(ctx, (const char *)bytes, size, path, out);
  ns_free(ctx, bytes);
  return st;
}
