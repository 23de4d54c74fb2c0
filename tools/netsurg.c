/* netsurg: the command-line tool.  Each verb is a thin layer over the
 * library; exit codes are the library's ns_status values. */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netsurg.h"
#include "tools/cli.h"

static const cli_verb verbs[] = {
    {"info", "list layers, param shapes and blob shapes", cmd_info},
    {"upgrade", "convert a legacy prototxt or caffemodel to the current format", cmd_upgrade},
    {"init", "write a caffemodel with weights drawn from the net's fillers", cmd_init},
    {"forward", "run the net on .npy inputs and write any blob as .npy", cmd_forward},
    {"bench", "time the forward pass (median, min, max, per layer)", cmd_bench},
    {"edit", "read and write params element by element or from .npy, save", cmd_edit},
    {"transplant", "fill a net by name, then copy mapped layers' params flat", cmd_transplant},
    {"fcn", "cast a classifier into a fully convolutional net (dense maps)", cmd_fcn},
    {"draw", "a diagram (SVG, HTML, DOT): shapes, costs, receptive fields", cmd_draw},
    {"export", "write the net and its weights as an ONNX model (--onnx OUT.onnx)", cmd_export},
    {"classify", "classify images (pycaffe preprocessing); argmax maps, heatmaps", cmd_classify},
    {"detect", "SSD detection on images: boxes in pixels, JSON, a PNG with them drawn", cmd_detect},
    {"train", "train or fine-tune from a solver.prototxt (Caffe's solvers); snapshots", cmd_train},
    {"test", "score a net with its own data layers: outputs (accuracy) averaged", cmd_test},
    {"convert-imageset", "images to an LMDB/LevelDB of Datum records (Caffe's tool)",
     cmd_convert_imageset},
    {"compute-mean", "the mean image of a Datum database as mean.binaryproto", cmd_compute_mean},
    {"extract-features", "blobs of NUM_BATCHES forwards to LMDB/LevelDB Datums or .npy",
     cmd_extract_features},
    {NULL, NULL, NULL},
};

static void usage(FILE *f) {
  fprintf(f,
          "usage: netsurg VERB [ARGS...]   (netsurg VERB --help for details)\n\n"
          "Load, edit, save and run Caffe models.\n\nverbs:\n");
  for (const cli_verb *v = verbs; v->name; v++) fprintf(f, "  %-16s %s\n", v->name, v->help);
  fprintf(f,
          "\nexit status:\n"
          "  0 success\n"
          "  1 usage error (bad command-line arguments)\n"
          "  2 bad input file (prototxt syntax, corrupt caffemodel, .npy, image)\n"
          "  3 unsupported model feature (a layer type, or a field or enum value that\n"
          "    a Caffe fork added: see --allow-unknown in each verb's --help)\n"
          "  4 I/O error (cannot open, read or write a file)\n"
          "  5 out of memory or over the memory limit\n"
          "  6 invalid net (shapes, missing blobs, duplicate names)\n"
          "  7 internal error\n"
          "  130 train stopped by Ctrl-C (after writing a snapshot)\n"
          "\nenvironment:\n"
          "  NETSURG_MEMORY_LIMIT  the most memory a run may allocate, in bytes or with a K, M\n"
          "                        or G suffix (default: 90%% of RAM); past it: exit 5\n"
          "  OMP_WAIT_POLICY       OpenMP threads' wait (default here: passive, with a short\n"
          "  GOMP_SPINCOUNT        spin (20000) before sleeping when fewer other tasks are\n"
          "                        runnable than half the cores, except for training); set\n"
          "                        either to choose yourself\n"
          "  NETSURG_PORTABLE      1: portable C kernels instead of AVX2+FMA\n");
}

/* OpenMP threads that wait by spinning burn the core their partner needs
 * when the machine is busy (a 2-thread LeNet training iteration: 25 ms
 * passive, 1,065 ms with libgomp's default spin; README), and waking a
 * sleeping one costs tens of microseconds per parallel region when it is
 * not (SqueezeNet 1.1, 2 threads, quiet machine: 8.2 ms passive, 4.8 ms
 * with a short spin).  So: passive, plus a short spin (GOMP_SPINCOUNT)
 * for inference when fewer other tasks are runnable than half the cores;
 * training keeps plain passive (spinners fight OpenBLAS's threads).
 * libgomp reads both only in its initialiser, before main, and has no
 * call to change them; so without either set we set them and start again
 * once (about 13 ms: README).  A setenv from the executable's .preinit_array, which
 * runs before libgomp's initialiser, does not work: libc's own initialiser
 * then resets environ and libgomp still sees no policy. */
/* Our own threads that are runnable (OpenBLAS starts its pool before
 * main, and its threads spin a while). */
static long own_running(void) {
  DIR *d = opendir("/proc/self/task");
  long n = 0;
  if (!d) return 1;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    const char *close = strrchr(buf, ')'); /* the state follows the name */
    if (close && close[1] == ' ' && close[2] == 'R') n++;
  }
  closedir(d);
  return n;
}

/* Whether fewer other tasks are runnable than half the cores: from
 * /proc/loadavg's runnable count less our own, up to four readings 1 ms
 * apart, the first that shows idle cores deciding (one reading often
 * catches a passing task; the 1-minute average lags: a run just finished
 * keeps it high).  An idle machine answers at the first reading, without
 * a sleep. */
static int cores_idle(void) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores <= 0) return 0;
  for (int i = 0; i < 4; i++) {
    double l1, l5, l15;
    long running = 0, total = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return 0;
    int ok = fscanf(f, "%lf %lf %lf %ld/%ld", &l1, &l5, &l15, &running, &total) == 5;
    fclose(f);
    if (!ok) return 0;
    if (running - own_running() < cores / 2) return 1;
    if (i < 3) nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  return 0;
}

static int trains(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "train")) return 1;
  for (int i = 2; i < argc; i++)
    if (!strcmp(argv[i], "--train")) return 1;
  return 0;
}

static void wait_policy(int argc, char **argv) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  if (!trains(argc, argv) && cores_idle()) setenv("GOMP_SPINCOUNT", "20000", 1);
  execv("/proc/self/exe", argv); /* only returns on failure: go on as we are */
}

int main(int argc, char **argv) {
  wait_policy(argc, argv);
  if (argc < 2) {
    usage(stderr);
    return NS_ERR_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("netsurg 0.1\n");
    return 0;
  }
  for (const cli_verb *v = verbs; v->name; v++)
    if (!strcmp(argv[1], v->name)) return v->run(argc - 1, argv + 1);
  fprintf(stderr, "netsurg: unknown verb '%s'\n", argv[1]);
  usage(stderr);
  return NS_ERR_USAGE;
}
