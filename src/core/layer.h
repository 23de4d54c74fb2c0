/* A layer is a small vtable over its bottoms, tops and learnable params.
 * Life cycle, as Caffe's: setup (once, bottoms already shaped: read the
 * LayerParameter, check bottoms, create and fill params), reshape (top
 * shapes from bottom shapes; re-run for every new input size), forward.
 * In-place layers have top[i] == bottom[i] (the same ns_blob). */
#ifndef NS_CORE_LAYER_H
#define NS_CORE_LAYER_H

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/rng.h"

typedef struct ns_layer ns_layer;
typedef struct ns_net ns_net;
typedef struct ns_onnx ns_onnx; /* export/onnx_graph.h */

/* Where a layer's top cells sit on its bottoms' grid, for receptive
 * fields (surgery/receptive.c): rows [0] and columns [1] of (N, C, H, W). */
typedef enum ns_layer_grid {
  NS_GRID_UNKNOWN = 0, /* cells move in ways the fields do not follow */
  NS_GRID_POINTWISE,   /* each top cell: the cells at the same place of every bottom */
  NS_GRID_WINDOW,      /* each top cell: a window of bottom 0 (the fields below) */
  NS_GRID_GLOBAL       /* each top cell: all of bottom 0's plane */
} ns_layer_grid;

typedef struct ns_layer_geometry {
  ns_layer_grid grid;
  /* NS_GRID_WINDOW: output cell i sees bottom cells
   * i * stride - pad + dilation * k for k in [0, kernel); a negative pad
   * starts the window inside the bottom (Crop). */
  int64_t kernel[2], stride[2], pad[2], dilation[2];
} ns_layer_geometry;

typedef struct ns_layer_ops {
  const char *type; /* Caffe's type string, e.g. "Convolution" */
  /* Accepted bottom/top counts; max -1 = unbounded. */
  int min_bottoms, max_bottoms, min_tops, max_tops;
  ns_status (*setup)(ns_ctx *ctx, ns_layer *l);
  ns_status (*reshape)(ns_ctx *ctx, ns_layer *l);
  ns_status (*forward)(ns_ctx *ctx, ns_layer *l);
  /* Optional (NULL: no gradient; an error if one is needed through it).
   * Reads the tops' diffs; writes (overwrites) the diff of every bottom i
   * with propagate_down[i] set, and ADDS the param gradients to the
   * params' diffs for the params with ns_layer_param_grad. */
  ns_status (*backward)(ns_ctx *ctx, ns_layer *l, const int *propagate_down);
  /* Optional; frees what setup put in l->priv beyond the block itself. */
  void (*destroy)(ns_ctx *ctx, ns_layer *l);
  /* A loss layer (Caffe's LossLayer): top 0 has loss weight 1 by default,
   * and no gradient is forced into its bottoms after the first. */
  int is_loss;
  /* 1 when forward honours l->relu_fused (apply max(0, .) to its top). */
  int can_fuse_relu;
  /* Optional: 1 when forward honours l->affine_fused now (its only top
   * is (N, C, ...) with the channels on axis 1): it then applies the
   * per-channel y = a y + b of the next l->affine_fused layers
   * (ns_layer_fused_affine) before a fused ReLU. */
  int (*can_fuse_affine)(const ns_layer *l);
  /* Optional: 1 when forward honours l->residual now (writes its only
   * top's values plus the residual into l->residual_top instead). */
  int (*can_fuse_residual)(const ns_layer *l);

  /* What the rest of the library asks about a layer; every one optional
   * (0 / NULL: the plain answer), so that no code outside src/layers/
   * tests a type name. */
  /* Input: its tops are the net's inputs, shaped by the caller. */
  int is_net_input;
  /* Its params are statistics that never learn (BatchNorm's mean,
   * variance and factor): lr_mult and decay_mult count as 0. */
  int params_are_statistics;
  /* Rank of param 0 in the current format (0: 1), by which a legacy
   * 4-D (num, channels, height, width) blob is read: 4 for (out, in, kh,
   * kw), 2 for (out, in).  Other params are rank 1. */
  int weight_rank;
  /* 1 when this layer is max(0, x) in place, so that a can_fuse_relu
   * layer before it may apply it and skip it (set up first). */
  int (*fuses_as_relu)(const ns_layer *l);
  /* 1 when this layer, as it stands, is y = f[c] x + g[c] per channel
   * of axis 1 in place (BatchNorm with global statistics, Scale by a
   * per-channel param): then affine_compose turns a, b ([channels]) into
   * f a, f b + g, and a can_fuse_affine layer before it may apply it and
   * skip it.  Never when the layer's backward will run (it may need what
   * its forward keeps). */
  int (*fuses_as_affine)(const ns_layer *l);
  void (*affine_compose)(const ns_layer *l, float *a, float *b);
  /* 1 when this layer, as it stands, is top = bottom 0 + bottom 1 (an
   * Eltwise SUM of two with unit coefficients), which a can_fuse_residual
   * layer writing one of the bottoms may compute in its epilogue. */
  int (*fuses_as_residual)(const ns_layer *l);
  /* Floating-point operations of one forward at the current shapes (2
   * per multiply-add), for bench's GFLOP/s; NULL: not counted. */
  double (*flops)(const ns_layer *l);
  /* Where the tops' cells sit on the bottoms' grid (set up and shaped);
   * NULL: unknown.  ns_layer_geometry_pointwise serves most layers. */
  void (*geometry)(const ns_layer *l, ns_layer_geometry *g);
  /* 1 when forward may give its tops new shapes read from its bottoms'
   * data (Filter, as Caffe's Reshape inside Forward): the net then
   * re-runs the reshape of every later layer after this one's forward. */
  int reshapes_in_forward;
  /* 1 when every top is a copy of bottom 0 (Split): with activation reuse
   * the tops may then share the bottom's buffer (core/net_reuse.c), and
   * forward copies only into a top that does not. */
  int tops_copy_bottom;
  /* The ONNX export: writes the nodes that compute this layer's tops
   * from its bottoms through the builder of export/onnx_graph.h; NULL:
   * the layer cannot be exported (the export fails naming it). */
  ns_status (*export_onnx)(ns_onnx *g, const ns_layer *l);
} ns_layer_ops;

