/* Internal view of ns_ctx: error reporting and the allocator every module
 * uses.  No module keeps global mutable state; it lives here. */
#ifndef NS_CORE_CTX_H
#define NS_CORE_CTX_H

#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "netsurg.h"

#define NS_ERROR_MAX 2048

struct ns_ctx {
  ns_allocator alloc;
  ProtobufCAllocator pb_alloc; /* routes protobuf-c through alloc */
  ns_status status;
  char error[NS_ERROR_MAX];
  int threads;
  uint64_t memory_limit;
  int allow_unknown;
  ns_warn_fn warn;
  void *warn_user;
};

#if defined(__GNUC__)
#define NS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NS_PRINTF(a, b)
#endif

/* Records an error and returns its status, so callers can
 * `return ns_fail(ctx, NS_ERR_INPUT, "...", ...)`. */
ns_status ns_fail(ns_ctx *ctx, ns_status status, const char *fmt, ...)
    NS_PRINTF(3, 4);
/* Prepends context ("model.prototxt: ") to the current error text. */
void ns_error_prefix(ns_ctx *ctx, const char *fmt, ...) NS_PRINTF(2, 3);
void ns_warn(ns_ctx *ctx, const char *fmt, ...) NS_PRINTF(2, 3);

/* Allocation through the context's hook.  On failure they record
 * NS_ERR_NOMEM in ctx and return NULL. */
void *ns_alloc(ns_ctx *ctx, size_t size);
void *ns_calloc(ns_ctx *ctx, size_t n, size_t size); /* overflow-checked */
void *ns_realloc(ns_ctx *ctx, void *ptr, size_t size);
void *ns_realloc_array(ns_ctx *ctx, void *ptr, size_t n, size_t size);
void ns_free(ns_ctx *ctx, void *ptr);
char *ns_strdup(ns_ctx *ctx, const char *s);
char *ns_strndup(ns_ctx *ctx, const char *s, size_t n);

/* Checked arithmetic for sizes read from untrusted input: return 0 and
 * leave *out untouched on overflow (or negative operands). */
int ns_mul_i64(int64_t a, int64_t b, int64_t *out);
int ns_add_i64(int64_t a, int64_t b, int64_t *out);

/* Number of floats the memory limit allows in one tensor (INT64_MAX if
 * none); checks count and records NS_ERR_NOMEM when over. */
ns_status ns_check_tensor_size(ns_ctx *ctx, int64_t count, const char *what);

#endif
