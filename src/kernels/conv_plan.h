/* A convolution's plan, made when the layer is reshaped: which algorithm
 * runs its num items (im2col + GEMM, item after item or whole items per
 * thread, or Winograd: F(4x4, 3x3) or F(2x2, 5x5), strided kernels after
 * space-to-depth), the scratch its forward needs, and Winograd's
 * transformed weights, kept between forwards.
 *
 * The choice depends on the shape, the batch, the thread count and
 * whether the transformed weights are kept, never on the data; a forward
 * asks the plan instead of choosing again.  The weights are transformed
 * again when the net's params epoch moved (the library wrote params) or,
 * once views of the params have been handed out (writes through them go
 * unseen), when the weights differ from the copy kept of them (a pass
 * over the weights, several times cheaper than the transform).  Their
 * size depends on the kernel and channels alone, so a new plan (a new
 * input size) keeps them. */
#ifndef NS_KERNELS_CONV_PLAN_H
#define NS_KERNELS_CONV_PLAN_H

#include <stdint.h>

#include "core/ctx.h"
#include "kernels/conv2d.h"

typedef enum ns_conv_algo {
  NS_CONV_GEMM,         /* ns_conv2d per item, the threads inside each */
  NS_CONV_GEMM_BY_ITEM, /* ns_conv2d, whole items per thread */
  NS_CONV_GEMM_BY_ROWS, /* im2col + GEMM by bands of output rows, a band per task */
  NS_CONV_WINOGRAD,     /* ns_winograd_conv */
  NS_CONV_DEPTHWISE     /* ns_depthwise_conv: one filter per channel */
} ns_conv_algo;

/* Winograd's transformed weights, kept between forwards. */
typedef struct ns_conv_weight_cache {
  float *u;       /* ns_winograd_weights_count floats, or NULL */
  float *w_copy;  /* the weights u was made from, once views are out */
  uint64_t epoch; /* the params epoch u was made at */
  int valid, copied;
} ns_conv_weight_cache;

typedef struct ns_conv_plan {
  ns_conv2d_shape shape;
  int64_t num;
  int threads; /* as given (0 = all) */
  ns_conv_algo algo;
  int cached;            /* Winograd from the cache's weights */
  int wino_tile;         /* Winograd: m of F(m x m, r x r) */
  int space_to_depth;    /* Winograd: a strided kernel, rearranged */
  int64_t band_rows;     /* GEMM by rows: output rows per band */
  int64_t scratch_count; /* floats; -1 on overflow */
  ns_conv_weight_cache cache;
} ns_conv_plan;

/* (Re)chooses for num items of shape s on `threads` threads; cache: the
 * transformed weights will be kept (ns_conv_plan_weights).  Keeps the
 * cache. */
void ns_conv_plan_choose(ns_conv_plan *p, const ns_conv2d_shape *s, int64_t num, int threads,
                         int cache);
/* The transformed weights for a forward with weights w (w_count floats)
 * at params epoch `epoch` (`exposed`: views are out), made again when
 * stale; NULL when the plan keeps none or memory ran short (then the
 * forward runs ns_conv_plan_uncached's plan: slower, not an error). */
const float *ns_conv_plan_weights(ns_ctx *ctx, ns_conv_plan *p, const float *w, int64_t w_count,
                                  uint64_t epoch, int exposed);
/* The same choice without kept weights (no cache of its own). */
ns_conv_plan ns_conv_plan_uncached(const ns_conv_plan *p);
/* num items x -> y; u: ns_conv_plan_weights's answer (NULL when the plan
 * is not cached); epi: as ns_conv2d's (the depthwise plan takes no scale:
 * fold it into its weights); scratch: scratch_count floats, 64-byte
 * aligned. */
void ns_conv_plan_run(const ns_conv_plan *p, const float *w, const float *u,
                      const ns_conv_epi *epi, const float *x, float *y, float *scratch);
/* "GEMM", "GEMM by item", "Winograd F(4x4, 3x3)", ... with
 * ", space-to-depth" for a strided kernel. */
const char *ns_conv_plan_name(const ns_conv_plan *p, char *buf, size_t size);
/* Frees the cache. */
void ns_conv_plan_free(ns_ctx *ctx, ns_conv_plan *p);

#endif
