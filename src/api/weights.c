/* Loading trained params into a built net (ns_net_load_weights), with
 * Caffe's CopyTrainedLayersFrom rules: by layer name, layers the net lacks
 * ignored, layers the file lacks keeping their fillers, the blob count
 * and shapes checked (legacy 4-D dims match a shape padded with leading
 * 1s).  A binary caffemodel is streamed (format/weights_reader.h); a text
 * file carrying blobs takes the full parse. */
#include <stdio.h>
#include <string.h>

#include "core/net.h"
#include "format/model_io.h"
#include "format/weights_reader.h"

/* ---- copying trained params by layer name (CopyTrainedLayersFrom) ---- */

/* Shape of a BlobProto as Caffe's Blob::ShapeEquals reads it: the legacy
 * 4-D dims if any of them is set, else `shape` (absent: 0 axes). */
static int proto_shape(const Caffe__BlobProto *bp, int64_t *shape, int *legacy) {
  if (!bp->has_num && !bp->has_channels && !bp->has_height && !bp->has_width) {
    *legacy = 0;
    if (!bp->shape) return 0;
    if (bp->shape->n_dim > NS_MAX_AXES) return -1;
    for (size_t i = 0; i < bp->shape->n_dim; i++) shape[i] = bp->shape->dim[i];
    return (int)bp->shape->n_dim;
  }
  *legacy = 1;
  shape[0] = bp->has_num ? bp->num : 0;
  shape[1] = bp->has_channels ? bp->channels : 0;
  shape[2] = bp->has_height ? bp->height : 0;
  shape[3] = bp->has_width ? bp->width : 0;
  return 4;
}

/* Caffe's Blob::ShapeEquals: legacy 4-D dims match a blob of at most 4
 * axes padded with leading 1s. */
static int shape_matches(const ns_blob *b, const int64_t *shape, int n, int legacy) {
  if (legacy) {
    if (b->num_axes > 4) return 0;
    for (int i = 0; i < 4; i++) {
      int axis = b->num_axes - 4 + i;
      int64_t d = axis >= 0 ? b->shape[axis] : 1;
      if (d != shape[i]) return 0;
    }
    return 1;
  }
  if (n != b->num_axes) return 0;
  for (int i = 0; i < n; i++)
    if (shape[i] != b->shape[i]) return 0;
  return 1;
}

static ns_status check_param_shape(ns_ctx *ctx, const ns_blob *b, const int64_t *shape, int n,
                                   int legacy, const char *layer, int index) {
  char have[256], want[256];
  if (shape_matches(b, shape, n, legacy)) return NS_OK;
  return ns_fail(ctx, NS_ERR_NET,
                 "layer '%s' param %d: shape mismatch: the weights file has %s, the net wants %s "
                 "(rename the layer to learn it from scratch)",
                 layer, index, ns_shape_str(shape, n, have, sizeof have),
                 ns_shape_str(b->shape, b->num_axes, want, sizeof want));
}

static ns_status blob_from_proto(ns_ctx *ctx, ns_blob *b, const Caffe__BlobProto *bp,
                             const char *layer, int index) {
  int64_t shape[NS_MAX_AXES];
  int legacy;
  int n = proto_shape(bp, shape, &legacy);
  if (n < 0)
    return ns_fail(ctx, NS_ERR_INPUT, "layer '%s' param %d: too many axes", layer, index);
  if (check_param_shape(ctx, b, shape, n, legacy, layer, index) != NS_OK) return ctx->status;
  if (bp->n_double_data > 0) {
    if ((int64_t)bp->n_double_data != b->count)
      return ns_fail(ctx, NS_ERR_INPUT, "layer '%s' param %d: %zu values for %lld elements", layer,
                     index, bp->n_double_data, (long long)b->count);
    for (int64_t i = 0; i < b->count; i++) b->data[i] = (float)bp->double_data[i];
    return NS_OK;
  }
  if ((int64_t)bp->n_data != b->count)
    return ns_fail(ctx, NS_ERR_INPUT, "layer '%s' param %d: %zu values for %lld elements", layer,
                   index, bp->n_data, (long long)b->count);
  if (b->count) memcpy(b->data, bp->data, (size_t)b->count * sizeof(float));
  return NS_OK;
}

