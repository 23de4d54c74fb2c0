/* Reading and writing Caffe's files: prototxt (text) and caffemodel
 * (binary), either decided by content; saves are atomic. */
#ifndef NS_FORMAT_MODEL_IO_H
#define NS_FORMAT_MODEL_IO_H

#include "caffe.pb-c.h"
#include "core/ctx.h"
#include "core/strbuf.h"

/* Whole file into memory (NUL-terminated for text parsers). */
ns_status ns_read_file(ns_ctx *ctx, const char *path, unsigned char **data, size_t *len);
/* Writes to a temp file in the target's folder, fsyncs and renames it over
 * path; on failure the temp file is removed and any old file is intact. */
ns_status ns_write_file_atomic(ns_ctx *ctx, const char *path, const void *data, size_t len);

/* Content sniffing: 1 if the bytes look like protobuf text format. */
int ns_looks_like_text(const unsigned char *data, size_t len);

/* Reads a NetParameter from a .prototxt or .caffemodel (any version) and
 * upgrades it to the current format.  *what as ns_upgrade_net's. */
ns_status ns_load_net_param(ns_ctx *ctx, const char *path, Caffe__NetParameter **out, int *what);
/* The same, from a buffer already in memory. */
ns_status ns_parse_net_param(ns_ctx *ctx, const unsigned char *data, size_t len,
                             const char *filename, Caffe__NetParameter **out, int *what);
ns_status ns_load_solver_param(ns_ctx *ctx, const char *path, Caffe__SolverParameter **out);

/* Current-format text of a net definition, without param blobs. */
ns_status ns_net_param_to_text(ns_ctx *ctx, const Caffe__NetParameter *net, ns_strbuf *out);
ns_status ns_save_net_text(ns_ctx *ctx, const char *path, const Caffe__NetParameter *net);
/* Binary caffemodel; streamed to the temp file, no second copy in memory. */
ns_status ns_save_net_binary(ns_ctx *ctx, const char *path, const Caffe__NetParameter *net);

void ns_net_param_free(ns_ctx *ctx, Caffe__NetParameter *net);

#endif
