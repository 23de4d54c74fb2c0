/* The Transformer options that classify and detect share (--mean-file,
 * --channel-mean, --mean, --channel-swap, --raw-scale, --input-scale,
 * --no-antialias): one parser, one check and one ns_transform built from
 * them, so the two verbs cannot drift apart. */
#ifndef NS_TOOLS_CLI_PREPROCESS_H
#define NS_TOOLS_CLI_PREPROCESS_H

#include <getopt.h>
#include <stdint.h>

#include "netsurg.h"

/* getopt_long entries for the shared options, in the order both verbs list
 * them; --no-antialias is separate because it comes later in their tables. */
/* clang-format off */
#define CLI_PREPROCESS_LONGOPTS                                                      \
  {"mean-file", required_argument, 0, 'm'},  {"channel-mean", no_argument, 0, 'c'}, \
  {"mean", required_argument, 0, 'M'},       {"channel-swap", required_argument, 0, 'w'}, \
  {"raw-scale", required_argument, 0, 'r'},  {"input-scale", required_argument, 0, 'i'}
#define CLI_PREPROCESS_NO_ANTIALIAS {"no-antialias", no_argument, 0, 'A'}
/* clang-format on */

typedef struct cli_preprocess {
  const char *mean_file;
  int channel_mean, no_antialias;
  int n_swap, swap_given, n_mean;
  int64_t swap[NS_TRANSFORM_MAX_CHANNELS];
  double mean[NS_TRANSFORM_MAX_CHANNELS], raw_scale, input_scale;
  /* classify names a mean file whose channels differ from the net's; detect
   * leaves that to the library (kept as each verb had it). */
  int check_mean_channels;
} cli_preprocess;

/* The defaults: raw scale 255, input scale 1, no mean, swap 2,1,0 on 3 channels. */
void cli_preprocess_init(cli_preprocess *p);
/* Handles getopt code c if it is one of the shared options: returns 0 or a
 * usage error's status, or CLI_PREPROCESS_NOT_MINE to let the verb handle it. */
#define CLI_PREPROCESS_NOT_MINE 1000
int cli_preprocess_option(const char *verb, int c, const char *arg, cli_preprocess *p);
/* The checks that need all options: 0, or a usage error's status. */
int cli_preprocess_check(const char *verb, const cli_preprocess *p);
/* ns_transform for a net with `channels` input channels; a mean file is loaded
 * into *mean, which the caller frees with ns_ndarray_free. */
int cli_preprocess_transform(ns_ctx *ctx, const char *verb, cli_preprocess *p, int channels,
                             ns_transform *t, ns_ndarray *mean);

#endif
