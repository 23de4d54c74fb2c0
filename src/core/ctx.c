#include "core/ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *default_alloc(void *user, size_t size) {
  (void)user;
  return malloc(size);
}
static void *default_realloc(void *user, void *ptr, size_t size) {
  (void)user;
  return realloc(ptr, size);
}
static void default_free(void *user, void *ptr) {
  (void)user;
  free(ptr);
}

/* protobuf-c's allocator signature differs; bridge it to ours. */
static void *pb_alloc_cb(void *user, size_t size) {
  ns_ctx *ctx = user;
  void *p = ctx->alloc.alloc(ctx->alloc.user, size ? size : 1);
  /* protobuf-c reports any failure as NULL: record why, so that callers
   * can tell "out of memory" from "corrupt input". */
  if (!p) ns_fail(ctx, NS_ERR_NOMEM, "out of memory (%zu bytes)", size);
  return p;
}
static void pb_free_cb(void *user, void *ptr) {
  ns_ctx *ctx = user;
  if (ptr) ctx->alloc.free(ctx->alloc.user, ptr);
}

ns_ctx *ns_ctx_create(void) { return ns_ctx_create_with(NULL); }

ns_ctx *ns_ctx_create_with(const ns_allocator *alloc) {
  ns_allocator a = {default_alloc, default_realloc, default_free, NULL};
  if (alloc) a = *alloc;
  ns_ctx *ctx = a.alloc(a.user, sizeof *ctx);
  if (!ctx) return NULL;
  memset(ctx, 0, sizeof *ctx);
  ctx->alloc = a;
  ctx->pb_alloc.alloc = pb_alloc_cb;
  ctx->pb_alloc.free = pb_free_cb;
  ctx->pb_alloc.allocator_data = ctx;
  ctx->threads = 0;
  return ctx;
}

void ns_ctx_destroy(ns_ctx *ctx) {
  if (!ctx) return;
  ns_allocator a = ctx->alloc;
  a.free(a.user, ctx);
}

const char *ns_status_name(ns_status s) {
  switch (s) {
    case NS_OK: return "ok";
    case NS_ERR_USAGE: return "usage error";
    case NS_ERR_INPUT: return "bad input";
    case NS_ERR_UNSUPPORTED: return "unsupported";
    case NS_ERR_IO: return "I/O error";
    case NS_ERR_NOMEM: return "out of memory";
    case NS_ERR_NET: return "invalid net";
    case NS_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char *ns_ctx_error(const ns_ctx *ctx) {
  if (!ctx) return "no context";
  return ctx->status == NS_OK ? "" : ctx->error;
}
ns_status ns_ctx_status(const ns_ctx *ctx) { return ctx ? ctx->status : NS_ERR_USAGE; }
void ns_ctx_clear_error(ns_ctx *ctx) {
  ctx->status = NS_OK;
  ctx->error[0] = '\0';
}
void ns_ctx_set_threads(ns_ctx *ctx, int threads) { ctx->threads = threads < 0 ? 0 : threads; }
int ns_ctx_threads(const ns_ctx *ctx) { return ctx->threads; }
void ns_ctx_set_memory_limit(ns_ctx *ctx, uint64_t bytes) { ctx->memory_limit = bytes; }
void ns_ctx_set_allow_unknown(ns_ctx *ctx, int allow) { ctx->allow_unknown = allow != 0; }
void ns_ctx_set_warning_handler(ns_ctx *ctx, ns_warn_fn fn, void *user) {
  ctx->warn = fn;
  ctx->warn_user = user;
}

ns_status ns_fail(ns_ctx *ctx, ns_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
  va_end(ap);
  ctx->status = status;
  return status;
}

void ns_error_prefix(ns_ctx *ctx, const char *fmt, ...) {
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  size_t plen = (size_t)n < sizeof prefix ? (size_t)n : sizeof prefix - 1;
  size_t old = strlen(ctx->error);
  if (old > sizeof ctx->error - 1 - plen) old = sizeof ctx->error - 1 - plen;
  memmove(ctx->error + plen, ctx->error, old);
  memcpy(ctx->error, prefix, plen);
  ctx->error[plen + old] = '\0';
}

void ns_warn(ns_ctx *ctx, const char *fmt, ...) {
  if (!ctx->warn) return;
  char msg[NS_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ctx->warn(ctx->warn_user, msg);
}

void *ns_alloc(ns_ctx *ctx, size_t size) {
  void *p = ctx->alloc.alloc(ctx->alloc.user, size ? size : 1);
  if (!p) ns_fail(ctx, NS_ERR_NOMEM, "out of memory (%zu bytes)", size);
  return p;
}

void *ns_calloc(ns_ctx *ctx, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) {
    ns_fail(ctx, NS_ERR_NOMEM, "allocation size overflows (%zu x %zu)", n, size);
    return NULL;
  }
  size_t bytes = n * size;
  void *p = ns_alloc(ctx, bytes);
  if (p) memset(p, 0, bytes ? bytes : 1);
  return p;
}

void *ns_realloc(ns_ctx *ctx, void *ptr, size_t size) {
  void *p = ctx->alloc.realloc(ctx->alloc.user, ptr, size ? size : 1);
  if (!p) ns_fail(ctx, NS_ERR_NOMEM, "out of memory (%zu bytes)", size);
  return p;
}

void *ns_realloc_array(ns_ctx *ctx, void *ptr, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) {
    ns_fail(ctx, NS_ERR_NOMEM, "allocation size overflows (%zu x %zu)", n, size);
    return NULL;
  }
  return ns_realloc(ctx, ptr, n * size);
}

void ns_free(ns_ctx *ctx, void *ptr) {
  if (ptr) ctx->alloc.free(ctx->alloc.user, ptr);
}

char *ns_strndup(ns_ctx *ctx, const char *s, size_t n) {
  char *d = ns_alloc(ctx, n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *ns_strdup(ns_ctx *ctx, const char *s) { return ns_strndup(ctx, s, strlen(s)); }

int ns_mul_i64(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0) return 0;
  if (a != 0 && b > INT64_MAX / a) return 0;
  *out = a * b;
  return 1;
}

int ns_add_i64(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0 || a > INT64_MAX - b) return 0;
  *out = a + b;
  return 1;
}

ns_status ns_check_tensor_size(ns_ctx *ctx, int64_t count, const char *what) {
  int64_t bytes;
  if (count < 0 || !ns_mul_i64(count, (int64_t)sizeof(float), &bytes) ||
      (uint64_t)bytes > (uint64_t)SIZE_MAX / 2)
    return ns_fail(ctx, NS_ERR_NOMEM, "%s: %lld elements is too large", what, (long long)count);
  if (ctx->memory_limit && (uint64_t)bytes > ctx->memory_limit)
    return ns_fail(ctx, NS_ERR_NOMEM, "%s: %lld bytes exceeds the memory limit of %llu bytes",
                   what, (long long)bytes, (unsigned long long)ctx->memory_limit);
  return NS_OK;
}
