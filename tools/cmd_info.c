/* netsurg info: layers, param shapes and blob shapes of a net. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const char *info_help =
    "usage: netsurg info NET [WEIGHTS] [--json] [--receptive-field] [--allow-unknown]\n\n"
    "List a net's layers (name, type, bottoms, tops, param shapes) and, when the net\n"
    "can be shaped (deploy nets with an input shape), every blob's shape. NET is a\n"
    ".prototxt or a .caffemodel in any Caffe version (legacy files are upgraded on\n"
    "load). With WEIGHTS, the params are loaded by layer name and checked.\n\n"
    "  --json            machine-readable output\n"
    "  --receptive-field each blob's receptive field in input pixels: the window one\n"
    "                    cell sees (padding included), the stride between cells, and\n"
    "                    where cell (0, 0)'s window starts (negative: in the padding)\n"
    "  --allow-unknown   skip unknown prototxt fields (see below)\n\n"
    "A net that cannot be shaped (a layer type netsurg lacks, a data layer whose files\n"
    "are missing) is listed from its definition, then info exits with the status\n"
    "that stopped it (3 for an unsupported layer, naming it).\n" CLI_ALLOW_UNKNOWN_HELP;

typedef struct info_opts {
  const char *net, *weights;
  int json, allow_unknown, receptive_field;
} info_opts;

static int print_shape_list_json(ns_net *net, int l) {
  printf("[");
  for (int j = 0; j < ns_net_param_count(net, l); j++) {
    ns_tensor t = ns_net_param(net, l, j);
    if (j) printf(", ");
    cli_print_shape(stdout, t.shape, t.num_axes, 1);
  }
  printf("]");
  return 0;
}

static void print_names_json(const char *key, int n, const char *(*get)(const void *, int, int),
                             const void *obj, int l) {
  printf("\"%s\": [", key);
  for (int j = 0; j < n; j++) {
    if (j) printf(", ");
    cli_json_string(stdout, get(obj, l, j));
  }
  printf("]");
}

static const char *net_bottom(const void *o, int l, int j) { return ns_net_layer_bottom(o, l, j); }
static const char *net_top(const void *o, int l, int j) { return ns_net_layer_top(o, l, j); }
static const char *def_bottom(const void *o, int l, int j) { return ns_netdef_layer_bottom(o, l, j); }
static const char *def_top(const void *o, int l, int j) { return ns_netdef_layer_top(o, l, j); }

static void json_rf(const ns_receptive_field *r) {
  if (!r->known) {
    printf(", \"receptive_field\": null");
    return;
  }
  printf(", \"receptive_field\": {\"size\": [%lld, %lld], \"stride\": [%lld, %lld], "
         "\"offset\": [%lld, %lld]}",
         (long long)r->size[0], (long long)r->size[1], (long long)r->stride[0],
         (long long)r->stride[1], (long long)r->offset[0], (long long)r->offset[1]);
}

static void json_net(ns_net *net, const ns_receptive_field *rf) {
  printf("{\"name\": ");
  cli_json_string(stdout, ns_net_name(net));
  printf(", \"layers\": [");
  for (int l = 0; l < ns_net_layer_count(net); l++) {
    printf(l ? ",\n  {\"name\": " : "\n  {\"name\": ");
    cli_json_string(stdout, ns_net_layer_name(net, l));
    printf(", \"type\": ");
    cli_json_string(stdout, ns_net_layer_type(net, l));
    printf(", ");
    print_names_json("bottoms", ns_net_layer_bottom_count(net, l), net_bottom, net, l);
    printf(", ");
    print_names_json("tops", ns_net_layer_top_count(net, l), net_top, net, l);
    printf(", \"params\": ");
    print_shape_list_json(net, l);
    printf("}");
  }
  printf("],\n \"blobs\": [");
  for (int b = 0; b < ns_net_blob_count(net); b++) {
    ns_tensor t = ns_net_blob(net, b);
    printf(b ? ",\n  {\"name\": " : "\n  {\"name\": ");
    cli_json_string(stdout, t.name);
    printf(", \"shape\": ");
    cli_print_shape(stdout, t.shape, t.num_axes, 1);
    if (rf) json_rf(&rf[b]);
    printf("}");
  }
  printf("]}\n");
}

static void json_def(const ns_netdef *def) {
  int64_t shape[32];
  printf("{\"name\": ");
  cli_json_string(stdout, ns_netdef_name(def));
  printf(", \"layers\": [");
  for (int l = 0; l < ns_netdef_layer_count(def); l++) {
    printf(l ? ",\n  {\"name\": " : "\n  {\"name\": ");
    cli_json_string(stdout, ns_netdef_layer_name(def, l));
    printf(", \"type\": ");
    cli_json_string(stdout, ns_netdef_layer_type(def, l));
    printf(", ");
    print_names_json("bottoms", ns_netdef_layer_bottom_count(def, l), def_bottom, def, l);
    printf(", ");
    print_names_json("tops", ns_netdef_layer_top_count(def, l), def_top, def, l);
    printf(", \"params\": [");
    for (int j = 0; j < ns_netdef_layer_blob_count(def, l); j++) {
      int n = ns_netdef_layer_blob_shape(def, l, j, shape);
      if (j) printf(", ");
      cli_print_shape(stdout, shape, n, 1);
    }
    printf("]}");
  }
  printf("],\n \"blobs\": []}\n");
}

/* The seed's line: "fc6 weights are (4096, 9216) dimensional and biases
 * are (4096,) dimensional". */
