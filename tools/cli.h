/* Shared pieces of the CLI verbs (tools/cmd_*.c). */
#ifndef NS_TOOLS_CLI_H
#define NS_TOOLS_CLI_H

#include <stdio.h>

#include "netsurg.h"

typedef struct cli_verb {
  const char *name, *help;
  int (*run)(int argc, char **argv);
} cli_verb;

int cmd_info(int argc, char **argv);
int cmd_upgrade(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_edit(int argc, char **argv);
int cmd_transplant(int argc, char **argv);
int cmd_fcn(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_draw(int argc, char **argv);
/* export --verify: runs MODEL in ONNX Runtime (node) on a random input (or,
 * inputs_given, on what the net's inputs hold) and prints its difference
 * from the net's forward; 0 (with a message) when ONNX Runtime is absent. */
int cli_onnx_verify(ns_ctx *ctx, ns_net *net, const char *model, int inputs_given);
int cmd_classify(int argc, char **argv);
int cmd_detect(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_convert_imageset(int argc, char **argv);
int cmd_compute_mean(int argc, char **argv);
int cmd_extract_features(int argc, char **argv);

/* The paragraph on --allow-unknown in the --help of every verb that reads
 * a model (all of them take the option). */
#define CLI_ALLOW_UNKNOWN_HELP                                                           \
  "\n--allow-unknown reads prototxts with fields or enum values netsurg does not know\n" \
  "(a Caffe fork's: SSD's norm_param, ...): each is skipped, with one warning per\n"      \
  "name. Without it they stop the read: exit 3 inside a layer, naming it. Fields\n"      \
  "whose loss would change the results are refused even so, and a layer type\n"        \
  "netsurg lacks still fails when the net is built.\n"

/* A context with warnings printed to stderr, on the memory budget. */
ns_ctx *cli_ctx(int allow_unknown, int threads);
/* Options for ns_net_load: phase TEST, these weights (may be NULL), seed. */
ns_net_opts cli_net_opts(const char *weights, uint64_t seed);
/* The allocator that keeps the CLI under its memory budget
 * (NETSURG_MEMORY_LIMIT, else 90% of RAM) and the budget in bytes;
 * NS_ERR_USAGE (message printed) if the variable is malformed. */
int cli_memory_budget(ns_allocator *alloc, uint64_t *limit);
/* Prints "netsurg VERB: <error>" and returns the status as exit code. */
int cli_fail(ns_ctx *ctx, const char *verb);
int cli_usage_error(const char *verb, const char *fmt, ...);
/* Parses a seed, count or thread number; exits with usage on error. */
int cli_parse_u64(const char *verb, const char *opt, const char *s, unsigned long long *out);

/* JSON string literal with escapes. */
void cli_json_string(FILE *f, const char *s);
void cli_print_shape(FILE *f, const int64_t *shape, int n, int json);

#endif
