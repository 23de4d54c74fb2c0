/* Internal view of a built net.  Built in phase TEST or TRAIN from an upgraded
 * NetParameter, which the net keeps (and owns) so that saving writes back
 * every field we do not interpret. */
#ifndef NS_CORE_NET_H
#define NS_CORE_NET_H

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/layer.h"
#include "core/name_map.h"
#include "core/rng.h"

struct ns_net {
  ns_ctx *ctx;
  ns_phase phase;           /* NetState phase the layers were filtered with */
  Caffe__NetParameter *def; /* upgraded definition, owned */
  int n_layers;
  ns_layer *layers; /* in execution order (after NetStateRule filtering) */
  int n_blobs;
  ns_blob **blobs; /* every named blob, owned */
  int n_owned;
  Caffe__LayerParameter **owned; /* inserted Split layers' params */
  /* name -> index, so lookups do not scan (hostile nets have 100,000 layers) */
  ns_name_map blob_names, layer_names;
  /* shared param name -> index of the layer that owns it (net_share.c) */
  ns_name_map param_names;
  ns_rng rng;
  float *scratch;
  int64_t scratch_cap;
  /* Param writes, for caches made from params (Winograd's transformed
   * weights): the library's own writers bump params_epoch; once a
   * writable view has been handed out (ns_net_param, ..._by_name,
   * ns_net_learnable), params_exposed stays set and the caches compare
   * the params themselves, since writes through a view go unseen. */
  uint64_t params_epoch;
  int params_exposed;
  /* Activation reuse (net_reuse.c): on, the intermediate blobs point into
   * these shared buffers. */
  int reuse_on;
  int n_pool;
  float **pool;
};

static inline void ns_net_params_written(ns_net *net) { net->params_epoch++; }

/* Builds a net from a definition in the current format (call the upgrade
 * first) in the given phase.  Takes ownership of def in every case.  seed
 * feeds the fillers. */
ns_status ns_net_build(ns_ctx *ctx, Caffe__NetParameter *def, uint64_t seed, ns_phase phase,
                       ns_net **out);
/* The same with activation reuse on (ns_net_reuse_activations): each
 * intermediate blob's storage is dropped as soon as its last reader is
 * set up, so that the build never holds every activation at once. */
ns_status ns_net_build_reusing(ns_ctx *ctx, Caffe__NetParameter *def, uint64_t seed,
                               ns_phase phase, ns_net **out);
/* Net::Init's training bookkeeping after every layer is set up (net_train.c):
 * loss weights, which layers and bottoms need backward, param_propagate_down. */
ns_status ns_net_init_backward(ns_ctx *ctx, ns_net *net);
/* Caffe's Net::Forward loss after a forward: the sum over every top with
 * a loss weight of loss_weight * (sum of the top's values). */
double ns_net_total_loss(const ns_net *net);
/* Shared params (net_share.c, Caffe's AppendParam): the name map, sized
 * from the definition; after layer l's setup, its params named by an
 * earlier layer become that layer's blobs (shapes and mults checked). */
ns_status ns_net_share_init(ns_ctx *ctx, ns_net *net);
ns_status ns_net_share_params(ns_ctx *ctx, ns_net *net, ns_layer *l);
/* lr_mult (decay 0) or decay_mult (decay 1) of an owned param j of l:
 * its own spec's, else the first sharer's that sets it, else 1. */
float ns_net_param_mult(const ns_net *net, const ns_layer *l, int j, int decay);
/* Frees what ns_net_init_backward put in a layer. */
void ns_layer_free_train(ns_ctx *ctx, ns_layer *l);

/* ns_net_destroy, ns_net_find_blob and ns_net_find_layer (netsurg.h) are
 * defined in net.c: the build uses them too. */

/* Activation reuse (net_reuse.c): with reuse on, reshapes every layer,
 * dropping each intermediate blob's storage once its last reader is
 * reshaped, then points them into shared buffers; off, gives them their
 * own storage back.  Frees the buffers (net destroy). */
ns_status ns_net_reshape_reusing(ns_ctx *ctx, ns_net *net);
/* The Eltwise sum a whole-net forward folds into layer i (writing the
 * sum's top at layer i: the reuse plan must hold that top from there), or
 * NULL. */
const ns_layer *ns_net_folded_sum(const ns_net *net, int i);
ns_status ns_net_reuse_off(ns_ctx *ctx, ns_net *net);
void ns_net_pool_free(ns_ctx *ctx, ns_net *net);
/* Leaves b without storage (data NULL, no diff): its next reshape or the
 * reuse plan gives it some. */
void ns_blob_drop_storage(ns_ctx *ctx, ns_blob *b);

/* Re-runs every layer's reshape (after an input changed shape). */
ns_status ns_net_reshape_all(ns_ctx *ctx, ns_net *net);
/* layer_seconds may be NULL; else each layer's time is added to it. */
ns_status ns_net_run_forward(ns_ctx *ctx, ns_net *net, double *layer_seconds);
/* Layers first..last only (inclusive; the caller checked the range). */
ns_status ns_net_run_forward_range(ns_ctx *ctx, ns_net *net, int first, int last,
                                   double *layer_seconds);
/* Backward through layers last down to first (inclusive, checked). */
ns_status ns_net_run_backward_range(ns_ctx *ctx, ns_net *net, int first, int last);

#endif
