/* Shared params (a ParamSpec's `name`), as Caffe's Net::AppendParam: the
 * first layer that names a param owns it; every later param of that name
 * is the owner's very blob (data and diff), so forward reads one array,
 * backward sums every sharer's gradient into the one diff, the solver
 * updates it once, and saving writes it under each layer (Caffe saves
 * each layer's blobs, which share the owner's memory).  A sharer's blob,
 * made and filled by its setup, is dropped, as Caffe drops its data. */
#include <string.h>

#include "core/net.h"

static const Caffe__ParamSpec *spec_of(const ns_layer *l, int j) {
  return j < (int)l->param->n_param ? l->param->param[j] : NULL;
}

static const char *shared_name(const ns_layer *l, int j) {
  const Caffe__ParamSpec *p = spec_of(l, j);
  return p && p->name && p->name[0] ? p->name : NULL;
}

ns_status ns_net_share_init(ns_ctx *ctx, ns_net *net) {
  size_t n = 0;
  for (size_t i = 0; i < net->def->n_layer; i++) n += net->def->layer[i]->n_param;
  return ns_name_map_init(ctx, &net->param_names, n);
}

/* The owner's index j in layer `owner` of the param named `name`. */
static int owner_index(const ns_layer *owner, const char *name) {
  for (int j = 0; j < owner->n_params; j++) {
    const char *n = shared_name(owner, j);
    if (n && strcmp(n, name) == 0 && !(owner->param_shared && owner->param_shared[j])) return j;
  }
  return -1;
}

static ns_status check_shapes(ns_ctx *ctx, const ns_layer *l, int j, const ns_layer *owner, int oj,
                              const char *name) {
  const ns_blob *mine = l->params[j], *theirs = owner->params[oj];
  if (ns_blob_same_shape(mine, theirs)) return NS_OK;
  char ms[128], os[128];
  ns_shape_str(mine->shape, mine->num_axes, ms, sizeof ms);
  ns_shape_str(theirs->shape, theirs->num_axes, os, sizeof os);
  const Caffe__ParamSpec *p = spec_of(l, j);
  int permissive =
      p->has_share_mode && p->share_mode == CAFFE__PARAM_SPEC__DIM_CHECK_MODE__PERMISSIVE;
  if (!permissive)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "cannot share param '%s' owned by layer '%s': shape mismatch (owner %s, "
                         "this layer expects %s)",
                         name, owner->name, os, ms);
  if (mine->count != theirs->count)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "cannot share param '%s' owned by layer '%s': count mismatch (owner %s, "
                         "this layer %s)",
                         name, owner->name, os, ms);
  /* Caffe shares the memory under two shapes; one blob here has one. */
  return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                       "param '%s' shared with layer '%s' under another shape (%s, owner %s): "
                       "share_mode PERMISSIVE with differing shapes is not supported",
                       name, owner->name, ms, os);
}

/* Caffe: a sharer's lr_mult / decay_mult, when given, must equal the
 * owner's when that is given too. */
static ns_status check_mults(ns_ctx *ctx, const ns_layer *l, int j, const ns_layer *owner, int oj,
                             const char *name) {
  const Caffe__ParamSpec *p = spec_of(l, j), *o = spec_of(owner, oj);
  if (p->has_lr_mult && o->has_lr_mult && p->lr_mult != o->lr_mult)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "shared param '%s' has mismatched lr_mult (%g, owner '%s' %g)", name,
                         p->lr_mult, owner->name, o->lr_mult);
  if (p->has_decay_mult && o->has_decay_mult && p->decay_mult != o->decay_mult)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "shared param '%s' has mismatched decay_mult (%g, owner '%s' %g)", name,
                         p->decay_mult, owner->name, o->decay_mult);
  return NS_OK;
}

ns_status ns_net_share_params(ns_ctx *ctx, ns_net *net, ns_layer *l) {
  int me = (int)(l - net->layers);
  for (int j = 0; j < l->n_params; j++) {
    const char *name = shared_name(l, j);
    if (!name) continue;
    int oi = ns_name_map_get(&net->param_names, name);
    if (oi < 0) {
      ns_name_map_put(&net->param_names, name, me);
      continue;
    }
    ns_layer *owner = &net->layers[oi];
    int oj = owner_index(owner, name);
    if (oj < 0 || (oi == me && oj == j)) continue;
    if (check_shapes(ctx, l, j, owner, oj, name) != NS_OK) return ctx->status;
    if (check_mults(ctx, l, j, owner, oj, name) != NS_OK) return ctx->status;
    if (!l->param_shared && !(l->param_shared = ns_calloc(ctx, (size_t)l->n_params, sizeof(int))))
      return ctx->status;
    ns_blob_destroy(ctx, l->params[j]);
    l->params[j] = owner->params[oj];
    l->param_shared[j] = 1;
  }
  return NS_OK;
}

/* The owner's spec decides; where it leaves a mult unset, the first
 * sharer that sets it does (Caffe's has_params_lr_ bookkeeping). */
float ns_net_param_mult(const ns_net *net, const ns_layer *l, int j, int decay) {
  const Caffe__ParamSpec *p = spec_of(l, j);
  if (p && (decay ? p->has_decay_mult : p->has_lr_mult)) return decay ? p->decay_mult : p->lr_mult;
  if (!shared_name(l, j)) return 1.0f;
  for (int i = (int)(l - net->layers) + 1; i < net->n_layers; i++) {
    const ns_layer *s = &net->layers[i];
    for (int k = 0; s->param_shared && k < s->n_params; k++) {
      const Caffe__ParamSpec *q = spec_of(s, k);
      if (s->param_shared[k] && s->params[k] == l->params[j] &&
          (decay ? q->has_decay_mult : q->has_lr_mult))
        return decay ? q->decay_mult : q->lr_mult;
    }
  }
  return 1.0f;
}
