/* netsurg fcn: cast a classifier into a fully convolutional net, write its
 * prototxt and transplanted weights, and say what the map's cells cover. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cli_surgery.h"
#include "tools/draw.h"

static const char *fcn_help =
    "usage: netsurg fcn NET WEIGHTS [--size HxW] [--suffix -conv] [--batch N] --out PREFIX\n"
    "                   [--seed S] [--draw FILE.svg|.html|.dot] [--allow-unknown]\n\n"
    "Cast a classifier into a fully convolutional net, as the seed's net surgery does\n"
    "by hand: every InnerProduct becomes a Convolution named <name><suffix> whose\n"
    "kernel is its bottom's spatial size at the classifier's input (6x6 for CaffeNet's\n"
    "fc6, 1x1 for fc7 and fc8), stride 1; its top is renamed with it and every later\n"
    "layer that reads it (in-place ReLU and Dropout too) rewired; the input becomes\n"
    "HxW. The weights are transplanted flat. Writes PREFIX.prototxt (current format)\n"
    "and PREFIX.caffemodel, then prints the map size and what each cell covers: its\n"
    "window (the classifier's input) and stride in input pixels. A size that whole\n"
    "windows do not tile is explained, with the nearest sizes that do.\n\n"
    "  --size HxW      new input size (N for NxN); default: an 8x8 map as in the seed,\n"
    "                  window + 7*stride (451x451 for CaffeNet)\n"
    "  --suffix S      appended to cast layer names (default -conv)\n"
    "  --batch N       batch size of the cast net (default 1, as the seed's full-conv\n"
    "                  net; 0 keeps the classifier's)\n"
    "  --seed S        fillers of layers the weights do not cover (default 1)\n"
    "  --draw FILE     also draw the cast net (as netsurg draw does), the former\n"
    "                  InnerProducts marked, the map size and each cell's window below\n\n"
    "NET may be a legacy V1 or V0 prototxt; the output is always the current format.\n"
    CLI_ALLOW_UNKNOWN_HELP;

typedef struct fcn_args {
  const char *net, *weights, *prefix, *suffix, *draw;
  int height, width, batch, allow_unknown;
  unsigned long long seed;
} fcn_args;

static int parse_fcn(int argc, char **argv, fcn_args *a) {
  static const struct option longopts[] = {
      {"size", required_argument, 0, 'z'},  {"suffix", required_argument, 0, 'x'},
      {"batch", required_argument, 0, 'b'}, {"out", required_argument, 0, 'o'},
      {"seed", required_argument, 0, 's'},  {"allow-unknown", no_argument, 0, 'u'},
      {"draw", required_argument, 0, 'd'},  {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  unsigned long long batch = 0;
  int c;
  memset(a, 0, sizeof *a);
  a->suffix = "-conv";
  a->seed = 1;
  a->batch = 1;
  optind = 1;
  while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
    switch (c) {
      case 'z':
        if (cli_parse_size("fcn", "--size", optarg, &a->height, &a->width)) return NS_ERR_USAGE;
        break;
      case 'x':
        a->suffix = optarg;
        break;
      case 'b':
        if (cli_parse_u64("fcn", "--batch", optarg, &batch)) return NS_ERR_USAGE;
        if (batch > 65536) return cli_usage_error("fcn", "--batch: 0 to 65536");
        a->batch = (int)batch;
        break;
      case 'o':
        a->prefix = optarg;
        break;
      case 's':
        if (cli_parse_u64("fcn", "--seed", optarg, &a->seed)) return NS_ERR_USAGE;
        break;
      case 'u':
        a->allow_unknown = 1;
        break;
      case 'd':
        if (!draw_format_known(optarg))
          return cli_usage_error("fcn", "--draw %s: the name must end in .svg, .html or .dot",
                                 optarg);
        a->draw = optarg;
        break;
      case 'h':
        fputs(fcn_help, stdout);
        return -1;
      default:
        return cli_usage_error("fcn", "bad option");
    }
  }
  if (argc - optind != 2) return cli_usage_error("fcn", "expected NET WEIGHTS");
  if (!a->prefix || !*a->prefix) return cli_usage_error("fcn", "--out PREFIX is required");
  a->net = argv[optind];
  a->weights = argv[optind + 1];
  return 0;
}

/* The classifier's output stride, for the default size (8x8 map). */
static int default_size(ns_ctx *ctx, ns_net *net, int input, fcn_args *a) {
  int out = cli_last_output(net);
  ns_receptive_field *rf = calloc((size_t)ns_net_blob_count(net) + 1, sizeof *rf);
  if (!rf) return NS_ERR_NOMEM;
  ns_net_receptive_fields(ctx, net, rf);
  ns_tensor in = ns_net_blob(net, input);
  int64_t stride[2] = {0, 0};
  if (out >= 0 && rf[out].known) {
    stride[0] = rf[out].stride[0];
    stride[1] = rf[out].stride[1];
  }
  free(rf);
  if (stride[0] < 1 || stride[1] < 1)
    return cli_usage_error("fcn", "cannot tell the net's output stride; give --size HxW");
  a->height = (int)(in.shape[2] + 7 * stride[0]);
  a->width = (int)(in.shape[3] + 7 * stride[1]);
  return 0;
}

