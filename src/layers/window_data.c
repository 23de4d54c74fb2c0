/* WindowData (R-CNN's fine-tuning input, Caffe's WindowDataLayer) is not
 * implemented: registered only so that a net naming it gets an error that
 * says what is missing, rather than "unknown type".  What it would take:
 * the window file's parser (image path, channels, height, width, then
 * per window class index, overlap, x1 y1 x2 y2), the per-batch sampling
 * of fg_fraction foreground windows (overlap >= fg_threshold) and the
 * rest background (overlap < bg_threshold), the crop with context_pad
 * and crop_mode "warp" or "square", mirroring, and the mean. */
#include "core/layer.h"

static ns_status window_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__WindowDataParameter *p = l->param->window_data_param;
  return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                       "WindowData is not supported: reading R-CNN's window file%s%s%s, sampling "
                       "foreground/background windows (fg_threshold, bg_threshold, fg_fraction) "
                       "and warping them with context_pad are not implemented; crop the windows "
                       "beforehand and feed them through ImageData or NpyData",
                       p && p->source ? " '" : "", p && p->source ? p->source : "",
                       p && p->source ? "'" : "");
}

static ns_status window_unreachable(ns_ctx *ctx, ns_layer *l) { return window_setup(ctx, l); }

const ns_layer_ops ns_window_data_ops = {
    .type = "WindowData",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 2,
    .max_tops = 2,
    .setup = window_setup,
    .reshape = window_unreachable,
    .forward = window_unreachable,
};
