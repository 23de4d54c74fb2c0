/* Fast/Faster R-CNN and R-FCN layers: ROIPooling, PSROIPooling, Proposal
 * and the Python layer's proposal mapping.  Every expected value is worked
 * by hand from the forks' formulas (quoted in each test); the anchors are
 * the table printed in py-faster-rcnn's generate_anchors.py (Shaoqing
 * Ren's MATLAB anchors, 1-based, so each is one more than ours).
 * ROIPooling's backward is checked against central differences. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/layer.h"
#include "layers/proposal.h"
#include "netsurg.h"
#include "support/layer_harness.h"
#include "support/testutil.h"

/* x[i] = i + offset: on a 4x4 map, x[h][w] = 4h + w + offset (a negative
 * offset makes an empty bin's 0 stand out). */
static void ramp(float *x, int n, float offset) {
  for (int i = 0; i < n; i++) x[i] = (float)i + offset;
}

static lh_harness *roi_layer(Caffe__ROIPoolingParameter *p, const float *x, int n_rois,
                             const float *rois) {
  lh_harness *h = lh_create("ROIPooling");
  assert_non_null(h);
  h->param.roi_pooling_param = p;
  const int64_t xs[4] = {1, 1, 4, 4}, rs[2] = {n_rois, 5};
  assert_non_null(lh_add_bottom(h, 4, xs, x));
  assert_non_null(lh_add_bottom(h, 2, rs, rois));
  lh_add_top(h);
  return h;
}

/* ROI 0, scale 1, (0, 0)-(3, 3): roi 4x4, bins of 2: maxima at (1, 1),
 * (1, 3), (3, 1), (3, 3).  ROI 1, scale 0.5 of (1, 1)-(5, 3): round(0.5)
 * = 1, round(2.5) = 3, round(1.5) = 2 (halves away from zero), roi_w 3,
 * roi_h 2, bin_w 1.5: columns [1, 3) and [2, 4), rows [1, 2) and [2, 3).
 * ROI 2 off the map: every bin empty, 0. */
static void test_roi_pooling_forward(void **state) {
  float x[16];
  ramp(x, 16, -100);
  Caffe__ROIPoolingParameter p = CAFFE__ROIPOOLING_PARAMETER__INIT;
  p.pooled_h = p.pooled_w = 2;
  p.spatial_scale = 1;
  const float rois[10] = {0, 0, 0, 3, 3, 0, 10, 10, 12, 12};
  lh_harness *h = roi_layer(&p, x, 2, rois);
  assert_int_equal(lh_run(h), NS_OK);
  const float want[8] = {-95, -93, -87, -85, 0, 0, 0, 0};
  assert_int_equal(h->top[0]->count, 8);
  for (int i = 0; i < 8; i++) assert_true(h->top[0]->data[i] == want[i]);
  lh_destroy(h);

  p.spatial_scale = 0.5f;
  const float roi[5] = {0, 1, 1, 5, 3};
  h = roi_layer(&p, x, 1, roi);
  assert_int_equal(lh_run(h), NS_OK);
  const float want_half[4] = {-94, -93, -90, -89};
  for (int i = 0; i < 4; i++) assert_true(h->top[0]->data[i] == want_half[i]);
  lh_destroy(h);
}

/* E = sum w_i y_i; dE/dx by central differences (h = 1e-3; the random
 * values are far apart, so no max changes hands) against backward. */
