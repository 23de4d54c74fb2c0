/* netsurg upgrade: legacy prototxt/caffemodel -> current format. */
#include <getopt.h>
#include <string.h>

#include "tools/cli.h"

static const char *upgrade_help =
    "usage: netsurg upgrade IN OUT [--allow-unknown]\n\n"
    "Convert a prototxt or caffemodel in any legacy Caffe format (V0, V1 `layers`\n"
    "with enum types, input/input_dim, blobs_lr) to the current format, as Caffe's\n"
    "upgrade_net_proto_text / _binary do. Text or binary is decided by IN's content;\n"
    "OUT is written in the same kind, atomically.\n" CLI_ALLOW_UNKNOWN_HELP;

int cmd_upgrade(int argc, char **argv) {
  static const struct option longopts[] = {{"allow-unknown", no_argument, 0, 'u'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  int allow_unknown = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (c == 'u') allow_unknown = 1;
    else if (c == 'h') {
      fputs(upgrade_help, stdout);
      return 0;
    } else
      return cli_usage_error("upgrade", "bad option");
  }
  if (argc - optind != 2) return cli_usage_error("upgrade", "expected IN OUT");
  const char *in = argv[optind], *out = argv[optind + 1];
  ns_ctx *ctx = cli_ctx(allow_unknown, 0);
  ns_netdef *def;
  int rc = 0;
  if (ns_netdef_load(ctx, in, &def) != NS_OK) {
    rc = cli_fail(ctx, "upgrade");
    ns_ctx_destroy(ctx);
    return rc;
  }
  int binary = ns_netdef_is_binary(def);
  ns_status st = binary ? ns_netdef_save_caffemodel(ctx, def, out)
                        : ns_netdef_save_prototxt(ctx, def, out);
  if (st != NS_OK)
    rc = cli_fail(ctx, "upgrade");
  else
    fprintf(stderr, "netsurg upgrade: %s -> %s (%s, %s)\n", in, out,
            binary ? "caffemodel" : "prototxt",
            ns_netdef_was_upgraded(def) ? "upgraded from a legacy format" : "already current");
  ns_netdef_destroy(def);
  ns_ctx_destroy(ctx);
  return rc;
}
