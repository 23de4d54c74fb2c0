/* Shared by the libFuzzer targets (one per .c in fuzz/).  Each target runs
 * one entry point of the library on the fuzzer's bytes and checks the
 * contract every caller relies on:
 *   - a failure is a status 1..6 with a message (NS_ERR_INTERNAL means we
 *     hit a bug of ours, so it counts as a crash);
 *   - every allocation made through the context is freed again by the time
 *     the context is destroyed (counted here, so a leak is caught even when
 *     the block is still reachable and LeakSanitizer would stay quiet);
 *   - live memory stays under a budget, so a hostile size turns into
 *     NS_ERR_NOMEM instead of the fuzzer's out-of-memory kill.
 * Harness state is static: a fuzzer process runs one input at a time. */
#ifndef NS_FUZZ_COMMON_H
#define NS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netsurg.h"

/* Live bytes a single input may hold through the context (tensors, parsed
 * messages).  Well under libFuzzer's default -rss_limit_mb of 2048. */
#define FZ_HEAP_BUDGET ((size_t)768 << 20)

/* The library's counting allocator: it refuses blocks past the budget and
 * counts the live blocks that fz_ctx_destroy checks. */
static ns_budget fz_heap_state = {FZ_HEAP_BUDGET, 0, 0};

static inline void fz_abort(const char *what, const ns_ctx *ctx) {
  fprintf(stderr, "fuzz contract violated: %s\n  status %d, error: %s\n", what,
          (int)ns_ctx_status(ctx), ns_ctx_error(ctx));
  abort();
}

/* A context on the counting allocator: one thread, the given tensor limit
 * (bytes; 0 = none). */
static inline ns_ctx *fz_ctx_create(uint64_t tensor_limit) {
  ns_allocator a = ns_budget_allocator(&fz_heap_state);
  ns_ctx *ctx = ns_ctx_create_with(&a);
  if (!ctx) abort();
  ns_ctx_set_threads(ctx, 1);
  ns_ctx_set_memory_limit(ctx, tensor_limit);
  return ctx;
}

/* Destroys the context; any block still live is a leak. */
static inline void fz_ctx_destroy(ns_ctx *ctx) {
  ns_ctx_destroy(ctx);
  if (fz_heap_state.live_blocks != 0) {
    fprintf(stderr, "fuzz contract violated: %zu blocks (%zu bytes) leaked\n",
            fz_heap_state.live_blocks, fz_heap_state.live_bytes);
    abort();
  }
}

/* The status contract: returned status == recorded status; a failure has a
 * message and is not an internal error. */
static inline void fz_check_status(ns_ctx *ctx, ns_status st) {
  if (st == NS_OK) return;
  if (ns_ctx_status(ctx) != st) fz_abort("returned status differs from ns_ctx_status", ctx);
  if (st < NS_ERR_USAGE || st > NS_ERR_NET) fz_abort("status out of range or internal", ctx);
  if (!ns_ctx_error(ctx)[0]) fz_abort("failure without a message", ctx);
}

/* Reads every value, so that AddressSanitizer sees a result whose count
 * claims more than was allocated. */
static inline void fz_touch(const float *data, int64_t count) {
  volatile float sink = 0;
  for (int64_t i = 0; i < count; i++) sink = data[i];
  (void)sink;
}

#endif
