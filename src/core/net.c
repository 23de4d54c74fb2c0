/* Net construction (Caffe's Net::Init in phase TEST or TRAIN), reshape, forward and
 * weight copying by layer name. */
#include "core/net.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "core/filler.h"

/* ---- NetStateRule filtering (Caffe's Net::FilterNet) ------------------ */

static int has_stage(const Caffe__NetState *s, const char *stage) {
  for (size_t i = 0; s && i < s->n_stage; i++)
    if (strcmp(s->stage[i], stage) == 0) return 1;
  return 0;
}

static int state_meets_rule(const Caffe__NetState *s, Caffe__Phase phase,
                            const Caffe__NetStateRule *r) {
  int level = s && s->has_level ? s->level : 0;
  if (r->has_phase && r->phase != phase) return 0;
  if (r->has_min_level && level < r->min_level) return 0;
  if (r->has_max_level && level > r->max_level) return 0;
  for (size_t i = 0; i < r->n_stage; i++)
    if (!has_stage(s, r->stage[i])) return 0;
  for (size_t i = 0; i < r->n_not_stage; i++)
    if (has_stage(s, r->not_stage[i])) return 0;
  return 1;
}

static ns_status layer_included(ns_ctx *ctx, const Caffe__NetParameter *def, Caffe__Phase phase,
                                const Caffe__LayerParameter *lp, int *included) {
  if (lp->n_include && lp->n_exclude)
    return ns_fail(ctx, NS_ERR_NET, "layer '%s': specify either include or exclude rules, not both",
                   lp->name ? lp->name : "");
  int in = lp->n_include == 0;
  for (size_t i = 0; i < lp->n_exclude; i++)
    if (state_meets_rule(def->state, phase, lp->exclude[i])) in = 0;
  for (size_t i = 0; i < lp->n_include; i++)
    if (state_meets_rule(def->state, phase, lp->include[i])) in = 1;
  *included = in;
  return NS_OK;
}

/* ---- the build plan: layers with their bottom/top names, after Caffe's
 * InsertSplits (a blob read by several layers gets a Split layer whose
 * tops are named <blob>_<producer>_<index>_split_<k>, as in Caffe). ---- */

typedef struct plan_layer {
  const Caffe__LayerParameter *param;
  Caffe__LayerParameter *owned; /* synthetic Split layers */
  int n_bottom, n_top;
  char **bottom, **top; /* owned strings */
} plan_layer;

typedef struct plan {
  int n, cap;
  plan_layer *layers;
} plan;

static void plan_free(ns_ctx *ctx, plan *p) {
  for (int i = 0; i < p->n; i++) {
    plan_layer *pl = &p->layers[i];
    for (int j = 0; j < pl->n_bottom; j++) ns_free(ctx, pl->bottom[j]);
    for (int j = 0; j < pl->n_top; j++) ns_free(ctx, pl->top[j]);
    ns_free(ctx, pl->bottom);
    ns_free(ctx, pl->top);
    if (pl->owned) protobuf_c_message_free_unpacked(&pl->owned->base, &ctx->pb_alloc);
  }
  ns_free(ctx, p->layers);
  memset(p, 0, sizeof *p);
}

static plan_layer *plan_add(ns_ctx *ctx, plan *p) {
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 16;
    plan_layer *l = ns_realloc_array(ctx, p->layers, (size_t)cap, sizeof *l);
    if (!l) return NULL;
    p->layers = l;
    p->cap = cap;
  }
  plan_layer *pl = &p->layers[p->n++];
  memset(pl, 0, sizeof *pl);
  return pl;
}

static ns_status copy_names(ns_ctx *ctx, char **src, size_t n, char ***dst) {
  *dst = ns_calloc(ctx, n ? n : 1, sizeof **dst);
  if (!*dst) return ctx->status;
  for (size_t i = 0; i < n; i++)
    if (!((*dst)[i] = ns_strdup(ctx, src[i] ? src[i] : ""))) return ctx->status;
  return NS_OK;
}

/* Where each bottom's data comes from: (producer plan index, top index). */
typedef struct source {
  int layer, top;
} source;