static ns_status copy_layer_from(ns_ctx *ctx, ns_net *net, const Caffe__LayerParameter *src) {
  int li = ns_net_find_layer(net, src->name ? src->name : "");
  if (li < 0) return NS_OK; /* Caffe ignores layers the net lacks */
  ns_layer *l = &net->layers[li];
  if ((size_t)l->n_params != src->n_blobs)
    return ns_fail(ctx, NS_ERR_NET, "layer '%s': the weights file has %zu param blobs, the net %d",
                   l->name, src->n_blobs, l->n_params);
  for (int j = 0; j < l->n_params; j++)
    if (blob_from_proto(ctx, l->params[j], src->blobs[j], l->name, j) != NS_OK)
      return ctx->status;
  return NS_OK;
}

static ns_status copy_from(ns_ctx *ctx, ns_net *net, const Caffe__NetParameter *trained) {
  ns_net_params_written(net);
  for (size_t i = 0; i < trained->n_layer; i++)
    if (copy_layer_from(ctx, net, trained->layer[i]) != NS_OK) return ctx->status;
  return NS_OK;
}

/* ---- streaming weights load ----------------------------------------- */

static ns_status load_layer_weights(ns_ctx *ctx, ns_weights_file *f, const ns_layer_weights *lw,
                                    void *user) {
  ns_net *net = user;
  int li = ns_net_find_layer(net, lw->name);
  if (li < 0) return NS_OK; /* Caffe ignores layers the net lacks */
  ns_layer *l = &net->layers[li];
  if (l->n_params != lw->n_blobs)
    return ns_fail(ctx, NS_ERR_NET, "layer '%s': the weights file has %d param blobs, the net %d",
                   l->name, lw->n_blobs, l->n_params);
  for (int j = 0; j < l->n_params; j++) {
    const ns_blob_header *h = &lw->blobs[j];
    ns_blob *b = l->params[j];
    if (check_param_shape(ctx, b, h->shape, h->num_axes, h->legacy, l->name, j) != NS_OK)
      return ctx->status;
    if (h->n_values != b->count)
      return ns_fail(ctx, NS_ERR_INPUT, "layer '%s' param %d: %lld values for %lld elements",
                     l->name, j, (long long)h->n_values, (long long)b->count);
    if (ns_weights_read_blob(ctx, f, h, b->data) != NS_OK) return ctx->status;
  }
  return NS_OK;
}

static ns_status load_binary_weights(ns_ctx *ctx, ns_net *net, const char *path) {
  ns_net_params_written(net);
  return ns_weights_foreach(ctx, path, load_layer_weights, net);
}

/* Weights given as text (a prototxt carrying blobs) take the full parse;
 * binary caffemodels are streamed. */
static int file_is_text(const char *path) {
  unsigned char head[4096];
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(head, 1, sizeof head, f);
  fclose(f);
  return n > 0 && ns_looks_like_text(head, n);
}

static ns_status load_text_weights(ns_ctx *ctx, ns_net *net, const char *path) {
  Caffe__NetParameter *trained;
  if (ns_load_net_param(ctx, path, &trained, NULL) != NS_OK) return ctx->status;
  ns_status st = copy_from(ctx, net, trained);
  ns_net_param_free(ctx, trained);
  return st;
}

ns_status ns_net_load_weights(ns_ctx *ctx, ns_net *net, const char *caffemodel) {
  ns_status st = file_is_text(caffemodel) ? load_text_weights(ctx, net, caffemodel)
                                          : load_binary_weights(ctx, net, caffemodel);
  if (st != NS_OK && strncmp(ns_ctx_error(ctx), caffemodel, strlen(caffemodel)) != 0)
    ns_error_prefix(ctx, "%s: ", caffemodel);
  return st;
}
