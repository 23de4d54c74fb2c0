/* A growable byte string for writers (text format, JSON).  Allocation
 * failure is sticky: appends become no-ops and ns_strbuf_finish reports it. */
#ifndef NS_CORE_STRBUF_H
#define NS_CORE_STRBUF_H

#include <stddef.h>

#include "core/ctx.h"

typedef struct ns_strbuf {
  ns_ctx *ctx;
  char *data;
  size_t len, cap;
  int failed;
} ns_strbuf;

void ns_strbuf_init(ns_strbuf *sb, ns_ctx *ctx);
void ns_strbuf_append(ns_strbuf *sb, const char *s, size_t n);
void ns_strbuf_puts(ns_strbuf *sb, const char *s);
void ns_strbuf_putc(ns_strbuf *sb, char c);
void ns_strbuf_printf(ns_strbuf *sb, const char *fmt, ...) NS_PRINTF(2, 3);
/* NS_OK if every append succeeded; data stays NUL-terminated. */
ns_status ns_strbuf_status(const ns_strbuf *sb);
void ns_strbuf_free(ns_strbuf *sb);

#endif
