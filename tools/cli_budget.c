/* The CLI's memory budget.  Hostile dims can ask for tensors that each fit
 * but together exceed the machine; with Linux's overcommit every malloc
 * succeeds and the OOM killer ends the process (a signal) only when the
 * pages are touched.  So every allocation of the CLI's contexts goes
 * through the library's counting allocator (ns_budget), which refuses to
 * pass the budget: the library then reports NS_ERR_NOMEM naming what it
 * was allocating (exit 5).
 * The budget is NETSURG_MEMORY_LIMIT (bytes, or with a K, M or G suffix),
 * else 90% of the physical memory.  State is process-wide: the CLI runs
 * one verb per process. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tools/cli.h"

static ns_budget heap;

/* "123", "64K", "100M", "2G" -> bytes; 0 on a malformed value. */
static uint64_t parse_size(const char *s) {
  char *end;
  errno = 0;
  if (!s || *s < '0' || *s > '9') return 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno) return 0;
  int shift = 0;
  if (*end == 'K' || *end == 'k')
    shift = 10;
  else if (*end == 'M' || *end == 'm')
    shift = 20;
  else if (*end == 'G' || *end == 'g')
    shift = 30;
  if (shift) end++;
  if (*end || v == 0 || v > (UINT64_MAX >> shift)) return 0;
  return (uint64_t)v << shift;
}

static uint64_t physical_budget(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return SIZE_MAX;
  return (uint64_t)pages / 10 * 9 * (uint64_t)page;
}

int cli_memory_budget(ns_allocator *alloc, uint64_t *limit) {
  const char *env = getenv("NETSURG_MEMORY_LIMIT");
  uint64_t bytes = physical_budget();
  if (env) {
    bytes = parse_size(env);
    if (!bytes) {
      fprintf(stderr,
              "netsurg: NETSURG_MEMORY_LIMIT='%s' is not a size (bytes, or a number with K, M "
              "or G)\n",
              env);
      return NS_ERR_USAGE;
    }
  }
  heap.limit = bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes;
  *alloc = ns_budget_allocator(&heap);
  *limit = bytes;
  return 0;
}
