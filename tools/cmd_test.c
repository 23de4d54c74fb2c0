/* netsurg test: Caffe's `caffe test`: a net with its own data layers, run
 * in phase TEST for N batches; every output blob averaged. */
#include <getopt.h>
#include <string.h>

#include "tools/cli.h"

static const char *test_help =
    "usage: netsurg test NET WEIGHTS [--iterations N] [--threads N] [--train-phase]\n"
    "                    [--allow-unknown]\n\n"
    "Caffe's `caffe test`: build NET in phase TEST (its data layers, e.g. IdxData,\n"
    "NpyData or ImageData, feed it), copy WEIGHTS by layer name, run N forward passes\n"
    "(default 50) and print every output blob (blobs no layer reads: accuracy, loss),\n"
    "each element averaged over the passes. --train-phase builds the TRAIN net instead.\n"
    CLI_ALLOW_UNKNOWN_HELP;

int cmd_test(int argc, char **argv) {
  static const struct option longopts[] = {{"iterations", required_argument, 0, 'n'},
                                           {"threads", required_argument, 0, 't'},
                                           {"train-phase", no_argument, 0, 'T'},
                                           {"allow-unknown", no_argument, 0, 'u'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  unsigned long long iters = 50, threads = 0;
  int train = 0, allow_unknown = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case 'n':
        if (cli_parse_u64("test", "--iterations", optarg, &iters)) return NS_ERR_USAGE;
        if (iters < 1 || iters > 100000000) return cli_usage_error("test", "--iterations 1..1e8");
        break;
      case 't':
        if (cli_parse_u64("test", "--threads", optarg, &threads)) return NS_ERR_USAGE;
        break;
      case 'T':
        train = 1;
        break;
      case 'u':
        allow_unknown = 1;
        break;
      case 'h':
        fputs(test_help, stdout);
        return 0;
      default:
        return cli_usage_error("test", "bad option");
    }
  }
  if (argc - optind != 2) return cli_usage_error("test", "expected NET WEIGHTS");
  ns_ctx *ctx = cli_ctx(allow_unknown, (int)(threads > 1024 ? 1024 : threads));
  ns_net *net = NULL;
  ns_net_score score = {0};
  int rc = 0;
  ns_net_opts opts = cli_net_opts(argv[optind + 1], 1);
  opts.phase = train ? NS_PHASE_TRAIN : NS_PHASE_TEST;
  if (ns_net_load(ctx, argv[optind], &opts, &net) != NS_OK ||
      ns_net_score_outputs(ctx, net, (int)iters, NULL, &score) != NS_OK) {
    rc = cli_fail(ctx, "test");
  } else {
    printf("%s with %s, %llu batches (phase %s):\n", argv[optind], argv[optind + 1], iters,
           train ? "TRAIN" : "TEST");
    for (int v = 0; v < score.n_values; v++) printf("%s = %.6g\n", score.names[v], score.values[v]);
  }
  ns_net_score_free(ctx, &score);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return rc;
}
