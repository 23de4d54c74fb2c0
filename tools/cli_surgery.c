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

int cli_last_output(ns_net *net) {
  int n_blobs = ns_net_blob_count(net);
  int *outs = calloc((size_t)n_blobs + 1, sizeof *outs);
  char *is_output = calloc((size_t)n_blobs + 1, 1);
  int found = -1;
  if (outs && is_output) {
    int n = ns_net_output_blobs(net, outs);
    for (int k = 0; k < n; k++) is_output[outs[k]] = 1;
    for (int l = ns_net_layer_count(net) - 1; l >= 0 && found < 0; l--)
      for (int j = ns_net_layer_top_count(net, l) - 1; j >= 0 && found < 0; j--) {
        int b = ns_net_find_blob(net, ns_net_layer_top(net, l, j));
        if (b >= 0 && is_output[b]) found = b;
      }
  }
  free(outs);
  free(is_output);
  return found;
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
