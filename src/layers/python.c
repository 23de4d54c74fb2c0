/* Python: Caffe's PythonLayer runs python_param { module layer param_str }
 * in an embedded interpreter; netsurg runs no Python.  One class is run
 * natively, automatically: py-faster-rcnn's
 * rpn.proposal_layer.ProposalLayer becomes the Proposal layer
 * (proposal.c), with a note through the context's warning channel.
 * (OpenCV 4.6's importer refuses the Python layer: its users edited the
 * prototxt to type "Proposal", as OpenCV's own Faster R-CNN samples are;
 * the mapping here is that edit, done on load.)
 * Its param_str is the YAML dict proposal_layer.py reads: 'feat_stride'
 * (required there), 'scales' (default 8, 16, 32); the ratios are
 * generate_anchors' 0.5, 1, 2, base_size 16, and the other values come
 * from py-faster-rcnn's config for the phase (TEST: pre_nms_topn 6000,
 * post_nms_topn 300, nms 0.7, min_size 16; TRAIN: 12000, 2000, 0.7, 16).
 * Any other module or class, or a param_str key we do not know, is
 * NS_ERR_UNSUPPORTED naming the module and class. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "layers/proposal.h"

#define PROPOSAL_MODULE "rpn.proposal_layer"
#define PROPOSAL_CLASS "ProposalLayer"

/* Skips blanks, commas and a YAML tag such as !!python/tuple. */
static const char *skip_blanks(const char *p) {
  for (;;) {
    while (isspace((unsigned char)*p) || *p == ',') p++;
    if (p[0] != '!' || p[1] != '!') return p;
    while (*p && !isspace((unsigned char)*p) && *p != '[' && *p != '(') p++;
  }
}

/* A number or a [..] / (..) list of at most `max` numbers into out;
 * returns the count, -1 on a malformed value. */
static int parse_numbers(const char **pp, float *out, int max) {
  const char *p = skip_blanks(*pp);
  char close = *p == '[' ? ']' : *p == '(' ? ')' : 0;
  int n = 0;
  if (close) p++;
  for (;;) {
    p = skip_blanks(p);
    if (close && *p == close) {
      p++;
      break;
    }
    char *end;
    double v = strtod(p, &end);
    if (end == p || n >= max) return -1;
    out[n++] = (float)v;
    p = end;
    if (!close) break;
  }
  *pp = p;
  return n;
}

/* One 'key': value of the param_str dict into the config. */
static ns_status parse_entry(ns_ctx *ctx, const ns_layer *l, const char **pp, ns_proposal_config *c) {
  const char *p = *pp;
  char quote = *p == '\'' || *p == '"' ? *p++ : 0;
  size_t len = strcspn(p, quote ? (quote == '"' ? "\"" : "'") : ": \t\n");
  const char *after = p + len + (quote && p[len] ? 1 : 0);
  after = skip_blanks(after);
  if (*after != ':')
    return ns_layer_fail(ctx, l, NS_ERR_INPUT, "python_param.param_str: expected 'key': value");
  after++;
  float v[NS_PROPOSAL_MAX_ANCHOR_SET];
  int n = parse_numbers(&after, v, NS_PROPOSAL_MAX_ANCHOR_SET);
  if (n <= 0)
    return ns_layer_fail(ctx, l, NS_ERR_INPUT, "python_param.param_str: bad value for '%.*s'",
                         (int)len, p);
  if (len == 11 && strncmp(p, "feat_stride", len) == 0 && n == 1) {
    c->feat_stride = v[0] >= 1 && v[0] <= 65536 ? (int)v[0] : 0;
  } else if (len == 6 && strncmp(p, "scales", len) == 0) {
    c->n_scales = n;
    memcpy(c->scales, v, (size_t)n * sizeof *v);
  } else {
    return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                         "python_param.param_str key '%.*s' of %s.%s is not supported "
                         "(known: feat_stride, scales)", (int)len, p, PROPOSAL_MODULE, PROPOSAL_CLASS);
  }
  *pp = skip_blanks(after);
  return NS_OK;
}

/* proposal_layer.py's setup and py-faster-rcnn's config for the phase. */
static ns_status proposal_from_python(ns_ctx *ctx, ns_layer *l, const char *param_str) {
  int train = ns_layer_phase_train(l);
  ns_proposal_config c = {.feat_stride = -1, .base_size = 16, .min_size = 16,
                          .pre_nms_topn = train ? 12000 : 6000,
                          .post_nms_topn = train ? 2000 : 300, .nms_thresh = 0.7f};
  ns_proposal_default_anchor_set(&c);
  const char *p = skip_blanks(param_str ? param_str : "");
  if (*p == '{') p = skip_blanks(p + 1);
  while (*p && *p != '}')
    if (parse_entry(ctx, l, &p, &c) != NS_OK) return ctx->status;
  if (c.feat_stride == -1)
    return ns_layer_fail(ctx, l, NS_ERR_INPUT,
                         "python_param.param_str needs 'feat_stride' (%s.%s reads it)",
                         PROPOSAL_MODULE, PROPOSAL_CLASS);
  if (ns_proposal_init(ctx, l, &c) != NS_OK) return ctx->status;
  ns_warn(ctx,
          "layer '%s': Python layer %s.%s runs as the native Proposal layer (feat_stride %d, "
          "%d scales, %s config: pre_nms_topn %lld, post_nms_topn %lld, nms 0.7, min_size 16)",
          l->name, PROPOSAL_MODULE, PROPOSAL_CLASS, c.feat_stride, c.n_scales,
          train ? "TRAIN" : "TEST", (long long)c.pre_nms_topn, (long long)c.post_nms_topn);
  return NS_OK;
}

static ns_status python_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__PythonParameter *p = l->param->python_param;
  const char *module = p && p->module ? p->module : "";
  const char *cls = p && p->layer ? p->layer : "";
  if (strcmp(module, PROPOSAL_MODULE) == 0 && strcmp(cls, PROPOSAL_CLASS) == 0) {
    if (l->n_bottom != 3 || l->n_top < 1 || l->n_top > 2)
      return ns_layer_fail(ctx, l, NS_ERR_NET,
                           "%s.%s takes 3 bottoms (scores, bbox deltas, im_info) and 1 or 2 tops",
                           PROPOSAL_MODULE, PROPOSAL_CLASS);
    return proposal_from_python(ctx, l, p->param_str);
  }
  return ns_layer_fail(ctx, l, NS_ERR_UNSUPPORTED,
                       "Python layer module '%s' class '%s' is not supported: netsurg runs no "
                       "Python; only %s.%s (py-faster-rcnn) has a native equivalent",
                       module, cls, PROPOSAL_MODULE, PROPOSAL_CLASS);
}

const ns_layer_ops ns_python_ops = {
    .type = "Python",
    .min_bottoms = 0,
    .max_bottoms = -1,
    .min_tops = 0,
    .max_tops = -1,
    .setup = python_setup,
    .reshape = ns_proposal_reshape,
    .forward = ns_proposal_forward,
    .destroy = ns_proposal_destroy,
};