static void test_roi_pooling_gradient(void **state) {
  float x[16];
  for (int i = 0; i < 16; i++) x[i] = (float)((i * 7) % 16) * 0.5f;
  Caffe__ROIPoolingParameter p = CAFFE__ROIPOOLING_PARAMETER__INIT;
  p.pooled_h = 2;
  p.pooled_w = 3;
  p.spatial_scale = 1;
  /* the third ROI is cell (0, 0) alone: its max sits at index 0 */
  const float rois[15] = {0, 0, 0, 3, 3, 0, 1, 0, 3, 2, 0, 0, 0, 0, 0};
  lh_harness *h = roi_layer(&p, x, 3, rois);
  assert_int_equal(lh_run(h), NS_OK);
  ns_blob *top = h->top[0], *b = h->bottom[0];
  int64_t n = top->count;
  float w[64];
  for (int64_t i = 0; i < n; i++) w[i] = 0.25f + (float)(i % 5);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, top), NS_OK);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, b), NS_OK);
  assert_int_equal(ns_blob_ensure_diff(h->ctx, h->bottom[1]), NS_OK);
  memcpy(top->diff, w, (size_t)n * sizeof *w);
  const int down[2] = {1, 0};
  assert_int_equal(h->layer.ops->backward(h->ctx, &h->layer, down), NS_OK);
  for (int i = 0; i < 16; i++) {
    double e[2];
    for (int sgn = 0; sgn < 2; sgn++) {
      b->data[i] = x[i] + (sgn ? -1e-3f : 1e-3f);
      assert_int_equal(lh_rerun(h), NS_OK);
      e[sgn] = 0;
      for (int64_t j = 0; j < n; j++) e[sgn] += w[j] * top->data[j];
    }
    b->data[i] = x[i];
    assert_true(fabs((e[0] - e[1]) / 2e-3 - b->diff[i]) < 1e-2);
  }
  lh_destroy(h);
}

static void test_roi_pooling_bad_input(void **state) {
  float x[16] = {0};
  Caffe__ROIPoolingParameter p = CAFFE__ROIPOOLING_PARAMETER__INIT;
  p.pooled_h = 2; /* pooled_w 0 */
  const float rois[5] = {0, 0, 0, 3, 3};
  lh_harness *h = roi_layer(&p, x, 1, rois);
  assert_int_equal(lh_run(h), NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "pooled_h pooled_w"));
  lh_destroy(h);
  p.pooled_w = 2;
  const float far[5] = {1, 0, 0, 3, 3}; /* batch 1 of a batch of 1 */
  h = roi_layer(&p, x, 1, far);
  assert_int_equal(lh_run(h), NS_ERR_INPUT);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "batch index"));
  lh_destroy(h);
}

static lh_harness *psroi_layer(Caffe__PSROIPoolingParameter *p, const float *x, const float *roi) {
  lh_harness *h = lh_create("PSROIPooling");
  assert_non_null(h);
  h->param.psroi_pooling_param = p;
  const int64_t xs[4] = {1, 4, 4, 4}, rs[2] = {1, 5};
  assert_non_null(lh_add_bottom(h, 4, xs, x));
  assert_non_null(lh_add_bottom(h, 2, rs, roi));
  lh_add_top(h);
  return h;
}

/* Channel c holds 10c + 4h + w; output_dim 1, group_size 2: bin (ph, pw)
 * averages channel 2ph + pw.  ROI (0, 0)-(3, 3) at scale 1: x2' = 3 + 1,
 * bins of 2x2, mean 10c + 8ph + 2pw + 2.5.  ROI (1, 1)-(4, 2) at scale
 * 0.5: corners 0.5, 0.5, 2.5, 1.5, bin_w 1, bin_h 0.5: rows [0, 1) and
 * [1, 2), columns [0, 2) and [1, 3). */
static void test_psroi_pooling_forward(void **state) {
  float x[64];
  for (int c = 0; c < 4; c++)
    for (int i = 0; i < 16; i++) x[c * 16 + i] = (float)(10 * c + i);
  Caffe__PSROIPoolingParameter p = CAFFE__PSROIPOOLING_PARAMETER__INIT;
  p.has_spatial_scale = p.has_output_dim = p.has_group_size = 1;
  p.spatial_scale = 1;
  p.output_dim = 1;
  p.group_size = 2;
  const float roi[5] = {0, 0, 0, 3, 3};
  lh_harness *h = psroi_layer(&p, x, roi);
  assert_int_equal(lh_run(h), NS_OK);
  const float want[4] = {2.5f, 14.5f, 30.5f, 42.5f};
  for (int i = 0; i < 4; i++) assert_true(fabsf(h->top[0]->data[i] - want[i]) < 1e-5f);
  lh_destroy(h);

  p.spatial_scale = 0.5f;
  const float half[5] = {0, 1, 1, 4, 2};
  h = psroi_layer(&p, x, half);
  assert_int_equal(lh_run(h), NS_OK);
  const float want_half[4] = {0.5f, 11.5f, 24.5f, 35.5f};
  for (int i = 0; i < 4; i++) assert_true(fabsf(h->top[0]->data[i] - want_half[i]) < 1e-5f);
  lh_destroy(h);
}

