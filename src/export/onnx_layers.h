/* The ONNX export hooks of the layers (ns_layer_ops.export_onnx), one per
 * layer type.  They live in src/export/onnx_layers_*.c, beside the
 * builder, and read what a built layer exposes: its LayerParameter (with
 * Caffe's defaults), its params, its bottoms' and tops' shapes and its
 * geometry hook; the layer files name them in their ops. */
#ifndef NS_EXPORT_ONNX_LAYERS_H
#define NS_EXPORT_ONNX_LAYERS_H

#include "core/layer.h"

#define NS_ONNX_HOOK(NAME) ns_status ns_onnx_export_##NAME(ns_onnx *g, const ns_layer *l)

/* windows and matrices: onnx_layers_window.c */
NS_ONNX_HOOK(convolution);
NS_ONNX_HOOK(deconv);
NS_ONNX_HOOK(inner_product);
NS_ONNX_HOOK(pooling);
NS_ONNX_HOOK(lrn);
/* element-wise and per-channel: onnx_layers_pointwise.c */
NS_ONNX_HOOK(relu);
NS_ONNX_HOOK(sigmoid);
NS_ONNX_HOOK(tanh);
NS_ONNX_HOOK(absval);
NS_ONNX_HOOK(bnll);
NS_ONNX_HOOK(power);
NS_ONNX_HOOK(elu);
NS_ONNX_HOOK(exp);
NS_ONNX_HOOK(log);
NS_ONNX_HOOK(prelu);
NS_ONNX_HOOK(clip);
NS_ONNX_HOOK(dropout);
NS_ONNX_HOOK(softmax);
NS_ONNX_HOOK(batchnorm);
NS_ONNX_HOOK(scale);
NS_ONNX_HOOK(bias);
/* shapes, several bottoms or tops: onnx_layers_shape.c */
NS_ONNX_HOOK(concat);
NS_ONNX_HOOK(split);
NS_ONNX_HOOK(eltwise);
NS_ONNX_HOOK(flatten);
NS_ONNX_HOOK(reshape);
NS_ONNX_HOOK(slice);
NS_ONNX_HOOK(crop);
/* top_k, out_max_val, ties as Caffe's: onnx_layers_argmax.c */
NS_ONNX_HOOK(argmax);
/* the rest of BVLC's compute layers: onnx_layers_bvlc.c */
NS_ONNX_HOOK(threshold);
NS_ONNX_HOOK(tile);
NS_ONNX_HOOK(reduction);
NS_ONNX_HOOK(mvn);
NS_ONNX_HOOK(swish);
NS_ONNX_HOOK(parameter);
NS_ONNX_HOOK(embed);
NS_ONNX_HOOK(silence);
/* the forks' and SSD's layers: onnx_layers_forks.c */
NS_ONNX_HOOK(interp);
NS_ONNX_HOOK(upsample);
NS_ONNX_HOOK(shuffle_channel);
NS_ONNX_HOOK(axpy);
NS_ONNX_HOOK(bn);
NS_ONNX_HOOK(relu6);
NS_ONNX_HOOK(normalize);
NS_ONNX_HOOK(permute);
NS_ONNX_HOOK(prior_box);

#endif