static void seed_line(const char *name, int n, const int64_t *const *shapes, const int *axes) {
  printf("%s weights are ", name);
  cli_print_shape(stdout, shapes[0], axes[0], 0);
  printf(" dimensional");
  if (n > 1) {
    printf(" and biases are ");
    cli_print_shape(stdout, shapes[1], axes[1], 0);
    printf(" dimensional");
  }
  for (int j = 2; j < n; j++) {
    printf(" and param %d is ", j);
    cli_print_shape(stdout, shapes[j], axes[j], 0);
    printf(" dimensional");
  }
  printf("\n");
}

static void names(int n, const char *(*get)(const void *, int, int), const void *obj, int l) {
  int w = 0;
  for (int j = 0; j < n; j++) w += printf(j ? ",%s" : "%s", get(obj, l, j));
  if (!n) w += printf("-");
  printf("%*s", w < 25 ? 25 - w : 1, "");
}

/* "227", or "5x7" when rows and columns differ. */
static void print_pair(const int64_t *v) {
  char buf[64];
  if (v[0] == v[1]) snprintf(buf, sizeof buf, "%lld", (long long)v[0]);
  else snprintf(buf, sizeof buf, "%lldx%lld", (long long)v[0], (long long)v[1]);
  printf("%-12s", buf);
}

static void human_rf(ns_net *net, const ns_receptive_field *rf) {
  printf("\n%-32s %-12s %-12s %s\n", "blob", "field (px)", "stride (px)", "cell (0,0) starts at");
  for (int b = 0; b < ns_net_blob_count(net); b++) {
    ns_tensor t = ns_net_blob(net, b);
    printf("%-32s ", t.name);
    if (!rf[b].known) {
      printf("unknown\n");
      continue;
    }
    print_pair(rf[b].size);
    printf(" ");
    print_pair(rf[b].stride);
    printf(" (%lld, %lld)\n", (long long)rf[b].offset[0], (long long)rf[b].offset[1]);
  }
}

static void human_net(ns_net *net, const char *path) {
  printf("net '%s' (%s): %d layers, %d blobs\n\n", ns_net_name(net), path,
         ns_net_layer_count(net), ns_net_blob_count(net));
  printf("%-4s %-20s %-14s %-24s %-24s %s\n", "#", "layer", "type", "bottoms", "tops", "params");
  for (int l = 0; l < ns_net_layer_count(net); l++) {
    printf("%-4d %-20s %-14s ", l, ns_net_layer_name(net, l), ns_net_layer_type(net, l));
    names(ns_net_layer_bottom_count(net, l), net_bottom, net, l);
    names(ns_net_layer_top_count(net, l), net_top, net, l);
    for (int j = 0; j < ns_net_param_count(net, l); j++) {
      ns_tensor t = ns_net_param(net, l, j);
      cli_print_shape(stdout, t.shape, t.num_axes, 0);
      printf(" ");
    }
    printf("\n");
  }
  printf("\n%-32s %s\n", "blob", "shape");
  for (int b = 0; b < ns_net_blob_count(net); b++) {
    ns_tensor t = ns_net_blob(net, b);
    printf("%-32s ", t.name);
    cli_print_shape(stdout, t.shape, t.num_axes, 0);
    printf("\n");
  }
  printf("\n");
  for (int l = 0; l < ns_net_layer_count(net); l++) {
    int n = ns_net_param_count(net, l);
    if (!n) continue;
    const int64_t *shapes[32];
    int axes[32];
    for (int j = 0; j < n && j < 32; j++) {
      ns_tensor t = ns_net_param(net, l, j);
      shapes[j] = t.shape;
      axes[j] = t.num_axes;
    }
    seed_line(ns_net_layer_name(net, l), n < 32 ? n : 32, shapes, axes);
  }
}

