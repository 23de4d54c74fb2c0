/* Proposal: the native form of py-faster-rcnn's Python proposal layer
 * (rbgirshick/py-faster-rcnn lib/rpn/proposal_layer.py, ProposalLayer),
 * with OpenCV dnn's proposal_param (feat_stride, base_size, min_size,
 * ratio, scale, pre_nms_topn, post_nms_topn, nms_thresh; defaults those of
 * py-faster-rcnn's TEST config: 16, 16, 16, -, -, 6000, 300, 0.7; no ratio
 * or scale: generate_anchors' 0.5, 1, 2 and 8, 16, 32).
 * Bottoms: rpn_cls_prob_reshape (1, 2A, H, W), rpn_bbox_pred (1, 4A, H,
 * W), im_info (height, width, scale).  For each cell (y, x) and anchor a
 * (index (y * W + x) * A + a), as proposal_layer.py's forward:
 *   anchor = generate_anchors[a] + (x, y, x, y) * feat_stride
 *   box = bbox_transform_inv(anchor, deltas): w = x2 - x1 + 1,
 *     cx = x1 + w / 2, pcx = dx * w + cx, pw = exp(dw) * w,
 *     box = (pcx - pw / 2, pcy - ph / 2, pcx + pw / 2, pcy + ph / 2)
 *   clip_boxes to [0, width - 1] x [0, height - 1];
 *   keep boxes with x2 - x1 + 1 >= min_size * scale (and y alike);
 *   sort by the foreground score (channel A + a) descending, keep
 *   pre_nms_topn, greedy NMS (IoU with +1 areas > nms_thresh suppresses),
 *   keep post_nms_topn; rows (0, x1, y1, x2, y2).
 * Top 0: (R, 5) with R = post_nms_topn (the row count is fixed at reshape,
 * as OpenCV's: rows past the survivors are 0; py-faster-rcnn's top has as
 * many rows as survivors).  Optional top 1: (R, 1) scores.  Ties in the
 * sort keep the lower index first (numpy's argsort leaves them open).
 * One image (proposal_layer.py asserts batch 1).  No backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/proposal.h"

typedef struct ranked {
  float score;
  int64_t index;
} ranked;

typedef struct proposal_state {
  ns_proposal_config cfg;
  int n_anchors;
  float *anchors;      /* n_anchors x 4 */
  float *boxes;        /* per candidate: x1, y1, x2, y2 */
  float *scores;       /* per candidate */
  ranked *order;       /* candidates that pass min_size, best first */
  int64_t cap;         /* candidates the buffers hold */
  int64_t rows;        /* top rows */
} proposal_state;

/* numpy's np.round: halves to even (generate_anchors rounds with it). */
static double round_half_even(double v) {
  double r = round(v);
  if (fabs(v - trunc(v)) == 0.5) r = 2.0 * round(v / 2.0);
  return r;
}

/* generate_anchors.py: a base box (0, 0, base - 1, base - 1); for each
 * ratio, ws = round(sqrt(w * h / ratio)), hs = round(ws * ratio) about the
 * same centre; for each scale, ws * scale, hs * scale. */
void ns_proposal_anchors(const ns_proposal_config *cfg, float *anchors) {
  double size = (double)cfg->base_size, ctr = 0.5 * (size - 1.0);
  for (int r = 0; r < cfg->n_ratios; r++) {
    double ws = round_half_even(sqrt(size * size / cfg->ratios[r]));
    double hs = round_half_even(ws * cfg->ratios[r]);
    for (int s = 0; s < cfg->n_scales; s++) {
      double w = ws * cfg->scales[s], h = hs * cfg->scales[s];
      float *a = anchors + 4 * (r * cfg->n_scales + s);
      a[0] = (float)(ctr - 0.5 * (w - 1.0));
      a[1] = (float)(ctr - 0.5 * (h - 1.0));
      a[2] = (float)(ctr + 0.5 * (w - 1.0));
      a[3] = (float)(ctr + 0.5 * (h - 1.0));
    }
  }
}