struct ns_layer {
  const ns_layer_ops *ops;
  const Caffe__LayerParameter *param; /* borrowed from the net's definition */
  const char *name;                   /* param->name */
  ns_net *net;
  int n_bottom, n_top;
  ns_blob **bottom, **top; /* borrowed from the net */
  int n_params;
  ns_blob **params; /* owned by the layer, but where param_shared says */
  /* NULL, or per param 1 when params[j] is an earlier layer's blob (a
   * shared param, net_share.c): the owner frees it, the solver sees it
   * once. */
  int *param_shared;
  void *priv;       /* layer state; freed with ns_free after ops->destroy */
  ns_rng *rng;      /* the net's generator, for fillers */
  /* Training, set by the net after setup (all NULL / 0 in a bare layer):
   * loss weight per top (NULL: none), whether the net runs this layer's
   * backward, into which bottoms, and which params learn (lr_mult != 0). */
  float *loss_weight;
  int need_backward;
  int *bottom_need_backward;
  int *param_propagate_down;
  int *top_read_back; /* top j's diff is written by a later layer's backward */
  /* Set by the net's forward when the next layer is an in-place ReLU
   * (slope 0) on this layer's only top: forward applies it, the ReLU
   * layer is skipped. */
  int relu_fused;
  /* Set by the net's forward: how many in-place per-channel affine
   * layers (fuses_as_affine) after this one its forward applies; the
   * ReLU of relu_fused then follows the last of them. */
  int affine_fused;
  /* Set by the net's forward (activation reuse only: the top it skips is
   * seen by no one): an Eltwise sum after this layer (and its fused
   * affine layers) folded into it; forward writes top + residual into
   * residual_top, then the ReLU of relu_fused, which follows the sum.
   * NULL: none. */
  const ns_blob *residual;
  ns_blob *residual_top;
};

/* Whether backward must compute the gradient of param i (a bare layer
 * without a net, as in the tests, computes all). */
static inline int ns_layer_param_grad(const ns_layer *l, int i) {
  return !l->param_propagate_down || l->param_propagate_down[i];
}
/* The net's phase as seen by a layer. */
int ns_layer_phase_train(const ns_layer *l);

/* The registry: type name -> ops (NULL when we do not have it). */
const ns_layer_ops *ns_layer_find(const char *type);
/* Every registered type, NULL-terminated, for --help and tests. */
const ns_layer_ops *const *ns_layer_all(void);

/* Rank of param `index` of a layer of type `type` in the current format,
 * for reading legacy 4-D blobs (see ns_layer_ops.weight_rank). */
int ns_layer_param_rank(const char *type, int index);

/* Helpers for layer implementations. */
/* The geometry of a layer that keeps every cell in place. */
void ns_layer_geometry_pointwise(const ns_layer *l, ns_layer_geometry *g);
/* A window of ones: kernel 1, stride 1, pad 0, dilation 1. */
void ns_layer_geometry_window(ns_layer_geometry *g);
/* Creates param blob `index` (0-based, in order) with the given shape. */
ns_status ns_layer_add_param(ns_ctx *ctx, ns_layer *l, int num_axes, const int64_t *shape);
/* a, b ([channels]) composed with the affine_fused layers after l, in
 * order (l must sit in its net's layer array). */
void ns_layer_fused_affine(const ns_layer *l, float *a, float *b);
/* The owning net's params_epoch and params_exposed (see ns_net): for
 * layers that keep something made from their params. */
uint64_t ns_layer_params_epoch(const ns_layer *l);
int ns_layer_params_exposed(const ns_layer *l);
/* A scratch area of at least `count` floats shared by all layers of the
 * net (im2col and friends); valid until the next call. */
float *ns_layer_scratch(ns_ctx *ctx, ns_layer *l, int64_t count);
/* Records an error prefixed with the layer's name and type. */
ns_status ns_layer_fail(ns_ctx *ctx, const ns_layer *l, ns_status st, const char *fmt, ...)
    NS_PRINTF(4, 5);

#endif