static void print_cast_layers(ns_net *net, ns_net *fcn, const char *suffix) {
  for (int l = 0; l < ns_net_layer_count(net); l++) {
    if (strcmp(ns_net_layer_type(net, l), "InnerProduct") != 0) continue;
    char name[1024];
    snprintf(name, sizeof name, "%s%s", ns_net_layer_name(net, l), suffix);
    int k = ns_net_find_layer(fcn, name);
    if (k < 0) continue;
    printf("%s -> %s: ", ns_net_layer_name(net, l), name);
    for (int j = 0; j < ns_net_param_count(net, l); j++) {
      ns_tensor a = ns_net_param(net, l, j), b = ns_net_param(fcn, k, j);
      printf(j ? ", " : "");
      cli_print_tensor_shape(stdout, &a);
      printf(" -> ");
      cli_print_tensor_shape(stdout, &b);
    }
    ns_tensor w = ns_net_param(fcn, k, 0);
    if (w.num_axes == 4)
      printf("  (kernel %lldx%lld)", (long long)w.shape[2], (long long)w.shape[3]);
    printf("\n");
  }
}

static void print_exact_sizes(const ns_fcn_map *m) {
  int64_t lo[2], hi[2];
  for (int a = 0; a < 2; a++)
    ns_fcn_exact_sizes(m->input[a], m->window[a], m->stride[a], &lo[a], &hi[a]);
  printf("  sizes whole windows tile: ");
  if (lo[0] && lo[1])
    printf("%lldx%lld (%lldx%lld map) or ", (long long)lo[0], (long long)lo[1],
           (long long)((lo[0] - m->window[0]) / m->stride[0] + 1),
           (long long)((lo[1] - m->window[1]) / m->stride[1] + 1));
  printf("%lldx%lld (%lldx%lld map)\n", (long long)hi[0], (long long)hi[1],
         (long long)((hi[0] - m->window[0]) / m->stride[0] + 1),
         (long long)((hi[1] - m->window[1]) / m->stride[1] + 1));
}

