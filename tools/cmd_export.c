/* netsurg export: write a net with its weights as an ONNX model. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cli_surgery.h"

static const char *export_help =
    "usage: netsurg export NET WEIGHTS --onnx OUT.onnx [--opset N] [--batch dynamic|N]\n"
    "                      [--input-size HxW] [--external-data] [--verify]\n"
    "                      [--verify-input NAME=IN.npy] [--seed S] [--allow-unknown]\n\n"
    "Write the net and its weights as an ONNX model whose nodes compute Caffe's numbers:\n"
    "graph inputs are the net's Input blobs, outputs its output blobs, and nodes and\n"
    "values keep the layer and blob names (a blob written again in place is named\n"
    "<blob>@<layer> before its last writer). A layer with no exact ONNX form stops\n"
    "the export with an error naming it; nothing is skipped.\n\n"
    "  --onnx PATH       the model to write (replaced atomically)\n"
    "  --opset N         ONNX opset, 11 to 18 (default 13)\n"
    "  --batch B         'dynamic' (default: axis 0 is the symbol N) or a fixed size\n"
    "  --input-size HxW  give every (N, C, H, W) input this size first (N for NxN);\n"
    "                    pooling and the other spatial layers are exported at it\n"
    "  --external-data   weights (each tensor of 1 KB or more) in OUT.onnx.data beside\n"
    "                    the model, as ONNX's external data; automatic for a model\n"
    "                    over protobuf's 2 GB\n"
    "  --verify          run the model in ONNX Runtime (node with npm's onnxruntime-node:\n"
    "                    make deps-ort, or NETSURG_ORT_NODE_PATH) on a random input and\n"
    "                    report its largest difference from netsurg's forward (exit 7\n"
    "                    over 1e-4 of the output's largest magnitude); skipped with a\n"
    "                    message when ONNX Runtime is absent\n"
    "  --verify-input NAME=IN.npy\n"
    "                    verify on this input (of the exported shape) instead of a\n"
    "                    random one; a class map of at most 16x16 cells is printed\n"
    "  --seed S          fillers of layers the weights do not cover (default 1)\n";

typedef struct export_args {
  const char *net, *weights, *out;
  char *verify_input; /* NAME=IN.npy, or NULL */
  int opset, batch, height, width, allow_unknown, verify, external_data;
  unsigned long long seed;
} export_args;

static int parse_batch(const char *s, int *batch) {
  unsigned long long n;
  if (strcmp(s, "dynamic") == 0) {
    *batch = 0;
    return 0;
  }
  if (cli_parse_u64("export", "--batch", s, &n)) return NS_ERR_USAGE;
  if (n < 1 || n > 65536) return cli_usage_error("export", "--batch: 'dynamic' or 1 to 65536");
  *batch = (int)n;
  return 0;
}

static int parse_export(int argc, char **argv, export_args *a) {
  static const struct option longopts[] = {
      {"onnx", required_argument, 0, 'o'},       {"opset", required_argument, 0, 'p'},
      {"batch", required_argument, 0, 'b'},      {"input-size", required_argument, 0, 'z'},
      {"seed", required_argument, 0, 's'},       {"allow-unknown", no_argument, 0, 'u'},
      {"verify", no_argument, 0, 'v'},         {"external-data", no_argument, 0, 'x'},
      {"verify-input", required_argument, 0, 'i'},
      {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
  unsigned long long opset;
  int c;
  memset(a, 0, sizeof *a);
  a->opset = 13;
  a->seed = 1;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case 'o':
        a->out = optarg;
        break;
      case 'p':
        if (cli_parse_u64("export", "--opset", optarg, &opset)) return NS_ERR_USAGE;
        if (opset < 11 || opset > 18) return cli_usage_error("export", "--opset: 11 to 18");
        a->opset = (int)opset;
        break;
      case 'b':
        if (parse_batch(optarg, &a->batch)) return NS_ERR_USAGE;
        break;
      case 'z':
        if (cli_parse_size("export", "--input-size", optarg, &a->height, &a->width))
          return NS_ERR_USAGE;
        break;
      case 's':
        if (cli_parse_u64("export", "--seed", optarg, &a->seed)) return NS_ERR_USAGE;
        break;
      case 'u':
        a->allow_unknown = 1;
        break;
      case 'v':
        a->verify = 1;
        break;
      case 'x':
        a->external_data = 1;
        break;
      case 'i':
        if (!strchr(optarg, '=') || optarg[0] == '=')
          return cli_usage_error("export", "--verify-input wants NAME=IN.npy");
        a->verify_input = optarg;
        a->verify = 1;
        break;
      case 'h':
        fputs(export_help, stdout);
        return -1;
      default:
        return cli_usage_error("export", "bad option");
    }
  }
  if (argc - optind != 2) return cli_usage_error("export", "expected NET WEIGHTS");
  if (!a->out || !*a->out) return cli_usage_error("export", "--onnx OUT.onnx is required");
  a->net = argv[optind];
  a->weights = argv[optind + 1];
  return 0;
}

