/* netsurg edit: read and write params element by element or from .npy,
 * then save the weights (atomically). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cli_surgery.h"

static const char *edit_help =
    "usage: netsurg edit NET WEIGHTS [--set 'LAYER[P][I]=V']... [--load 'LAYER[P]=FILE.npy']...\n"
    "                    [--dump 'LAYER[P]=FILE.npy']... [--flat] [--out NEW.caffemodel]\n"
    "                    [--allow-unknown]\n\n"
    "Edit a net's params as pycaffe's net.params does, then save them. NET is the\n"
    "definition (.prototxt, any Caffe version), WEIGHTS the caffemodel read into it by\n"
    "layer name; WEIGHTS itself is never written.\n\n"
    "  --set 'LAYER[P][I]=V'     set one element: P is the param (0 weights, 1 biases),\n"
    "                            I a flat index or a multi-index: conv1[1][0] is\n"
    "                            net.params['conv1'][1].data[0], fc8[0][2,3] is\n"
    "                            net.params['fc8'][0].data[2, 3]\n"
    "  --load 'LAYER[P]=F.npy'   replace a whole param with an array of its shape\n"
    "                            (float32 or float64, C order)\n"
    "  --flat                    --load also takes arrays of any shape with the same\n"
    "                            number of values (copied flat, in C order)\n"
    "  --dump 'LAYER[P]=F.npy'   write a param as a float32 .npy\n"
    "  --out NEW.caffemodel      save the edited weights (current format, blob shapes set;\n"
    "                            atomic: a failed save leaves any old file whole); needed\n"
    "                            when anything was set or loaded\n"
    "  --allow-unknown           skip unknown prototxt fields (see below)\n\n"
    "Operations run in the order given: a --dump after a --set sees the new value.\n"
    "Quote the specs: the shell reads [ ] as a pattern.\n" CLI_ALLOW_UNKNOWN_HELP;

enum { OP_SET, OP_LOAD, OP_DUMP };

typedef struct edit_op {
  int kind;
  char *spec; /* the argument, for messages */
  char layer[512];
  int param;
  int n_index;
  int64_t index[32];
  double value;
  const char *path;
} edit_op;

/* Splits "NAME[P]" (text of length len) into the layer and P. */
static int parse_layer_param(const char *s, size_t len, edit_op *op) {
  if (len < 4 || s[len - 1] != ']') return -1;
  size_t open = len - 1;
  while (open > 0 && s[open] != '[') open--;
  if (s[open] != '[' || open == 0 || open + 2 > len - 1 || open >= sizeof op->layer) return -1;
  char *end;
  long p = strtol(s + open + 1, &end, 10);
  if (end != s + len - 1 || p < 0 || p > 1000000 || s[open + 1] == '-' || s[open + 1] == '+')
    return -1;
  memcpy(op->layer, s, open);
  op->layer[open] = '\0';
  op->param = (int)p;
  return 0;
}

static int parse_set(char *arg, edit_op *op) {
  char *eq = strrchr(arg, '=');
  size_t len = eq ? (size_t)(eq - arg) : 0;
  if (!eq || len < 2 || arg[len - 1] != ']')
    return cli_usage_error("edit", "--set wants 'LAYER[P][I]=V', not '%s'", arg);
  size_t open = len - 1;
  while (open > 0 && arg[open] != '[') open--;
  if (arg[open] != '[' || parse_layer_param(arg, open, op) != 0)
    return cli_usage_error("edit", "--set wants 'LAYER[P][I]=V', not '%s'", arg);
  char idx[512];
  size_t n = len - 1 - (open + 1);
  if (n == 0 || n >= sizeof idx)
    return cli_usage_error("edit", "--set '%s': give an index inside the last [ ]", arg);
  memcpy(idx, arg + open + 1, n);
  idx[n] = '\0';
  if (cli_parse_ints("edit", "--set index", idx, op->index, 32, &op->n_index)) return NS_ERR_USAGE;
  return cli_parse_double("edit", "--set value", eq + 1, &op->value);
}

static int parse_file_op(const char *opt, char *arg, edit_op *op) {
  char *sep = strstr(arg, "]=");
  if (!sep || !sep[2] || parse_layer_param(arg, (size_t)(sep + 1 - arg), op) != 0)
    return cli_usage_error("edit", "%s wants 'LAYER[P]=FILE.npy', not '%s'", opt, arg);
  op->path = sep + 2;
  return 0;
}

static int run_set(ns_ctx *ctx, ns_net *net, const edit_op *op) {
  ns_tensor t;
  int64_t off;
  if (ns_net_param_by_name(ctx, net, op->layer, op->param, &t) != NS_OK ||
      ns_tensor_offset(ctx, &t, op->n_index, op->index, &off) != NS_OK) {
    fprintf(stderr, "netsurg edit: --set '%s':\n", op->spec);
    return cli_fail(ctx, "edit");
  }
  float old = t.data[off];
  t.data[off] = (float)op->value;
  printf("set %s[%d] element %lld: %.9g -> %.9g\n", op->layer, op->param, (long long)off,
         (double)old, (double)t.data[off]);
  return 0;
}

static int same_shape(const ns_tensor *t, const ns_ndarray *a) {
  if (t->num_axes != a->num_axes) return 0;
  for (int i = 0; i < t->num_axes; i++)
    if (t->shape[i] != a->shape[i]) return 0;
  return 1;
}

