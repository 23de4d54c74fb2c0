/* The Proposal layer's entry points, shared with the Python layer
 * (python.c), which runs py-faster-rcnn's rpn.proposal_layer through
 * them.  Only src/layers/ includes this. */
#ifndef NS_LAYERS_PROPOSAL_H
#define NS_LAYERS_PROPOSAL_H

#include "core/layer.h"

#define NS_PROPOSAL_MAX_ANCHOR_SET 64 /* ratios and scales, each */

typedef struct ns_proposal_config {
  int feat_stride, base_size;
  float min_size;
  int n_ratios, n_scales;
  float ratios[NS_PROPOSAL_MAX_ANCHOR_SET], scales[NS_PROPOSAL_MAX_ANCHOR_SET];
  int64_t pre_nms_topn, post_nms_topn; /* 0: no limit */
  float nms_thresh;
} ns_proposal_config;

/* generate_anchors' defaults: ratios 0.5, 1, 2 and scales 8, 16, 32. */
void ns_proposal_default_anchor_set(ns_proposal_config *c);
/* Checks the config and makes the layer's state (anchors included). */
ns_status ns_proposal_init(ns_ctx *ctx, ns_layer *l, const ns_proposal_config *cfg);
/* Anchors of py-faster-rcnn's generate_anchors(base_size, ratios, scales):
 * n_ratios * n_scales rows of (x1, y1, x2, y2), ratio-major. */
void ns_proposal_anchors(const ns_proposal_config *cfg, float *anchors);
ns_status ns_proposal_reshape(ns_ctx *ctx, ns_layer *l);
ns_status ns_proposal_forward(ns_ctx *ctx, ns_layer *l);
void ns_proposal_destroy(ns_ctx *ctx, ns_layer *l);

#endif
