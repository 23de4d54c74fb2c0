/* A string -> index map for names (blobs, layers), so that looking one up
 * does not scan the net: a hostile prototxt with 100,000 layers must build
 * in linear time.  Open addressing, sized once for the most keys it will
 * hold; keys are borrowed and must outlive the map. */
#ifndef NS_CORE_NAME_MAP_H
#define NS_CORE_NAME_MAP_H

#include <stddef.h>

#include "core/ctx.h"

typedef struct ns_name_map {
  const char **keys;
  int *vals;
  size_t mask;
} ns_name_map;

/* Room for `entries` keys (the table is at least twice that). */
ns_status ns_name_map_init(ns_ctx *ctx, ns_name_map *m, size_t entries);
void ns_name_map_free(ns_ctx *ctx, ns_name_map *m);
/* Sets key -> val (val >= 0), replacing an earlier value of the key.  At
 * most `entries` distinct keys. */
void ns_name_map_put(ns_name_map *m, const char *key, int val);
/* The value of key, or -1. */
int ns_name_map_get(const ns_name_map *m, const char *key);

#endif