/* R-FCN declares the three fields `required`: a missing one is named. */
static void test_psroi_pooling_required_fields(void **state) {
  float x[64] = {0};
  Caffe__PSROIPoolingParameter p = CAFFE__PSROIPOOLING_PARAMETER__INIT;
  p.has_spatial_scale = p.has_output_dim = 1;
  p.spatial_scale = 1;
  p.output_dim = 1;
  const float roi[5] = {0, 0, 0, 3, 3};
  lh_harness *h = psroi_layer(&p, x, roi);
  assert_int_equal(lh_run(h), NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "group_size"));
  assert_non_null(strstr(ns_ctx_error(h->ctx), "required"));
  lh_destroy(h);
}

/* generate_anchors(16, [0.5, 1, 2], [8, 16, 32]): the MATLAB table in
 * generate_anchors.py's comment, less one (1-based there). */
static void test_proposal_anchors(void **state) {
  static const float matlab[9][4] = {
      {-83, -39, 100, 56},     {-175, -87, 192, 104},  {-359, -183, 376, 200},
      {-55, -55, 72, 72},      {-119, -119, 136, 136}, {-247, -247, 264, 264},
      {-35, -79, 52, 96},      {-79, -167, 96, 184},   {-167, -343, 184, 360}};
  ns_proposal_config c = {.base_size = 16};
  ns_proposal_default_anchor_set(&c);
  float a[36];
  ns_proposal_anchors(&c, a);
  for (int i = 0; i < 9; i++)
    for (int k = 0; k < 4; k++) assert_true(a[4 * i + k] == matlab[i][k] - 1);
}

/* A 1x2 map, feat_stride 16, base 16, ratio 1, scales 1 and 2: anchors
 * (0, 0, 15, 15) and (-8, -8, 23, 23), shifted by 16 in x for column 1.
 * Zero deltas decode to (x1, y1, x1 + w, y1 + h) (bbox_transform_inv's
 * pcx +- pw / 2), clipped to the 100x100 image:
 *   i0 (0, 0, 16, 16) score 0.9    i1 (0, 0, 24, 24) score 0.8
 *   i2 (16, 0, 32, 16) score 0.7   i3 (8, 0, 40, 24) score 0.6
 * IoU with +1 areas: i1/i0 289/625 = 0.462, i2/i0 17/561, i3/i0 153/961,
 * i3/i2 289/825 = 0.350, i3/i1 425/1025 = 0.415.  NMS at 0.4 keeps i0, i2,
 * i3 (i1 suppressed by i0); at min_size 20 only i1 (25 wide) and i3 (33)
 * pass, and i3 falls to i1. */
static lh_harness *proposal_layer(Caffe__ProposalParameter *p) {
  static const float ratio[1] = {1}, scale[2] = {1, 2};
  p->n_ratio = 1;
  p->ratio = (float *)ratio;
  p->n_scale = 2;
  p->scale = (float *)scale;
  p->nms_thresh = 0.4f;
  p->post_nms_topn = 4;
  lh_harness *h = lh_create("Proposal");
  assert_non_null(h);
  h->param.proposal_param = p;
  /* channels: background a0, a1, foreground a0, a1; columns x0, x1 */
  const float cls[8] = {0, 0, 0, 0, 0.9f, 0.7f, 0.8f, 0.6f}, info[3] = {100, 100, 1};
  const int64_t cs[4] = {1, 4, 1, 2}, ds[4] = {1, 8, 1, 2}, is[2] = {1, 3};
  assert_non_null(lh_add_bottom(h, 4, cs, cls));
  assert_non_null(lh_add_bottom(h, 4, ds, NULL));
  assert_non_null(lh_add_bottom(h, 2, is, info));
  lh_add_top(h);
  lh_add_top(h);
  return h;
}

