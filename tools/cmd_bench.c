/* netsurg bench: forward timing with warm-up, medians and per-layer shares. */
#include <getopt.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const char *bench_help =
    "usage: netsurg bench NET [WEIGHTS] [--shape N,C,H,W] [--iters N] [--warmup N]\n"
    "                     [--threads N] [--per-layer] [--json] [--allow-unknown]\n"
    "       netsurg bench --train SOLVER.prototxt [WEIGHTS] [--iters N] [--warmup N]\n"
    "                     [--threads N] [--json] [--allow-unknown]\n\n"
    "Time the forward pass: warm-up runs, then N timed runs (default 20); prints the\n"
    "median, min and max in ms and GFLOP/s (2 FLOP per multiply-add of convolutions\n"
    "and inner products). --shape reshapes the first input blob. --per-layer adds each\n"
    "layer's median time and share. Without WEIGHTS, params come from the fillers\n"
    "(timing does not depend on the values). --json prints one JSON object.\n"
    "--train times whole training iterations of the solver's train net instead: data\n"
    "layer, forward, backward and the solver's update (no tests, no snapshots), and\n"
    "reports images/s (the batch over the median iteration).\n" CLI_ALLOW_UNKNOWN_HELP;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median, min and max of n > 0 run times (sorts runs). */
static void summarise(double *runs, int n, double *med, double *mn, double *mx) {
  *med = median(runs, n);
  *mn = runs[0];
  *mx = runs[n - 1];
}

static int parse_shape(const char *s, int64_t *shape, int *n) {
  *n = 0;
  while (*s && *n < 32) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0) return -1;
    shape[(*n)++] = v;
    s = *end == ',' || *end == 'x' ? end + 1 : end;
    if (end == s && *s) return -1;
  }
  return *n ? 0 : -1;
}

typedef struct bench_opts {
  const char *net, *weights;
  int64_t shape[32];
  int shape_axes;
  unsigned long long iters, warmup, threads;
  int per_layer, json, train, allow_unknown;
} bench_opts;

static int parse_bench(int argc, char **argv, bench_opts *o) {
  static const struct option longopts[] = {
      {"shape", required_argument, 0, 's'}, {"iters", required_argument, 0, 'n'},
      {"warmup", required_argument, 0, 'w'}, {"threads", required_argument, 0, 't'},
      {"per-layer", no_argument, 0, 'p'},   {"json", no_argument, 0, 'j'},
      {"train", no_argument, 0, 'T'},       {"help", no_argument, 0, 'h'},
      {"allow-unknown", no_argument, 0, 'u'}, {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->iters = 20;
  o->warmup = 3;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case 's':
        if (parse_shape(optarg, o->shape, &o->shape_axes))
          return cli_usage_error("bench", "--shape wants N,C,H,W (positive integers)");
        break;
      case 'n':
        if (cli_parse_u64("bench", "--iters", optarg, &o->iters)) return NS_ERR_USAGE;
        if (o->iters < 1 || o->iters > 100000) return cli_usage_error("bench", "--iters 1..100000");
        break;
      case 'w':
        if (cli_parse_u64("bench", "--warmup", optarg, &o->warmup)) return NS_ERR_USAGE;
        break;
      case 't':
        if (cli_parse_u64("bench", "--threads", optarg, &o->threads)) return NS_ERR_USAGE;
        break;
      case 'p': o->per_layer = 1; break;
      case 'j': o->json = 1; break;
      case 'T': o->train = 1; break;
      case 'u': o->allow_unknown = 1; break;
      case 'h': fputs(bench_help, stdout); return -1;
      default: return cli_usage_error("bench", "bad option");
    }
  }
  int rest = argc - optind;
  if (rest < 1 || rest > 2) return cli_usage_error("bench", "expected NET [WEIGHTS]");
  o->net = argv[optind];
  o->weights = rest == 2 ? argv[optind + 1] : NULL;
  return 0;
}

static void report(const bench_opts *o, ns_net *net, double *runs, double *per_layer,
                   int n_layers, int threads) {
  int n = (int)o->iters;
  double flops = 0;
  for (int l = 0; l < n_layers; l++) flops += ns_net_layer_flops(net, l);
  double med, mn, mx;
  summarise(runs, n, &med, &mn, &mx);
  ns_tensor in = ns_net_blob(net, ns_net_input_blob(net, 0));
  if (o->json) {
    printf("{\"net\": ");
    cli_json_string(stdout, o->net);
    printf(", \"input_shape\": ");
    cli_print_shape(stdout, in.shape, in.num_axes, 1);
    printf(", \"threads\": %d, \"iters\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f, "
           "\"max_ms\": %.3f, \"gflop\": %.4f, \"gflops\": %.2f",
           threads, n, med, mn, mx, flops / 1e9, flops / 1e6 / med);
    if (per_layer) {
      printf(", \"layers\": [");
      for (int l = 0; l < n_layers; l++) {
        printf(l ? ", {\"name\": " : "{\"name\": ");
        cli_json_string(stdout, ns_net_layer_name(net, l));
        printf(", \"type\": ");
        cli_json_string(stdout, ns_net_layer_type(net, l));
        printf(", \"ms\": %.4f, \"gflop\": %.4f}", per_layer[l] * 1e3 / n,
               ns_net_layer_flops(net, l) / 1e9);
      }
      printf("]");
    }
    printf("}\n");
    return;
  }
  printf("%s, input ", o->net);
  cli_print_shape(stdout, in.shape, in.num_axes, 0);
  printf(", %d threads, %d runs\n", threads, n);
  printf("forward: median %.2f ms (min %.2f, max %.2f), %.3f GFLOP, %.1f GFLOP/s\n", med, mn, mx,
         flops / 1e9, flops / 1e6 / med);
  if (!per_layer) return;
  double total = 0;
  for (int l = 0; l < n_layers; l++) total += per_layer[l];
  printf("\n%-24s %-14s %10s %7s %10s\n", "layer", "type", "mean ms", "share", "GFLOP/s");
  for (int l = 0; l < n_layers; l++) {
    double ms = per_layer[l] * 1e3 / n, fl = ns_net_layer_flops(net, l);
    printf("%-24s %-14s %10.3f %6.1f%% ", ns_net_layer_name(net, l), ns_net_layer_type(net, l),
           ms, total > 0 ? 100.0 * per_layer[l] / total : 0);
    if (fl > 0 && ms > 0) printf("%10.1f", fl / 1e6 / ms);
    printf("\n");
  }
}

