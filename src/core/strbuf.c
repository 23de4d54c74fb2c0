#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ns_strbuf_init(ns_strbuf *sb, ns_ctx *ctx) {
  memset(sb, 0, sizeof *sb);
  sb->ctx = ctx;
}

static int reserve(ns_strbuf *sb, size_t extra) {
  if (sb->failed) return 0;
  if (extra > SIZE_MAX - sb->len - 1) {
    sb->failed = 1;
    ns_fail(sb->ctx, NS_ERR_NOMEM, "string too long");
    return 0;
  }
  size_t need = sb->len + extra + 1;
  if (need <= sb->cap) return 1;
  size_t cap = sb->cap ? sb->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = ns_realloc(sb->ctx, sb->data, cap);
  if (!p) {
    sb->failed = 1;
    return 0;
  }
  sb->data = p;
  sb->cap = cap;
  return 1;
}

void ns_strbuf_append(ns_strbuf *sb, const char *s, size_t n) {
  if (!reserve(sb, n)) return;
  memcpy(sb->data + sb->len, s, n);
  sb->len += n;
  sb->data[sb->len] = '\0';
}

void ns_strbuf_puts(ns_strbuf *sb, const char *s) { ns_strbuf_append(sb, s, strlen(s)); }
void ns_strbuf_putc(ns_strbuf *sb, char c) { ns_strbuf_append(sb, &c, 1); }

void ns_strbuf_printf(ns_strbuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !reserve(sb, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb->len += (size_t)n;
}

ns_status ns_strbuf_status(const ns_strbuf *sb) { return sb->failed ? NS_ERR_NOMEM : NS_OK; }

void ns_strbuf_free(ns_strbuf *sb) {
  ns_free(sb->ctx, sb->data);
  sb->data = NULL;
  sb->len = sb->cap = 0;
}
