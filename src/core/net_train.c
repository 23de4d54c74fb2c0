/* Training side of the net, as Caffe's Net: loss weights, which layers
 * and bottoms need backward (Net::Init's bookkeeping), the loss of a
 * forward, the backward pass and the learnable params. */
#include <string.h>

#include "core/net.h"

int ns_layer_phase_train(const ns_layer *l) { return l->net && l->net->phase == NS_PHASE_TRAIN; }

void ns_layer_free_train(ns_ctx *ctx, ns_layer *l) {
  ns_free(ctx, l->loss_weight);
  ns_free(ctx, l->bottom_need_backward);
  ns_free(ctx, l->param_propagate_down);
  ns_free(ctx, l->top_read_back);
  l->top_read_back = NULL;
  l->loss_weight = NULL;
  l->bottom_need_backward = NULL;
  l->param_propagate_down = NULL;
}

ns_phase ns_net_phase(const ns_net *net) { return net->phase; }

static const Caffe__ParamSpec *param_spec(const ns_layer *l, int i) {
  return i < (int)l->param->n_param ? l->param->param[i] : NULL;
}

/* Statistics (BatchNorm's) never learn: Caffe masks them with lr_mult 0. */
static int frozen_statistics(const ns_layer *l) { return l->ops->params_are_statistics; }

/* The mults the solver uses for an owned param: a shared one's may come
 * from a sharer (ns_net_param_mult). */
static float solver_mult(const ns_layer *l, int i, int decay) {
  if (frozen_statistics(l)) return 0.0f;
  return ns_net_param_mult(l->net, l, i, decay);
}

static int shared(const ns_layer *l, int j) { return l->param_shared && l->param_shared[j]; }

/* A layer's own lr_mult decides whether it computes the param's gradient
 * (Caffe's param_need_backward). */
static float lr_mult(const ns_layer *l, int i) {
  const Caffe__ParamSpec *p = param_spec(l, i);
  if (frozen_statistics(l)) return 0.0f;
  return p && p->has_lr_mult ? p->lr_mult : 1.0f;
}

/* Layer::SetLossWeights and LossLayer's default weight 1 on top 0. */
static ns_status init_loss_weights(ns_ctx *ctx, ns_layer *l) {
  const Caffe__LayerParameter *lp = l->param;
  if (lp->n_loss_weight && (int)lp->n_loss_weight != l->n_top)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "loss_weight must be unspecified or given once per top (%zu for %d tops)",
                         lp->n_loss_weight, l->n_top);
  int any = l->ops->is_loss && l->n_top > 0;
  for (size_t i = 0; i < lp->n_loss_weight; i++) any |= lp->loss_weight[i] != 0;
  if (!any) return NS_OK;
  l->loss_weight = ns_calloc(ctx, (size_t)l->n_top, sizeof *l->loss_weight);
  if (!l->loss_weight) return ctx->status;
  if (lp->n_loss_weight)
    for (int i = 0; i < l->n_top; i++) l->loss_weight[i] = lp->loss_weight[i];
  else
    l->loss_weight[0] = 1;
  return NS_OK;
}

/* The net's blob map is complete before this bookkeeping runs. */
static int blob_id(const ns_net *net, const ns_blob *b) {
  return ns_name_map_get(&net->blob_names, b->name);
}

/* Net::Init: forward, a layer needs backward if a bottom blob does or a
 * param learns; its tops then need it.  Backward, layers that contribute
 * to no loss, or whose every top is cut by propagate_down false, are
 * dropped (with their bottoms).  force_backward then forces gradients into
 * every bottom a layer allows. */