/* --train: whole solver iterations (clear diffs, forward with the data
 * layers, backward, update), as ns_solver_step runs them minus tests. */
static int bench_train(const bench_opts *o) {
  ns_ctx *ctx = cli_ctx(o->allow_unknown, (int)(o->threads > 1024 ? 1024 : o->threads));
  ns_solver_opts so;
  ns_solver_opts_init(&so);
  so.seed = 1;
  so.weights = o->weights;
  ns_solver *s = NULL;
  double *runs = calloc(o->iters, sizeof *runs);
  int rc = 0;
  if (!runs) {
    ns_ctx_destroy(ctx);
    fprintf(stderr, "netsurg bench: out of memory\n");
    return NS_ERR_NOMEM;
  }
  if (ns_solver_create(ctx, o->net, &so, &s) != NS_OK) goto fail;
  ns_net *net = ns_solver_net(s);
  for (unsigned long long i = 0; i < o->warmup + o->iters; i++) {
    double t0 = omp_get_wtime();
    ns_net_clear_param_diffs(net);
    if (ns_net_forward_loss(ctx, net, NULL) != NS_OK || ns_net_backward(ctx, net) != NS_OK ||
        ns_solver_apply_update(ctx, s) != NS_OK)
      goto fail;
    if (i >= o->warmup) runs[i - o->warmup] = (omp_get_wtime() - t0) * 1e3;
  }
  int n = (int)o->iters, threads = o->threads ? (int)o->threads : omp_get_num_procs();
  double med, mn, mx;
  summarise(runs, n, &med, &mn, &mx);
  int64_t batch = ns_solver_batch_images(s);
  if (o->json) {
    printf("{\"solver\": ");
    cli_json_string(stdout, o->net);
    printf(
        ", \"threads\": %d, \"iters\": %d, \"batch\": %lld, \"median_ms\": %.3f, "
        "\"min_ms\": %.3f, \"max_ms\": %.3f, \"images_per_s\": %.1f}\n",
        threads, n, (long long)batch, med, mn, mx, batch * 1e3 / med);
  } else {
    printf("%s, %lld images per iteration, %d threads, %d runs\n", o->net, (long long)batch,
           threads, n);
    printf(
        "train iteration (forward+backward+update): median %.2f ms (min %.2f, max %.2f), "
        "%.1f images/s\n",
        med, mn, mx, batch * 1e3 / med);
  }
  goto done;
fail:
  rc = cli_fail(ctx, "bench");
done:
  free(runs);
  ns_solver_destroy(s);
  ns_ctx_destroy(ctx);
  return rc;
}

int cmd_bench(int argc, char **argv) {
  bench_opts o;
  int rc = parse_bench(argc, argv, &o);
  if (rc) return rc < 0 ? 0 : rc;
  if (o.train) {
    if (o.shape_axes || o.per_layer)
      return cli_usage_error("bench", "--shape and --per-layer are not for --train");
    return bench_train(&o);
  }
  ns_ctx *ctx = cli_ctx(o.allow_unknown, (int)(o.threads > 1024 ? 1024 : o.threads));
  ns_net *net = NULL;
  double *runs = NULL, *per_layer = NULL;
  ns_net_opts opts = cli_net_opts(o.weights, 1);
  /* bench reads no intermediate blob: share their storage (the memory
   * a deployment would use) */
  if (ns_net_load_reusing(ctx, o.net, &opts, &net) != NS_OK) goto fail;
  if (ns_net_input_count(net) < 1) {
    rc = cli_usage_error("bench", "the net has no Input layer to time");
    goto done;
  }
  if (o.shape_axes) {
    ns_tensor in = ns_net_blob(net, ns_net_input_blob(net, 0));
    if (ns_net_reshape_input(ctx, net, in.name, o.shape_axes, o.shape) != NS_OK) goto fail;
  }
  int n_layers = ns_net_layer_count(net);
  runs = calloc(o.iters, sizeof *runs);
  per_layer = calloc((size_t)n_layers + 1, sizeof *per_layer);
  if (!runs || !per_layer) {
    fprintf(stderr, "netsurg bench: out of memory\n");
    rc = NS_ERR_NOMEM;
    goto done;
  }
  for (unsigned long long i = 0; i < o.warmup; i++)
    if (ns_net_forward(ctx, net) != NS_OK) goto fail;
  for (unsigned long long i = 0; i < o.iters; i++) {
    double t0 = omp_get_wtime();
    if ((o.per_layer ? ns_net_forward_profile(ctx, net, per_layer) : ns_net_forward(ctx, net)) !=
        NS_OK)
      goto fail;
    runs[i] = (omp_get_wtime() - t0) * 1e3;
  }
  report(&o, net, runs, o.per_layer ? per_layer : NULL, n_layers,
         o.threads ? (int)o.threads : omp_get_num_procs());
  goto done;
fail:
  rc = cli_fail(ctx, "bench");
done:
  free(runs);
  free(per_layer);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return rc;
}
