/* The public ns_net_* API over the internal net: the API tier, where
 * definitions read by format/ become nets built by core/ (loading,
 * building from an ns_netdef, saving), and the accessors. */
#include <string.h>

#include "api/netdef.h"
#include "core/filler.h"
#include "core/net.h"
#include "format/model_io.h"

void ns_net_opts_init(ns_net_opts *opts) {
  opts->phase = NS_PHASE_TEST;
  opts->seed = 1;
  opts->weights = NULL;
}

/* Builds from an upgraded definition (taken) as opts says: the fillers,
 * then the weights file if any.  origin names the definition's file in
 * errors (NULL: none). */
static ns_status build(ns_ctx *ctx, Caffe__NetParameter *def, const char *origin,
                       const ns_net_opts *opts, int reuse, ns_net **out) {
  ns_net_opts defaults;
  if (!opts) {
    ns_net_opts_init(&defaults);
    opts = &defaults;
  }
  ns_net *net;
  if ((reuse ? ns_net_build_reusing : ns_net_build)(ctx, def, opts->seed, opts->phase, &net) !=
      NS_OK) {
    if (origin) ns_error_prefix(ctx, "%s: ", origin);
    return ctx->status;
  }
  if (opts->weights && ns_net_load_weights(ctx, net, opts->weights) != NS_OK) {
    ns_net_destroy(net);
    return ctx->status;
  }
  *out = net;
  return NS_OK;
}

ns_status ns_net_load(ns_ctx *ctx, const char *prototxt, const ns_net_opts *opts, ns_net **out) {
  Caffe__NetParameter *def;
  *out = NULL;
  if (ns_load_net_param(ctx, prototxt, &def, NULL) != NS_OK) return ctx->status;
  return build(ctx, def, prototxt, opts, 0, out);
}

ns_status ns_net_load_reusing(ns_ctx *ctx, const char *prototxt, const ns_net_opts *opts,
                              ns_net **out) {
  Caffe__NetParameter *def;
  *out = NULL;
  if (ns_load_net_param(ctx, prototxt, &def, NULL) != NS_OK) return ctx->status;
  return build(ctx, def, prototxt, opts, 1, out);
}

ns_status ns_net_build_from(ns_ctx *ctx, ns_netdef *def, const ns_net_opts *opts, ns_net **out) {
  *out = NULL;
  return build(ctx, ns_netdef_release(def), NULL, opts, 0, out);
}

/* Points each layer's BlobProtos at the net's params (borrowed data) for
 * the duration of a save, then restores the definition. */
typedef struct saved_layer {
  size_t n_blobs;
  Caffe__BlobProto **blobs;
} saved_layer;

ns_status ns_net_save_weights(ns_ctx *ctx, ns_net *net, const char *caffemodel) {
  Caffe__NetParameter *def = net->def;
  saved_layer *saved = ns_calloc(ctx, def->n_layer + 1, sizeof *saved);
  Caffe__BlobProto *protos = NULL;
  Caffe__BlobShape *shapes = NULL;
  Caffe__BlobProto **ptrs = NULL;
  int total = 0;
  for (int i = 0; i < net->n_layers; i++) total += net->layers[i].n_params;
  protos = ns_calloc(ctx, (size_t)total + 1, sizeof *protos);
  shapes = ns_calloc(ctx, (size_t)total + 1, sizeof *shapes);
  ptrs = ns_calloc(ctx, (size_t)total + 1, sizeof *ptrs);
  ns_status st = ctx->status;
  if (!saved || !protos || !shapes || !ptrs) goto done;
  int k = 0;
  for (size_t i = 0; i < def->n_layer; i++) {
    Caffe__LayerParameter *lp = def->layer[i];
    saved[i].n_blobs = lp->n_blobs;
    saved[i].blobs = lp->blobs;
    int li = ns_net_find_layer(net, lp->name ? lp->name : "");
    if (li < 0 || net->layers[li].param != lp) continue;
    ns_layer *l = &net->layers[li];
    lp->n_blobs = (size_t)l->n_params;
    lp->blobs = &ptrs[k];
    for (int j = 0; j < l->n_params; j++, k++) {
      ns_blob *b = l->params[j];
      caffe__blob_shape__init(&shapes[k]);
      shapes[k].n_dim = (size_t)b->num_axes;
      shapes[k].dim = b->shape;
      caffe__blob_proto__init(&protos[k]);
      protos[k].shape = &shapes[k];
      protos[k].n_data = (size_t)b->count;
      protos[k].data = b->data;
      ptrs[k] = &protos[k];
    }
  }
  st = ns_save_net_binary(ctx, caffemodel, def);
  for (size_t i = 0; i < def->n_layer; i++) {
    def->layer[i]->n_blobs = saved[i].n_blobs;
    def->layer[i]->blobs = saved[i].blobs;
  }
done:
  ns_free(ctx, saved);
  ns_free(ctx, protos);
  ns_free(ctx, shapes);
  ns_free(ctx, ptrs);
  return st;
}