ns_status ns_net_init_backward(ns_ctx *ctx, ns_net *net) {
  int nb = net->n_blobs;
  char *need = ns_calloc(ctx, (size_t)nb + 1, 1);
  char *under_loss = ns_calloc(ctx, (size_t)nb + 1, 1);
  char *skip = ns_calloc(ctx, (size_t)nb + 1, 1);
  if (!need || !under_loss || !skip) goto fail;
  for (int i = 0; i < net->n_layers; i++) {
    ns_layer *l = &net->layers[i];
    const Caffe__LayerParameter *lp = l->param;
    if (init_loss_weights(ctx, l) != NS_OK) goto fail;
    if (lp->n_propagate_down && (int)lp->n_propagate_down != l->n_bottom) {
      ns_layer_fail(ctx, l, NS_ERR_NET,
                    "propagate_down must be unspecified or given once per bottom (%zu for %d)",
                    lp->n_propagate_down, l->n_bottom);
      goto fail;
    }
    l->bottom_need_backward = ns_calloc(ctx, (size_t)l->n_bottom + 1, sizeof(int));
    l->param_propagate_down = ns_calloc(ctx, (size_t)l->n_params + 1, sizeof(int));
    if (!l->bottom_need_backward || !l->param_propagate_down) goto fail;
    int nbk = 0;
    for (int j = 0; j < l->n_bottom; j++) {
      int b = blob_id(net, l->bottom[j]);
      l->bottom_need_backward[j] = lp->n_propagate_down ? lp->propagate_down[j] != 0 : need[b];
      nbk |= need[b];
    }
    for (int j = 0; j < l->n_params; j++) {
      l->param_propagate_down[j] = lr_mult(l, j) != 0;
      nbk |= l->param_propagate_down[j];
    }
    l->need_backward = nbk;
    if (nbk)
      for (int j = 0; j < l->n_top; j++) need[blob_id(net, l->top[j])] = 1;
  }
  for (int i = net->n_layers - 1; i >= 0; i--) {
    ns_layer *l = &net->layers[i];
    int contributes = 0, skip_down = 1;
    for (int j = 0; j < l->n_top; j++) {
      int b = blob_id(net, l->top[j]);
      if ((l->loss_weight && l->loss_weight[j] != 0) || under_loss[b]) contributes = 1;
      if (!skip[b]) skip_down = 0;
    }
    if (l->need_backward && skip_down) {
      l->need_backward = 0;
      for (int j = 0; j < l->n_bottom; j++) l->bottom_need_backward[j] = 0;
    }
    if (!contributes) l->need_backward = 0;
    for (int j = 0; j < l->n_bottom; j++) {
      int b = blob_id(net, l->bottom[j]);
      if (contributes)
        under_loss[b] = 1;
      else
        l->bottom_need_backward[j] = 0;
      if (!l->bottom_need_backward[j]) skip[b] = 1;
    }
  }
  if (net->def->has_force_backward && net->def->force_backward)
    for (int i = 0; i < net->n_layers; i++) {
      ns_layer *l = &net->layers[i];
      if (!l->ops->backward) continue;
      l->need_backward = 1;
      for (int j = 0; j < l->n_bottom; j++)
        l->bottom_need_backward[j] |= !(l->ops->is_loss && j > 0);
    }
  /* A loss top that a later layer also reads gets that layer's gradient
   * plus its loss weight (Caffe routes it through a Split). */
  char *written = under_loss; /* reused: blob's diff is written by a backward */
  memset(written, 0, (size_t)nb + 1);
  for (int i = 0; i < net->n_layers; i++) {
    ns_layer *l = &net->layers[i];
    for (int j = 0; j < l->n_bottom && l->need_backward; j++)
      if (l->bottom_need_backward[j] && !(j < l->n_top && l->top[j] == l->bottom[j]))
        written[blob_id(net, l->bottom[j])] = 1;
  }
  for (int i = 0; i < net->n_layers; i++) {
    ns_layer *l = &net->layers[i];
    if (!(l->top_read_back = ns_calloc(ctx, (size_t)l->n_top + 1, sizeof(int)))) goto fail;
    for (int j = 0; j < l->n_top; j++) l->top_read_back[j] = written[blob_id(net, l->top[j])];
  }
  ns_free(ctx, need);
  ns_free(ctx, under_loss);
  ns_free(ctx, skip);
  return NS_OK;
fail:
  ns_free(ctx, need);
  ns_free(ctx, under_loss);
  ns_free(ctx, skip);
  return ctx->status;
}

static double top_loss(const ns_layer *l) {
  double loss = 0;
  if (!l->loss_weight) return 0;
  for (int j = 0; j < l->n_top; j++) {
    if (l->loss_weight[j] == 0) continue;
    double s = 0;
    const ns_blob *t = l->top[j];
    for (int64_t k = 0; k < t->count; k++) s += t->data[k];
    loss += l->loss_weight[j] * s;
  }
  return loss;
}

double ns_net_total_loss(const ns_net *net) {
  double sum = 0;
  for (int i = 0; i < net->n_layers; i++) sum += top_loss(&net->layers[i]);
  return sum;
}

/* Diffs are allocated when first needed (and again after a reshape grew
 * a blob, which frees its diff); a fresh diff is zero, which is right for
 * tops no consumer writes (every backward is linear in the top diffs). */