static void human_def(const ns_netdef *def, const char *path) {
  printf("net '%s' (%s): %d layers (definition only: blob shapes unknown)\n\n",
         ns_netdef_name(def), path, ns_netdef_layer_count(def));
  printf("%-4s %-20s %-14s %-24s %-24s %s\n", "#", "layer", "type", "bottoms", "tops", "params");
  for (int l = 0; l < ns_netdef_layer_count(def); l++) {
    int64_t shape[32];
    printf("%-4d %-20s %-14s ", l, ns_netdef_layer_name(def, l), ns_netdef_layer_type(def, l));
    names(ns_netdef_layer_bottom_count(def, l), def_bottom, def, l);
    names(ns_netdef_layer_top_count(def, l), def_top, def, l);
    for (int j = 0; j < ns_netdef_layer_blob_count(def, l); j++) {
      cli_print_shape(stdout, shape, ns_netdef_layer_blob_shape(def, l, j, shape), 0);
      printf(" ");
    }
    printf("\n");
  }
  printf("\n");
  for (int l = 0; l < ns_netdef_layer_count(def); l++) {
    int n = ns_netdef_layer_blob_count(def, l);
    if (!n) continue;
    int64_t store[32][32];
    const int64_t *shapes[32];
    int axes[32];
    if (n > 32) n = 32;
    for (int j = 0; j < n; j++) {
      axes[j] = ns_netdef_layer_blob_shape(def, l, j, store[j]);
      shapes[j] = store[j];
    }
    seed_line(ns_netdef_layer_name(def, l), n, shapes, axes);
  }
}

static int parse_info(int argc, char **argv, info_opts *o) {
  static const struct option longopts[] = {{"json", no_argument, 0, 'j'},
                                           {"allow-unknown", no_argument, 0, 'u'},
                                           {"receptive-field", no_argument, 0, 'r'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (c == 'j') o->json = 1;
    else if (c == 'u') o->allow_unknown = 1;
    else if (c == 'r') o->receptive_field = 1;
    else if (c == 'h') {
      fputs(info_help, stdout);
      return -1;
    } else
      return cli_usage_error("info", "bad option");
  }
  int rest = argc - optind;
  if (rest < 1 || rest > 2) return cli_usage_error("info", "expected NET [WEIGHTS]");
  o->net = argv[optind];
  o->weights = rest == 2 ? argv[optind + 1] : NULL;
  return 0;
}

/* A layer without bottoms other than Input: a data layer (ImageData,
 * NpyData, ...), whose files (list, arrays, mean) a build reads: when
 * they are missing or broken, the definition is still worth listing. */
static int has_data_layer(const ns_netdef *def) {
  for (int l = 0; l < ns_netdef_layer_count(def); l++)
    if (ns_netdef_layer_bottom_count(def, l) == 0 && strcmp(ns_netdef_layer_type(def, l), "Input"))
      return 1;
  return 0;
}

int cmd_info(int argc, char **argv) {
  info_opts o;
  int rc = parse_info(argc, argv, &o);
  if (rc) return rc < 0 ? 0 : rc;
  ns_ctx *ctx = cli_ctx(o.allow_unknown, 0);
  ns_net *net = NULL;
  ns_net_opts opts = cli_net_opts(o.weights, 0);
  if (ns_net_load(ctx, o.net, &opts, &net) == NS_OK) {
    ns_receptive_field *rf = NULL;
    if (o.receptive_field) {
      rf = calloc((size_t)ns_net_blob_count(net) + 1, sizeof *rf);
      if (rf) ns_net_receptive_fields(ctx, net, rf);
    }
    if (o.json) json_net(net, rf);
    else human_net(net, o.net);
    if (rf && !o.json) human_rf(net, rf);
    free(rf);
    ns_net_destroy(net);
    ns_ctx_destroy(ctx);
    return 0;
  }
  /* A net we cannot build (data layers, no input shape, a layer type we
   * lack, or a train/test file whose TEST phase lacks a stage's data layer)
   * is still listed from its definition, then reported with the status
   * that stopped it; a broken file or net is an error alone. */
  ns_status st = ns_ctx_status(ctx);
  int data_files = st == NS_ERR_IO || st == NS_ERR_INPUT; /* checked below */
  if (o.weights || (st != NS_ERR_UNSUPPORTED && st != NS_ERR_NET && !data_files)) {
    rc = cli_fail(ctx, "info");
    ns_ctx_destroy(ctx);
    return rc;
  }
  char *why = strdup(ns_ctx_error(ctx));
  ns_ctx_clear_error(ctx);
  /* The same file again: its warnings were printed by the first read. */
  ns_ctx_set_warning_handler(ctx, NULL, NULL);
  ns_netdef *def;
  if (ns_netdef_load(ctx, o.net, &def) != NS_OK) {
    free(why);
    rc = cli_fail(ctx, "info");
    ns_ctx_destroy(ctx);
    return rc;
  }
  int listed = !((st == NS_ERR_NET && !ns_netdef_has_state_rules(def)) ||
                 (data_files && !has_data_layer(def)));
  if (listed) {
    if (o.json) json_def(def);
    else human_def(def, o.net);
    fflush(stdout);
    fprintf(stderr, "netsurg info: cannot shape the net in phase TEST, listed its definition "
            "only: %s\n", why ? why : "out of memory");
  } else {
    fprintf(stderr, "netsurg info: %s\n", why ? why : "invalid net");
  }
  free(why);
  ns_netdef_destroy(def);
  ns_ctx_destroy(ctx);
  return st;
}
