#include "tools/cli_surgery.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

int cli_parse_size(const char *verb, const char *opt, const char *s, int *height, int *width) {
  char *end;
  errno = 0;
  long h = strtol(s, &end, 10), w = h;
  if (!errno && (*end == 'x' || *end == 'X')) w = strtol(end + 1, &end, 10);
  if (errno || *end || end == s || h < 1 || w < 1 || h > 1000000 || w > 1000000)
    return cli_usage_error(verb, "%s wants HxW or N (positive sizes), not '%s'", opt, s);
  *height = (int)h;
  *width = (int)w;
  return 0;
}

int cli_parse_ints(const char *verb, const char *opt, const char *s, int64_t *vals, int max,
                   int *n) {
  *n = 0;
  const char *p = s;
  for (;;) {
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || end == p || *n == max)
      return cli_usage_error(verb, "%s: '%s' is not a list of up to %d integers", opt, s, max);
    vals[(*n)++] = v;
    while (*end == ' ') end++;
    if (!*end) return 0;
    if (*end != ',') return cli_usage_error(verb, "%s: '%s' is not a list of integers", opt, s);
    p = end + 1;
  }
}

int cli_parse_doubles(const char *verb, const char *opt, const char *s, double *vals, int max,
                      int *n) {
  *n = 0;
  const char *p = s;
  for (;;) {
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (errno || end == p || *n == max)
      return cli_usage_error(verb, "%s: '%s' is not a list of up to %d numbers", opt, s, max);
    vals[(*n)++] = v;
    while (*end == ' ') end++;
    if (!*end) return 0;
    if (*end != ',') return cli_usage_error(verb, "%s: '%s' is not a list of numbers", opt, s);
    p = end + 1;
  }
}

int cli_parse_double(const char *verb, const char *opt, const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end) return cli_usage_error(verb, "%s: '%s' is not a number", opt, s);
  *out = v;
  return 0;
}

/* True if layer l reads blob `name` other than in place. */
static int reads(ns_net *net, int l, const char *name) {
  for (int j = 0; j < ns_net_layer_bottom_count(net, l); j++) {
    if (strcmp(ns_net_layer_bottom(net, l, j), name) != 0) continue;
    if (j < ns_net_layer_top_count(net, l) && !strcmp(ns_net_layer_top(net, l, j), name)) continue;
    return 1;
  }
  return 0;
}

int cli_output_blobs(ns_net *net, int *out, int max) {
  int n = 0;
  for (int l = 0; l < ns_net_layer_count(net); l++)
    for (int j = 0; j < ns_net_layer_top_count(net, l); j++) {
      const char *name = ns_net_layer_top(net, l, j);
      int read = 0, seen = 0;
      for (int k = l + 1; k < ns_net_layer_count(net) && !read; k++) read = reads(net, k, name);
      for (int k = 0; k < n && k < max; k++) seen |= out[k] == ns_net_find_blob(net, name);
      if (read || seen) continue;
      if (n < max) out[n] = ns_net_find_blob(net, name);
      n++;
    }
  return n;
}

int cli_image_input(ns_net *net) {
  for (int i = 0; i < ns_net_input_count(net); i++) {
    int b = ns_net_input_blob(net, i);
    if (b >= 0 && ns_net_blob(net, b).num_axes == 4) return b;
  }
  return -1;
}

void cli_print_tensor_shape(FILE *f, const ns_tensor *t) {
  cli_print_shape(f, t->shape, t->num_axes, 0);
}
