/* netsurg train: Caffe's `caffe train --solver` over ns_solver, with a
 * progress line, test results and a snapshot on Ctrl-C. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cli.h"

/* Exit status after Ctrl-C (snapshot written): the shell's 128 + SIGINT. */
#define TRAIN_INTERRUPTED 130

static const char *train_help =
    "usage: netsurg train SOLVER.prototxt [--weights W.caffemodel] [--resume STATE]\n"
    "                     [--threads N] [--seed S] [--quiet] [--allow-unknown]\n\n"
    "Train as Caffe's `caffe train` does from a solver.prototxt (SGD, Nesterov, AdaGrad,\n"
    "RMSProp, Adam; lr policies fixed/step/multistep/exp/inv/poly/sigmoid; weight decay,\n"
    "clip_gradients, iter_size, lr_mult/decay_mult; test nets; snapshots). Paths in the\n"
    "solver and the nets are relative to the working directory, as in Caffe.\n\n"
    "  --weights W   fine-tune: copy params from W by layer name before training\n"
    "  --resume S    continue from a .solverstate (iteration, history, its caffemodel)\n"
    "  --threads N   compute threads (default: all cores; 1 is deterministic)\n"
    "  --seed S      overrides the solver's random_seed (fillers, shuffles, dropout)\n"
    "  --quiet       no progress lines, only tests, snapshots and the summary\n\n"
    "Every `display` iterations: iteration, smoothed loss, learning rate, images/s, ETA.\n"
    "At each test interval: every output of each test net (e.g. accuracy), averaged.\n"
    "Snapshots: <snapshot_prefix>_iter_N.caffemodel and .solverstate.\n"
    "Ctrl-C: finishes the current iteration, writes a snapshot and exits with status 130\n"
    "(a second Ctrl-C kills at once).\n" CLI_ALLOW_UNKNOWN_HELP;

static volatile int stop_flag; /* set by the SIGINT handler only */

static void on_sigint(int sig) {
  (void)sig;
  stop_flag = 1;
}

typedef struct progress {
  ns_solver *solver;
  int quiet;
  double t0, t_last;
  int it_last;
  int64_t batch;
} progress;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_eta(double s, char *buf, size_t n) {
  if (s < 0 || s > 1e7) {
    snprintf(buf, n, "?");
    return;
  }
  int t = (int)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%dh%02dm", t / 3600, t / 60 % 60);
  else if (t >= 60)
    snprintf(buf, n, "%dm%02ds", t / 60, t % 60);
  else
    snprintf(buf, n, "%ds", t);
}

static void on_event(void *user, const ns_solver_event *ev) {
  progress *p = user;
  int max_iter = ns_solver_max_iter(p->solver);
  if (ev->kind == NS_SOLVER_DISPLAY) {
    if (p->quiet) return;
    double t = now();
    int done = ev->iter + 1 - p->it_last;
    double ips = t > p->t_last && done > 0 ? done * (double)p->batch / (t - p->t_last) : 0;
    char eta[32];
    fmt_eta(ips > 0 ? (max_iter - ev->iter - 1) * (double)p->batch / ips : -1, eta, sizeof eta);
    printf("iter %6d/%d  loss %.6g  lr %.6g  %.0f img/s  ETA %s\n", ev->iter, max_iter, ev->loss,
           ev->rate, ips, eta);
    fflush(stdout);
    p->t_last = t;
    p->it_last = ev->iter + 1;
  } else if (ev->kind == NS_SOLVER_TEST) {
    printf("test net %d at iter %d:", ev->test_net, ev->iter);
    for (int i = 0; i < ev->n_outputs; i++)
      printf("%s %s = %.6g", i ? "," : "", ev->output_names[i], ev->output_values[i]);
    printf("\n");
    fflush(stdout);
    /* the speed shown is training's: restart the clock after a test */
    p->t_last = now();
    p->it_last = ev->iter;
  } else if (ev->kind == NS_SOLVER_SNAPSHOT) {
    printf("snapshot at iter %d: %s, %s\n", ev->iter, ev->path, ev->state_path);
    fflush(stdout);
  }
}

int cmd_train(int argc, char **argv) {
  static const struct option longopts[] = {{"weights", required_argument, 0, 'w'},
                                           {"resume", required_argument, 0, 'r'},
                                           {"threads", required_argument, 0, 't'},
                                           {"seed", required_argument, 0, 's'},
                                           {"quiet", no_argument, 0, 'q'},
                                           {"allow-unknown", no_argument, 0, 'u'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  const char *weights = NULL, *resume = NULL;
  unsigned long long threads = 0, seed = 0;
  int have_seed = 0, quiet = 0, allow_unknown = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case 'w':
        weights = optarg;
        break;
      case 'r':
        resume = optarg;
        break;
      case 't':
        if (cli_parse_u64("train", "--threads", optarg, &threads)) return NS_ERR_USAGE;
        break;
      case 's':
        if (cli_parse_u64("train", "--seed", optarg, &seed)) return NS_ERR_USAGE;
        if (seed > INT64_MAX) return cli_usage_error("train", "--seed too large");
        have_seed = 1;
        break;
      case 'q':
        quiet = 1;
        break;
      case 'u':
        allow_unknown = 1;
        break;
      case 'h':
        fputs(train_help, stdout);
        return 0;
      default:
        return cli_usage_error("train", "bad option");
    }
  }
  if (argc - optind != 1) return cli_usage_error("train", "expected one SOLVER.prototxt");
  if (weights && resume)
    return cli_usage_error("train", "give --weights or --resume, not both (as Caffe)");
  ns_ctx *ctx = cli_ctx(allow_unknown, (int)(threads > 1024 ? 1024 : threads));
  progress prog = {0};
  prog.quiet = quiet;
  ns_solver_opts opts;
  ns_solver_opts_init(&opts);
  if (have_seed) opts.seed = (int64_t)seed;
  opts.weights = weights;
  opts.on_event = on_event;
  opts.user = &prog;
  opts.stop = &stop_flag;
  ns_solver *s = NULL;
  int rc = 0;
  if (ns_solver_create(ctx, argv[optind], &opts, &s) != NS_OK) goto fail;
  prog.solver = s;
  prog.batch = ns_solver_batch_images(s);
  if (resume && ns_solver_restore(ctx, s, resume) != NS_OK) goto fail;
  printf("training %s: seed %llu, %lld images per iteration, iterations %d..%d\n", argv[optind],
         (unsigned long long)ns_solver_seed(s), (long long)prog.batch, ns_solver_iter(s),
         ns_solver_max_iter(s));
  fflush(stdout);
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  prog.t0 = prog.t_last = now();
  prog.it_last = ns_solver_iter(s);
  int start = ns_solver_iter(s);
  ns_status st = ns_solver_solve(ctx, s);
  sigaction(SIGINT, &old, NULL);
  if (st != NS_OK) goto fail;
  double el = now() - prog.t0;
  int done = ns_solver_iter(s) - start;
  printf("%s at iter %d: %d iterations in %.1f s (%.0f img/s)\n",
         ns_solver_stopped(s) ? "stopped" : "done", ns_solver_iter(s), done, el,
         el > 0 ? done * (double)prog.batch / el : 0);
  rc = ns_solver_stopped(s) ? TRAIN_INTERRUPTED : 0;
  ns_solver_destroy(s);
  ns_ctx_destroy(ctx);
  return rc;
fail:
  rc = cli_fail(ctx, "train");
  ns_solver_destroy(s);
  ns_ctx_destroy(ctx);
  return rc;
}
