/* Interp, PSPNet's and DeepLab v2's bilinear resize (hszhao/PSPNet
 * src/caffe/layers/interp_layer.cpp over util/interp.cpp's
 * caffe_cpu_interp2, George Papandreou's).  One 4-D bottom (N, C, H, W),
 * one top (N, C, H2, W2).
 *
 * The input seen is the bottom cropped by pad_beg / pad_end (both <= 0:
 * the fork supports cropping only), of size Hin = H + pad_beg + pad_end,
 * starting at (-pad_beg, -pad_beg).  The output size, in the fork's order:
 *   shrink_factor s alone:   H2 = (Hin - 1) / s + 1
 *   zoom_factor z alone:     H2 = Hin + (Hin - 1)(z - 1)
 *   height and width:        H2 = height
 *   both factors:            shrink, then zoom
 * The grids' corners meet ("align corners"): output row h2 reads input
 * row r h2 with r = (Hin - 1) / (H2 - 1) (0 when H2 = 1), computed in
 * float as the fork does; h1 = floor, weight (r h2 - h1) on row h1 + 1
 * when it exists.  Same size: a plain copy.  Backward is the adjoint: each
 * top gradient goes back to its four taps with the same weights. */
#include "core/layer.h"
#include "export/onnx_layers.h"

typedef struct interp_state {
  int pad_beg, pad_end;
  int64_t in_h, in_w; /* the cropped input */
  int64_t out_h, out_w;
} interp_state;

static ns_status interp_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__InterpParameter *p = l->param->interp_param;
  if (!p)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "interp_param is required (height and width, zoom_factor or "
                         "shrink_factor)");
  if (l->top[0] == l->bottom[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "in-place computation is not supported (blob '%s')",
                         l->top[0]->name);
  interp_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->pad_beg = p->pad_beg;
  s->pad_end = p->pad_end;
  if (s->pad_beg > 0 || s->pad_end > 0)
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                         "interp_param.pad_beg %d / pad_end %d: only pads <= 0 (cropping) are "
                         "supported, as in the fork",
                         s->pad_beg, s->pad_end);
  return NS_OK;
}

/* One axis of the output size, the fork's cases in the fork's order. */
static ns_status out_size(ns_ctx *ctx, const ns_layer *l, int64_t in, int given, int64_t *out) {
  const Caffe__InterpParameter *p = l->param->interp_param;
  int shrink = p->has_shrink_factor, zoom = p->has_zoom_factor;
  if ((shrink && p->shrink_factor < 1) || (zoom && p->zoom_factor < 1))
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "interp_param: shrink_factor %d / zoom_factor %d must be >= 1",
                         p->shrink_factor, p->zoom_factor);
  int64_t h = in;
  if (shrink) h = (h - 1) / p->shrink_factor + 1;
  if (zoom) h = h + (h - 1) * ((int64_t)p->zoom_factor - 1); /* < 2^31 * 2^31: no overflow */
  if (!shrink && !zoom) {
    if (!p->has_height || !p->has_width)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "interp_param needs height and width, zoom_factor or shrink_factor");
    h = given;
  }
  *out = h;
  return NS_OK;
}