static char *split_name(ns_ctx *ctx, const char *blob, const char *layer, int top, int k) {
  size_t n = strlen(blob) + strlen(layer) + 64;
  char *s = ns_alloc(ctx, n);
  if (!s) return NULL;
  if (k < 0)
    snprintf(s, n, "%s_%s_%d_split", blob, layer, top);
  else
    snprintf(s, n, "%s_%s_%d_split_%d", blob, layer, top, k);
  return s;
}

static ns_status make_split_layer(ns_ctx *ctx, const plan_layer *producer, int top, int count,
                                  plan_layer *pl) {
  const char *blob = producer->top[top];
  const char *lname = producer->param->name ? producer->param->name : "";
  pl->owned = ns_alloc(ctx, sizeof *pl->owned);
  if (!pl->owned) return ctx->status;
  caffe__layer_parameter__init(pl->owned);
  pl->param = pl->owned;
  if (!(pl->owned->name = split_name(ctx, blob, lname, top, -1))) return ctx->status;
  if (!(pl->owned->type = ns_strdup(ctx, "Split"))) return ctx->status;
  pl->bottom = ns_calloc(ctx, 1, sizeof *pl->bottom);
  pl->top = ns_calloc(ctx, (size_t)count, sizeof *pl->top);
  if (!pl->bottom || !pl->top) return ctx->status;
  pl->n_bottom = 1;
  if (!(pl->bottom[0] = ns_strdup(ctx, blob))) return ctx->status;
  for (int k = 0; k < count; k++) {
    if (!(pl->top[k] = split_name(ctx, blob, lname, top, k))) return ctx->status;
    pl->n_top = k + 1;
  }
  return NS_OK;
}

