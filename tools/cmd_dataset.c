/* netsurg convert-imageset / compute-mean: Caffe's dataset tools
 * (convert_imageset, compute_image_mean) over ns_convert_imageset and
 * ns_compute_mean. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const char *convert_help =
    "usage: netsurg convert-imageset ROOT LIST DB [--resize HxW] [--gray] [--shuffle]\n"
    "                                [--seed N] [--encoded] [--backend lmdb|leveldb]\n\n"
    "Write a new database DB of Caffe Datum records, one per \"path label\" line of\n"
    "LIST (the image read from ROOT followed by path), as Caffe's convert_imageset:\n"
    "keys \"%08d_path\" by line index, raw records hold the image's bytes as OpenCV\n"
    "reads it (BGR, or one grey channel with --gray), channel by channel, resized\n"
    "with bilinear interpolation by --resize. --encoded stores each file's own\n"
    "JPEG/PNG bytes instead (no --resize then). --shuffle shuffles the list first\n"
    "(with --seed, default 1). The backend is lmdb unless --backend says leveldb.\n"
    "Progress goes to stderr every 1000 images.\n";

static const char *mean_help =
    "usage: netsurg compute-mean DB MEAN.binaryproto [--backend lmdb|leveldb]\n\n"
    "Average every Datum record of DB (encoded ones decoded in their own colours)\n"
    "and write the mean image as Caffe's compute_image_mean does: a BlobProto with\n"
    "num 1, channels, height, width, for transform_param { mean_file } and\n"
    "classify --mean-file. The backend is lmdb unless --backend says leveldb.\n";

static void progress(void *user, int64_t done, int64_t total) {
  if (total >= 0)
    fprintf(stderr, "netsurg %s: %lld/%lld\n", (const char *)user, (long long)done,
            (long long)total);
  else
    fprintf(stderr, "netsurg %s: %lld records\n", (const char *)user, (long long)done);
}

static int parse_backend(const char *verb, const char *s, int *out) {
  if (!strcmp(s, "lmdb")) *out = NS_DB_LMDB;
  else if (!strcmp(s, "leveldb")) *out = NS_DB_LEVELDB;
  else return cli_usage_error(verb, "--backend is lmdb or leveldb, not '%s'", s);
  return 0;
}

static int parse_size(const char *s, int *h, int *w) {
  char *end;
  long a = strtol(s, &end, 10);
  if (end == s || (*end != 'x' && *end != 'X')) return -1;
  const char *rest = end + 1;
  long b = strtol(rest, &end, 10);
  if (end == rest || *end || a < 1 || b < 1 || a > NS_IMAGE_MAX_DIM || b > NS_IMAGE_MAX_DIM)
    return -1;
  *h = (int)a, *w = (int)b;
  return 0;
}

int cmd_convert_imageset(int argc, char **argv) {
  static const struct option longopts[] = {
      {"resize", required_argument, 0, 'r'}, {"gray", no_argument, 0, 'g'},
      {"shuffle", no_argument, 0, 's'},      {"seed", required_argument, 0, 'S'},
      {"encoded", no_argument, 0, 'e'},      {"backend", required_argument, 0, 'b'},
      {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
  const char *verb = "convert-imageset";
  ns_imageset_opts o = {.backend = NS_DB_LMDB, .seed = 1, .progress = progress,
                        .user = (void *)verb};
  unsigned long long seed;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (c == 'r') {
      if (parse_size(optarg, &o.resize_height, &o.resize_width))
        return cli_usage_error(verb, "--resize takes HxW, e.g. 28x28");
    } else if (c == 'g') o.grey = 1;
    else if (c == 's') o.shuffle = 1;
    else if (c == 'e') o.encoded = 1;
    else if (c == 'S') {
      if (cli_parse_u64(verb, "--seed", optarg, &seed)) return 1;
      o.seed = seed;
    } else if (c == 'b') {
      if (parse_backend(verb, optarg, &o.backend)) return 1;
    } else if (c == 'h') {
      fputs(convert_help, stdout);
      return 0;
    } else
      return cli_usage_error(verb, "bad option");
  }
  if (argc - optind != 3) return cli_usage_error(verb, "expected ROOT LIST DB");
  ns_ctx *ctx = cli_ctx(0, 0);
  int rc = 0;
  if (ns_convert_imageset(ctx, argv[optind], argv[optind + 1], argv[optind + 2], &o) != NS_OK)
    rc = cli_fail(ctx, verb);
  ns_ctx_destroy(ctx);
  return rc;
}

int cmd_compute_mean(int argc, char **argv) {
  static const struct option longopts[] = {
      {"backend", required_argument, 0, 'b'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *verb = "compute-mean";
  int backend = NS_DB_LMDB, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (c == 'b') {
      if (parse_backend(verb, optarg, &backend)) return 1;
    } else if (c == 'h') {
      fputs(mean_help, stdout);
      return 0;
    } else
      return cli_usage_error(verb, "bad option");
  }
  if (argc - optind != 2) return cli_usage_error(verb, "expected DB MEAN.binaryproto");
  ns_ctx *ctx = cli_ctx(0, 0);
  int rc = 0;
  if (ns_compute_mean(ctx, argv[optind], backend, argv[optind + 1], progress, (void *)verb) !=
      NS_OK)
    rc = cli_fail(ctx, verb);
  ns_ctx_destroy(ctx);
  return rc;
}
