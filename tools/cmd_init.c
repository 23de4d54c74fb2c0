/* netsurg init: a caffemodel from the net's fillers, for tests and demos. */
#include <getopt.h>
#include <string.h>

#include "tools/cli.h"

static const char *init_help =
    "usage: netsurg init NET --out W.caffemodel [--seed S] [--filler TYPE] [--allow-unknown]\n\n"
    "Build NET and write its params, initialised by each layer's fillers (Caffe's\n"
    "defaults where the prototxt gives none), drawn from seed S (default 1).\n"
    "--filler TYPE re-draws every layer's weights (first param) from TYPE instead:\n"
    "msra, xavier, gaussian, uniform, positive_unitball, constant. Biases keep\n"
    "their fillers. The same seed always gives the same file.\n" CLI_ALLOW_UNKNOWN_HELP;

int cmd_init(int argc, char **argv) {
  static const struct option longopts[] = {{"out", required_argument, 0, 'o'},
                                           {"seed", required_argument, 0, 's'},
                                           {"filler", required_argument, 0, 'f'},
                                           {"allow-unknown", no_argument, 0, 'u'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  const char *out = NULL, *filler = NULL;
  unsigned long long seed = 1;
  int allow_unknown = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
    switch (c) {
      case 'o': out = optarg; break;
      case 's':
        if (cli_parse_u64("init", "--seed", optarg, &seed)) return NS_ERR_USAGE;
        break;
      case 'f': filler = optarg; break;
      case 'u': allow_unknown = 1; break;
      case 'h': fputs(init_help, stdout); return 0;
      default: return cli_usage_error("init", "bad option");
    }
  }
  if (argc - optind != 1) return cli_usage_error("init", "expected one NET");
  if (!out) return cli_usage_error("init", "--out W.caffemodel is required");
  ns_ctx *ctx = cli_ctx(allow_unknown, 0);
  ns_net *net = NULL;
  int rc = 0;
  ns_net_opts opts = cli_net_opts(NULL, seed);
  if (ns_net_load(ctx, argv[optind], &opts, &net) != NS_OK ||
      (filler && ns_net_refill_weights(ctx, net, filler, seed) != NS_OK) ||
      ns_net_save_weights(ctx, net, out) != NS_OK)
    rc = cli_fail(ctx, "init");
  else
    fprintf(stderr, "netsurg init: wrote %s (seed %llu%s%s)\n", out, seed,
            filler ? ", filler " : "", filler ? filler : "");
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return rc;
}
