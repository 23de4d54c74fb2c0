/* DetectionOutput, as the SSD fork's DetectionOutputLayer (weiliu89/caffe,
 * branch ssd, src/caffe/layers/detection_output_layer.cpp, with the box
 * arithmetic of src/caffe/util/bbox_util.cpp).  Bottoms: the location
 * predictions (N, P*L*4 after Flatten; L = 1 when share_location, else
 * num_classes), the confidences (N, P*num_classes, usually softmaxed) and
 * PriorBox's (1, 2, P*4).  Top (1, 1, K, 7): rows
 *   image_id, label, score, xmin, ymin, xmax, ymax    (normalised to [0, 1])
 * K known only after the forward (reshape says 1).  Per image:
 *   1. decode (DecodeBBox), per prior p with variance v and offsets t:
 *      CORNER:       box = prior + v * t
 *      CENTER_SIZE:  centre = v0,1 * t0,1 * prior size + prior centre,
 *                    size = exp(v2,3 * t2,3) * prior size
 *      CORNER_SIZE:  box = prior + v * t * prior size (w for x, h for y)
 *      (v = 1 when variance_encoded_in_target);
 *   2. per class but background_label_id, ApplyNMSFast: the priors whose
 *      score > confidence_threshold, by score descending (ties: lower
 *      prior first, std::stable_sort), the first nms_param.top_k, each
 *      kept unless its Jaccard overlap with an already kept box exceeds
 *      the threshold (which shrinks by eta while above 0.5);
 *   3. if more than keep_top_k survive, the keep_top_k best scores over
 *      all classes (ties: lower class, then NMS order);
 *   4. rows by class ascending, within a class by NMS order.
 * When no image keeps a box the fork writes N rows: image_id, then six -1.
 * Overlap: boxes that do not touch give 0; else the intersection over
 * size1 + size2 - intersection, a size being w*h (0 if inverted).
 * OpenCV's clip (its field 1000) clamps decoded boxes to [0, 1] before
 * NMS; the fork has no such field.  The fork's save_output_param and
 * visualize write files and windows: read and ignored here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

typedef struct detect_state {
  int num_classes, num_loc_classes, share_location, background, code_type;
  int variance_in_target, clip, keep_top_k, top_k;
  float conf_threshold, nms_threshold, eta;
  int64_t num_priors;
} detect_state;

/* (score, class, order) for the sorts; `order` breaks ties stably. */
typedef struct scored {
  float score;
  int label;
  int64_t index, order;
} scored;

static ns_status detect_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__DetectionOutputParameter *p = l->param->detection_output_param;
  if (!p || !p->has_num_classes || p->num_classes == 0 || p->num_classes > (1u << 20))
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "detection_output_param.num_classes is required (1 to 2^20)");
  detect_state *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  l->priv = s;
  s->num_classes = (int)p->num_classes;
  s->share_location = p->has_share_location ? p->share_location : 1;
  s->num_loc_classes = s->share_location ? 1 : s->num_classes;
  s->background = p->has_background_label_id ? p->background_label_id : 0;
  s->code_type = p->has_code_type ? (int)p->code_type : CAFFE__PRIOR_BOX_PARAMETER__CODE_TYPE__CORNER;
  s->variance_in_target = p->variance_encoded_in_target;
  s->keep_top_k = p->has_keep_top_k ? p->keep_top_k : -1;
  s->conf_threshold = p->has_confidence_threshold ? p->confidence_threshold : -INFINITY;
  s->clip = p->clip;
  const Caffe__NonMaximumSuppressionParameter *nms = p->nms_param;
  s->nms_threshold = nms && nms->has_nms_threshold ? nms->nms_threshold : 0.3f;
  s->eta = nms && nms->has_eta ? nms->eta : 1.0f;
  s->top_k = nms && nms->has_top_k ? nms->top_k : -1;
  if (!(s->nms_threshold >= 0.0f))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "nms_param.nms_threshold must be >= 0");
  if (!(s->eta > 0.0f && s->eta <= 1.0f))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "nms_param.eta must be in (0, 1]");
  if (isnan(s->conf_threshold))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "confidence_threshold is NaN");
  return NS_OK;
}

