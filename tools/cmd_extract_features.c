/* netsurg extract-features: Caffe's tools/extract_features over
 * ns_feature_db (databases) and ns_npy_save_f32 (.npy). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const char *extract_help =
    "usage: netsurg extract-features NET WEIGHTS BLOB[,BLOB...] OUT[,OUT...] NUM_BATCHES\n"
    "                                [lmdb|leveldb] [--threads N] [--allow-unknown]\n\n"
    "Run the net (phase TEST, fed by its own data layers: Data, ImageData, HDF5Data...)\n"
    "NUM_BATCHES times and save each named blob, as Caffe's extract_features: one\n"
    "output per blob, in the same order. An OUT ending in .npy gets every batch of\n"
    "its blob stacked along axis 0 as one float32 array; any other OUT is a new\n"
    "database (lmdb unless leveldb is given) of Datum records, one per item, with\n"
    "float_data the item's values, channels/height/width the blob's axes 1-3, under\n"
    "the keys 0000000000, 0000000001, ... Caffe's own tool takes WEIGHTS before NET;\n"
    "netsurg, as in its other verbs, takes NET first.\n" CLI_ALLOW_UNKNOWN_HELP;

#define MAX_FEATURES 64

typedef struct feature_out {
  char *blob, *path;
  int npy;
  ns_feature_db *db;
  float *stack; /* .npy: the batches so far */
  int64_t rows, per_row, cap;
  int num_axes;
  int64_t shape[8];
} feature_out;

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && !strcmp(s + n - m, tail);
}

/* Splits "a,b,c" in place into at most max names; -1 on an empty name. */
static int split_names(char *s, char **names, int max) {
  int n = 0;
  for (char *tok = s;; n++) {
    char *comma = strchr(tok, ',');
    if (comma) *comma = '\0';
    if (!*tok || n == max) return -1;
    names[n] = tok;
    if (!comma) return n + 1;
    tok = comma + 1;
  }
}

static int append_rows(ns_ctx *ctx, feature_out *o, const ns_tensor *t) {
  const char *verb = "extract-features";
  if (t->num_axes < 1 || t->num_axes > 8 || t->shape[0] < 1)
    return cli_usage_error(verb, "blob '%s' has no items along axis 0", o->blob);
  int64_t per_row = t->count / t->shape[0];
  if (o->rows == 0) {
    o->num_axes = t->num_axes;
    memcpy(o->shape, t->shape, (size_t)t->num_axes * sizeof *t->shape);
    o->per_row = per_row;
  } else if (t->num_axes != o->num_axes ||
             memcmp(o->shape + 1, t->shape + 1, (size_t)(t->num_axes - 1) * sizeof *t->shape)) {
    return cli_usage_error(verb, "blob '%s' changed shape between batches; .npy needs one", o->blob);
  }
  if (o->rows + t->shape[0] > o->cap) {
    int64_t cap = 2 * (o->rows + t->shape[0]);
    float *grown = realloc(o->stack, (size_t)(cap * per_row) * sizeof *grown);
    if (!grown) return cli_usage_error(verb, "out of memory stacking blob '%s'", o->blob);
    o->stack = grown, o->cap = cap;
  }
  memcpy(o->stack + o->rows * per_row, t->data, (size_t)t->count * sizeof *t->data);
  o->rows += t->shape[0];
  (void)ctx;
  return 0;
}

static int save_batch(ns_ctx *ctx, ns_net *net, feature_out *o) {
  ns_tensor t = ns_net_blob(net, ns_net_find_blob(net, o->blob));
  if (o->npy) return append_rows(ctx, o, &t);
  return ns_feature_db_put(ctx, o->db, &t) != NS_OK ? cli_fail(ctx, "extract-features") : 0;
}

static int finish(ns_ctx *ctx, feature_out *o, int rc) {
  int64_t records = o->rows;
  if (o->npy && !rc) {
    o->shape[0] = o->rows;
    if (ns_npy_save_f32(ctx, o->path, o->num_axes, o->shape, o->stack) != NS_OK)
      rc = cli_fail(ctx, "extract-features");
  } else if (!o->npy && ns_feature_db_close(ctx, o->db, &records) != NS_OK && !rc) {
    rc = cli_fail(ctx, "extract-features");
  }
  o->db = NULL;
  free(o->stack);
  if (!rc)
    fprintf(stderr, "netsurg extract-features: %lld items of blob %s -> %s\n", (long long)records,
            o->blob, o->path);
  return rc;
}