static ns_status check_config(ns_ctx *ctx, const ns_layer *l, const ns_proposal_config *c) {
  if (c->feat_stride <= 0 || c->base_size <= 0 || c->feat_stride > 65536 || c->base_size > 65536)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "feat_stride (%d) and base_size (%d) must be in [1, 65536]",
                         c->feat_stride, c->base_size);
  if (c->n_ratios <= 0 || c->n_scales <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "needs at least one ratio and one scale");
  for (int i = 0; i < c->n_ratios; i++)
    if (!(c->ratios[i] > 0) || !isfinite(c->ratios[i]))
      return ns_layer_fail(ctx, l, NS_ERR_NET, "ratio %g must be > 0", (double)c->ratios[i]);
  for (int i = 0; i < c->n_scales; i++)
    if (!(c->scales[i] > 0) || c->scales[i] > 65536)
      return ns_layer_fail(ctx, l, NS_ERR_NET, "scale %g must be in (0, 65536]", (double)c->scales[i]);
  if (!isfinite(c->min_size) || !isfinite(c->nms_thresh))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "min_size and nms_thresh must be finite");
  return NS_OK;
}

ns_status ns_proposal_init(ns_ctx *ctx, ns_layer *l, const ns_proposal_config *cfg) {
  if (check_config(ctx, l, cfg) != NS_OK) return ctx->status;
  proposal_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->cfg = *cfg;
  s->n_anchors = cfg->n_ratios * cfg->n_scales;
  s->anchors = ns_calloc(ctx, (size_t)s->n_anchors * 4, sizeof *s->anchors);
  if (!s->anchors) return ctx->status;
  ns_proposal_anchors(cfg, s->anchors);
  return NS_OK;
}

void ns_proposal_destroy(ns_ctx *ctx, ns_layer *l) {
  proposal_state *s = l->priv;
  if (!s) return;
  ns_free(ctx, s->anchors);
  ns_free(ctx, s->boxes);
  ns_free(ctx, s->scores);
  ns_free(ctx, s->order);
}

static ns_status check_bottoms(ns_ctx *ctx, const ns_layer *l, int a) {
  const ns_blob *cls = l->bottom[0], *deltas = l->bottom[1], *info = l->bottom[2];
  if (cls->num_axes != 4 || cls->shape[0] != 1 || cls->shape[1] != 2 * (int64_t)a)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottom 0 (scores) must be (1, 2 x %d anchors, H, W): one image, "
                         "as py-faster-rcnn's proposal layer", a);
  if (deltas->num_axes != 4 || deltas->shape[0] != 1 || deltas->shape[1] != 4 * (int64_t)a ||
      deltas->shape[2] != cls->shape[2] || deltas->shape[3] != cls->shape[3])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom 1 (bbox deltas) must be (1, 4 x %d, H, W)", a);
  if (info->count < 3)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "bottom 2 (im_info) needs height, width, scale");
  return NS_OK;
}

static ns_status grow(ns_ctx *ctx, proposal_state *s, int64_t n) {
  if (n <= s->cap) return NS_OK;
  float *boxes = ns_realloc_array(ctx, s->boxes, (size_t)n, 4 * sizeof *boxes);
  if (!boxes) return ctx->status;
  s->boxes = boxes;
  float *scores = ns_realloc_array(ctx, s->scores, (size_t)n, sizeof *scores);
  if (!scores) return ctx->status;
  s->scores = scores;
  ranked *order = ns_realloc_array(ctx, s->order, (size_t)n, sizeof *order);
  if (!order) return ctx->status;
  s->order = order;
  s->cap = n;
  return NS_OK;
}

