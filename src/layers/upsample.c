/* Upsample, in the two forms the forks give one type name.
 *
 * Two bottoms (x, mask), SegNet's unpooling (alexgkendall/caffe-segnet
 * src/caffe/layers/upsample_layer.cpp): the mask is the index
 * h * W2 + w of each value's place in the output plane, as the top mask
 * of a MAX Pooling writes it (Pooling with two tops); the top is zero but
 * top[mask[i]] = x[i], plane by plane.  Output size: upsample_h x
 * upsample_w when both are given (each > 1), else H scale_h - pad_out_h
 * by W scale_w - pad_out_w, with scale_h = scale_w = scale (default 2)
 * unless scale_h and scale_w are both given (each > 1); pad_out needs a
 * scale of 2.  Backward: dx[i] = dy[mask[i]]; the mask gets none.  An
 * index outside the output plane is an error here (the fork aborts).
 *
 * One bottom, the YOLO ports' nearest neighbour (ChenYingpeng/caffe-yolov3
 * caffe_layers/upsample_layer): top (N, C, H s, W s), top[h][w] =
 * x[h / s][w / s] with s = scale >= 1 (SegNet's other fields refused).  Backward sums each s x s
 * block of dy.  The YOLO files always give scale; when absent, SegNet's default 2 (our proto's)
 * applies. */
#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct upsample_state {
  int64_t scale_h, scale_w; /* 0 when the size is explicit */
  int pad_out_h, pad_out_w;
  int64_t out_h, out_w;
} upsample_state;

static ns_status read_segnet(ns_ctx *ctx, ns_layer *l, const Caffe__UpsampleParameter *p,
                             upsample_state *s) {
  if (p->has_upsample_h && p->has_upsample_w) {
    if (p->upsample_h <= 1 || p->upsample_w <= 1)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "upsample_param.upsample_h/_w %u x %u must be > 1",
                           p->upsample_h, p->upsample_w);
    s->out_h = p->upsample_h;
    s->out_w = p->upsample_w;
    return NS_OK;
  }
  if (p->has_scale_h != p->has_scale_w || (p->has_scale_h && p->has_scale))
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "upsample_param: give upsample_h and upsample_w, or scale, or scale_h "
                         "and scale_w");
  s->scale_h = p->has_scale_h ? p->scale_h : p->scale;
  s->scale_w = p->has_scale_w ? p->scale_w : p->scale;
  if (s->scale_h <= 1 || s->scale_w <= 1)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "upsample_param scale %lld x %lld must be > 1",
                         (long long)s->scale_h, (long long)s->scale_w);
  s->pad_out_h = p->pad_out_h;
  s->pad_out_w = p->pad_out_w;
  if ((s->pad_out_h && s->scale_h != 2) || (s->pad_out_w && s->scale_w != 2))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "upsample_param.pad_out_h/_w need a scale of 2");
  return NS_OK;
}

static ns_status upsample_setup(ns_ctx *ctx, ns_layer *l) {
  static const Caffe__UpsampleParameter defaults = CAFFE__UPSAMPLE_PARAMETER__INIT;
  const Caffe__UpsampleParameter *p =
      l->param->upsample_param ? l->param->upsample_param : &defaults;
  for (int i = 0; i < l->n_bottom; i++)
    if (l->top[0] == l->bottom[i])
      return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not supported (blob '%s')",
                           l->top[0]->name);
  upsample_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  if (l->n_bottom == 2) return read_segnet(ctx, l, p, s);
  /* the YOLO ports' message has scale alone: SegNet's other fields would
   * be ignored here, changing the size silently */
  if (p->has_scale_h || p->has_scale_w || p->has_pad_out_h || p->has_pad_out_w ||
      p->has_upsample_h || p->has_upsample_w)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "upsample_param: with one bottom (nearest neighbour) only scale applies; "
                         "scale_h/_w, pad_out_h/_w and upsample_h/_w are SegNet's two-bottom form");
  if (p->scale < 1) return ns_layer_fail(ctx, l, NS_ERR_NET, "upsample_param.scale must be >= 1");
  s->scale_h = s->scale_w = p->scale;
  return NS_OK;
}