static ns_status build_plan(ns_ctx *ctx, const Caffe__NetParameter *def, Caffe__Phase phase,
                            plan *out) {
  plan base = {0};
  for (size_t i = 0; i < def->n_layer; i++) {
    const Caffe__LayerParameter *lp = def->layer[i];
    int inc = 0;
    if (layer_included(ctx, def, phase, lp, &inc) != NS_OK) goto fail;
    if (!inc) continue;
    plan_layer *pl = plan_add(ctx, &base);
    if (!pl) goto fail;
    pl->param = lp;
    /* Counts are set as soon as the arrays exist, so that plan_free also
     * frees the names copied before an allocation failed. */
    ns_status st = copy_names(ctx, lp->bottom, lp->n_bottom, &pl->bottom);
    if (pl->bottom) pl->n_bottom = (int)lp->n_bottom;
    if (st != NS_OK) goto fail;
    st = copy_names(ctx, lp->top, lp->n_top, &pl->top);
    if (pl->top) pl->n_top = (int)lp->n_top;
    if (st != NS_OK) goto fail;
  }

  /* Count the readers of every (producer, top). */
  int total_tops = 0;
  for (int i = 0; i < base.n; i++) total_tops += base.layers[i].n_top;
  int *offset = ns_calloc(ctx, (size_t)base.n + 1, sizeof *offset);
  int *readers = ns_calloc(ctx, (size_t)total_tops + 1, sizeof *readers);
  int *next_split = ns_calloc(ctx, (size_t)total_tops + 1, sizeof *next_split);
  /* Where each base layer went in `out`: its names move there when emitted. */
  int *emitted = ns_calloc(ctx, (size_t)base.n + 1, sizeof *emitted);
  source *srcs = NULL;
  /* The last producer of each blob name so far: top id (offset + index). */
  ns_name_map producers = {0};
  source *top_src = ns_calloc(ctx, (size_t)total_tops + 1, sizeof *top_src);
  int total_bottoms = 0;
  if (!offset || !readers || !next_split || !emitted || !top_src) goto fail_counts;
  for (int i = 0; i < base.n; i++) {
    offset[i + 1] = offset[i] + base.layers[i].n_top;
    total_bottoms += base.layers[i].n_bottom;
  }
  srcs = ns_calloc(ctx, (size_t)total_bottoms + 1, sizeof *srcs);
  if (!srcs || ns_name_map_init(ctx, &producers, (size_t)total_tops) != NS_OK) goto fail_counts;
  for (int i = 0, b = 0; i < base.n; i++) {
    plan_layer *pl = &base.layers[i];
    for (int j = 0; j < pl->n_bottom; j++, b++) {
      int t = ns_name_map_get(&producers, pl->bottom[j]);
      if (t < 0) {
        ns_fail(ctx, NS_ERR_NET, "layer '%s': bottom '%s' is not produced by any earlier layer",
                pl->param->name ? pl->param->name : "", pl->bottom[j]);
        goto fail_counts;
      }
      srcs[b] = top_src[t];
      readers[t]++;
    }
    /* Tops after the bottoms: an in-place layer reads the earlier producer. */
    for (int j = 0; j < pl->n_top; j++) {
      top_src[offset[i] + j] = (source){i, j};
      ns_name_map_put(&producers, pl->top[j], offset[i] + j);
    }
  }

  /* Emit layers, renaming shared bottoms and inserting splits. */
  for (int i = 0, b = 0; i < base.n; i++) {
    plan_layer *src_pl = &base.layers[i];
    for (int j = 0; j < src_pl->n_bottom; j++, b++) {
      int t = offset[srcs[b].layer] + srcs[b].top;
      if (readers[t] < 2) continue;
      const plan_layer *prod = &out->layers[emitted[srcs[b].layer]];
      char *name = split_name(ctx, prod->top[srcs[b].top], prod->param->name ? prod->param->name : "",
                              srcs[b].top, next_split[t]++);
      if (!name) goto fail_counts;
      ns_free(ctx, src_pl->bottom[j]);
      src_pl->bottom[j] = name;
    }
    plan_layer *pl = plan_add(ctx, out);
    if (!pl) goto fail_counts;
    *pl = *src_pl; /* moves the name arrays */
    memset(src_pl, 0, sizeof *src_pl);
    int producer = out->n - 1;
    emitted[i] = producer;
    for (int j = 0; j < out->layers[producer].n_top; j++) {
      int t = offset[i] + j;
      if (readers[t] < 2) continue;
      plan_layer *split = plan_add(ctx, out); /* may move out->layers */
      if (!split) goto fail_counts;
      if (make_split_layer(ctx, &out->layers[producer], j, readers[t], split) != NS_OK)
        goto fail_counts;
    }
  }
  ns_free(ctx, offset);
  ns_free(ctx, readers);
  ns_free(ctx, next_split);
  ns_free(ctx, emitted);
  ns_free(ctx, srcs);
  ns_free(ctx, top_src);
  ns_name_map_free(ctx, &producers);
  plan_free(ctx, &base);
  return NS_OK;

fail_counts:
  ns_free(ctx, offset);
  ns_free(ctx, readers);
  ns_free(ctx, next_split);
  ns_free(ctx, emitted);
  ns_free(ctx, srcs);
  ns_free(ctx, top_src);
  ns_name_map_free(ctx, &producers);
fail:
  plan_free(ctx, &base);
  plan_free(ctx, out);
  return ctx->status;
}

/* ---- instantiating layers ------------------------------------------- */

int ns_net_find_blob(const ns_net *net, const char *name) {
  if (net->blob_names.keys) return ns_name_map_get(&net->blob_names, name);
  for (int i = 0; i < net->n_blobs; i++)
    if (strcmp(net->blobs[i]->name, name) == 0) return i;
  return -1;
}

int ns_net_find_layer(const ns_net *net, const char *name) {
  if (net->layer_names.keys) return ns_name_map_get(&net->layer_names, name);
  for (int i = 0; i < net->n_layers; i++)
    if (strcmp(net->layers[i].name, name) == 0) return i;
  return -1;
}

static ns_blob *add_blob(ns_ctx *ctx, ns_net *net, const char *name) {
  /* Room for 16, then doubling when full (the capacity follows from
   * n_blobs): growing by one each time copied quadratically. */
  int n = net->n_blobs;
  if (n == 0 || (n >= 16 && (n & (n - 1)) == 0)) {
    size_t cap = n == 0 ? 16 : (size_t)n * 2;
    ns_blob **blobs = ns_realloc_array(ctx, net->blobs, cap, sizeof *blobs);
    if (!blobs) return NULL;
    net->blobs = blobs;
  }
  ns_blob *b = ns_blob_create(ctx, name);
  if (b) {
    net->blobs[net->n_blobs++] = b;
    if (net->blob_names.keys) ns_name_map_put(&net->blob_names, b->name, net->n_blobs - 1);
  }
  return b;
}

