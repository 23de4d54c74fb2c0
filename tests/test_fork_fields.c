/* The Caffe forks' fields in src/format/caffe.proto: read from text with
 * the values written out here, and read from binary at the numbers the
 * forks' own caffe.proto files give them.  The binary messages are encoded
 * byte by byte in this file (protobuf's wire format, not protobuf-c's
 * packer), with field numbers copied from the forks:
 *   weiliu89/caffe (branch ssd) src/caffe/proto/caffe.proto     SSD
 *   hszhao/PSPNet src/caffe/proto/caffe.proto                   BN (PSPNet)
 *   alexgkendall/caffe-segnet src/caffe/proto/caffe.proto       BN (SegNet)
 *   farmingyard/ShuffleNet README.md                           ShuffleChannel
 *   rbgirshick/caffe-fast-rcnn (fast-rcnn) caffe.proto          ROIPooling
 *   daijifeng001/caffe-rfcn (r-fcn) caffe.proto                 PSROIPooling
 * so a wrong number in our schema shows as a value that did not arrive.
 * Pooling's ceil_mode is checked by the sizes it gives (worked by hand). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "core/ctx.h"
#include "format/model_io.h"
#include "support/testutil.h"

/* ---- a tiny protobuf wire encoder -------------------------------------- */

typedef struct wbuf {
  uint8_t b[512];
  size_t n;
} wbuf;

