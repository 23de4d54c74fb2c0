/* netsurg draw: a diagram of a net with its shapes, costs and receptive
 * fields (tools/draw*.c draw it). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cli_surgery.h"
#include "tools/draw.h"

static const char *draw_help =
    "usage: netsurg draw NET [WEIGHTS] --out FILE.svg|FILE.html|FILE.dot\n"
    "                    [--shape N,C,H,W] [--phase TEST|TRAIN] [--allow-unknown]\n\n"
    "Draw the net top-down, laid out by Graphviz's dot: one box per layer with its\n"
    "name, type, output shape(s), param shapes and count, multiply-adds and, for\n"
    "layers that change it, the receptive field and stride in input pixels.\n"
    "In-place layers (ReLU, BatchNorm and Scale, Dropout, ...) are folded into the\n"
    "box of the layer whose top they modify. Edges carry their blob's shape; boxes\n"
    "are coloured by layer family (legend below the graph, with the totals: params,\n"
    "MB, multiply-adds, the largest activation).\n\n"
    "The format comes from the extension: .dot (Graphviz's input, no layout), .svg,\n"
    ".html (one file, nothing fetched: the SVG with hover details, a search box,\n"
    "also driven by FILE.html#search=NAME, and a table of layers sortable by cost).\n\n"
    "  --shape N,C,H,W  reshape the first input before drawing (any number of axes)\n"
    "  --phase P        TEST (default) or TRAIN: which include/exclude rules apply\n"
    "  --out FILE       the diagram (required)\n\n"
    "A net that cannot be shaped (a layer type netsurg lacks, a data layer whose\n"
    "files are missing) is drawn up to the layer that fails, marked, with the\n"
    "error; the file is written and draw exits with the status that stopped the\n"
    "net (3 for an unsupported layer), as info does. `dot` (Debian's graphviz) is\n"
    "needed for .svg and .html: without it, exit 4. NETSURG_DOT names another dot.\n"
    "netsurg fcn --draw FILE draws a cast net with its former InnerProducts "
    "marked.\n" CLI_ALLOW_UNKNOWN_HELP;

typedef struct draw_opts {
  const char *net, *weights, *out;
  ns_phase phase;
  int allow_unknown, shape_axes;
  int64_t shape[8];
} draw_opts;

static int parse_draw(int argc, char **argv, draw_opts *o) {
  static const struct option longopts[] = {
      {"out", required_argument, 0, 'o'},   {"shape", required_argument, 0, 's'},
      {"phase", required_argument, 0, 'p'}, {"allow-unknown", no_argument, 0, 'u'},
      {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->phase = NS_PHASE_TEST;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
    if (c == 'o')
      o->out = optarg;
    else if (c == 's') {
      if (cli_parse_ints("draw", "--shape", optarg, o->shape, 8, &o->shape_axes))
        return NS_ERR_USAGE;
      for (int i = 0; i < o->shape_axes; i++)
        if (o->shape[i] < 1) return cli_usage_error("draw", "--shape: sizes must be >= 1");
    } else if (c == 'p') {
      if (!strcmp(optarg, "TEST"))
        o->phase = NS_PHASE_TEST;
      else if (!strcmp(optarg, "TRAIN"))
        o->phase = NS_PHASE_TRAIN;
      else
        return cli_usage_error("draw", "--phase: TEST or TRAIN, not '%s'", optarg);
    } else if (c == 'u')
      o->allow_unknown = 1;
    else if (c == 'h') {
      fputs(draw_help, stdout);
      return -1;
    } else
      return cli_usage_error("draw", "bad option");
  }
  int rest = argc - optind;
  if (rest < 1 || rest > 2) return cli_usage_error("draw", "expected NET [WEIGHTS]");
  if (!o->out || !*o->out) return cli_usage_error("draw", "--out FILE.svg|.html|.dot is required");
  if (!draw_format_known(o->out))
    return cli_usage_error("draw", "--out %s: the name must end in .svg, .html or .dot", o->out);
  o->net = argv[optind];
  o->weights = rest == 2 ? argv[optind + 1] : NULL;
  return 0;
}

/* The net made of the definition's first n_layers layers (all: -1),
 * without weights: shapes do not depend on them. */