static int describe_maps(ns_ctx *ctx, ns_net *net, ns_net *fcn, int input) {
  int *outs = calloc((size_t)ns_net_blob_count(fcn) + 1, sizeof *outs);
  if (!outs) return NS_ERR_NOMEM;
  int n = ns_net_output_blobs(fcn, outs);
  ns_tensor in = ns_net_blob(net, input);
  for (int i = 0; i < n && i < 16; i++) {
    ns_tensor t = ns_net_blob(fcn, outs[i]);
    ns_fcn_map m;
    char text[1024];
    if (ns_fcn_map_describe(ctx, fcn, t.name, in.shape[2], in.shape[3], &m) != NS_OK) {
      printf("%s: %s\n", t.name, ns_ctx_error(ctx));
      ns_ctx_clear_error(ctx);
      continue;
    }
    printf("map %lldx%lld (%s ", (long long)m.map[0], (long long)m.map[1], t.name);
    cli_print_tensor_shape(stdout, &t);
    printf("), window %lldx%lld, stride %lld", (long long)m.window[0], (long long)m.window[1],
           (long long)m.stride[0]);
    if (m.stride[1] != m.stride[0]) printf("x%lld", (long long)m.stride[1]);
    printf(" px: cell (i, j) classifies rows %lld*i..%lld*i+%lld, columns %lld*j..%lld*j+%lld\n",
           (long long)m.stride[0], (long long)m.stride[0], (long long)(m.window[0] - 1),
           (long long)m.stride[1], (long long)m.stride[1], (long long)(m.window[1] - 1));
    printf("  %s\n", ns_fcn_map_explain(&m, text, sizeof text));
    if (m.excess[0] || m.excess[1]) print_exact_sizes(&m);
    if (m.padded)
      printf(
          "  the net pads: each cell's receptive field is %lldx%lld px from (%lld, %lld); near\n"
          "  a window's edge a cell sees the real neighbouring pixels where the classifier\n"
          "  on a cropped window sees zeros, so edge cells differ a little from crops\n",
          (long long)m.field[0], (long long)m.field[1], (long long)m.offset[0],
          (long long)m.offset[1]);
  }
  free(outs);
  return 0;
}

static int save(ns_ctx *ctx, ns_net *fcn, const char *prefix) {
  size_t n = strlen(prefix) + 16;
  char *proto = malloc(n), *model = malloc(n);
  int rc = 0;
  if (!proto || !model)
    rc = NS_ERR_NOMEM;
  else {
    snprintf(proto, n, "%s.prototxt", prefix);
    snprintf(model, n, "%s.caffemodel", prefix);
    if (ns_net_save_prototxt(ctx, fcn, proto) != NS_OK ||
        ns_net_save_weights(ctx, fcn, model) != NS_OK)
      rc = cli_fail(ctx, "fcn");
    else
      printf("wrote %s and %s\n", proto, model);
  }
  free(proto);
  free(model);
  return rc;
}

int cmd_fcn(int argc, char **argv) {
  fcn_args a;
  int rc = parse_fcn(argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  ns_ctx *ctx = cli_ctx(a.allow_unknown, 0);
  ns_net *net = NULL, *fcn = NULL;
  int input = -1;
  ns_net_opts opts = cli_net_opts(a.weights, a.seed);
  if (ns_net_load(ctx, a.net, &opts, &net) != NS_OK) {
    rc = cli_fail(ctx, "fcn");
    goto done;
  }
  if ((input = cli_image_input(net)) < 0) {
    rc = cli_usage_error("fcn", "%s has no (N, C, H, W) input to enlarge", a.net);
    goto done;
  }
  if (!a.height && (rc = default_size(ctx, net, input, &a)) != 0) goto done;
  ns_fcn_opts o;
  ns_fcn_opts_init(&o);
  o.suffix = a.suffix;
  o.height = a.height;
  o.width = a.width;
  o.batch = a.batch;
  o.seed = a.seed;
  if (ns_fcn_cast(ctx, net, &o, &fcn) != NS_OK) {
    rc = cli_fail(ctx, "fcn");
    goto done;
  }
  ns_tensor in = ns_net_blob(net, input);
  printf("%s: input %s %lldx%lld -> %dx%d\n", a.net, in.name, (long long)in.shape[2],
         (long long)in.shape[3], a.height, a.width);
  print_cast_layers(net, fcn, a.suffix);
  describe_maps(ctx, net, fcn, input);
  rc = save(ctx, fcn, a.prefix);
  if (!rc && a.draw) rc = draw_fcn_cast(ctx, net, fcn, a.suffix, input, a.draw);
done:
  ns_net_destroy(fcn);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return rc;
}