static int run_load(ns_ctx *ctx, ns_net *net, const edit_op *op, int flat) {
  ns_tensor t;
  ns_ndarray a;
  if (ns_net_param_by_name(ctx, net, op->layer, op->param, &t) != NS_OK ||
      ns_npy_load(ctx, op->path, &a) != NS_OK)
    return cli_fail(ctx, "edit");
  int rc = 0;
  if (flat ? a.count != t.count : !same_shape(&t, &a)) {
    fprintf(stderr, "netsurg edit: --load '%s': %s[%d] is ", op->spec, op->layer, op->param);
    cli_print_tensor_shape(stderr, &t);
    fprintf(stderr, " (%lld values), %s is ", (long long)t.count, op->path);
    cli_print_shape(stderr, a.shape, a.num_axes, 0);
    fprintf(stderr, " (%lld values)%s\n", (long long)a.count,
            flat || a.count != t.count ? "" : "; --flat copies the values in C order");
    rc = NS_ERR_USAGE;
  } else {
    memcpy(t.data, a.data, (size_t)t.count * sizeof(float));
    printf("loaded %s[%d] ", op->layer, op->param);
    cli_print_tensor_shape(stdout, &t);
    printf(" from %s\n", op->path);
  }
  ns_ndarray_free(ctx, &a);
  return rc;
}

static int run_dump(ns_ctx *ctx, ns_net *net, const edit_op *op) {
  ns_tensor t;
  if (ns_net_param_by_name(ctx, net, op->layer, op->param, &t) != NS_OK ||
      ns_npy_save_f32(ctx, op->path, t.num_axes, t.shape, t.data) != NS_OK)
    return cli_fail(ctx, "edit");
  printf("dumped %s[%d] ", op->layer, op->param);
  cli_print_tensor_shape(stdout, &t);
  printf(" to %s\n", op->path);
  return 0;
}

typedef struct edit_args {
  edit_op *ops;
  int n_ops, flat, allow_unknown, changes;
  const char *out, *net, *weights;
} edit_args;

static int add_op(edit_args *a, int kind, char *arg) {
  edit_op *op = &a->ops[a->n_ops];
  memset(op, 0, sizeof *op);
  op->kind = kind;
  op->spec = arg;
  int rc = kind == OP_SET    ? parse_set(arg, op)
           : kind == OP_LOAD ? parse_file_op("--load", arg, op)
                             : parse_file_op("--dump", arg, op);
  if (rc) return rc;
  a->n_ops++;
  a->changes += kind != OP_DUMP;
  return 0;
}

static int parse_edit(int argc, char **argv, edit_args *a) {
  static const struct option longopts[] = {
      {"set", required_argument, 0, 's'},  {"load", required_argument, 0, 'l'},
      {"dump", required_argument, 0, 'd'}, {"flat", no_argument, 0, 'f'},
      {"out", required_argument, 0, 'o'},  {"allow-unknown", no_argument, 0, 'u'},
      {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
  int c, rc;
  optind = 1;
  while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
    switch (c) {
      case 's':
      case 'l':
      case 'd':
        rc = add_op(a, c == 's' ? OP_SET : c == 'l' ? OP_LOAD : OP_DUMP, optarg);
        if (rc) return rc;
        break;
      case 'f':
        a->flat = 1;
        break;
      case 'o':
        a->out = optarg;
        break;
      case 'u':
        a->allow_unknown = 1;
        break;
      case 'h':
        fputs(edit_help, stdout);
        return -1;
      default:
        return cli_usage_error("edit", "bad option");
    }
  }
  if (argc - optind != 2) return cli_usage_error("edit", "expected NET WEIGHTS");
  a->net = argv[optind];
  a->weights = argv[optind + 1];
  if (a->changes && !a->out)
    return cli_usage_error("edit", "--set and --load need --out NEW.caffemodel");
  if (!a->n_ops && !a->out) return cli_usage_error("edit", "nothing to do");
  return 0;
}

int cmd_edit(int argc, char **argv) {
  edit_args a;
  memset(&a, 0, sizeof a);
  a.ops = calloc((size_t)argc + 1, sizeof *a.ops);
  if (!a.ops) return NS_ERR_NOMEM;
  int rc = parse_edit(argc, argv, &a);
  if (rc) {
    free(a.ops);
    return rc < 0 ? 0 : rc;
  }
  ns_ctx *ctx = cli_ctx(a.allow_unknown, 0);
  ns_net *net = NULL;
  ns_net_opts opts = cli_net_opts(a.weights, 1);
  if (ns_net_load(ctx, a.net, &opts, &net) != NS_OK) rc = cli_fail(ctx, "edit");
  for (int i = 0; i < a.n_ops && !rc; i++) {
    const edit_op *op = &a.ops[i];
    rc = op->kind == OP_SET    ? run_set(ctx, net, op)
         : op->kind == OP_LOAD ? run_load(ctx, net, op, a.flat)
                               : run_dump(ctx, net, op);
  }
  if (!rc && a.out) {
    if (ns_net_save_weights(ctx, net, a.out) != NS_OK)
      rc = cli_fail(ctx, "edit");
    else
      printf("wrote %s\n", a.out);
  }
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  free(a.ops);
  return rc;
}