static ns_status detect_reshape(ns_ctx *ctx, ns_layer *l) {
  detect_state *s = l->priv;
  const ns_blob *loc = l->bottom[0], *conf = l->bottom[1], *prior = l->bottom[2];
  if (loc->num_axes < 2 || conf->num_axes < 2 || prior->num_axes < 3)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "bottoms must be (N, P*4), (N, P*classes) and PriorBox's (1, 2, P*4)");
  if (loc->shape[0] != conf->shape[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "'%s' has %lld images, '%s' %lld", loc->name,
                         (long long)loc->shape[0], conf->name, (long long)conf->shape[0]);
  if (prior->shape[1] != 2 || prior->shape[2] % 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "prior bottom '%s' must be PriorBox's (1, 2, P*4): boxes and variances",
                         prior->name);
  s->num_priors = prior->shape[2] / 4;
  int64_t per_image = ns_blob_count_range(loc, 1, loc->num_axes);
  if (per_image != s->num_priors * s->num_loc_classes * 4)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "'%s' holds %lld values per image, %lld priors need %lld", loc->name,
                         (long long)per_image, (long long)s->num_priors,
                         (long long)(s->num_priors * s->num_loc_classes * 4));
  per_image = ns_blob_count_range(conf, 1, conf->num_axes);
  if (per_image != s->num_priors * s->num_classes)
    return ns_layer_fail(ctx, l, NS_ERR_NET,
                         "'%s' holds %lld scores per image, %lld priors x %d classes need %lld",
                         conf->name, (long long)per_image, (long long)s->num_priors,
                         s->num_classes, (long long)(s->num_priors * s->num_classes));
  int64_t shape[4] = {1, 1, 1, 7};
  if (ns_blob_reshape(ctx, l->top[0], 4, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (DetectionOutput): ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

/* BBoxSize: w * h, 0 for an inverted box. */
static float box_size(const float *b) {
  if (b[2] < b[0] || b[3] < b[1]) return 0.0f;
  return (b[2] - b[0]) * (b[3] - b[1]);
}

/* JaccardOverlap of bbox_util.cpp, sizes precomputed in b[4]. */
static float overlap(const float *a, const float *b) {
  if (b[0] > a[2] || b[2] < a[0] || b[1] > a[3] || b[3] < a[1]) return 0.0f;
  float iw = fminf(a[2], b[2]) - fmaxf(a[0], b[0]);
  float ih = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
  if (!(iw > 0.0f && ih > 0.0f)) return 0.0f;
  float inter = iw * ih;
  return inter / (a[4] + b[4] - inter);
}

/* Decodes one prediction t against prior pr with variance v into out[5]. */
static ns_status decode_box(ns_ctx *ctx, const ns_layer *l, const detect_state *s,
                            const float *pr, const float *v, const float *t, int64_t p,
                            float *out) {
  static const float unit[4] = {1.0f, 1.0f, 1.0f, 1.0f};
  if (s->variance_in_target) v = unit;
  float pw = pr[2] - pr[0], ph = pr[3] - pr[1];
  if (s->code_type != CAFFE__PRIOR_BOX_PARAMETER__CODE_TYPE__CORNER && !(pw > 0.0f && ph > 0.0f))
    return ns_layer_fail(ctx, l, NS_ERR_NET, "prior %lld has no width or height", (long long)p);
  switch (s->code_type) {
  case CAFFE__PRIOR_BOX_PARAMETER__CODE_TYPE__CORNER:
    for (int k = 0; k < 4; k++) out[k] = pr[k] + v[k] * t[k];
    break;
  case CAFFE__PRIOR_BOX_PARAMETER__CODE_TYPE__CENTER_SIZE: {
    float cx = v[0] * t[0] * pw + (pr[0] + pr[2]) / 2.0f;
    float cy = v[1] * t[1] * ph + (pr[1] + pr[3]) / 2.0f;
    float w = expf(v[2] * t[2]) * pw, h = expf(v[3] * t[3]) * ph;
    out[0] = cx - w / 2.0f;
    out[1] = cy - h / 2.0f;
    out[2] = cx + w / 2.0f;
    out[3] = cy + h / 2.0f;
    break;
  }
  case CAFFE__PRIOR_BOX_PARAMETER__CODE_TYPE__CORNER_SIZE:
    for (int k = 0; k < 4; k++) out[k] = pr[k] + v[k] * t[k] * (k % 2 ? ph : pw);
    break;
  default:
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED, "unknown code_type %d", s->code_type);
  }
  if (s->clip)
    for (int k = 0; k < 4; k++) out[k] = fminf(fmaxf(out[k], 0.0f), 1.0f);
  out[4] = box_size(out);
  return NS_OK;
}

static int by_score_desc(const void *pa, const void *pb) {
  const scored *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return a->order < b->order ? -1 : a->order > b->order;
}

/* ApplyNMSFast over one class: kept prior indices into keep, count returned. */
static int64_t nms_class(const detect_state *s, const float *boxes, const float *conf,
                         int label, scored *cand, int64_t *keep) {
  int64_t n = 0, kept = 0;
  for (int64_t p = 0; p < s->num_priors; p++) {
    float score = conf[p * s->num_classes + label];
    if (score > s->conf_threshold) cand[n] = (scored){score, label, p, p}, n++;
  }
  qsort(cand, (size_t)n, sizeof *cand, by_score_desc);
  if (s->top_k > -1 && s->top_k < n) n = s->top_k;
  float threshold = s->nms_threshold;
  for (int64_t i = 0; i < n; i++) {
    const float *box = boxes + cand[i].index * 5;
    int ok = 1;
    for (int64_t k = 0; k < kept && ok; k++) ok = overlap(box, boxes + keep[k] * 5) <= threshold;
    if (!ok) continue;
    keep[kept++] = cand[i].index;
    if (s->eta < 1.0f && threshold > 0.5f) threshold *= s->eta;
  }
  return kept;
}

typedef struct detect_work {
  float *boxes;     /* [loc classes][P][5] */
  scored *cand;     /* P */
  int64_t *keep;    /* [classes][P] */
  int64_t *n_keep;  /* [classes] */
  scored *all;      /* classes * P */
  float *rows;      /* growing, 7 per row */
  int64_t n_rows, cap_rows;
} detect_work;

static ns_status add_row(ns_ctx *ctx, detect_work *w, int64_t image, int label, float score,
                         const float *box) {
  if (w->n_rows == w->cap_rows) {
    int64_t cap = w->cap_rows ? 2 * w->cap_rows : 64;
    float *rows = ns_realloc_array(ctx, w->rows, (size_t)cap * 7, sizeof *rows);
    if (!rows) return ctx->status;
    w->rows = rows;
    w->cap_rows = cap;
  }
  float *r = w->rows + w->n_rows++ * 7;
  r[0] = (float)image;
  r[1] = (float)label;
  r[2] = score;
  memcpy(r + 3, box, 4 * sizeof *box);
  return NS_OK;
}

/* keep_top_k across classes: rewrites keep/n_keep with the best k. */
static void keep_best(const detect_state *s, const float *conf, detect_work *w) {
  int64_t n = 0, P = s->num_priors;
  for (int c = 0; c < s->num_classes; c++)
    for (int64_t j = 0; j < w->n_keep[c]; j++, n++) {
      int64_t p = w->keep[c * P + j];
      w->all[n] = (scored){conf[p * s->num_classes + c], c, p, n};
    }
  if (n <= s->keep_top_k) return;
  qsort(w->all, (size_t)n, sizeof *w->all, by_score_desc);
  memset(w->n_keep, 0, (size_t)s->num_classes * sizeof *w->n_keep);
  for (int64_t i = 0; i < s->keep_top_k; i++) {
    int c = w->all[i].label;
    w->keep[c * P + w->n_keep[c]++] = w->all[i].index;
  }
}

static ns_status detect_image(ns_ctx *ctx, ns_layer *l, detect_work *w, int64_t image) {
  const detect_state *s = l->priv;
  int64_t P = s->num_priors;
  const float *loc = l->bottom[0]->data + image * P * s->num_loc_classes * 4;
  const float *conf = l->bottom[1]->data + image * P * s->num_classes;
  const float *prior = l->bottom[2]->data;
  for (int c = 0; c < s->num_loc_classes; c++) {
    if (!s->share_location && c == s->background) continue;
    for (int64_t p = 0; p < P; p++)
      if (decode_box(ctx, l, s, prior + p * 4, prior + (P + p) * 4,
                     loc + (p * s->num_loc_classes + c) * 4, p,
                     w->boxes + (c * P + p) * 5) != NS_OK)
        return ctx->status;
  }
  for (int c = 0; c < s->num_classes; c++) {
    const float *boxes = w->boxes + (s->share_location ? 0 : c) * P * 5;
    w->n_keep[c] = c == s->background ? 0 : nms_class(s, boxes, conf, c, w->cand, w->keep + c * P);
  }
  if (s->keep_top_k > -1) keep_best(s, conf, w);
  for (int c = 0; c < s->num_classes; c++)
    for (int64_t j = 0; j < w->n_keep[c]; j++) {
      int64_t p = w->keep[c * P + j];
      const float *box = w->boxes + ((s->share_location ? 0 : c) * P + p) * 5;
      if (add_row(ctx, w, image, c, conf[p * s->num_classes + c], box) != NS_OK)
        return ctx->status;
    }
  return NS_OK;
}

static void work_free(ns_ctx *ctx, detect_work *w) {
  ns_free(ctx, w->boxes);
  ns_free(ctx, w->cand);
  ns_free(ctx, w->keep);
  ns_free(ctx, w->n_keep);
  ns_free(ctx, w->all);
  ns_free(ctx, w->rows);
}

static ns_status write_rows(ns_ctx *ctx, ns_layer *l, const detect_work *w, int64_t num) {
  int64_t n = w->n_rows ? w->n_rows : num;
  int64_t shape[4] = {1, 1, n, 7};
  if (ns_blob_reshape(ctx, l->top[0], 4, shape) != NS_OK) {
    ns_error_prefix(ctx, "layer '%s' (DetectionOutput): ", l->name);
    return ctx->status;
  }
  float *out = l->top[0]->data;
  if (w->n_rows) {
    memcpy(out, w->rows, (size_t)n * 7 * sizeof *out);
    return NS_OK;
  }
  for (int64_t i = 0; i < n * 7; i++) out[i] = i % 7 ? -1.0f : (float)(i / 7);
  return NS_OK;
}

static ns_status detect_forward(ns_ctx *ctx, ns_layer *l) {
  const detect_state *s = l->priv;
  int64_t P = s->num_priors, C = s->num_classes, num = l->bottom[0]->shape[0];
  detect_work w = {0};
  w.boxes = ns_calloc(ctx, (size_t)(s->num_loc_classes * P * 5), sizeof *w.boxes);
  w.cand = ns_calloc(ctx, (size_t)P + 1, sizeof *w.cand);
  w.keep = ns_calloc(ctx, (size_t)(C * P) + 1, sizeof *w.keep);
  w.n_keep = ns_calloc(ctx, (size_t)C, sizeof *w.n_keep);
  w.all = ns_calloc(ctx, (size_t)(C * P) + 1, sizeof *w.all);
  ns_status st = ctx->status;
  if (w.boxes && w.cand && w.keep && w.n_keep && w.all) {
    st = NS_OK;
    for (int64_t i = 0; i < num && st == NS_OK; i++) st = detect_image(ctx, l, &w, i);
    if (st == NS_OK) st = write_rows(ctx, l, &w, num);
  }
  work_free(ctx, &w);
  return st;
}

const ns_layer_ops ns_detection_output_ops = {
    .type = "DetectionOutput",
    .min_bottoms = 3,
    .max_bottoms = 3,
    .min_tops = 1,
    .max_tops = 1,
    .setup = detect_setup,
    .reshape = detect_reshape,
    .forward = detect_forward,
    .reshapes_in_forward = 1, /* K rows, known after the forward */
};
