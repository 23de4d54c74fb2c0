/* The counting allocator of ns_budget (shared by the CLI and the fuzz
 * targets).  Each block starts with its size, in a header of 16 bytes so
 * that malloc's alignment is kept, so that a free or realloc can update
 * the counters without a table. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netsurg.h"

#define HEADER 16

static void *budget_alloc(void *user, size_t size) {
  ns_budget *b = user;
  if (b->live_bytes > b->limit || size > b->limit - b->live_bytes || size > SIZE_MAX - HEADER)
    return NULL;
  unsigned char *p = malloc(size + HEADER);
  if (!p) return NULL;
  memcpy(p, &size, sizeof size);
  b->live_blocks++;
  b->live_bytes += size;
  return p + HEADER;
}

static void budget_free(void *user, void *ptr) {
  ns_budget *b = user;
  if (!ptr) return;
  unsigned char *p = (unsigned char *)ptr - HEADER;
  size_t size;
  memcpy(&size, p, sizeof size);
  b->live_blocks--;
  b->live_bytes -= size;
  free(p);
}

static void *budget_realloc(void *user, void *ptr, size_t size) {
  ns_budget *b = user;
  if (!ptr) return budget_alloc(user, size);
  unsigned char *p = (unsigned char *)ptr - HEADER;
  size_t old;
  memcpy(&old, p, sizeof old);
  if (size > old && (b->live_bytes > b->limit || size - old > b->limit - b->live_bytes))
    return NULL;
  if (size > SIZE_MAX - HEADER) return NULL;
  unsigned char *q = realloc(p, size + HEADER);
  if (!q) return NULL;
  memcpy(q, &size, sizeof size);
  b->live_bytes = b->live_bytes - old + size;
  return q + HEADER;
}

ns_allocator ns_budget_allocator(ns_budget *b) {
  ns_allocator a = {budget_alloc, budget_realloc, budget_free, b};
  return a;
}