static int run(ns_ctx *ctx, ns_net *net, feature_out *outs, int n, unsigned long long batches,
               int backend) {
  const char *verb = "extract-features";
  for (int i = 0; i < n; i++) {
    if (ns_net_find_blob(net, outs[i].blob) < 0)
      return cli_usage_error(verb, "no blob named '%s' in the net", outs[i].blob);
    outs[i].npy = ends_with(outs[i].path, ".npy");
  }
  for (int i = 0; i < n; i++)
    if (!outs[i].npy && ns_feature_db_create(ctx, outs[i].path, backend, &outs[i].db) != NS_OK)
      return cli_fail(ctx, verb);
  int rc = 0;
  for (unsigned long long b = 0; b < batches && !rc; b++) {
    if (ns_net_forward(ctx, net) != NS_OK) rc = cli_fail(ctx, verb);
    for (int i = 0; i < n && !rc; i++) rc = save_batch(ctx, net, &outs[i]);
  }
  for (int i = 0; i < n; i++) rc = finish(ctx, &outs[i], rc);
  return rc;
}

int cmd_extract_features(int argc, char **argv) {
  static const struct option longopts[] = {{"threads", required_argument, 0, 't'},
                                           {"allow-unknown", no_argument, 0, 'u'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  const char *verb = "extract-features";
  unsigned long long threads = 0, batches = 0;
  int allow_unknown = 0, c, backend = NS_DB_LMDB;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (c == 't') {
      if (cli_parse_u64(verb, "--threads", optarg, &threads)) return NS_ERR_USAGE;
    } else if (c == 'u') {
      allow_unknown = 1;
    } else if (c == 'h') {
      fputs(extract_help, stdout);
      return 0;
    } else {
      return cli_usage_error(verb, "bad option");
    }
  }
  int rest = argc - optind;
  char **a = argv + optind;
  if (rest < 5 || rest > 6)
    return cli_usage_error(verb, "expected NET WEIGHTS BLOB[,BLOB...] OUT[,OUT...] NUM_BATCHES "
                                 "[lmdb|leveldb]");
  if (ends_with(a[0], ".caffemodel") && !ends_with(a[1], ".caffemodel"))
    return cli_usage_error(verb, "NET comes first, then WEIGHTS ('%s' looks like weights; "
                                 "Caffe's tool takes them the other way round)", a[0]);
  if (rest == 6 && !strcmp(a[5], "leveldb")) backend = NS_DB_LEVELDB;
  else if (rest == 6 && strcmp(a[5], "lmdb"))
    return cli_usage_error(verb, "the database type is lmdb or leveldb, not '%s'", a[5]);
  if (cli_parse_u64(verb, "NUM_BATCHES", a[4], &batches)) return NS_ERR_USAGE;
  if (batches == 0) return cli_usage_error(verb, "NUM_BATCHES must be at least 1");
  char *blobs[MAX_FEATURES], *paths[MAX_FEATURES];
  int n = split_names(a[2], blobs, MAX_FEATURES), m = split_names(a[3], paths, MAX_FEATURES);
  if (n < 0 || m < 0) return cli_usage_error(verb, "empty or too many names in BLOB or OUT lists");
  if (n != m)
    return cli_usage_error(verb, "%d blob names but %d outputs; they go in pairs", n, m);
  feature_out outs[MAX_FEATURES] = {{0}};
  for (int i = 0; i < n; i++) outs[i].blob = blobs[i], outs[i].path = paths[i];
  ns_ctx *ctx = cli_ctx(allow_unknown, (int)(threads > 1024 ? 1024 : threads));
  ns_net *net = NULL;
  ns_net_opts opts = cli_net_opts(a[1], 1);
  int rc = ns_net_load(ctx, a[0], &opts, &net) != NS_OK ? cli_fail(ctx, verb)
                                                        : run(ctx, net, outs, n, batches, backend);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return rc;
}
