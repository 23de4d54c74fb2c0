/* netsurg transplant: fill a net from another net's weights by name, then
 * copy mapped layers' params flat (the notebook's fc6 -> fc6-conv). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cli_surgery.h"

static const char *transplant_help =
    "usage: netsurg transplant SRC_NET SRC_WEIGHTS DST_NET --map A=B[,C=D...]\n"
    "                          --out DST.caffemodel [--seed S] [--allow-unknown]\n\n"
    "Fill DST_NET as Caffe fills it from SRC_WEIGHTS (params copied by layer name;\n"
    "layers the file lacks keep their fillers, drawn from seed S, default 1), then\n"
    "copy each mapped source layer's params into the destination layer flat, in C\n"
    "order: weights into weights, biases into biases. The counts must match (an\n"
    "InnerProduct's (4096, 9216) weights fill a (4096, 256, 6, 6) convolution);\n"
    "otherwise the error names both shapes. --map may be given more than once.\n"
    "Prints what it copied and saves DST.caffemodel atomically.\n\n"
    "  netsurg transplant deploy.prototxt bvlc_reference_caffenet.caffemodel \\\n"
    "      bvlc_caffenet_full_conv.prototxt --map fc6=fc6-conv,fc7=fc7-conv,fc8=fc8-conv \\\n"
    "      --out bvlc_caffenet_full_conv.caffemodel\n" CLI_ALLOW_UNKNOWN_HELP;

#define MAX_PAIRS 256

typedef struct pair {
  char *src, *dst;
} pair;

static int parse_map(char *arg, pair *pairs, int *n) {
  for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok || !eq[1])
      return cli_usage_error("transplant", "--map wants SRC=DST pairs, not '%s'", tok);
    if (*n == MAX_PAIRS) return cli_usage_error("transplant", "too many --map pairs");
    *eq = '\0';
    pairs[*n].src = tok;
    pairs[*n].dst = eq + 1;
    (*n)++;
  }
  return 0;
}

static void print_param_pairs(ns_net *src, int sl, ns_net *dst, int dl) {
  static const char *const what[] = {"weights", "biases"};
  for (int j = 0; j < ns_net_param_count(src, sl); j++) {
    ns_tensor a = ns_net_param(src, sl, j), b = ns_net_param(dst, dl, j);
    if (j < 2)
      printf("%s%s ", j ? ", " : "", what[j]);
    else
      printf(", param %d ", j);
    cli_print_tensor_shape(stdout, &a);
    printf(" -> ");
    cli_print_tensor_shape(stdout, &b);
  }
  printf("\n");
}

static int is_mapped(const pair *pairs, int n, const char *dst) {
  for (int i = 0; i < n; i++)
    if (!strcmp(pairs[i].dst, dst)) return 1;
  return 0;
}

/* Which destination layers came from the file by name, which from fillers. */
static void print_fill_summary(ns_net *src, ns_net *dst, const pair *pairs, int n,
                               const char *weights) {
  for (int by_name = 1; by_name >= 0; by_name--) {
    int shown = 0;
    for (int l = 0; l < ns_net_layer_count(dst); l++) {
      const char *name = ns_net_layer_name(dst, l);
      if (!ns_net_param_count(dst, l) || is_mapped(pairs, n, name)) continue;
      if ((ns_net_find_layer(src, name) >= 0) != by_name) continue;
      if (!shown++) printf(by_name ? "by name from %s:" : "from fillers:", weights);
      printf(" %s", name);
    }
    if (shown) printf("\n");
  }
}

static int copy_pairs(ns_ctx *ctx, ns_net *src, ns_net *dst, const pair *pairs, int n) {
  for (int i = 0; i < n; i++) {
    if (ns_net_copy_params(ctx, dst, pairs[i].dst, src, pairs[i].src) != NS_OK)
      return cli_fail(ctx, "transplant");
    printf("copied %s -> %s: ", pairs[i].src, pairs[i].dst);
    print_param_pairs(src, ns_net_find_layer(src, pairs[i].src), dst,
                      ns_net_find_layer(dst, pairs[i].dst));
  }
  return 0;
}

int cmd_transplant(int argc, char **argv) {
  static const struct option longopts[] = {
      {"map", required_argument, 0, 'm'},  {"out", required_argument, 0, 'o'},
      {"seed", required_argument, 0, 's'}, {"allow-unknown", no_argument, 0, 'u'},
      {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
  pair pairs[MAX_PAIRS];
  int n = 0, allow_unknown = 0, c;
  const char *out = NULL;
  unsigned long long seed = 1;
  optind = 1;
  while ((c = getopt_long(argc, argv, "ho:m:", longopts, NULL)) != -1) {
    switch (c) {
      case 'm':
        if (parse_map(optarg, pairs, &n)) return NS_ERR_USAGE;
        break;
      case 'o':
        out = optarg;
        break;
      case 's':
        if (cli_parse_u64("transplant", "--seed", optarg, &seed)) return NS_ERR_USAGE;
        break;
      case 'u':
        allow_unknown = 1;
        break;
      case 'h':
        fputs(transplant_help, stdout);
        return 0;
      default:
        return cli_usage_error("transplant", "bad option");
    }
  }
  if (argc - optind != 3)
    return cli_usage_error("transplant", "expected SRC_NET SRC_WEIGHTS DST_NET");
  if (!n) return cli_usage_error("transplant", "give --map SRC=DST[,SRC=DST...]");
  if (!out) return cli_usage_error("transplant", "--out DST.caffemodel is required");
  const char *src_net = argv[optind], *weights = argv[optind + 1], *dst_net = argv[optind + 2];
  ns_ctx *ctx = cli_ctx(allow_unknown, 0);
  ns_net *src = NULL, *dst = NULL;
  int rc = 0;
  ns_net_opts opts = cli_net_opts(weights, seed);
  if (ns_net_load(ctx, src_net, &opts, &src) != NS_OK ||
      ns_net_load(ctx, dst_net, &opts, &dst) != NS_OK) {
    rc = cli_fail(ctx, "transplant");
  } else {
    print_fill_summary(src, dst, pairs, n, weights);
    rc = copy_pairs(ctx, src, dst, pairs, n);
  }
  if (!rc) {
    if (ns_net_save_weights(ctx, dst, out) != NS_OK)
      rc = cli_fail(ctx, "transplant");
    else
      printf("wrote %s\n", out);
  }
  ns_net_destroy(src);
  ns_net_destroy(dst);
  ns_ctx_destroy(ctx);
  return rc;
}
