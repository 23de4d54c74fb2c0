/* netsurg: load, edit, save and run Caffe models in C.
 *
 * Every call that can fail takes an ns_ctx and returns an ns_status; on
 * failure ns_ctx_error() tells what went wrong (file, line:column, layer,
 * blob or field where it applies).  The library never exits, aborts or
 * prints on bad input.  Handles are opaque; each _create has a _destroy.
 */
#ifndef NETSURG_H
#define NETSURG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes double as the CLI's exit codes. */
typedef enum ns_status {
  NS_OK = 0,
  NS_ERR_USAGE = 1,       /* bad arguments from the caller */
  NS_ERR_INPUT = 2,       /* malformed or corrupt input file or data */
  NS_ERR_UNSUPPORTED = 3, /* valid Caffe, but a feature we do not run */
  NS_ERR_IO = 4,          /* cannot open, read or write a file */
  NS_ERR_NOMEM = 5,       /* allocation failed or over the memory limit */
  NS_ERR_NET = 6,         /* the net is inconsistent: shapes, graph */
  NS_ERR_INTERNAL = 7     /* a bug in netsurg */
} ns_status;

const char *ns_status_name(ns_status s);

/* ---- context ---------------------------------------------------------- */

typedef struct ns_ctx ns_ctx;

/* Optional allocator hook; all library memory goes through it. */
typedef struct ns_allocator {
  void *(*alloc)(void *user, size_t size);
  void *(*realloc)(void *user, void *ptr, size_t size);
  void (*free)(void *user, void *ptr);
  void *user;
} ns_allocator;

typedef void (*ns_warn_fn)(void *user, const char *message);

ns_ctx *ns_ctx_create(void);
/* alloc may be NULL for malloc/realloc/free. Returns NULL if even the
 * context cannot be allocated. */
ns_ctx *ns_ctx_create_with(const ns_allocator *alloc);
void ns_ctx_destroy(ns_ctx *ctx);

const char *ns_ctx_error(const ns_ctx *ctx);
ns_status ns_ctx_status(const ns_ctx *ctx);
void ns_ctx_clear_error(ns_ctx *ctx);

/* Threads for compute loops (0 = all cores).  One thread is deterministic. */
void ns_ctx_set_threads(ns_ctx *ctx, int threads);
int ns_ctx_threads(const ns_ctx *ctx);
/* Refuse single allocations of tensors larger than this (0 = no limit). */
void ns_ctx_set_memory_limit(ns_ctx *ctx, uint64_t bytes);
/* Unknown prototxt fields: 0 = error (default), 1 = warn and skip. */
void ns_ctx_set_allow_unknown(ns_ctx *ctx, int allow);
/* Warnings (e.g. skipped unknown fields) go here; default: dropped. */
void ns_ctx_set_warning_handler(ns_ctx *ctx, ns_warn_fn fn, void *user);

#ifdef __cplusplus
}
#endif
#endif