static ns_status build_prefix(ns_ctx *ctx, const draw_opts *o, int n_layers, ns_net **net) {
  ns_netdef *def;
  *net = NULL;
  if (ns_netdef_load(ctx, o->net, &def) != NS_OK) return ns_ctx_status(ctx);
  if (n_layers >= 0) ns_netdef_truncate(def, n_layers);
  ns_net_opts opts = cli_net_opts(NULL, 1);
  opts.phase = o->phase;
  return ns_net_build_from(ctx, def, &opts, net);
}

static ns_status reshape(ns_ctx *ctx, ns_net *net, const draw_opts *o) {
  if (!o->shape_axes || !ns_net_input_count(net)) return NS_OK;
  ns_tensor in = ns_net_blob(net, ns_net_input_blob(net, 0));
  return ns_net_reshape_input(ctx, net, in.name, o->shape_axes, o->shape);
}

/* The longest prefix of the definition that builds, by bisection: prefix
 * `good` builds (0 layers may not: then no net), prefix `bad` fails.  The
 * layer at index `good` is the one that fails; *error is its message. */
static ns_net *longest_prefix(ns_ctx *ctx, const draw_opts *o, int n_layers, int *failed,
                              char **error) {
  ns_net *best = NULL, *net;
  int good = 0, bad = n_layers;
  if (build_prefix(ctx, o, 0, &best) != NS_OK) ns_ctx_clear_error(ctx);
  while (bad - good > 1) {
    int mid = good + (bad - good) / 2;
    if (build_prefix(ctx, o, mid, &net) == NS_OK && reshape(ctx, net, o) == NS_OK) {
      ns_net_destroy(best);
      best = net;
      good = mid;
    } else {
      ns_net_destroy(net);
      free(*error);
      *error = strdup(ns_ctx_error(ctx));
      ns_ctx_clear_error(ctx);
      bad = mid;
    }
  }
  *failed = good;
  return best;
}

int cmd_draw(int argc, char **argv) {
  draw_opts o;
  int rc = parse_draw(argc, argv, &o);
  if (rc) return rc < 0 ? 0 : rc;
  ns_ctx *ctx = cli_ctx(o.allow_unknown, 0);
  ns_netdef *def = NULL;
  ns_net *net = NULL;
  char *error = NULL;
  if (ns_netdef_load(ctx, o.net, &def) != NS_OK) { /* a broken file: nothing to draw */
    rc = cli_fail(ctx, "draw");
    goto done;
  }
  /* The definition's warnings were printed once: the builds read it again. */
  ns_ctx_set_warning_handler(ctx, NULL, NULL);
  draw_request r = {.def = def, .failed_layer = -1, .source = o.net, .out = o.out};
  ns_status built = build_prefix(ctx, &o, -1, &net);
  if (built == NS_OK) built = reshape(ctx, net, &o);
  if (built == NS_OK && o.weights && ns_net_load_weights(ctx, net, o.weights) != NS_OK) {
    rc = cli_fail(ctx, "draw");
    goto done;
  }
  if (built != NS_OK) {
    error = strdup(ns_ctx_error(ctx));
    ns_ctx_clear_error(ctx);
    ns_net_destroy(net);
    net = longest_prefix(ctx, &o, ns_netdef_layer_count(def), &r.failed_layer, &error);
    r.error = error ? error : "out of memory";
    fprintf(stderr, "netsurg draw: cannot shape the net in phase %s, drawn up to layer %s: %s\n",
            o.phase == NS_PHASE_TEST ? "TEST" : "TRAIN", ns_netdef_layer_name(def, r.failed_layer),
            r.error);
  }
  r.net = net;
  rc = draw_write(ctx, &r, "draw");
  if (!rc && built != NS_OK) rc = built;
done:
  free(error);
  ns_net_destroy(net);
  ns_netdef_destroy(def);
  ns_ctx_destroy(ctx);
  return rc;
}