static ns_status check_counts(ns_ctx *ctx, const ns_layer *l) {
  const ns_layer_ops *o = l->ops;
  if (l->n_bottom < o->min_bottoms || (o->max_bottoms >= 0 && l->n_bottom > o->max_bottoms))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%d bottoms (expected %d%s)", l->n_bottom,
                         o->min_bottoms, o->max_bottoms == o->min_bottoms ? "" : " or more");
  if (l->n_top < o->min_tops || (o->max_tops >= 0 && l->n_top > o->max_tops))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "%d tops (expected %d%s)", l->n_top, o->min_tops,
                         o->max_tops == o->min_tops ? "" : " or more");
  return NS_OK;
}

/* Binds a plan layer's bottoms and tops to blobs (creating tops), as
 * Caffe's AppendBottom / AppendTop. */
static ns_status bind_blobs(ns_ctx *ctx, ns_net *net, const plan_layer *pl, ns_layer *l) {
  l->bottom = ns_calloc(ctx, (size_t)pl->n_bottom + 1, sizeof *l->bottom);
  l->top = ns_calloc(ctx, (size_t)pl->n_top + 1, sizeof *l->top);
  if (!l->bottom || !l->top) return ctx->status;
  for (int j = 0; j < pl->n_bottom; j++) {
    int b = ns_net_find_blob(net, pl->bottom[j]);
    if (b < 0)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "unknown bottom blob '%s'", pl->bottom[j]);
    l->bottom[j] = net->blobs[b];
  }
  l->n_bottom = pl->n_bottom;
  for (int j = 0; j < pl->n_top; j++) {
    if (j < pl->n_bottom && strcmp(pl->top[j], pl->bottom[j]) == 0) {
      l->top[j] = l->bottom[j]; /* in place */
    } else if (ns_net_find_blob(net, pl->top[j]) >= 0) {
      return ns_layer_fail(ctx, l, NS_ERR_NET, "top blob '%s' produced by multiple sources",
                           pl->top[j]);
    } else if (!(l->top[j] = add_blob(ctx, net, pl->top[j]))) {
      return ctx->status;
    }
    l->n_top = j + 1;
  }
  return NS_OK;
}

static ns_status init_layer(ns_ctx *ctx, ns_net *net, const plan_layer *pl, ns_layer *l) {
  const char *name = pl->param->name ? pl->param->name : "";
  const char *type = pl->param->type ? pl->param->type : "";
  l->param = pl->param;
  l->name = name;
  l->net = net;
  l->rng = &net->rng;
  if (ns_net_find_layer(net, name) >= 0)
    return ns_fail(ctx, NS_ERR_NET, "duplicate layer name '%s'", name);
  if (net->layer_names.keys) ns_name_map_put(&net->layer_names, name, (int)(l - net->layers));
  l->ops = ns_layer_find(type);
  if (!l->ops)
    return ns_fail(ctx, type[0] ? NS_ERR_UNSUPPORTED : NS_ERR_NET,
                   type[0] ? "layer '%s': layer type '%s' is not supported"
                           : "layer '%s': no type given%s",
                   name, type);
  if (bind_blobs(ctx, net, pl, l) != NS_OK) return ctx->status;
  if (check_counts(ctx, l) != NS_OK) return ctx->status;
  if (l->ops->setup(ctx, l) != NS_OK) return ctx->status;
  if (ns_net_share_params(ctx, net, l) != NS_OK) return ctx->status;
  return l->ops->reshape(ctx, l);
}

static void destroy_layer(ns_ctx *ctx, ns_layer *l) {
  if (l->ops && l->ops->destroy) l->ops->destroy(ctx, l);
  ns_free(ctx, l->priv);
  for (int i = 0; i < l->n_params; i++)
    if (!(l->param_shared && l->param_shared[i])) ns_blob_destroy(ctx, l->params[i]);
  ns_free(ctx, l->params);
  ns_free(ctx, l->param_shared);
  ns_free(ctx, l->bottom);
  ns_free(ctx, l->top);
  ns_layer_free_train(ctx, l);
}