static void put_varint(wbuf *w, uint64_t v) {
  do {
    assert_true(w->n < sizeof w->b);
    w->b[w->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
}

static void put_tag(wbuf *w, uint32_t field, int wire_type) {
  put_varint(w, ((uint64_t)field << 3) | (uint64_t)wire_type);
}

static void put_uint(wbuf *w, uint32_t field, uint64_t v) {
  put_tag(w, field, 0);
  put_varint(w, v);
}

/* A float as protobuf writes it: 4 little-endian bytes (wire type 5). */
static void put_float(wbuf *w, uint32_t field, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  put_tag(w, field, 5);
  for (int i = 0; i < 4; i++) {
    assert_true(w->n < sizeof w->b);
    w->b[w->n++] = (uint8_t)(u >> (8 * i));
  }
}

static void put_bytes(wbuf *w, uint32_t field, const void *p, size_t len) {
  put_tag(w, field, 2);
  put_varint(w, len);
  assert_true(w->n + len <= sizeof w->b);
  memcpy(w->b + w->n, p, len);
  w->n += len;
}

static void put_msg(wbuf *w, uint32_t field, const wbuf *inner) {
  put_bytes(w, field, inner->b, inner->n);
}

/* NetParameter { layer (100) { name (1), type (2), <field> { inner } } }
 * decoded by netsurg's reader (the binary path: the type tag 0x12 is not
 * text). */
static Caffe__NetParameter *decode_layer(ns_ctx *ctx, const char *type, uint32_t field,
                                         const wbuf *inner) {
  wbuf layer = {0}, net = {0};
  put_bytes(&layer, 1, "l", 1);
  put_bytes(&layer, 2, type, strlen(type));
  put_msg(&layer, field, inner);
  put_msg(&net, 100, &layer);
  Caffe__NetParameter *np = NULL;
  if (ns_parse_net_param(ctx, net.b, net.n, "fork.caffemodel", &np, NULL) != NS_OK)
    fail_msg("%s", ns_ctx_error(ctx));
  assert_int_equal(np->n_layer, 1);
  return np;
}

/* ---- binary, at the forks' numbers ------------------------------------- */

/* SSD: norm_param 206 {across_spatial 1, channel_shared 3, eps 4},
 * permute_param 202 {order 1}. */
static void test_ssd_normalize_permute_binary(void **state) {
  tu_fixture *fx = *state;
  wbuf norm = {0};
  put_uint(&norm, 1, 0);
  put_uint(&norm, 3, 0);
  put_float(&norm, 4, 1e-5f);
  Caffe__NetParameter *np = decode_layer(fx->ctx, "Normalize", 206, &norm);
  const Caffe__NormalizeParameter *n = np->layer[0]->norm_param;
  assert_non_null(n);
  assert_true(n->has_across_spatial && !n->across_spatial);
  assert_true(n->has_channel_shared && !n->channel_shared);
  assert_float_equal(n->eps, 1e-5f, 0);
  ns_net_param_free(fx->ctx, np);

  wbuf perm = {0};
  put_uint(&perm, 1, 0);
  put_uint(&perm, 1, 2);
  put_uint(&perm, 1, 3);
  put_uint(&perm, 1, 1);
  np = decode_layer(fx->ctx, "Permute", 202, &perm);
  const Caffe__PermuteParameter *p = np->layer[0]->permute_param;
  assert_non_null(p);
  assert_int_equal(p->n_order, 4);
  assert_int_equal(p->order[1], 2);
  assert_int_equal(p->order[3], 1);
  ns_net_param_free(fx->ctx, np);
}

/* SSD: prior_box_param 203 {min_size 1, max_size 2, aspect_ratio 3, flip 4,
 * clip 5, variance 6, step 10, offset 13}. */
static void test_ssd_prior_box_binary(void **state) {
  tu_fixture *fx = *state;
  wbuf pb = {0};
  put_float(&pb, 1, 30);
  put_float(&pb, 2, 60);
  put_float(&pb, 3, 2);
  put_float(&pb, 3, 3);
  put_uint(&pb, 4, 0);
  put_uint(&pb, 5, 1);
  for (int i = 0; i < 4; i++) put_float(&pb, 6, i < 2 ? 0.1f : 0.2f);
  put_float(&pb, 10, 8);
  put_float(&pb, 13, 0.25f);
  Caffe__NetParameter *np = decode_layer(fx->ctx, "PriorBox", 203, &pb);
  const Caffe__PriorBoxParameter *p = np->layer[0]->prior_box_param;
  assert_non_null(p);
  assert_int_equal(p->n_min_size, 1);
  assert_float_equal(p->min_size[0], 30, 0);
  assert_float_equal(p->max_size[0], 60, 0);
  assert_int_equal(p->n_aspect_ratio, 2);
  assert_float_equal(p->aspect_ratio[1], 3, 0);
  assert_true(p->has_flip && !p->flip);
  assert_true(p->has_clip && p->clip);
  assert_int_equal(p->n_variance, 4);
  assert_float_equal(p->variance[3], 0.2f, 0);
  assert_true(p->has_step);
  assert_float_equal(p->step, 8, 0);
  assert_float_equal(p->offset, 0.25f, 0);
  ns_net_param_free(fx->ctx, np);
}

/* SSD: detection_output_param 204 {num_classes 1, share_location 2,
 * background_label_id 3, nms_param 4 {nms_threshold 1, top_k 2},
 * save_output_param 5 {label_map_file 4}, code_type 6 (CENTER_SIZE = 2),
 * keep_top_k 7, variance_encoded_in_target 8, confidence_threshold 9}. */
static void test_ssd_detection_output_binary(void **state) {
  tu_fixture *fx = *state;
  wbuf nms = {0}, save = {0}, det = {0};
  put_float(&nms, 1, 0.45f);
  put_uint(&nms, 2, 400);
  put_bytes(&save, 4, "labels.prototxt", 15);
  put_uint(&det, 1, 21);
  put_uint(&det, 2, 0);
  put_uint(&det, 3, (uint64_t)(int64_t)-1); /* int32 -1: ten-byte varint */
  put_msg(&det, 4, &nms);
  put_msg(&det, 5, &save);
  put_uint(&det, 6, 2);
  put_uint(&det, 7, 200);
  put_uint(&det, 8, 1);
  put_float(&det, 9, 0.01f);
  Caffe__NetParameter *np = decode_layer(fx->ctx, "DetectionOutput", 204, &det);
  const Caffe__DetectionOutputParameter *d = np->layer[0]->detection_output_param;
  assert_non_null(d);
  assert_int_equal(d->num_classes, 21);
  assert_true(d->has_share_location && !d->share_location);
  assert_int_equal(d->background_label_id, -1);
  assert_non_null(d->nms_param);
  assert_float_equal(d->nms_param->nms_threshold, 0.45f, 0);
  assert_int_equal(d->nms_param->top_k, 400);
  assert_non_null(d->save_output_param);
  assert_string_equal(d->save_output_param->label_map_file, "labels.prototxt");
  assert_int_equal(d->code_type, CAFFE__PRIOR_BOX_PARAMETER__CODE_TYPE__CENTER_SIZE);
  assert_int_equal(d->keep_top_k, 200);
  assert_true(d->variance_encoded_in_target);
  assert_float_equal(d->confidence_threshold, 0.01f, 0);
  ns_net_param_free(fx->ctx, np);
}

/* PSPNet: bn_param 152 {momentum 3, eps 4, frozen 5}; SegNet: bn_param 45
 * {bn_mode 3 (INFERENCE = 1)}; ShuffleNet: shuffle_channel_param 164
 * {group 1}. */
static void test_bn_and_shuffle_binary(void **state) {
  tu_fixture *fx = *state;
  wbuf bn = {0};
  put_float(&bn, 3, 0.95f);
  put_float(&bn, 4, 1e-5f);
  put_uint(&bn, 5, 1);
  Caffe__NetParameter *np = decode_layer(fx->ctx, "BN", 152, &bn);
  const Caffe__BNParameter *b = np->layer[0]->bn_param;
  assert_non_null(b);
  assert_float_equal(b->momentum, 0.95f, 0);
  assert_float_equal(b->eps, 1e-5f, 0);
  assert_true(b->has_frozen && b->frozen);
  ns_net_param_free(fx->ctx, np);

  wbuf sbn = {0};
  put_uint(&sbn, 3, 1);
  np = decode_layer(fx->ctx, "BN", 45, &sbn);
  assert_non_null(np->layer[0]->segnet_bn_param);
  assert_int_equal(np->layer[0]->segnet_bn_param->bn_mode, CAFFE__BNPARAMETER__BNMODE__INFERENCE);
  ns_net_param_free(fx->ctx, np);

  wbuf sh = {0};
  put_uint(&sh, 1, 3);
  np = decode_layer(fx->ctx, "ShuffleChannel", 164, &sh);
  assert_non_null(np->layer[0]->shuffle_channel_param);
  assert_int_equal(np->layer[0]->shuffle_channel_param->group, 3);
  ns_net_param_free(fx->ctx, np);
}

/* Fast R-CNN: roi_pooling_param 8266711 {pooled_h 1, pooled_w 2,
 * spatial_scale 3}; R-FCN: psroi_pooling_param 10001 {spatial_scale 1,
 * output_dim 2, group_size 3}. */
static void test_roi_pooling_binary(void **state) {
  tu_fixture *fx = *state;
  wbuf roi = {0};
  put_uint(&roi, 1, 7);
  put_uint(&roi, 2, 6);
  put_float(&roi, 3, 0.0625f);
  Caffe__NetParameter *np = decode_layer(fx->ctx, "ROIPooling", 8266711, &roi);
  const Caffe__ROIPoolingParameter *r = np->layer[0]->roi_pooling_param;
  assert_non_null(r);
  assert_int_equal(r->pooled_h, 7);
  assert_int_equal(r->pooled_w, 6);
  assert_float_equal(r->spatial_scale, 0.0625f, 0);
  ns_net_param_free(fx->ctx, np);

  wbuf ps = {0};
  put_float(&ps, 1, 0.0625f);
  put_uint(&ps, 2, 21);
  put_uint(&ps, 3, 7);
  np = decode_layer(fx->ctx, "PSROIPooling", 10001, &ps);
  const Caffe__PSROIPoolingParameter *p = np->layer[0]->psroi_pooling_param;
  assert_non_null(p);
  assert_float_equal(p->spatial_scale, 0.0625f, 0);
  assert_int_equal(p->output_dim, 21);
  assert_int_equal(p->group_size, 7);
  ns_net_param_free(fx->ctx, np);
}

/* ---- text, every new message ------------------------------------------- */

static const char *fork_text =
    "layer { name: 'n' type: 'Normalize' bottom: 'x' top: 'n'\n"
    "  norm_param { across_spatial: false channel_shared: false eps: 1e-6\n"
    "    scale_filler { type: 'constant' value: 20 } } }\n"
    "layer { name: 'pb' type: 'PriorBox' bottom: 'n' bottom: 'x' top: 'pb'\n"
    "  prior_box_param { min_size: 30 max_size: 60 aspect_ratio: 2 flip: true clip: false\n"
    "    variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 img_h: 300 img_w: 200\n"
    "    step_h: 8 step_w: 16 offset: 0.5 width: 12 height: 24 } }\n"
    "layer { name: 'd' type: 'DetectionOutput' bottom: 'a' bottom: 'b' bottom: 'pb' top: 'd'\n"
    "  detection_output_param { num_classes: 2 code_type: CORNER_SIZE keep_top_k: 200\n"
    "    nms_param { nms_threshold: 0.45 top_k: 400 eta: 1 } clip: true\n"
    "    normalized_bbox: false\n"
    "    save_output_param { output_format: 'VOC' resize_param { resize_mode: WARP\n"
    "      height: 300 width: 300 interp_mode: LINEAR interp_mode: AREA } } } }\n"
    "layer { name: 'bn' type: 'BN' bottom: 'x' top: 'bn'\n"
    "  bn_param { slope_filler { type: 'constant' value: 1 } momentum: 0.95 eps: 1e-5\n"
    "    frozen: true } }\n"
    "layer { name: 'sbn' type: 'BN' bottom: 'x' top: 'sbn'\n"
    "  bn_param { scale_filler { type: 'constant' value: 1 } bn_mode: INFERENCE } }\n"
    "layer { name: 'i' type: 'Interp' bottom: 'x' top: 'i'\n"
    "  interp_param { zoom_factor: 8 pad_beg: 0 pad_end: -1 } }\n"
    "layer { name: 'u' type: 'Upsample' bottom: 'x' bottom: 'm' top: 'u'\n"
    "  upsample_param { scale: 2 upsample_h: 45 upsample_w: 60 pad_out_h: true } }\n"
    "layer { name: 's' type: 'ShuffleChannel' bottom: 'x' top: 's'\n"
    "  shuffle_channel_param { group: 3 } }\n"
    "layer { name: 'r' type: 'ROIPooling' bottom: 'x' bottom: 'rois' top: 'r'\n"
    "  roi_pooling_param { pooled_w: 7 pooled_h: 7 spatial_scale: 0.0625 } }\n"
    "layer { name: 'ps' type: 'PSROIPooling' bottom: 'x' bottom: 'rois' top: 'ps'\n"
    "  psroi_pooling_param { spatial_scale: 0.0625 output_dim: 21 group_size: 7 } }\n"
    "layer { name: 'pr' type: 'Proposal' bottom: 'a' bottom: 'b' bottom: 'im' top: 'pr'\n"
    "  proposal_param { feat_stride: 16 ratio: 0.5 ratio: 1 ratio: 2 scale: 8 scale: 16\n"
    "    nms_thresh: 0.7 post_nms_topn: 300 } }\n";

static Caffe__NetParameter *parse_text(ns_ctx *ctx, const char *text) {
  Caffe__NetParameter *np = NULL;
  if (ns_parse_net_param(ctx, (const unsigned char *)text, strlen(text), "fork.prototxt", &np,
                         NULL) != NS_OK)
    fail_msg("%s", ns_ctx_error(ctx));
  return np;
}

static void check_ssd_text(const Caffe__NetParameter *np) {
  const Caffe__NormalizeParameter *n = np->layer[0]->norm_param;
  assert_true(!n->across_spatial && !n->channel_shared);
  assert_float_equal(n->eps, 1e-6f, 0);
  assert_float_equal(n->scale_filler->value, 20, 0);
  const Caffe__PriorBoxParameter *p = np->layer[1]->prior_box_param;
  assert_int_equal(p->n_variance, 4);
  assert_int_equal(p->img_h, 300);
  assert_int_equal(p->img_w, 200);
  assert_float_equal(p->step_w, 16, 0);
  assert_float_equal(p->width[0], 12, 0);
  assert_float_equal(p->height[0], 24, 0);
  const Caffe__DetectionOutputParameter *d = np->layer[2]->detection_output_param;
  assert_int_equal(d->code_type, CAFFE__PRIOR_BOX_PARAMETER__CODE_TYPE__CORNER_SIZE);
  assert_true(d->share_location); /* SSD's default */
  assert_int_equal(d->background_label_id, 0);
  assert_float_equal(d->nms_param->eta, 1, 0);
  assert_true(d->has_clip && d->clip);
  assert_true(d->has_normalized_bbox && !d->normalized_bbox);
  const Caffe__ResizeParameter *r = d->save_output_param->resize_param;
  assert_int_equal(r->height, 300);
  assert_int_equal(r->n_interp_mode, 2);
  assert_int_equal(r->interp_mode[1], CAFFE__RESIZE_PARAMETER__INTERP_MODE__AREA);
}

static void check_other_forks_text(const Caffe__NetParameter *np) {
  const Caffe__BNParameter *b = np->layer[3]->bn_param;
  assert_float_equal(b->slope_filler->value, 1, 0);
  assert_float_equal(b->momentum, 0.95f, 0);
  assert_true(b->frozen);
  const Caffe__BNParameter *s = np->layer[4]->bn_param;
  assert_non_null(s->scale_filler);
  assert_int_equal(s->bn_mode, CAFFE__BNPARAMETER__BNMODE__INFERENCE);
  const Caffe__InterpParameter *i = np->layer[5]->interp_param;
  assert_int_equal(i->zoom_factor, 8);
  assert_int_equal(i->shrink_factor, 1); /* default */
  assert_int_equal(i->pad_end, -1);
  const Caffe__UpsampleParameter *u = np->layer[6]->upsample_param;
  assert_int_equal(u->scale, 2);
  assert_int_equal(u->upsample_h, 45);
  assert_int_equal(u->upsample_w, 60);
  assert_true(u->pad_out_h && !u->pad_out_w);
  assert_int_equal(np->layer[7]->shuffle_channel_param->group, 3);
  assert_int_equal(np->layer[8]->roi_pooling_param->pooled_w, 7);
  assert_int_equal(np->layer[9]->psroi_pooling_param->group_size, 7);
  const Caffe__ProposalParameter *pr = np->layer[10]->proposal_param;
  assert_int_equal(pr->n_ratio, 3);
  assert_int_equal(pr->n_scale, 2);
  assert_float_equal(pr->scale[1], 16, 0);
  assert_int_equal(pr->base_size, 16);     /* OpenCV's default */
  assert_int_equal(pr->pre_nms_topn, 6000); /* OpenCV's default */
  assert_int_equal(pr->post_nms_topn, 300);
}

/* Every new message reads from text with its values; packed by protobuf-c
 * and read back through the binary path, the net packs to the same bytes
 * (nothing lost or moved on the way). */
static void test_fork_messages_text_and_round_trip(void **state) {
  tu_fixture *fx = *state;
  Caffe__NetParameter *np = parse_text(fx->ctx, fork_text);
  assert_int_equal(np->n_layer, 11);
  check_ssd_text(np);
  check_other_forks_text(np);
  size_t len = caffe__net_parameter__get_packed_size(np);
  uint8_t *a = malloc(len), *b = malloc(len);
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(caffe__net_parameter__pack(np, a), len);
  Caffe__NetParameter *back = NULL;
  if (ns_parse_net_param(fx->ctx, a, len, "fork.caffemodel", &back, NULL) != NS_OK)
    fail_msg("%s", ns_ctx_error(fx->ctx));
  check_ssd_text(back);
  check_other_forks_text(back);
  assert_int_equal(caffe__net_parameter__get_packed_size(back), len);
  assert_int_equal(caffe__net_parameter__pack(back, b), len);
  assert_memory_equal(a, b, len);
  free(a);
  free(b);
  ns_net_param_free(fx->ctx, back);
  ns_net_param_free(fx->ctx, np);
}

/* ---- ceil_mode changes shapes, so it is implemented, not skipped -------- */

/* A 1x1x6x6 input, 3x3 max pooling, stride 2, no pad: rounding up gives
 * ceil((6 - 3) / 2) + 1 = 3, rounding down floor(3 / 2) + 1 = 2. */
static ns_status pooled_side(tu_fixture *fx, const char *rounding, int64_t *side) {
  char text[512], path[1024];
  snprintf(text, sizeof text,
           "layer { name: 'data' type: 'Input' top: 'data'\n"
           "  input_param { shape { dim: 1 dim: 1 dim: 6 dim: 6 } } }\n"
           "layer { name: 'pool' type: 'Pooling' bottom: 'data' top: 'pool'\n"
           "  pooling_param { pool: MAX kernel_size: 3 stride: 2 %s } }\n",
           rounding);
  tu_path(path, sizeof path, fx->dir, "pool.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_net *net = NULL;
  ns_status st = ns_net_load(fx->ctx, path, NULL, &net);
  if (st != NS_OK) return st;
  ns_tensor out = ns_net_blob(net, ns_net_find_blob(net, "pool"));
  assert_int_equal(out.num_axes, 4);
  assert_int_equal(out.shape[2], out.shape[3]);
  *side = out.shape[2];
  ns_net_destroy(net);
  return NS_OK;
}

static void test_pooling_ceil_mode(void **state) {
  tu_fixture *fx = *state;
  int64_t side = 0;
  assert_int_equal(pooled_side(fx, "", &side), NS_OK);
  assert_int_equal(side, 3);
  assert_int_equal(pooled_side(fx, "ceil_mode: true", &side), NS_OK);
  assert_int_equal(side, 3);
  assert_int_equal(pooled_side(fx, "ceil_mode: false", &side), NS_OK);
  assert_int_equal(side, 2);
  assert_int_equal(pooled_side(fx, "round_mode: FLOOR ceil_mode: false", &side), NS_OK);
  assert_int_equal(side, 2);
  assert_int_equal(pooled_side(fx, "round_mode: CEIL ceil_mode: false", &side), NS_ERR_NET);
  assert_non_null(strstr(ns_ctx_error(fx->ctx), "disagree"));
  assert_non_null(strstr(ns_ctx_error(fx->ctx), "pool"));
}

/* ---- binary files from the losing side of a number clash ---------------- */

/* Warnings collected from the context. */
typedef struct warnings {
  int n;
  char text[4][1024];
} warnings;

static void collect(void *user, const char *message) {
  warnings *w = user;
  if (w->n < 4) snprintf(w->text[w->n], sizeof w->text[0], "%s", message);
  w->n++;
}

/* A one-layer binary NetParameter through the reader: its status, the
 * parsed net freed. */
static ns_status read_layer(ns_ctx *ctx, const char *type, uint32_t field, const wbuf *inner) {
  wbuf layer = {0}, net = {0};
  put_bytes(&layer, 1, "l", 1);
  put_bytes(&layer, 2, type, strlen(type));
  put_msg(&layer, field, inner);
  put_msg(&net, 100, &layer);
  Caffe__NetParameter *np = NULL;
  ns_status st = ns_parse_net_param(ctx, net.b, net.n, "fork.caffemodel", &np, NULL);
  ns_net_param_free(ctx, np);
  return st;
}

static void assert_error_names(ns_ctx *ctx, const char *a, const char *b, const char *c) {
  const char *e = ns_ctx_error(ctx);
  if (!strstr(e, "layer 'l'") || !strstr(e, a) || !strstr(e, b) || !strstr(e, c))
    fail_msg("error lacks '%s', '%s' or '%s': %s", a, b, c, e);
}

/* PSPNet's interp_param at 143 (BVLC's input_param): height 1 and width 2
 * are varints where input_param's shape (1) is a message, so the decoder
 * would fail ("corrupt"); zoom_factor 3 alone would decode as an unknown
 * field of input_param.  SegNet's upsample_param at 137 (BVLC's
 * embed_param): scale 1 decodes as embed's num_output, pad_out_h 4 is a
 * varint where embed's weight_filler is a message.  OpenCV's
 * proposal_param at 201 (SSD's multibox_loss_param, unknown here). */
static void test_binary_clash_names_layer_and_fork(void **state) {
  tu_fixture *fx = *state;
  ns_ctx *ctx = fx->ctx;
  wbuf interp = {0}, zoom = {0}, up = {0}, up_pad = {0}, prop = {0};
  put_uint(&interp, 1, 65);
  put_uint(&interp, 2, 65);
  put_uint(&zoom, 3, 8);
  put_uint(&up, 1, 2);
  put_uint(&up_pad, 4, 1);
  put_uint(&prop, 1, 16);
  assert_int_equal(read_layer(ctx, "Interp", 143, &interp), NS_ERR_UNSUPPORTED);
  assert_error_names(ctx, "field 143", "interp_param", "PSPNet");
  assert_int_equal(read_layer(ctx, "Interp", 143, &zoom), NS_ERR_UNSUPPORTED);
  assert_error_names(ctx, "field 143", "interp_param", "input_param");
  /* the bytes alone tell: no Input layer has a varint there */
  assert_int_equal(read_layer(ctx, "Resize", 143, &interp), NS_ERR_UNSUPPORTED);
  assert_error_names(ctx, "field 143", "interp_param", "(type Resize)");
  assert_int_equal(read_layer(ctx, "Upsample", 137, &up), NS_ERR_UNSUPPORTED);
  assert_error_names(ctx, "field 137", "upsample_param", "SegNet");
  assert_int_equal(read_layer(ctx, "Unpool", 137, &up_pad), NS_ERR_UNSUPPORTED);
  assert_error_names(ctx, "field 137", "upsample_param", "embed_param");
  assert_int_equal(read_layer(ctx, "Proposal", 201, &prop), NS_ERR_UNSUPPORTED);
  assert_error_names(ctx, "field 201", "proposal_param", "OpenCV");

  /* BVLC's own fields at those numbers still read */
  wbuf dim = {0}, shape = {0}, embed = {0};
  put_uint(&dim, 1, 3);
  put_msg(&shape, 1, &dim);
  put_uint(&embed, 1, 10);
  put_uint(&embed, 3, 0);
  Caffe__NetParameter *np = decode_layer(ctx, "Input", 143, &shape);
  assert_int_equal(np->layer[0]->input_param->n_shape, 1);
  ns_net_param_free(ctx, np);
  np = decode_layer(ctx, "Embed", 137, &embed);
  assert_int_equal(np->layer[0]->embed_param->num_output, 10);
  ns_net_param_free(ctx, np);
}

/* PR #3057's ceil_mode and BVLC's round_mode both are PoolingParameter's
 * varint 13: read as round_mode, with a warning naming the layer. */
static void test_binary_pooling_13_warns(void **state) {
  tu_fixture *fx = *state;
  warnings w = {0};
  ns_ctx_set_warning_handler(fx->ctx, collect, &w);
  wbuf pool = {0};
  put_uint(&pool, 13, 1);
  Caffe__NetParameter *np = decode_layer(fx->ctx, "Pooling", 121, &pool);
  assert_int_equal(np->layer[0]->pooling_param->round_mode,
                   CAFFE__POOLING_PARAMETER__ROUND_MODE__FLOOR);
  ns_net_param_free(fx->ctx, np);
  assert_int_equal(w.n, 1);
  if (!strstr(w.text[0], "layer 'l'") || !strstr(w.text[0], "field 13") ||
      !strstr(w.text[0], "round_mode FLOOR") || !strstr(w.text[0], "ceil_mode: true"))
    fail_msg("%s", w.text[0]);
}

/* Numbers our schema lacks are kept; one warning per message and number,
 * naming the first layer and the count: SSD's multibox_loss_param (201)
 * in two layers, and an unknown 9999 in a convolution_param (106). */
static void test_binary_unknown_fields_warn_once(void **state) {
  tu_fixture *fx = *state;
  warnings w = {0};
  ns_ctx_set_warning_handler(fx->ctx, collect, &w);
  wbuf loss = {0}, conv = {0}, a = {0}, b = {0}, c = {0}, net = {0};
  put_uint(&loss, 1, 3);
  put_uint(&conv, 1, 4);    /* num_output */
  put_uint(&conv, 9999, 7); /* unknown */
  put_bytes(&a, 1, "a", 1);
  put_bytes(&a, 2, "MultiBoxLoss", 12);
  put_msg(&a, 201, &loss);
  put_bytes(&b, 1, "b", 1);
  put_bytes(&b, 2, "MultiBoxLoss", 12);
  put_msg(&b, 201, &loss);
  put_bytes(&c, 1, "c", 1);
  put_bytes(&c, 2, "Convolution", 11);
  put_msg(&c, 106, &conv);
  put_msg(&net, 100, &a);
  put_msg(&net, 100, &b);
  put_msg(&net, 100, &c);
  Caffe__NetParameter *np = NULL;
  if (ns_parse_net_param(fx->ctx, net.b, net.n, "ssd.caffemodel", &np, NULL) != NS_OK)
    fail_msg("%s", ns_ctx_error(fx->ctx));
  assert_int_equal(np->n_layer, 3);
  assert_int_equal(np->layer[0]->base.n_unknown_fields, 1);
  assert_int_equal(np->layer[2]->convolution_param->num_output, 4);
  ns_net_param_free(fx->ctx, np);
  assert_int_equal(w.n, 2);
  const char *want[2][4] = {{"field 201", "caffe.LayerParameter", "layer 'a'", "2 time(s)"},
                            {"field 9999", "caffe.ConvolutionParameter", "layer 'c'", "1 time(s)"}};
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      if (!strstr(w.text[i], want[i][j]))
        fail_msg("warning %d lacks '%s': %s", i, want[i][j], w.text[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ssd_normalize_permute_binary, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_ssd_prior_box_binary, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_ssd_detection_output_binary, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_bn_and_shuffle_binary, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_roi_pooling_binary, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_fork_messages_text_and_round_trip, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_pooling_ceil_mode, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_binary_clash_names_layer_and_fork, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_binary_pooling_13_warns, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_binary_unknown_fields_warn_once, tu_fixture_setup,
                                      tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
