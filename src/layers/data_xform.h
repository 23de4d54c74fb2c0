/* Caffe's DataTransformer (transform_param: crop, mirror, mean, scale),
 * shared by the data layers of data.c and data_db.c. */
#ifndef NS_LAYERS_DATA_XFORM_H
#define NS_LAYERS_DATA_XFORM_H

#include "core/layer.h"

#define MAX_MEAN_VALUES 64

typedef struct ns_xform {
  float scale;
  int crop, mirror, train;
  int n_mean;
  float mean_values[MAX_MEAN_VALUES];
  ns_ndarray mean; /* (C, H, W) from mean_file; count 0 if none */
} ns_xform;

/* Reads l's transform_param (and its mean_file). */
ns_status ns_xform_setup(ns_ctx *ctx, ns_layer *l, ns_xform *x);
/* Checks the transform fits samples of c x h x w; out_h/out_w after crop. */
ns_status ns_xform_check(ns_ctx *ctx, ns_layer *l, const ns_xform *x, int64_t c, int64_t h,
                         int64_t w, int64_t *out_h, int64_t *out_w);
/* (pixel - mean) * scale; at TRAIN a random crop and mirror, at TEST the
 * centre crop and no mirror; c x h x w in, c x out_h x out_w out. */
void ns_xform_apply(const ns_xform *x, ns_rng *rng, const float *src, int64_t c, int64_t h,
                    int64_t w, float *dst);

#endif