/* Gives the inputs the batch and the (N, C, H, W) ones the size asked for. */
static ns_status shape_inputs(ns_ctx *ctx, ns_net *net, const export_args *a) {
  for (int i = 0; i < ns_net_input_count(net); i++) {
    ns_tensor t = ns_net_blob(net, ns_net_input_blob(net, i));
    int64_t shape[32];
    if (t.num_axes < 1 || t.num_axes > 32) continue;
    memcpy(shape, t.shape, sizeof shape[0] * (size_t)t.num_axes);
    if (a->batch) shape[0] = a->batch;
    if (a->height && t.num_axes == 4) {
      shape[2] = a->height;
      shape[3] = a->width;
    }
    if (ns_net_reshape_input(ctx, net, t.name, t.num_axes, shape) != NS_OK) return NS_ERR_NET;
  }
  return NS_OK;
}

static void print_blobs(ns_net *net, const char *what, int n, const int *blobs) {
  for (int i = 0; i < n; i++) {
    ns_tensor t = ns_net_blob(net, blobs[i]);
    printf("  %s %s ", what, t.name);
    cli_print_tensor_shape(stdout, &t);
    printf("\n");
  }
}

static void print_summary(ns_net *net, const export_args *a, const ns_onnx_summary *s) {
  printf("%s: %d layers -> %d ONNX nodes, %d initializers, opset %d, batch ", a->net, s->layers,
         s->nodes, s->initializers, a->opset);
  if (a->batch)
    printf("%d\n", a->batch);
  else
    printf("dynamic (N)\n");
  int n_in = ns_net_input_count(net);
  int *blobs = calloc((size_t)ns_net_blob_count(net) + 1, sizeof *blobs);
  if (blobs) {
    for (int i = 0; i < n_in; i++) blobs[i] = ns_net_input_blob(net, i);
    print_blobs(net, "input", n_in, blobs);
    print_blobs(net, "output", ns_net_output_blobs(net, blobs), blobs);
    free(blobs);
  }
  printf("wrote %s (%llu bytes)", a->out, (unsigned long long)s->bytes);
  if (s->external_bytes)
    printf(", weights in %s.data (%llu bytes, ONNX's external data)", a->out,
           (unsigned long long)s->external_bytes);
  printf("\n");
}

/* The array NAME=IN.npy into input NAME, whose exported shape it must
 * have (the model's input is fixed but for a dynamic batch). */
static int feed_verify_input(ns_ctx *ctx, ns_net *net, char *binding) {
  char *eq = strchr(binding, '=');
  *eq = '\0';
  const char *name = binding, *path = eq + 1;
  int b = ns_net_find_blob(net, name), rc = 0;
  if (b < 0) {
    fprintf(stderr, "netsurg export: --verify-input: the net has no blob '%s'\n", name);
    return NS_ERR_USAGE;
  }
  ns_ndarray x;
  if (ns_npy_load(ctx, path, &x) != NS_OK) return cli_fail(ctx, "export");
  ns_tensor t = ns_net_blob(net, b);
  int same = x.num_axes == t.num_axes;
  for (int i = 0; same && i < t.num_axes; i++) same = x.shape[i] == t.shape[i];
  if (!same) {
    fprintf(stderr, "netsurg export: --verify-input: %s is not of input '%s''s shape ", path, name);
    cli_print_tensor_shape(stderr, &t);
    fprintf(stderr, "\n");
    rc = NS_ERR_USAGE;
  } else
    memcpy(t.data, x.data, sizeof(float) * (size_t)x.count);
  ns_ndarray_free(ctx, &x);
  return rc;
}

int cmd_export(int argc, char **argv) {
  export_args a;
  int rc = parse_export(argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  ns_ctx *ctx = cli_ctx(a.allow_unknown, 0);
  ns_net *net = NULL;
  ns_onnx_options o = {a.opset, a.batch != 0, a.external_data};
  ns_onnx_summary s;
  ns_net_opts opts = cli_net_opts(a.weights, a.seed);
  if (ns_net_load(ctx, a.net, &opts, &net) != NS_OK || shape_inputs(ctx, net, &a) ||
      ns_net_export_onnx(ctx, net, a.out, &o, &s) != NS_OK)
    rc = cli_fail(ctx, "export");
  else {
    print_summary(net, &a, &s);
    if (a.verify_input) rc = feed_verify_input(ctx, net, a.verify_input);
    if (a.verify && !rc) rc = cli_onnx_verify(ctx, net, a.out, a.verify_input != NULL);
  }
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return rc;
}
