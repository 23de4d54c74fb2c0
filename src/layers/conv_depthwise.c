/* The forks' depthwise convolution types, run by Caffe's Convolution
 * (src/layers/conv.c):
 *
 * DepthwiseConvolution (yonghenglh6/DepthwiseConvolution, a faster
 * kernel for MobileNet-Caffe's grouped convolutions): the same layer as
 * Convolution, num_output and group as the file gives them ("replacing
 * the type is all", its README says).
 *
 * ConvolutionDepthwise (the conv_dw_layer.cpp of ShuffleNet's and
 * MobileNet-SSD's forks): one k x k filter per input channel, whatever
 * num_output and group say: weights (C, 1, kh, kw), bias (C), top C
 * channels, i.e. Convolution with num_output = group = C.  Kernel,
 * stride, pad and dilation as Convolution reads them. */
#include "core/layer.h"
#include "export/onnx_layers.h"

extern const ns_layer_ops ns_convolution_ops;

static ns_status depthwise_setup(ns_ctx *ctx, ns_layer *l) {
  return ns_convolution_ops.setup(ctx, l);
}

/* Convolution reads convolution_param in setup only: it sees a copy with
 * num_output and group set to the bottom's channels for the call. */
static ns_status conv_depthwise_setup(ns_ctx *ctx, ns_layer *l) {
  static const Caffe__ConvolutionParameter defaults = CAFFE__CONVOLUTION_PARAMETER__INIT;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes < 2 || b->shape[1] < 1 || b->shape[1] > UINT32_MAX)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' must be (N, C, H, W) with C >= 1",
                         b->name);
  const Caffe__LayerParameter *own = l->param;
  Caffe__LayerParameter per_channel = *own;
  Caffe__ConvolutionParameter conv = own->convolution_param ? *own->convolution_param : defaults;
  conv.has_num_output = conv.has_group = 1;
  conv.num_output = conv.group = (uint32_t)b->shape[1];
  if (conv.has_axis && conv.axis != 1)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED, "convolution_param.axis must be 1 here");
  per_channel.convolution_param = &conv;
  l->param = &per_channel;
  ns_status st = ns_convolution_ops.setup(ctx, l);
  l->param = own;
  return st;
}

static ns_status depthwise_reshape(ns_ctx *ctx, ns_layer *l) {
  return ns_convolution_ops.reshape(ctx, l);
}
static ns_status depthwise_forward(ns_ctx *ctx, ns_layer *l) {
  return ns_convolution_ops.forward(ctx, l);
}
static ns_status depthwise_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  return ns_convolution_ops.backward(ctx, l, down);
}
static void depthwise_destroy(ns_ctx *ctx, ns_layer *l) { ns_convolution_ops.destroy(ctx, l); }
static int depthwise_can_fuse_affine(const ns_layer *l) {
  return ns_convolution_ops.can_fuse_affine(l);
}
static double depthwise_flops(const ns_layer *l) { return ns_convolution_ops.flops(l); }
static void depthwise_geometry(const ns_layer *l, ns_layer_geometry *g) {
  ns_convolution_ops.geometry(l, g);
}

#define NS_DEPTHWISE_OPS(type_name, setup_fn, bottoms)                                          \
  {                                                                                             \
    .type = type_name, .min_bottoms = 1, .max_bottoms = bottoms, .min_tops = 1,                 \
    .max_tops = bottoms, .setup = setup_fn, .reshape = depthwise_reshape,                       \
    .forward = depthwise_forward, .backward = depthwise_backward, .destroy = depthwise_destroy, \
    .can_fuse_relu = 1, .can_fuse_affine = depthwise_can_fuse_affine, .weight_rank = 4,         \
    .flops = depthwise_flops, .geometry = depthwise_geometry,                                   \
    .export_onnx = ns_onnx_export_convolution,                                                  \
  }

const ns_layer_ops ns_depthwise_convolution_ops =
    NS_DEPTHWISE_OPS("DepthwiseConvolution", depthwise_setup, -1);
const ns_layer_ops ns_convolution_depthwise_ops =
    NS_DEPTHWISE_OPS("ConvolutionDepthwise", conv_depthwise_setup, 1);
