/* Streaming reader for the params in a caffemodel.  Loading weights into a
 * net does not need the whole NetParameter in memory: the file is mapped,
 * each layer's name and blob headers are read in place, and the float data
 * is decoded straight into the net's params while the pages already read
 * are dropped, so the peak stays near the size of the params themselves.
 * Handles current `layer`, V1 `layers` and V0 `layers { layer {} }`. */
#ifndef NS_FORMAT_WEIGHTS_READER_H
#define NS_FORMAT_WEIGHTS_READER_H

#include <stdint.h>

#include "core/ctx.h"

#define NS_BLOB_MAX_AXES 32

typedef struct ns_weights_file ns_weights_file;

typedef struct ns_blob_header {
  int num_axes; /* from `shape`, or 4 for legacy num/channels/height/width */
  int64_t shape[NS_BLOB_MAX_AXES];
  int legacy;       /* shape came from the legacy 4-D dims */
  int64_t n_values; /* values stored (data or double_data) */
  /* where the BlobProto lies in the file, for ns_weights_read_blob */
  size_t offset, length;
} ns_blob_header;

typedef struct ns_layer_weights {
  const char *name; /* NUL-terminated copy, valid during the callback */
  int n_blobs;
  const ns_blob_header *blobs;
} ns_layer_weights;

/* Called once per layer of the file that carries a name. */
typedef ns_status (*ns_layer_weights_fn)(ns_ctx *ctx, ns_weights_file *f,
                                         const ns_layer_weights *layer, void *user);

ns_status ns_weights_foreach(ns_ctx *ctx, const char *path, ns_layer_weights_fn fn, void *user);

/* Decodes a blob's values (float or double, packed or not) into dst, which
 * has room for hdr->n_values floats. */
ns_status ns_weights_read_blob(ns_ctx *ctx, ns_weights_file *f, const ns_blob_header *hdr,
                               float *dst);

#endif