static ns_status upsample_reshape(ns_ctx *ctx, ns_layer *l) {
  upsample_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes != 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' must be 4-D (N, C, H, W), it has %d axes",
                         b->name, b->num_axes);
  if (l->n_bottom == 2 && !ns_blob_same_shape(b, l->bottom[1]))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "the mask '%s' must have the shape of '%s'",
                         l->bottom[1]->name, b->name);
  if (s->scale_h) {
    int64_t h, w;
    if (!ns_mul_i64(b->shape[2], s->scale_h, &h) || !ns_mul_i64(b->shape[3], s->scale_w, &w))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "output size overflows (scale %lld)",
                           (long long)s->scale_h);
    s->out_h = h - s->pad_out_h;
    s->out_w = w - s->pad_out_w;
  }
  const int64_t shape[4] = {b->shape[0], b->shape[1], s->out_h, s->out_w};
  if (ns_blob_reshape(ctx, l->top[0], 4, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Upsample): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* The mask value as an index into the output plane, or -1 when it is
 * not one (negative, NaN, past the end). */
static int64_t mask_index(float m, int64_t plane) {
  if (!(m >= 0.0f) || m >= (float)plane) return -1;
  int64_t i = (int64_t)m;
  return i < plane ? i : -1;
}

static ns_status unpool_forward(ns_ctx *ctx, ns_layer *l) {
  const upsample_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  const int64_t in_plane = b->shape[2] * b->shape[3], out_plane = s->out_h * s->out_w;
  float *y = l->top[0]->data;
  for (int64_t i = 0; i < l->top[0]->count; i++) y[i] = 0.0f;
  for (int64_t i = 0; i < b->count; i++) {
    int64_t k = mask_index(l->bottom[1]->data[i], out_plane);
    if (k < 0)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "mask value %g is not an index in the %lldx%lld output plane (does "
                           "the scale match the pooling that wrote it?)",
                           (double)l->bottom[1]->data[i], (long long)s->out_h, (long long)s->out_w);
    y[(i / in_plane) * out_plane + k] = b->data[i];
  }
  return NS_OK;
}

static void nearest_forward(const upsample_state *s, const ns_blob *b, float *y) {
  const int64_t planes = b->shape[0] * b->shape[1], H = b->shape[2], W = b->shape[3];
  for (int64_t p = 0; p < planes; p++)
    for (int64_t oh = 0; oh < s->out_h; oh++)
      for (int64_t ow = 0; ow < s->out_w; ow++)
        *y++ = b->data[(p * H + oh / s->scale_h) * W + ow / s->scale_w];
}

static ns_status upsample_forward(ns_ctx *ctx, ns_layer *l) {
  if (l->n_bottom == 2) return unpool_forward(ctx, l);
  nearest_forward(l->priv, l->bottom[0], l->top[0]->data);
  return NS_OK;
}

static ns_status upsample_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  const upsample_state *s = l->priv;
  ns_blob *b = l->bottom[0];
  if (l->n_bottom == 2 && down[1]) /* the mask is an index: no gradient */
    for (int64_t i = 0; i < l->bottom[1]->count; i++) l->bottom[1]->diff[i] = 0.0f;
  if (!down[0]) return NS_OK;
  const int64_t H = b->shape[2], W = b->shape[3], out_plane = s->out_h * s->out_w;
  const float *dy = l->top[0]->diff;
  if (l->n_bottom == 2) {
    for (int64_t i = 0; i < b->count; i++) {
      int64_t k = mask_index(l->bottom[1]->data[i], out_plane);
      if (k < 0) return ns_layer_fail(ctx, l, NS_ERR_NET, "mask value out of the output plane");
      b->diff[i] = dy[(i / (H * W)) * out_plane + k];
    }
    return NS_OK;
  }
  for (int64_t i = 0; i < b->count; i++) b->diff[i] = 0.0f;
  const int64_t planes = b->shape[0] * b->shape[1];
  for (int64_t p = 0; p < planes; p++)
    for (int64_t oh = 0; oh < s->out_h; oh++)
      for (int64_t ow = 0; ow < s->out_w; ow++)
        b->diff[(p * H + oh / s->scale_h) * W + ow / s->scale_w] += *dy++;
  return NS_OK;
}

const ns_layer_ops ns_upsample_ops = {
    .type = "Upsample",
    .min_bottoms = 1,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .setup = upsample_setup,
    .reshape = upsample_reshape,
    .forward = upsample_forward,
    .backward = upsample_backward,
    .export_onnx = ns_onnx_export_upsample,
};
