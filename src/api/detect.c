/* Detection through an SSD net: one image preprocessed into the net's
 * input, a forward pass, and the DetectionOutput rows of one image as
 * boxes in that image's pixels (what OpenCV's SSD samples do with
 * `detections[0, 0, i, 3:7] * [w, h, w, h]`). */
#include <math.h>
#include <string.h>

#include "core/ctx.h"
#include "netsurg.h"

void ns_detections_free(ns_ctx *ctx, ns_detections *d) {
  if (!d) return;
  ns_free(ctx, d->boxes);
  d->boxes = NULL;
  d->count = 0;
}

ns_status ns_detections_read(ns_ctx *ctx, const ns_tensor *rows, int image, int width, int height,
                             float threshold, ns_detections *out) {
  memset(out, 0, sizeof *out);
  if (rows->num_axes < 1 || rows->shape[rows->num_axes - 1] != 7)
    return ns_fail(ctx, NS_ERR_USAGE,
                   "blob '%s' is not a DetectionOutput (its last axis should be 7: image_id, "
                   "label, score, xmin, ymin, xmax, ymax)",
                   rows->name);
  int64_t n = rows->count / 7;
  if (n > INT32_MAX) return ns_fail(ctx, NS_ERR_NET, "blob '%s': too many rows", rows->name);
  out->boxes = ns_calloc(ctx, (size_t)n + 1, sizeof *out->boxes);
  if (!out->boxes) return ctx->status;
  for (int64_t i = 0; i < n; i++) {
    const float *r = rows->data + i * 7;
    /* the fork's "no detection" row is (image, -1, -1, ...) */
    if (r[0] != (float)image || r[1] < 0.0f || !(r[2] >= threshold)) continue;
    ns_detection *d = &out->boxes[out->count++];
    d->label = (int)r[1];
    d->score = r[2];
    d->xmin = r[3] * (float)width;
    d->ymin = r[4] * (float)height;
    d->xmax = r[5] * (float)width;
    d->ymax = r[6] * (float)height;
  }
  return NS_OK;
}

ns_status ns_detect(ns_ctx *ctx, ns_net *net, int input, int output, const ns_transform *t,
                    const ns_image *im, float threshold, ns_detections *out) {
  memset(out, 0, sizeof *out);
  if (input < 0 || input >= ns_net_blob_count(net) || output < 0 ||
      output >= ns_net_blob_count(net))
    return ns_fail(ctx, NS_ERR_USAGE, "ns_detect: no such blob (input %d, output %d)", input,
                   output);
  ns_tensor in = ns_net_blob(net, input);
  if (in.num_axes != 4 || in.shape[0] < 1)
    return ns_fail(ctx, NS_ERR_USAGE, "ns_detect: input '%s' is not (N, C, H, W)", in.name);
  int64_t one_image = in.count / in.shape[0];
  if (ns_transform_preprocess(ctx, t, im, (int)in.shape[2], (int)in.shape[3], in.data,
                              one_image) != NS_OK ||
      ns_net_forward(ctx, net) != NS_OK)
    return ctx->status;
  ns_tensor rows = ns_net_blob(net, output);
  return ns_detections_read(ctx, &rows, 0, im->width, im->height, threshold, out);
}
