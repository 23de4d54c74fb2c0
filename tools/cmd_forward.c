/* netsurg forward: run a net on .npy inputs, write blobs as .npy. */
#include <getopt.h>
#include <string.h>

#include "tools/cli.h"

static const char *forward_help =
    "usage: netsurg forward NET [WEIGHTS] --input NAME=IN.npy [...] --output BLOB=OUT.npy [...]\n"
    "                       [--threads N] [--seed S] [--allow-unknown]\n\n"
    "Reshape each named input blob to its .npy's shape (float32 or float64, C order),\n"
    "run the net forward and write each requested blob (any blob: dense features such\n"
    "as fc6-conv, or the output) as a float32 .npy. Without WEIGHTS the params come\n"
    "from the fillers (seed S, default 1).\n" CLI_ALLOW_UNKNOWN_HELP;

#define MAX_IO 64

typedef struct binding {
  char *blob;
  const char *path;
} binding;

static int parse_binding(const char *opt, char *arg, binding *b) {
  char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1]) return cli_usage_error("forward", "%s wants NAME=FILE.npy", opt);
  *eq = '\0';
  b->blob = arg;
  b->path = eq + 1;
  return 0;
}

static int feed(ns_ctx *ctx, ns_net *net, const binding *in) {
  ns_ndarray a;
  if (ns_npy_load(ctx, in->path, &a) != NS_OK) return cli_fail(ctx, "forward");
  int rc = 0;
  if (ns_net_reshape_input(ctx, net, in->blob, a.num_axes, a.shape) != NS_OK) {
    fprintf(stderr, "netsurg forward: input %s:\n", in->path);
    rc = cli_fail(ctx, "forward");
  } else {
    ns_tensor t = ns_net_blob(net, ns_net_find_blob(net, in->blob));
    memcpy(t.data, a.data, (size_t)a.count * sizeof(float));
  }
  ns_ndarray_free(ctx, &a);
  return rc;
}

int cmd_forward(int argc, char **argv) {
  static const struct option longopts[] = {{"input", required_argument, 0, 'i'},
                                           {"output", required_argument, 0, 'o'},
                                           {"threads", required_argument, 0, 't'},
                                           {"seed", required_argument, 0, 's'},
                                           {"allow-unknown", no_argument, 0, 'u'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  binding in[MAX_IO], out[MAX_IO];
  int n_in = 0, n_out = 0, allow_unknown = 0, c;
  unsigned long long threads = 0, seed = 1;
  optind = 1;
  while ((c = getopt_long(argc, argv, "hi:o:", longopts, NULL)) != -1) {
    switch (c) {
      case 'i':
        if (n_in == MAX_IO) return cli_usage_error("forward", "too many --input");
        if (parse_binding("--input", optarg, &in[n_in++])) return NS_ERR_USAGE;
        break;
      case 'o':
        if (n_out == MAX_IO) return cli_usage_error("forward", "too many --output");
        if (parse_binding("--output", optarg, &out[n_out++])) return NS_ERR_USAGE;
        break;
      case 't':
        if (cli_parse_u64("forward", "--threads", optarg, &threads)) return NS_ERR_USAGE;
        break;
      case 's':
        if (cli_parse_u64("forward", "--seed", optarg, &seed)) return NS_ERR_USAGE;
        break;
      case 'u': allow_unknown = 1; break;
      case 'h': fputs(forward_help, stdout); return 0;
      default: return cli_usage_error("forward", "bad option");
    }
  }
  int rest = argc - optind;
  if (rest < 1 || rest > 2) return cli_usage_error("forward", "expected NET [WEIGHTS]");
  if (n_out == 0) return cli_usage_error("forward", "give at least one --output BLOB=OUT.npy");
  ns_ctx *ctx = cli_ctx(allow_unknown, (int)(threads > 1024 ? 1024 : threads));
  ns_net *net = NULL;
  int rc = 0;
  ns_net_opts opts = cli_net_opts(rest == 2 ? argv[optind + 1] : NULL, seed);
  if (ns_net_load(ctx, argv[optind], &opts, &net) != NS_OK) {
    rc = cli_fail(ctx, "forward");
    goto done;
  }
  for (int i = 0; i < n_out; i++)
    if (ns_net_find_blob(net, out[i].blob) < 0) {
      rc = cli_usage_error("forward", "no blob named '%s' in the net", out[i].blob);
      goto done;
    }
  for (int i = 0; i < n_in && !rc; i++) rc = feed(ctx, net, &in[i]);
  if (rc) goto done;
  if (ns_net_forward(ctx, net) != NS_OK) {
    rc = cli_fail(ctx, "forward");
    goto done;
  }
  for (int i = 0; i < n_out; i++) {
    ns_tensor t = ns_net_blob(net, ns_net_find_blob(net, out[i].blob));
    if (ns_npy_save_f32(ctx, out[i].path, t.num_axes, t.shape, t.data) != NS_OK) {
      rc = cli_fail(ctx, "forward");
      goto done;
    }
    fprintf(stderr, "netsurg forward: %s ", t.name);
    cli_print_shape(stderr, t.shape, t.num_axes, 0);
    fprintf(stderr, " -> %s\n", out[i].path);
  }
done:
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return rc;
}