ns_status ns_proposal_reshape(ns_ctx *ctx, ns_layer *l) {
  proposal_state *s = l->priv;
  if (check_bottoms(ctx, l, s->n_anchors) != NS_OK) return ctx->status;
  int64_t n = l->bottom[0]->shape[2] * l->bottom[0]->shape[3] * s->n_anchors;
  if (ns_check_tensor_size(ctx, n * 4, "proposal candidates") != NS_OK || grow(ctx, s, n) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (Proposal): ", l->name);
    return ctx->status;
  }
  s->rows = s->cfg.post_nms_topn > 0 ? s->cfg.post_nms_topn
            : s->cfg.pre_nms_topn > 0 && s->cfg.pre_nms_topn < n ? s->cfg.pre_nms_topn
                                                                 : n;
  const int64_t rois[2] = {s->rows, 5}, scores[2] = {s->rows, 1};
  if (ns_blob_reshape(ctx, l->top[0], 2, rois) != NS_OK ||
      (l->n_top > 1 && ns_blob_reshape(ctx, l->top[1], 2, scores) != NS_OK)) {
    ns_error_prefix(ctx, "layer '%s' (Proposal): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* bbox_transform_inv of one anchor, then clip_boxes, in float as numpy's
 * float32 arrays compute them. */
static void decode_box(const float *anchor, float shift_x, float shift_y, const float *d,
                       float im_w, float im_h, float *box) {
  float x1 = anchor[0] + shift_x, y1 = anchor[1] + shift_y;
  float w = anchor[2] + shift_x - x1 + 1.0f, h = anchor[3] + shift_y - y1 + 1.0f;
  float cx = x1 + 0.5f * w, cy = y1 + 0.5f * h;
  float pcx = d[0] * w + cx, pcy = d[1] * h + cy;
  float pw = expf(d[2]) * w, ph = expf(d[3]) * h;
  const float edge[4] = {pcx - 0.5f * pw, pcy - 0.5f * ph, pcx + 0.5f * pw, pcy + 0.5f * ph};
  const float hi[4] = {im_w - 1.0f, im_h - 1.0f, im_w - 1.0f, im_h - 1.0f};
  for (int k = 0; k < 4; k++) box[k] = fmaxf(fminf(edge[k], hi[k]), 0.0f);
}

/* Decodes every candidate; returns how many pass the min_size filter,
 * their indices in s->order. */
static int64_t decode_all(proposal_state *s, const ns_layer *l) {
  const ns_blob *cls = l->bottom[0], *deltas = l->bottom[1];
  const float *info = l->bottom[2]->data;
  int64_t height = cls->shape[2], width = cls->shape[3], plane = height * width, a_n = s->n_anchors;
  float min_size = s->cfg.min_size * info[2];
  int64_t n_kept = 0;
  for (int64_t y = 0; y < height; y++)
    for (int64_t x = 0; x < width; x++)
      for (int64_t a = 0; a < a_n; a++) {
        int64_t i = (y * width + x) * a_n + a, cell = y * width + x;
        float d[4];
        for (int k = 0; k < 4; k++) d[k] = deltas->data[(a * 4 + k) * plane + cell];
        float *box = s->boxes + 4 * i;
        decode_box(s->anchors + 4 * a, (float)(x * s->cfg.feat_stride),
                   (float)(y * s->cfg.feat_stride), d, info[1], info[0], box);
        s->scores[i] = cls->data[(a_n + a) * plane + cell];
        if (box[2] - box[0] + 1.0f >= min_size && box[3] - box[1] + 1.0f >= min_size)
          s->order[n_kept++] = (ranked){s->scores[i], i};
      }
  return n_kept;
}

/* Best score first; NaN last; ties by index. */
static int by_score(const void *pa, const void *pb) {
  const ranked *a = pa, *b = pb;
  int na = isnan(a->score), nb = isnan(b->score);
  if (na != nb) return na - nb;
  if (!na && a->score != b->score) return a->score > b->score ? -1 : 1;
  return (a->index > b->index) - (a->index < b->index);
}

/* py-faster-rcnn's nms: IoU over areas with +1 (pixel-inclusive). */
static float iou(const float *a, const float *b) {
  float w = fminf(a[2], b[2]) - fmaxf(a[0], b[0]) + 1.0f;
  float h = fminf(a[3], b[3]) - fmaxf(a[1], b[1]) + 1.0f;
  float inter = fmaxf(w, 0.0f) * fmaxf(h, 0.0f);
  float area_a = (a[2] - a[0] + 1.0f) * (a[3] - a[1] + 1.0f);
  float area_b = (b[2] - b[0] + 1.0f) * (b[3] - b[1] + 1.0f);
  return inter / (area_a + area_b - inter);
}

/* Greedy NMS over order[0, n): survivors are moved to the front, in
 * order; stops after `limit` (0: none).  Returns their count. */
static int64_t nms(ranked *order, int64_t n, const float *boxes, float thresh, int64_t limit) {
  int64_t kept = 0;
  for (int64_t i = 0; i < n && (limit <= 0 || kept < limit); i++) {
    const float *box = boxes + 4 * order[i].index;
    int suppressed = 0;
    for (int64_t j = 0; j < kept && !suppressed; j++)
      suppressed = iou(boxes + 4 * order[j].index, box) > thresh;
    if (!suppressed) order[kept++] = order[i];
  }
  return kept;
}

ns_status ns_proposal_forward(ns_ctx *ctx, ns_layer *l) {
  proposal_state *s = l->priv;
  const float *info = l->bottom[2]->data;
  if (!(info[0] >= 1) || !(info[1] >= 1) || !isfinite(info[0] * info[1] * info[2]))
    return ns_layer_fail(ctx, l, NS_ERR_INPUT,
                         "im_info (%g, %g, %g) must be an image height, width and scale",
                         (double)info[0], (double)info[1], (double)info[2]);
  int64_t n = decode_all(s, l);
  qsort(s->order, (size_t)n, sizeof *s->order, by_score);
  if (s->cfg.pre_nms_topn > 0 && n > s->cfg.pre_nms_topn) n = s->cfg.pre_nms_topn;
  int64_t limit = s->cfg.post_nms_topn > 0 && s->cfg.post_nms_topn < s->rows ? s->cfg.post_nms_topn
                                                                             : s->rows;
  int64_t kept = nms(s->order, n, s->boxes, s->cfg.nms_thresh, limit);
  float *rois = l->top[0]->data, *scores = l->n_top > 1 ? l->top[1]->data : NULL;
  memset(rois, 0, (size_t)l->top[0]->count * sizeof *rois);
  if (scores) memset(scores, 0, (size_t)l->top[1]->count * sizeof *scores);
  for (int64_t r = 0; r < kept; r++) {
    memcpy(rois + 5 * r + 1, s->boxes + 4 * s->order[r].index, 4 * sizeof *rois);
    if (scores) scores[r] = s->order[r].score;
  }
  return NS_OK;
}

/* proposal_param as OpenCV reads it; defaults py-faster-rcnn's TEST. */
static ns_status proposal_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__ProposalParameter *p = l->param->proposal_param;
  Caffe__ProposalParameter defaults = CAFFE__PROPOSAL_PARAMETER__INIT;
  if (!p) p = &defaults;
  if (p->n_ratio > NS_PROPOSAL_MAX_ANCHOR_SET || p->n_scale > NS_PROPOSAL_MAX_ANCHOR_SET)
    return ns_layer_fail(ctx, l, NS_ERR_NET, "proposal_param: at most %d ratios and %d scales",
                         NS_PROPOSAL_MAX_ANCHOR_SET, NS_PROPOSAL_MAX_ANCHOR_SET);
  ns_proposal_config c = {.feat_stride = (int)(p->feat_stride > 65536 ? 0 : p->feat_stride),
                          .base_size = (int)(p->base_size > 65536 ? 0 : p->base_size),
                          .min_size = (float)p->min_size,
                          .pre_nms_topn = p->pre_nms_topn,
                          .post_nms_topn = p->post_nms_topn,
                          .nms_thresh = p->nms_thresh};
  ns_proposal_default_anchor_set(&c);
  if (p->n_ratio) {
    c.n_ratios = (int)p->n_ratio;
    memcpy(c.ratios, p->ratio, p->n_ratio * sizeof *p->ratio);
  }
  if (p->n_scale) {
    c.n_scales = (int)p->n_scale;
    memcpy(c.scales, p->scale, p->n_scale * sizeof *p->scale);
  }
  return ns_proposal_init(ctx, l, &c);
}

void ns_proposal_default_anchor_set(ns_proposal_config *c) {
  static const float ratios[3] = {0.5f, 1.0f, 2.0f}, scales[3] = {8.0f, 16.0f, 32.0f};
  c->n_ratios = c->n_scales = 3;
  memcpy(c->ratios, ratios, sizeof ratios);
  memcpy(c->scales, scales, sizeof scales);
}

const ns_layer_ops ns_proposal_ops = {
    .type = "Proposal",
    .min_bottoms = 3,
    .max_bottoms = 3,
    .min_tops = 1,
    .max_tops = 2,
    .setup = proposal_setup,
    .reshape = ns_proposal_reshape,
    .forward = ns_proposal_forward,
    .destroy = ns_proposal_destroy,
};
