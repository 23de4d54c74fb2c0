/* classify's and detect's shared Transformer options; see cli_preprocess.h. */
#include "tools/cli_preprocess.h"

#include <string.h>

#include "tools/cli.h"
#include "tools/cli_surgery.h"

void cli_preprocess_init(cli_preprocess *p) {
  memset(p, 0, sizeof *p);
  p->raw_scale = 255.0;
  p->input_scale = 1.0;
}

static int parse_swap(const char *verb, const char *s, cli_preprocess *p) {
  p->swap_given = 1;
  p->n_swap = 0;
  if (!strcmp(s, "none")) return 0;
  return cli_parse_ints(verb, "--channel-swap", s, p->swap, NS_TRANSFORM_MAX_CHANNELS, &p->n_swap);
}

int cli_preprocess_option(const char *verb, int c, const char *arg, cli_preprocess *p) {
  switch (c) {
    case 'm':
      p->mean_file = arg;
      return 0;
    case 'c':
      p->channel_mean = 1;
      return 0;
    case 'M':
      return cli_parse_doubles(verb, "--mean", arg, p->mean, NS_TRANSFORM_MAX_CHANNELS, &p->n_mean);
    case 'w':
      return parse_swap(verb, arg, p);
    case 'r':
      return cli_parse_double(verb, "--raw-scale", arg, &p->raw_scale);
    case 'i':
      return cli_parse_double(verb, "--input-scale", arg, &p->input_scale);
    case 'A':
      p->no_antialias = 1;
      return 0;
    default:
      return CLI_PREPROCESS_NOT_MINE;
  }
}

int cli_preprocess_check(const char *verb, const cli_preprocess *p) {
  if (p->mean_file && p->n_mean)
    return cli_usage_error(verb, "give --mean-file or --mean, not both");
  if (p->channel_mean && !p->mean_file)
    return cli_usage_error(verb, "--channel-mean needs --mean-file");
  return 0;
}

static int setup_swap(const char *verb, cli_preprocess *p, int channels, ns_transform *t) {
  if (!p->swap_given && channels == 3) {
    p->n_swap = 3;
    p->swap[0] = 2, p->swap[1] = 1, p->swap[2] = 0;
  }
  if (p->n_swap && p->n_swap != channels)
    return cli_usage_error(verb, "--channel-swap has %d entries; the net has %d channels",
                           p->n_swap, channels);
  t->num_swap = p->n_swap;
  for (int c = 0; c < p->n_swap; c++) {
    if (p->swap[c] < 0 || p->swap[c] >= channels)
      return cli_usage_error(verb, "--channel-swap: %lld is not a channel", (long long)p->swap[c]);
    t->channel_swap[c] = (int)p->swap[c];
  }
  return 0;
}

static int setup_mean(ns_ctx *ctx, const char *verb, const cli_preprocess *p, int channels,
                      ns_transform *t, ns_ndarray *mean) {
  if (p->n_mean) {
    if (p->n_mean != channels)
      return cli_usage_error(verb, "--mean has %d values; the net has %d channels", p->n_mean,
                             channels);
    t->num_mean_values = p->n_mean;
    for (int c = 0; c < p->n_mean; c++) t->mean_values[c] = p->mean[c];
    return 0;
  }
  if (!p->mean_file) return 0;
  if (ns_mean_load(ctx, p->mean_file, mean) != NS_OK) return cli_fail(ctx, verb);
  if (p->check_mean_channels && mean->shape[0] != channels)
    return cli_usage_error(verb, "%s has %lld channels; the net has %d", p->mean_file,
                           (long long)mean->shape[0], channels);
  if (ns_transform_set_mean(ctx, t, mean, p->channel_mean) != NS_OK) return cli_fail(ctx, verb);
  return 0;
}

int cli_preprocess_transform(ns_ctx *ctx, const char *verb, cli_preprocess *p, int channels,
                             ns_transform *t, ns_ndarray *mean) {
  ns_transform_init(t);
  t->raw_scale = p->raw_scale;
  t->input_scale = p->input_scale;
  t->antialias = !p->no_antialias;
  int rc = setup_swap(verb, p, channels, t);
  return rc ? rc : setup_mean(ctx, verb, p, channels, t, mean);
}