void ns_net_destroy(ns_net *net) {
  if (!net) return;
  ns_ctx *ctx = net->ctx;
  for (int i = 0; i < net->n_layers; i++) destroy_layer(ctx, &net->layers[i]);
  ns_free(ctx, net->layers);
  for (int i = 0; i < net->n_blobs; i++) ns_blob_destroy(ctx, net->blobs[i]);
  ns_free(ctx, net->blobs);
  ns_net_pool_free(ctx, net);
  for (int i = 0; i < net->n_owned; i++)
    protobuf_c_message_free_unpacked(&net->owned[i]->base, &ctx->pb_alloc);
  ns_free(ctx, net->owned);
  ns_name_map_free(ctx, &net->blob_names);
  ns_name_map_free(ctx, &net->layer_names);
  ns_name_map_free(ctx, &net->param_names);
  ns_floats_free(ctx, net->scratch);
  if (net->def) protobuf_c_message_free_unpacked(&net->def->base, &ctx->pb_alloc);
  ns_free(ctx, net);
}

/* Keeps the synthetic Split layer params alive as long as the net. */
static ns_status adopt_owned(ns_ctx *ctx, ns_net *net, plan *p) {
  int n = 0;
  for (int i = 0; i < p->n; i++) n += p->layers[i].owned != NULL;
  net->owned = ns_calloc(ctx, (size_t)n + 1, sizeof *net->owned);
  if (!net->owned) return ctx->status;
  for (int i = 0; i < p->n; i++)
    if (p->layers[i].owned) {
      net->owned[net->n_owned++] = p->layers[i].owned;
      p->layers[i].owned = NULL;
    }
  return NS_OK;
}

/* Reuse while building: the last plan layer touching each blob name. */
static ns_status last_uses(ns_ctx *ctx, const plan *p, ns_name_map *last) {
  size_t n = 0;
  for (int i = 0; i < p->n; i++) n += (size_t)p->layers[i].n_bottom + (size_t)p->layers[i].n_top;
  if (ns_name_map_init(ctx, last, n) != NS_OK) return ctx->status;
  for (int i = p->n - 1; i >= 0; i--) {
    const plan_layer *pl = &p->layers[i];
    for (int j = 0; j < pl->n_top + pl->n_bottom; j++) {
      const char *name = j < pl->n_top ? pl->top[j] : pl->bottom[j - pl->n_top];
      if (ns_name_map_get(last, name) < 0) ns_name_map_put(last, name, i);
    }
  }
  return NS_OK;
}

static int is_top_of(const ns_layer *l, const ns_blob *b) {
  for (int j = 0; j < l->n_top; j++)
    if (l->top[j] == b) return 1;
  return 0;
}

/* After layer i is set up: the bottoms it reads for the last time, not
 * net inputs (is_input, by blob index) nor written by it, need their
 * storage no more (net_reuse.c's rule for a shared blob). */
static void drop_dead_bottoms(ns_ctx *ctx, ns_net *net, int i, const ns_name_map *last,
                              int *is_input) {
  ns_layer *l = &net->layers[i];
  if (l->ops->is_net_input)
    for (int j = 0; j < l->n_top; j++) is_input[ns_net_find_blob(net, l->top[j]->name)] = 1;
  if (l->ops->reshapes_in_forward) net->reuse_on = 0; /* such nets keep every blob */
  for (int j = 0; net->reuse_on && j < l->n_bottom; j++) {
    ns_blob *b = l->bottom[j];
    if (ns_name_map_get(last, b->name) == i && !is_top_of(l, b) &&
        !is_input[ns_net_find_blob(net, b->name)])
      ns_blob_drop_storage(ctx, b);
  }
}