static ns_status prepare_diffs(ns_ctx *ctx, ns_layer *l) {
  for (int j = 0; j < l->n_top; j++)
    if (ns_blob_ensure_diff(ctx, l->top[j]) != NS_OK) return ctx->status;
  for (int j = 0; j < l->n_bottom; j++)
    if (l->bottom_need_backward[j] && ns_blob_ensure_diff(ctx, l->bottom[j]) != NS_OK)
      return ctx->status;
  for (int j = 0; j < l->n_params; j++)
    if (l->param_propagate_down[j] && ns_blob_ensure_diff(ctx, l->params[j]) != NS_OK)
      return ctx->status;
  return NS_OK;
}

ns_status ns_net_backward(ns_ctx *ctx, ns_net *net) {
  return ns_net_run_backward_range(ctx, net, 0, net->n_layers - 1);
}

/* Caffe's BackwardFromTo(last, first): a layer outside the range keeps
 * its diffs, so a backward that starts below the loss reads the top diffs
 * a caller wrote (pycaffe's backward(start=...)). */
ns_status ns_net_run_backward_range(ns_ctx *ctx, ns_net *net, int first, int last) {
  if (net->reuse_on)
    return ns_fail(ctx, NS_ERR_USAGE,
                   "backward needs every blob of the forward, which activation reuse shares: "
                   "turn it off first");
  for (int i = first; i <= last; i++) {
    ns_layer *l = &net->layers[i];
    if (!l->need_backward) continue;
    if (!l->ops->backward)
      return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                           "no backward for this layer type, but the loss needs a gradient "
                           "through it (set propagate_down: false or lr_mult: 0 below it)");
    if (prepare_diffs(ctx, l) != NS_OK) return ctx->status;
  }
  /* The loss tops' diffs hold their weights (Caffe's SetLossWeights),
   * added to the gradient a later reader wrote, if any; set just before
   * their layer's backward reads them. */
  for (int i = last; i >= first; i--) {
    ns_layer *l = &net->layers[i];
    if (!l->need_backward) continue;
    for (int j = 0; l->loss_weight && j < l->n_top; j++) {
      ns_blob *t = l->top[j];
      float w = l->loss_weight[j];
      if (l->top_read_back[j])
        for (int64_t k = 0; k < t->count; k++) t->diff[k] += w;
      else
        for (int64_t k = 0; k < t->count; k++) t->diff[k] = w;
    }
    if (l->ops->backward(ctx, l, l->bottom_need_backward) != NS_OK) return ctx->status;
  }
  return NS_OK;
}

void ns_net_clear_param_diffs(ns_net *net) {
  for (int i = 0; i < net->n_layers; i++) {
    ns_layer *l = &net->layers[i];
    for (int j = 0; j < l->n_params; j++)
      if (l->params[j]->diff && !shared(l, j))
        memset(l->params[j]->diff, 0, (size_t)l->params[j]->count * sizeof(float));
  }
}

int ns_net_learnable_count(const ns_net *net) {
  int n = 0;
  for (int i = 0; i < net->n_layers; i++)
    for (int j = 0; j < net->layers[i].n_params; j++) n += !shared(&net->layers[i], j);
  return n;
}

ns_status ns_net_learnable(ns_net *net, int k, ns_learnable *out) {
  ns_ctx *ctx = net->ctx;
  memset(out, 0, sizeof *out);
  net->params_exposed = 1; /* writable: see ns_net */
  for (int i = 0; i < net->n_layers; i++) {
    ns_layer *l = &net->layers[i];
    int j = 0; /* the k-th owned param of l, if it has that many */
    for (; j < l->n_params && (shared(l, j) || k > 0); j++) k -= !shared(l, j);
    if (j == l->n_params) continue;
    if (k < 0) break;
    ns_blob *b = l->params[j];
    if (ns_blob_ensure_diff(ctx, b) != NS_OK) return ctx->status;
    out->layer = i;
    out->index = j;
    out->layer_name = l->name;
    out->data = (ns_tensor){b->name, b->num_axes, b->shape, b->count, b->data};
    out->diff = b->diff;
    out->lr_mult = solver_mult(l, j, 0);
    out->decay_mult = solver_mult(l, j, 1);
    return NS_OK;
  }
  return ns_fail(ctx, NS_ERR_USAGE, "learnable param %d out of range (%d in the net)", k,
                 ns_net_learnable_count(net));
}