static ns_status interp_reshape(ns_ctx *ctx, ns_layer *l) {
  interp_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  if (b->num_axes != 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom '%s' must be 4-D (N, C, H, W), it has %d axes",
                         b->name, b->num_axes);
  const Caffe__InterpParameter *p = l->param->interp_param;
  s->in_h = b->shape[2] + s->pad_beg + s->pad_end;
  s->in_w = b->shape[3] + s->pad_beg + s->pad_end;
  if (s->in_h <= 0 || s->in_w <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "the pads leave a %lldx%lld input", (long long)s->in_h,
                         (long long)s->in_w);
  if (out_size(ctx, l, s->in_h, p->height, &s->out_h) != NS_OK ||
      out_size(ctx, l, s->in_w, p->width, &s->out_w) != NS_OK)
    return ctx->status;
  if (s->out_h <= 0 || s->out_w <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "output size %lldx%lld must be positive",
                         (long long)s->out_h, (long long)s->out_w);
  const int64_t shape[4] = {b->shape[0], b->shape[1], s->out_h, s->out_w};
  if (ns_blob_reshape(ctx, l->top[0], 4, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Interp): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* The fork's taps along one axis for output index o: source index i,
 * step to the next (0 or 1) and the weight of the next. */
typedef struct interp_tap {
  int64_t i, next;
  float w1;
} interp_tap;

static interp_tap tap(int64_t in, int64_t out, int64_t o) {
  const float r = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
  const float pos = r * (float)o;
  interp_tap t;
  t.i = (int64_t)pos;
  t.next = t.i < in - 1 ? 1 : 0;
  t.w1 = pos - (float)t.i;
  return t;
}

static ns_status interp_forward(ns_ctx *ctx, ns_layer *l) {
  (void)ctx;
  const interp_state *s = l->priv;
  const ns_blob *b = l->bottom[0];
  const int64_t planes = b->shape[0] * b->shape[1], H = b->shape[2], W = b->shape[3];
  const int64_t off = -(int64_t)s->pad_beg * W - s->pad_beg;
  const int same = s->in_h == s->out_h && s->in_w == s->out_w;
  for (int64_t p = 0; p < planes; p++) {
    const float *x = b->data + p * H * W + off;
    float *y = l->top[0]->data + p * s->out_h * s->out_w;
    for (int64_t oh = 0; oh < s->out_h; oh++) {
      const interp_tap th = tap(s->in_h, s->out_h, oh);
      for (int64_t ow = 0; ow < s->out_w; ow++) {
        if (same) {
          y[oh * s->out_w + ow] = x[oh * W + ow];
          continue;
        }
        const interp_tap tw = tap(s->in_w, s->out_w, ow);
        const float *q = x + th.i * W + tw.i;
        const float h1 = th.w1, h0 = 1.0f - h1, w1 = tw.w1, w0 = 1.0f - w1;
        y[oh * s->out_w + ow] = h0 * (w0 * q[0] + w1 * q[tw.next]) +
                                h1 * (w0 * q[th.next * W] + w1 * q[th.next * W + tw.next]);
      }
    }
  }
  return NS_OK;
}

static ns_status interp_backward(ns_ctx *ctx, ns_layer *l, const int *down) {
  (void)ctx;
  if (!down[0]) return NS_OK;
  const interp_state *s = l->priv;
  ns_blob *b = l->bottom[0];
  const int64_t planes = b->shape[0] * b->shape[1], H = b->shape[2], W = b->shape[3];
  const int64_t off = -(int64_t)s->pad_beg * W - s->pad_beg;
  for (int64_t i = 0; i < b->count; i++) b->diff[i] = 0.0f;
  for (int64_t p = 0; p < planes; p++) {
    float *dx = b->diff + p * H * W + off;
    const float *dy = l->top[0]->diff + p * s->out_h * s->out_w;
    for (int64_t oh = 0; oh < s->out_h; oh++) {
      const interp_tap th = tap(s->in_h, s->out_h, oh);
      for (int64_t ow = 0; ow < s->out_w; ow++) {
        const interp_tap tw = tap(s->in_w, s->out_w, ow);
        const float g = dy[oh * s->out_w + ow];
        float *q = dx + th.i * W + tw.i;
        if (s->in_h == s->out_h && s->in_w == s->out_w) {
          dx[oh * W + ow] += g;
          continue;
        }
        const float h1 = th.w1, h0 = 1.0f - h1, w1 = tw.w1, w0 = 1.0f - w1;
        q[0] += h0 * w0 * g;
        q[tw.next] += h0 * w1 * g;
        q[th.next * W] += h1 * w0 * g;
        q[th.next * W + tw.next] += h1 * w1 * g;
      }
    }
  }
  return NS_OK;
}

/* Four multiply-adds per output value. */
static double interp_flops(const ns_layer *l) { return 8.0 * (double)l->top[0]->count; }

const ns_layer_ops ns_interp_ops = {
    .type = "Interp",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = interp_setup,
    .reshape = interp_reshape,
    .forward = interp_forward,
    .backward = interp_backward,
    .flops = interp_flops,
    .export_onnx = ns_onnx_export_interp,
};
