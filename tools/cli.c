#include "tools/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void print_warning(void *user, const char *msg) {
  (void)user;
  fprintf(stderr, "netsurg: warning: %s\n", msg);
}

ns_ctx *cli_ctx(int allow_unknown, int threads) {
  ns_allocator budget;
  uint64_t limit;
  if (cli_memory_budget(&budget, &limit) != 0) exit(NS_ERR_USAGE);
  ns_ctx *ctx = ns_ctx_create_with(&budget);
  if (!ctx) {
    fprintf(stderr, "netsurg: out of memory\n");
    exit(NS_ERR_NOMEM);
  }
  ns_ctx_set_memory_limit(ctx, limit);
  ns_ctx_set_warning_handler(ctx, print_warning, NULL);
  ns_ctx_set_allow_unknown(ctx, allow_unknown);
  ns_ctx_set_threads(ctx, threads);
  /* The CLI owns its process: OpenBLAS's pool gets the same count, once,
   * so the two pools do not oversubscribe the cores. */
  ns_blas_set_threads(threads);
  return ctx;
}

ns_net_opts cli_net_opts(const char *weights, uint64_t seed) {
  ns_net_opts o;
  ns_net_opts_init(&o);
  o.weights = weights;
  o.seed = seed;
  return o;
}

int cli_fail(ns_ctx *ctx, const char *verb) {
  ns_status st = ns_ctx_status(ctx);
  fprintf(stderr, "netsurg %s: %s\n", verb, ns_ctx_error(ctx));
  return st == NS_OK ? NS_ERR_INTERNAL : (int)st;
}

int cli_usage_error(const char *verb, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "netsurg %s: ", verb);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n(see netsurg %s --help)\n", verb);
  return NS_ERR_USAGE;
}

int cli_parse_u64(const char *verb, const char *opt, const char *s, unsigned long long *out) {
  char *end;
  errno = 0;
  if (!s || !*s || *s == '-') return cli_usage_error(verb, "%s needs a non-negative number", opt);
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end) return cli_usage_error(verb, "%s: '%s' is not a number", opt, s);
  *out = v;
  return 0;
}

void cli_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

void cli_print_shape(FILE *f, const int64_t *shape, int n, int json) {
  fputc(json ? '[' : '(', f);
  for (int i = 0; i < n; i++) fprintf(f, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (!json && n == 1) fputc(',', f);
  fputc(json ? ']' : ')', f);
}
