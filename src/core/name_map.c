#include "core/name_map.h"

#include <stdint.h>
#include <string.h>

static size_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return (size_t)h;
}

ns_status ns_name_map_init(ns_ctx *ctx, ns_name_map *m, size_t entries) {
  memset(m, 0, sizeof *m);
  size_t cap = 16;
  while (cap / 2 < entries) {
    if (cap > SIZE_MAX / 4) return ns_fail(ctx, NS_ERR_NOMEM, "too many names (%zu)", entries);
    cap *= 2;
  }
  m->keys = ns_calloc(ctx, cap, sizeof *m->keys);
  m->vals = ns_calloc(ctx, cap, sizeof *m->vals);
  if (!m->keys || !m->vals) {
    ns_name_map_free(ctx, m);
    return ctx->status;
  }
  m->mask = cap - 1;
  return NS_OK;
}

void ns_name_map_free(ns_ctx *ctx, ns_name_map *m) {
  ns_free(ctx, m->keys);
  ns_free(ctx, m->vals);
  memset(m, 0, sizeof *m);
}

/* The key's slot, or the free slot where it would go (one always exists:
 * the table is kept at most half full). */
static size_t slot_of(const ns_name_map *m, const char *key) {
  size_t i = name_hash(key) & m->mask;
  while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & m->mask;
  return i;
}

void ns_name_map_put(ns_name_map *m, const char *key, int val) {
  size_t i = slot_of(m, key);
  m->keys[i] = key;
  m->vals[i] = val;
}

int ns_name_map_get(const ns_name_map *m, const char *key) {
  if (!m->keys) return -1;
  size_t i = slot_of(m, key);
  return m->keys[i] ? m->vals[i] : -1;
}