static ns_status build_net(ns_ctx *ctx, Caffe__NetParameter *def, uint64_t seed, ns_phase phase,
                           int reuse, ns_net **out) {
  *out = NULL;
  ns_net *net = ns_calloc(ctx, 1, sizeof *net);
  if (!net) {
    protobuf_c_message_free_unpacked(&def->base, &ctx->pb_alloc);
    return ctx->status;
  }
  net->ctx = ctx;
  net->def = def;
  net->phase = phase;
  ns_rng_seed(&net->rng, seed);
  plan p = {0};
  ns_name_map last = {0};
  int *is_input = NULL;
  if (build_plan(ctx, def, phase == NS_PHASE_TRAIN ? CAFFE__PHASE__TRAIN : CAFFE__PHASE__TEST,
                 &p) != NS_OK)
    goto fail;
  net->layers = ns_calloc(ctx, (size_t)p.n + 1, sizeof *net->layers);
  if (!net->layers) goto fail;
  size_t n_tops = 0; /* every blob is some layer's top */
  for (int i = 0; i < p.n; i++) n_tops += (size_t)p.layers[i].n_top;
  if (ns_name_map_init(ctx, &net->blob_names, n_tops) != NS_OK ||
      ns_name_map_init(ctx, &net->layer_names, (size_t)p.n) != NS_OK ||
      ns_net_share_init(ctx, net) != NS_OK)
    goto fail;
  if (reuse && (last_uses(ctx, &p, &last) != NS_OK ||
                !(is_input = ns_calloc(ctx, n_tops + 1, sizeof *is_input))))
    goto fail;
  net->reuse_on = reuse;
  for (int i = 0; i < p.n; i++) {
    ns_status st = init_layer(ctx, net, &p.layers[i], &net->layers[net->n_layers]);
    net->n_layers++; /* so that a failed layer is destroyed too */
    if (st != NS_OK) goto fail;
    if (reuse) drop_dead_bottoms(ctx, net, i, &last, is_input);
  }
  if (adopt_owned(ctx, net, &p) != NS_OK) goto fail;
  if (ns_net_init_backward(ctx, net) != NS_OK) goto fail;
  /* shared buffers for the blobs dropped above (every blob's own storage
   * back when a layer turned reuse off) */
  if (reuse && (net->reuse_on ? ns_net_reshape_reusing(ctx, net) : ns_net_reshape_all(ctx, net)) !=
                   NS_OK)
    goto fail;
  ns_name_map_free(ctx, &last);
  ns_free(ctx, is_input);
  plan_free(ctx, &p);
  *out = net;
  return NS_OK;
fail:
  ns_net_destroy(net); /* layers first: they borrow the plan's Split params */
  ns_name_map_free(ctx, &last);
  ns_free(ctx, is_input);
  plan_free(ctx, &p);
  return ctx->status;
}

ns_status ns_net_build(ns_ctx *ctx, Caffe__NetParameter *def, uint64_t seed, ns_phase phase,
                       ns_net **out) {
  return build_net(ctx, def, seed, phase, 0, out);
}

ns_status ns_net_build_reusing(ns_ctx *ctx, Caffe__NetParameter *def, uint64_t seed,
                               ns_phase phase, ns_net **out) {
  return build_net(ctx, def, seed, phase, 1, out);
}

/* ---- reshape and forward --------------------------------------------- */

ns_status ns_net_reshape_all(ns_ctx *ctx, ns_net *net) {
  if (net->reuse_on) return ns_net_reshape_reusing(ctx, net);
  for (int i = 0; i < net->n_layers; i++)
    if (net->layers[i].ops->reshape(ctx, &net->layers[i]) != NS_OK) return ctx->status;
  return NS_OK;
}

/* 1 when `next` is a plain in-place ReLU on l's only top, which l's
 * forward can apply in its epilogue (saving a pass over the top). */
static int relu_fusable(const ns_layer *l, const ns_layer *next) {
  if (!l->ops->can_fuse_relu || l->n_top != 1 || !next->ops->fuses_as_relu || next->n_bottom != 1 ||
      next->n_top != 1 || next->bottom[0] != l->top[0] || next->top[0] != l->top[0])
    return 0;
  return next->ops->fuses_as_relu(next);
}

/* How many layers after layer i, up to layer last, its forward can apply
 * as per-channel affine maps: in-place BatchNorm (global statistics) and
 * Scale on its only top, none of them run backward.  Their tops are l's top, so no
 * blob shows the difference once the forward is done. */