ns_status ns_net_save_prototxt(ns_ctx *ctx, const ns_net *net, const char *prototxt) {
  return ns_save_net_text(ctx, prototxt, net->def);
}

const char *ns_net_name(const ns_net *net) { return net->def->name ? net->def->name : ""; }
int ns_net_layer_count(const ns_net *net) { return net->n_layers; }
const char *ns_net_layer_name(const ns_net *net, int i) { return net->layers[i].name; }
const char *ns_net_layer_type(const ns_net *net, int i) { return net->layers[i].ops->type; }
int ns_net_layer_bottom_count(const ns_net *net, int i) { return net->layers[i].n_bottom; }
int ns_net_layer_top_count(const ns_net *net, int i) { return net->layers[i].n_top; }
const char *ns_net_layer_bottom(const ns_net *net, int l, int i) {
  return net->layers[l].bottom[i]->name;
}
const char *ns_net_layer_top(const ns_net *net, int l, int i) { return net->layers[l].top[i]->name; }
int ns_net_param_count(const ns_net *net, int i) { return net->layers[i].n_params; }

static ns_tensor view(const ns_blob *b) {
  ns_tensor t = {b->name, b->num_axes, b->shape, b->count, b->data};
  return t;
}

ns_tensor ns_net_param(ns_net *net, int layer, int index) {
  net->params_exposed = 1; /* writable: see ns_net */
  return view(net->layers[layer].params[index]);
}
int ns_net_blob_count(const ns_net *net) { return net->n_blobs; }
ns_tensor ns_net_blob(ns_net *net, int i) { return view(net->blobs[i]); }

int ns_net_input_count(const ns_net *net) {
  int n = 0;
  for (int i = 0; i < net->n_layers; i++)
    if (net->layers[i].ops->is_net_input) n += net->layers[i].n_top;
  return n;
}

int ns_net_input_blob(const ns_net *net, int k) {
  for (int i = 0; i < net->n_layers; i++) {
    const ns_layer *l = &net->layers[i];
    if (!l->ops->is_net_input) continue;
    if (k < l->n_top) return ns_net_find_blob(net, l->top[k]->name);
    k -= l->n_top;
  }
  return -1;
}

int ns_net_output_blobs(const ns_net *net, int *out) {
  /* out[b] first flags "written and not read since", then holds the list. */
  for (int b = 0; b < net->n_blobs; b++) out[b] = 0;
  for (int i = 0; i < net->n_layers; i++) {
    const ns_layer *l = &net->layers[i];
    for (int j = 0; j < l->n_bottom; j++) out[ns_net_find_blob(net, l->bottom[j]->name)] = 0;
    for (int j = 0; j < l->n_top; j++) out[ns_net_find_blob(net, l->top[j]->name)] = 1;
  }
  int n = 0;
  for (int b = 0; b < net->n_blobs; b++)
    if (out[b]) {
      /* insertion by name: nets have a handful of outputs (n <= b) */
      int k = n++;
      while (k > 0 && strcmp(net->blobs[out[k - 1]]->name, net->blobs[b]->name) > 0) {
        out[k] = out[k - 1];
        k--;
      }
      out[k] = b;
    }
  return n;
}

ns_status ns_net_reshape_input(ns_ctx *ctx, ns_net *net, const char *blob, int num_axes,
                               const int64_t *shape) {
  int b = ns_net_find_blob(net, blob);
  if (b < 0) return ns_fail(ctx, NS_ERR_USAGE, "no blob named '%s' in the net", blob);
  int is_input = 0;
  for (int i = 0; i < ns_net_input_count(net); i++) is_input |= ns_net_input_blob(net, i) == b;
  if (!is_input) return ns_fail(ctx, NS_ERR_USAGE, "blob '%s' is not an input of the net", blob);
  if (ns_blob_reshape(ctx, net->blobs[b], num_axes, shape) != NS_OK) return ctx->status;
  return ns_net_reshape_all(ctx, net);
}

