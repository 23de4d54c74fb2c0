/* Internal view of a built net.  Built in phase TEST from an upgraded
 * NetParameter, which the net keeps (and owns) so that saving writes back
 * every field we do not interpret. */
#ifndef NS_CORE_NET_H
#define NS_CORE_NET_H

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/layer.h"
#include "core/rng.h"

struct ns_net {
  ns_ctx *ctx;
  Caffe__NetParameter *def; /* upgraded definition, owned */
  int n_layers;
  ns_layer *layers; /* in execution order (after NetStateRule filtering) */
  int n_blobs;
  ns_blob **blobs; /* every named blob, owned */
  ns_rng rng;
  float *scratch;
  int64_t scratch_cap;
};

/* Builds a net from a definition in the current format (call the upgrade
 * first).  Takes ownership of def in every case.  seed feeds the fillers. */
ns_status ns_net_build(ns_ctx *ctx, Caffe__NetParameter *def, uint64_t seed, ns_net **out);

int ns_net_blob_index(const ns_net *net, const char *name);
int ns_net_layer_index(const ns_net *net, const char *name);

/* Copies params from a trained NetParameter by layer name, with Caffe's
 * rules (see net.c). */
ns_status ns_net_copy_from(ns_ctx *ctx, ns_net *net, const Caffe__NetParameter *trained);

#endif
