/* ns_netdef: the public handle over an upgraded NetParameter (API tier:
 * ns_net_build_from in net_api.c turns one into a net). */
#include <string.h>

#include "api/netdef.h"
#include "core/layer.h"
#include "format/model_io.h"
#include "format/upgrade.h"

struct ns_netdef {
  ns_ctx *ctx;
  Caffe__NetParameter *param;
  int upgraded;
  int binary;
};

ns_status ns_netdef_load(ns_ctx *ctx, const char *path, ns_netdef **out) {
  *out = NULL;
  ns_netdef *d = ns_calloc(ctx, 1, sizeof *d);
  if (!d) return ctx->status;
  int what = 0;
  unsigned char *data;
  size_t len;
  if (ns_read_file(ctx, path, &data, &len) != NS_OK) {
    ns_free(ctx, d);
    return ctx->status;
  }
  d->binary = !ns_looks_like_text(data, len);
  ns_status st = len ? ns_parse_net_param(ctx, data, len, path, &d->param, &what)
                     : ns_fail(ctx, NS_ERR_INPUT, "%s: empty file", path);
  ns_free(ctx, data);
  if (st != NS_OK) {
    ns_free(ctx, d);
    return st;
  }
  d->ctx = ctx;
  d->upgraded = what != 0;
  *out = d;
  return NS_OK;
}

ns_netdef *ns_netdef_wrap(ns_ctx *ctx, Caffe__NetParameter *param) {
  ns_netdef *d = ns_calloc(ctx, 1, sizeof *d);
  if (!d) {
    ns_net_param_free(ctx, param);
    return NULL;
  }
  d->ctx = ctx;
  d->param = param;
  return d;
}

void ns_netdef_destroy(ns_netdef *d) {
  if (!d) return;
  ns_net_param_free(d->ctx, d->param);
  ns_free(d->ctx, d);
}

int ns_netdef_was_upgraded(const ns_netdef *d) { return d->upgraded; }
int ns_netdef_is_binary(const ns_netdef *d) { return d->binary; }
int ns_netdef_has_state_rules(const ns_netdef *d) {
  for (size_t i = 0; i < d->param->n_layer; i++)
    if (d->param->layer[i]->n_include || d->param->layer[i]->n_exclude) return 1;
  return 0;
}

int ns_netdef_has_weights(const ns_netdef *d) {
  for (size_t i = 0; i < d->param->n_layer; i++)
    if (d->param->layer[i]->n_blobs) return 1;
  return 0;
}
const char *ns_netdef_name(const ns_netdef *d) { return d->param->name ? d->param->name : ""; }
int ns_netdef_layer_count(const ns_netdef *d) { return (int)d->param->n_layer; }
static const Caffe__LayerParameter *layer(const ns_netdef *d, int i) { return d->param->layer[i]; }
const char *ns_netdef_layer_name(const ns_netdef *d, int i) {
  return layer(d, i)->name ? layer(d, i)->name : "";
}
const char *ns_netdef_layer_type(const ns_netdef *d, int i) {
  return layer(d, i)->type ? layer(d, i)->type : "";
}
int ns_netdef_layer_bottom_count(const ns_netdef *d, int i) { return (int)layer(d, i)->n_bottom; }
const char *ns_netdef_layer_bottom(const ns_netdef *d, int i, int j) {
  return layer(d, i)->bottom[j];
}
int ns_netdef_layer_top_count(const ns_netdef *d, int i) { return (int)layer(d, i)->n_top; }
const char *ns_netdef_layer_top(const ns_netdef *d, int i, int j) { return layer(d, i)->top[j]; }

ns_status ns_netdef_save_prototxt(ns_ctx *ctx, const ns_netdef *d, const char *path) {
  return ns_save_net_text(ctx, path, d->param);
}

/* Legacy 4-D blob dims are kept as they are: Caffe reads them. */
ns_status ns_netdef_save_caffemodel(ns_ctx *ctx, const ns_netdef *d, const char *path) {
  return ns_save_net_binary(ctx, path, d->param);
}

Caffe__NetParameter *ns_netdef_release(ns_netdef *d) {
  Caffe__NetParameter *param = d->param;
  ns_free(d->ctx, d);
  return param;
}

int ns_netdef_layer_blob_count(const ns_netdef *d, int i) { return (int)layer(d, i)->n_blobs; }

int ns_netdef_layer_blob_shape(const ns_netdef *d, int i, int j, int64_t *shape) {
  const Caffe__BlobProto *bp = layer(d, i)->blobs[j];
  if (bp->shape) {
    int n = bp->shape->n_dim > 32 ? 32 : (int)bp->shape->n_dim;
    for (int k = 0; k < n; k++) shape[k] = bp->shape->dim[k];
    return n;
  }
  int64_t legacy[4] = {bp->num, bp->channels, bp->height, bp->width};
  int rank = ns_layer_param_rank(ns_netdef_layer_type(d, i), j), start = 0;
  while (start < 4 - rank && legacy[start] == 1) start++;
  for (int k = start; k < 4; k++) shape[k - start] = legacy[k];
  return 4 - start;
}

/* Frees the dropped layers one by one (the message's own free walks
 * n_layer, so the array itself stays, shorter). */
void ns_netdef_truncate(ns_netdef *d, int n_layers) {
  if (n_layers < 0) n_layers = 0;
  while (d->param->n_layer > (size_t)n_layers) {
    Caffe__LayerParameter *l = d->param->layer[--d->param->n_layer];
    protobuf_c_message_free_unpacked(&l->base, &d->ctx->pb_alloc);
  }
}
