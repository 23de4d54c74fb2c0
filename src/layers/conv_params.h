/* The convolution family's parameters, read in one place for Convolution
 * and Deconvolution (as Caffe's BaseConvolutionLayer::LayerSetUp): the
 * channel axis and the spatial axes after it, channels, num_output, group,
 * bias_term, and the per-axis geometry, each field given as a repeated
 * value (once, or once per spatial axis) or as its _h / _w pair.  The
 * weight and bias params with their fillers, which InnerProduct shares. */
#ifndef NS_LAYERS_CONV_PARAMS_H
#define NS_LAYERS_CONV_PARAMS_H

#include "core/layer.h"
#include "kernels/conv2d.h"

/* [0] height, [1] width; a 1-D convolution keeps [0] at kernel 1,
 * stride 1, pad 0, dilation 1. */
typedef struct ns_conv_geometry {
  int kernel[2], stride[2], pad[2], dilation[2];
} ns_conv_geometry;

typedef struct ns_conv_params {
  int axis, num_spatial; /* canonical channel axis; 1 or 2 spatial axes */
  int64_t channels, num_output, group;
  int bias_term;
  ns_conv_geometry geom;
} ns_conv_params;

/* Where the family's members differ. */
typedef struct ns_conv_rules {
  /* Fewest spatial axes: Convolution 1 (run as height 1), Deconvolution 2. */
  int min_spatial;
  /* Smallest dilation: Convolution 1; Deconvolution 0, accepted as Caffe
   * does (every tap on one pixel). */
  int min_dilation;
} ns_conv_rules;

/* kernel / stride / pad / dilation of p for num_spatial (1 or 2) axes;
 * errors name layer l and the field.  For the layer-table hooks that need
 * a convolution's receptive geometry. */
ns_status ns_conv_geometry_read(ns_ctx *ctx, const ns_layer *l,
                                const Caffe__ConvolutionParameter *p, int num_spatial,
                                int min_dilation, ns_conv_geometry *g);
/* Everything above from p and l's bottom 0, checked (group divides both
 * channel counts, num_output positive, ...). */
ns_status ns_conv_params_read(ns_ctx *ctx, const ns_layer *l, const Caffe__ConvolutionParameter *p,
                              const ns_conv_rules *rules, ns_conv_params *out);
/* The state of a set-up Convolution or Deconvolution layer starts with
 * its ns_conv_params: this is it. */
static inline const ns_conv_params *ns_conv_layer_params(const ns_layer *l) {
  return (const ns_conv_params *)l->priv;
}

/* One top per bottom, none in place. */
ns_status ns_conv_check_tops(ns_ctx *ctx, const ns_layer *l);
/* Every bottom shaped as bottom 0, with the channels and spatial axes
 * found at setup. */
ns_status ns_conv_check_bottoms(ns_ctx *ctx, const ns_layer *l, const ns_conv_params *p);
/* The 2-D convolution of p between an image (its input: a Deconvolution's
 * output) and a grid (its output: a Deconvolution's input); transposed:
 * channels and num_output swap (Deconvolution's weights are
 * [channels, num_output / group, kh, kw]). */
ns_conv2d_shape ns_conv_params_shape(const ns_conv_params *p, int transposed,
                                     const int64_t image[2], const int64_t grid[2]);

/* Param 0, the weights of shape wshape (rank axes), and when bias_term
 * param 1, the bias [num_output], filled by their fillers (NULL: Caffe's
 * default, constant 0). */
ns_status ns_conv_add_params(ns_ctx *ctx, ns_layer *l, int rank, const int64_t *wshape,
                             const Caffe__FillerParameter *weight_filler, int bias_term,
                             int64_t num_output, const Caffe__FillerParameter *bias_filler);

#endif