ns_status ns_net_reuse_activations(ns_ctx *ctx, ns_net *net, int on) {
  if (!on) return net->reuse_on ? ns_net_reuse_off(ctx, net) : NS_OK;
  net->reuse_on = 1;
  return ns_net_reshape_reusing(ctx, net);
}

int ns_net_blob_reused(const ns_net *net, int blob) {
  return blob >= 0 && blob < net->n_blobs && net->blobs[blob]->borrowed;
}

ns_status ns_net_forward(ns_ctx *ctx, ns_net *net) { return ns_net_run_forward(ctx, net, NULL); }

static ns_status check_range(ns_ctx *ctx, const ns_net *net, int first, int last) {
  if (first < 0 || last >= net->n_layers || first > last)
    return ns_fail(ctx, NS_ERR_USAGE, "layer range %d..%d is not within the net's %d layers", first,
                   last, net->n_layers);
  return NS_OK;
}

ns_status ns_net_forward_range(ns_ctx *ctx, ns_net *net, int first, int last) {
  if (check_range(ctx, net, first, last) != NS_OK) return ctx->status;
  if (net->reuse_on && first != 0) /* its bottoms may hold later blobs by now */
    return ns_fail(ctx, NS_ERR_USAGE,
                   "a forward from layer %d needs the intermediate blobs, which activation "
                   "reuse shares: turn it off first",
                   first);
  return ns_net_run_forward_range(ctx, net, first, last, NULL);
}

ns_status ns_net_backward_range(ns_ctx *ctx, ns_net *net, int first, int last) {
  if (check_range(ctx, net, first, last) != NS_OK) return ctx->status;
  return ns_net_run_backward_range(ctx, net, first, last);
}

static ns_status diff_view(ns_ctx *ctx, ns_blob *b, ns_tensor *out) {
  if (ns_blob_ensure_diff(ctx, b) != NS_OK) return ctx->status;
  *out = (ns_tensor){b->name, b->num_axes, b->shape, b->count, b->diff};
  return NS_OK;
}

ns_status ns_net_blob_diff(ns_ctx *ctx, ns_net *net, int blob, ns_tensor *out) {
  if (blob < 0 || blob >= net->n_blobs)
    return ns_fail(ctx, NS_ERR_USAGE, "blob %d out of range (%d in the net)", blob, net->n_blobs);
  return diff_view(ctx, net->blobs[blob], out);
}

ns_status ns_net_param_diff(ns_ctx *ctx, ns_net *net, int layer, int index, ns_tensor *out) {
  if (layer < 0 || layer >= net->n_layers || index < 0 || index >= net->layers[layer].n_params)
    return ns_fail(ctx, NS_ERR_USAGE, "param %d of layer %d out of range", index, layer);
  return diff_view(ctx, net->layers[layer].params[index], out);
}

ns_status ns_net_forward_profile(ns_ctx *ctx, ns_net *net, double *layer_seconds) {
  return ns_net_run_forward(ctx, net, layer_seconds);
}

ns_status ns_net_forward_loss(ns_ctx *ctx, ns_net *net, float *loss) {
  if (ns_net_run_forward(ctx, net, NULL) != NS_OK) return ctx->status;
  if (loss) *loss = (float)ns_net_total_loss(net);
  return NS_OK;
}

double ns_net_layer_flops(const ns_net *net, int i) {
  const ns_layer *l = &net->layers[i];
  if (l->n_params == 0 || l->n_top == 0 || l->n_bottom == 0 || !l->ops->flops) return 0;
  return l->ops->flops(l);
}

ns_status ns_net_refill_weights(ns_ctx *ctx, ns_net *net, const char *filler, uint64_t seed) {
  Caffe__FillerParameter f;
  caffe__filler_parameter__init(&f);
  f.type = (char *)filler;
  ns_rng rng;
  ns_rng_seed(&rng, seed);
  ns_net_params_written(net);
  for (int i = 0; i < net->n_layers; i++) {
    ns_layer *l = &net->layers[i];
    if (l->n_params && ns_filler_fill(ctx, l->params[0], &f, &rng) != NS_OK) {
      ns_error_prefix(ctx, "layer '%s': ", l->name);
      return ctx->status;
    }
  }
  return NS_OK;
}