static int affine_fusable(const ns_net *net, int i, int last) {
  const ns_layer *l = &net->layers[i];
  if (!l->ops->can_fuse_affine || l->n_top != 1 || !l->ops->can_fuse_affine(l)) return 0;
  int k = i + 1;
  for (; k <= last; k++) {
    const ns_layer *next = &net->layers[k];
    if (!next->ops->fuses_as_affine || next->n_bottom != 1 || next->n_top != 1 ||
        next->bottom[0] != l->top[0] || next->top[0] != l->top[0] || next->need_backward ||
        !next->ops->fuses_as_affine(next))
      break;
  }
  return k - i - 1;
}

/* The Eltwise at layer j when it sums layer i's only top (after its
 * fused affine layers) with a blob ready before it, so that layer i can
 * add it in its epilogue and write the sum itself: only with activation
 * reuse, where no one reads layer i's own top afterwards; never when the
 * sum would overwrite what layer i or the sum reads.  NULL: none. */
static const ns_layer *residual_fusable(const ns_net *net, int i, int j, int last) {
  const ns_layer *l = &net->layers[i], *e = j <= last ? &net->layers[j] : NULL;
  if (!net->reuse_on || !e || !l->ops->can_fuse_residual || !l->ops->can_fuse_residual(l) ||
      !e->ops->fuses_as_residual || !e->ops->fuses_as_residual(e) || e->need_backward)
    return NULL;
  int k = e->bottom[0] == l->top[0] ? 1 : e->bottom[1] == l->top[0] ? 0 : -1;
  if (k < 0 || e->bottom[k] == l->top[0]) return NULL;
  const ns_blob *t = e->top[0];
  if (t == l->top[0] || t == e->bottom[k] || t == l->bottom[0]) return NULL;
  return e;
}

const ns_layer *ns_net_folded_sum(const ns_net *net, int i) {
  int last = net->n_layers - 1;
  return residual_fusable(net, i, i + affine_fusable(net, i, last) + 1, last);
}

/* Changes no process-wide setting: every parallel loop takes its thread
 * count from the context (num_threads clauses), and OpenBLAS's pool is the
 * process's own (ns_blas_set_threads). */
ns_status ns_net_run_forward(ns_ctx *ctx, ns_net *net, double *layer_seconds) {
  return ns_net_run_forward_range(ctx, net, 0, net->n_layers - 1, layer_seconds);
}

/* A ReLU is fused into the layer before it only when both are in the range:
 * a forward that ends at that layer shows its top before the ReLU. */
ns_status ns_net_run_forward_range(ns_ctx *ctx, ns_net *net, int first, int last,
                                   double *layer_seconds) {
  for (int i = first; i <= last; i++) {
    ns_layer *l = &net->layers[i];
    l->affine_fused = affine_fusable(net, i, last);
    int end = i + l->affine_fused; /* a ReLU may follow the affine layers */
    const ns_layer *sum = residual_fusable(net, i, end + 1, last);
    l->residual = sum ? sum->bottom[sum->bottom[0] == l->top[0]] : NULL;
    l->residual_top = sum ? sum->top[0] : NULL;
    end += sum != NULL; /* and then the ReLU follows the sum */
    l->relu_fused = end + 1 <= last && relu_fusable(sum ? sum : l, &net->layers[end + 1]);
    double t0 = layer_seconds ? omp_get_wtime() : 0;
    ns_status st = l->ops->forward(ctx, l);
    int done = end - i + l->relu_fused;
    l->affine_fused = 0; /* a layer forward called on its own (a test) fuses nothing */
    l->residual = NULL;
    if (st != NS_OK) return ctx->status;
    if (l->ops->reshapes_in_forward) /* later layers follow its tops' new shapes */
      for (int j = i + 1; j < net->n_layers; j++)
        if (net->layers[j].ops->reshape(ctx, &net->layers[j]) != NS_OK) return ctx->status;
    if (layer_seconds) layer_seconds[i] += omp_get_wtime() - t0;
    i += done; /* the fused layers are done */
  }
  return NS_OK;
}