static void test_proposal_nms_survivors(void **state) {
  Caffe__ProposalParameter p = CAFFE__PROPOSAL_PARAMETER__INIT;
  p.min_size = 0;
  lh_harness *h = proposal_layer(&p);
  assert_int_equal(lh_run(h), NS_OK);
  const float want[20] = {0, 0, 0, 16, 16, 0, 16, 0, 32, 16, 0, 8, 0, 40, 24, 0, 0, 0, 0, 0};
  const float scores[4] = {0.9f, 0.7f, 0.6f, 0};
  assert_int_equal(h->top[0]->shape[0], 4);
  for (int i = 0; i < 20; i++) assert_true(h->top[0]->data[i] == want[i]);
  for (int i = 0; i < 4; i++) assert_true(h->top[1]->data[i] == scores[i]);
  lh_destroy(h);

  Caffe__ProposalParameter q = CAFFE__PROPOSAL_PARAMETER__INIT;
  q.min_size = 20;
  h = proposal_layer(&q);
  assert_int_equal(lh_run(h), NS_OK);
  const float want_big[10] = {0, 0, 0, 24, 24, 0, 0, 0, 0, 0};
  for (int i = 0; i < 10; i++) assert_true(h->top[0]->data[i] == want_big[i]);
  lh_destroy(h);
}

/* Deltas (0.5, 0, ln 2, 0) on anchor (0, 0, 15, 15): w 16, cx 8, pcx 16,
 * pw 32: x from 0 to 32; y unchanged (0, 16).  im_info 20 high clips y2
 * to 19. */
static void test_proposal_decodes_deltas(void **state) {
  Caffe__ProposalParameter p = CAFFE__PROPOSAL_PARAMETER__INIT;
  lh_harness *h = proposal_layer(&p);
  h->bottom[1]->data[0] = 0.5f;                 /* dx of a0 at x0 */
  h->bottom[1]->data[4] = logf(2.0f);           /* dw of a0 at x0 */
  h->bottom[2]->data[0] = 20;                   /* image height */
  p.min_size = 0;
  p.nms_thresh = 1;
  assert_int_equal(lh_run(h), NS_OK);
  const float *r = h->top[0]->data;
  assert_true(r[1] == 0 && r[2] == 0 && fabsf(r[3] - 32) < 1e-4f && r[4] == 16);
  assert_true(r[5 + 4] == 19); /* i1: (0, 0, 24, 24) clipped to 19 */
  lh_destroy(h);
}

static void capture_warning(void *user, const char *msg) {
  snprintf(user, 512, "%s", msg);
}

/* py-faster-rcnn's Python proposal layer runs natively, with a note;
 * any other Python layer is unsupported, naming module and class. */
static void test_python_layer(void **state) {
  Caffe__PythonParameter p = CAFFE__PYTHON_PARAMETER__INIT;
  p.module = "rpn.proposal_layer";
  p.layer = "ProposalLayer";
  p.param_str = "'feat_stride': 16\n'scales': !!python/tuple [1, 2]";
  lh_harness *h = lh_create("Python");
  assert_non_null(h);
  char note[512] = "";
  ns_ctx_set_warning_handler(h->ctx, capture_warning, note);
  h->param.python_param = &p;
  const int64_t cs[4] = {1, 12, 1, 2}, ds[4] = {1, 24, 1, 2}, is[2] = {1, 3};
  const float info[3] = {100, 100, 1};
  assert_non_null(lh_add_bottom(h, 4, cs, NULL));
  assert_non_null(lh_add_bottom(h, 4, ds, NULL));
  assert_non_null(lh_add_bottom(h, 2, is, info));
  lh_add_top(h);
  assert_int_equal(lh_run(h), NS_OK); /* 3 ratios x 2 scales = 6 anchors */
  assert_int_equal(h->top[0]->shape[0], 300);
  assert_non_null(strstr(note, "native Proposal"));
  lh_destroy(h);

  p.module = "roi_data_layer.layer";
  p.layer = "RoIDataLayer";
  h = lh_create("Python");
  h->param.python_param = &p;
  lh_add_top(h);
  assert_int_equal(lh_run(h), NS_ERR_UNSUPPORTED);
  assert_non_null(strstr(ns_ctx_error(h->ctx), "'roi_data_layer.layer'"));
  assert_non_null(strstr(ns_ctx_error(h->ctx), "'RoIDataLayer'"));
  lh_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roi_pooling_forward),   cmocka_unit_test(test_roi_pooling_gradient),
      cmocka_unit_test(test_roi_pooling_bad_input), cmocka_unit_test(test_psroi_pooling_forward),
      cmocka_unit_test(test_psroi_pooling_required_fields),
      cmocka_unit_test(test_proposal_anchors),      cmocka_unit_test(test_proposal_nms_survivors),
      cmocka_unit_test(test_proposal_decodes_deltas), cmocka_unit_test(test_python_layer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
