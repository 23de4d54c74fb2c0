/* netsurg classify over many images: a list file, standard input or
 * directories; images decoded and preprocessed on worker threads while the
 * net runs batches; one JSON line per image, in input order, written as
 * each batch finishes; restartable (--resume) and shardable (--shard K/N).
 * cmd_classify.c parses the options here and hands over its loaded net. */
#ifndef NS_TOOLS_CLASSIFY_STREAM_H
#define NS_TOOLS_CLASSIFY_STREAM_H

#include <getopt.h>

#include "netsurg.h"
#include "tools/classify_json.h"

/* getopt codes above any character, so they never meet a verb's letters. */
enum {
  STREAM_OPT_LIST = 0x5300,
  STREAM_OPT_BATCH,
  STREAM_OPT_OUTPUT,
  STREAM_OPT_OUT_DIR,
  STREAM_OPT_SAVE_BLOB,
  STREAM_OPT_RESUME,
  STREAM_OPT_SHARD,
  STREAM_OPT_DECODERS
};
/* clang-format off */
#define CLASSIFY_STREAM_LONGOPTS                                          \
  {"list", required_argument, 0, STREAM_OPT_LIST},                        \
  {"batch", required_argument, 0, STREAM_OPT_BATCH},                      \
  {"output", required_argument, 0, STREAM_OPT_OUTPUT},                    \
  {"out-dir", required_argument, 0, STREAM_OPT_OUT_DIR},                  \
  {"save-blob", required_argument, 0, STREAM_OPT_SAVE_BLOB},              \
  {"resume", no_argument, 0, STREAM_OPT_RESUME},                          \
  {"shard", required_argument, 0, STREAM_OPT_SHARD},                      \
  {"decoders", required_argument, 0, STREAM_OPT_DECODERS}
/* clang-format on */

#define CLASSIFY_STREAM_HELP                                                                   \
  "\nMany images (one JSON line each, in input order, as each batch finishes):\n"              \
  "  --list FILE|-       image paths, one per line ('-': standard input); a directory\n"       \
  "                      named as an IMAGE stands for its files, sorted by name\n"             \
  "  --batch N           images per forward pass (default 1)\n"                                \
  "  --decoders N        threads that decode and preprocess (default: cores, at most 8)\n"     \
  "  --output FILE       the JSON lines (default: standard output); flushed and synced\n"      \
  "                      after every batch\n"                                                  \
  "  --resume            keep FILE's complete lines and classify only the rest (a cut\n"       \
  "                      last line is removed and redone)\n"                                   \
  "  --shard K/N         only images K, K+N, K+2N, ... (0 <= K < N, K 0-based); merge\n"       \
  "                      shard outputs in input order with paste -d '\\n' out.0 ... out.N-1\n" \
  "  --out-dir D         also each image's output blob as D/IIIIIIII_NAME.npy (input\n"        \
  "                      index, file name without extension)\n"                                \
  "  --save-blob NAME    the blob --out-dir saves (default: the output blob)\n"                \
  "Any of these, or a directory, selects this mode. An image that cannot be read gets\n"       \
  "{\"image\": ..., \"error\": ...} and the run goes on; the summary on standard error\n"      \
  "counts them, and the exit status is 8 when some failed (0 when none did).\n"

#define STREAM_SOME_FAILED 8
#define CLASSIFY_STREAM_NOT_MINE 1000

typedef struct classify_stream_opts {
  const char *list, *output, *out_dir, *save_blob;
  int batch, decoders, resume, shard_k, shard_n;
  int given; /* any of the options above */
} classify_stream_opts;

void classify_stream_init(classify_stream_opts *o);
/* 0, a usage error's status, or CLASSIFY_STREAM_NOT_MINE. */
int classify_stream_option(int c, const char *arg, classify_stream_opts *o);
/* Whether classify runs in this mode: an option given or a directory named. */
int classify_stream_wanted(const classify_stream_opts *o, char **images, int n_images);

/* What cmd_classify.c has set up: the net (at batch 1), the input and
 * output blobs, the transform and the JSON line's fixed parts. */
typedef struct classify_stream_model {
  ns_ctx *ctx;
  ns_net *net;
  int input, output, channels, height, width, top;
  const ns_transform *tf;
  classify_json json;
} classify_stream_model;

/* Runs the whole job; returns the exit status (0, STREAM_SOME_FAILED or
 * the status that stopped it, with its message printed). */
int classify_stream_run(const classify_stream_opts *o, classify_stream_model *m, char **images,
                        int n_images);

#endif
