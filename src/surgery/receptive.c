/* Receptive fields: for every blob, the window of input pixels one cell
 * sees and the stride between cells, walking the layers in order:
 *
 *   size'   = size + (dilation * (kernel - 1)) * stride
 *   offset' = offset - pad * stride
 *   stride' = stride * layer_stride
 *
 * and what the cells of a dense map cover. */
#include <stdio.h>
#include <string.h>

#include "core/net.h"

typedef ns_receptive_field rfield;

/* A layer's spatial geometry along rows [0] and columns [1]. */
typedef struct geom {
  int64_t kernel[2], stride[2], pad[2], dilation[2];
} geom;

static void geom_identity(geom *g) {
  for (int a = 0; a < 2; a++) {
    g->kernel[a] = g->stride[a] = g->dilation[a] = 1;
    g->pad[a] = 0;
  }
}

static void rf_unknown(rfield *r) {
  memset(r, 0, sizeof *r);
  r->input = -1;
}

/* Caffe's repeated spatial fields: none -> dflt, one -> both axes, two ->
 * one per axis; more (3-D convolution) -> -1. */
static int pick2(const uint32_t *v, size_t n, int64_t dflt, int64_t out[2]) {
  if (n > 2) return -1;
  out[0] = n ? v[0] : dflt;
  out[1] = n == 2 ? v[1] : out[0];
  return 0;
}

static int conv_geom(const Caffe__ConvolutionParameter *cp, geom *g) {
  geom_identity(g);
  if (!cp) return -1;
  if (cp->has_kernel_h || cp->has_kernel_w) {
    g->kernel[0] = cp->kernel_h;
    g->kernel[1] = cp->kernel_w;
  } else if (pick2(cp->kernel_size, cp->n_kernel_size, 0, g->kernel) != 0) {
    return -1;
  }
  if (cp->has_stride_h || cp->has_stride_w) {
    g->stride[0] = cp->has_stride_h ? cp->stride_h : 1;
    g->stride[1] = cp->has_stride_w ? cp->stride_w : 1;
  } else if (pick2(cp->stride, cp->n_stride, 1, g->stride) != 0) {
    return -1;
  }
  if (cp->has_pad_h || cp->has_pad_w) {
    g->pad[0] = cp->pad_h;
    g->pad[1] = cp->pad_w;
  } else if (pick2(cp->pad, cp->n_pad, 0, g->pad) != 0) {
    return -1;
  }
  if (pick2(cp->dilation, cp->n_dilation, 1, g->dilation) != 0) return -1;
  return g->kernel[0] > 0 && g->kernel[1] > 0 && g->stride[0] > 0 && g->stride[1] > 0 ? 0 : -1;
}

static int pool_geom(const Caffe__PoolingParameter *pp, const ns_blob *bottom, geom *g) {
  geom_identity(g);
  if (bottom->num_axes != 4) return -1;
  if (!pp) return -1;
  if (pp->global_pooling) {
    g->kernel[0] = bottom->shape[2];
    g->kernel[1] = bottom->shape[3];
    return 0;
  }
  if (pp->has_kernel_h || pp->has_kernel_w) {
    g->kernel[0] = pp->kernel_h;
    g->kernel[1] = pp->kernel_w;
  } else {
    g->kernel[0] = g->kernel[1] = pp->kernel_size;
  }
  if (pp->has_stride_h || pp->has_stride_w) {
    g->stride[0] = pp->has_stride_h ? pp->stride_h : 1;
    g->stride[1] = pp->has_stride_w ? pp->stride_w : 1;
  } else {
    g->stride[0] = g->stride[1] = pp->has_stride ? pp->stride : 1;
  }
  if (pp->has_pad_h || pp->has_pad_w) {
    g->pad[0] = pp->pad_h;
    g->pad[1] = pp->pad_w;
  } else {
    g->pad[0] = g->pad[1] = pp->pad;
  }
  return g->kernel[0] > 0 && g->kernel[1] > 0 && g->stride[0] > 0 && g->stride[1] > 0 ? 0 : -1;
}

/* The bottom seen whole: an InnerProduct, a Flatten, an SPP. */
static void whole_bottom_geom(const ns_blob *bottom, geom *g) {
  geom_identity(g);
  if (bottom->num_axes == 4) {
    g->kernel[0] = bottom->shape[2] > 0 ? bottom->shape[2] : 1;
    g->kernel[1] = bottom->shape[3] > 0 ? bottom->shape[3] : 1;
  }
}

static void apply_geom(const rfield *in, const geom *g, rfield *out) {
  rfield r = *in;
  for (int a = 0; a < 2 && r.known; a++) {
    int64_t reach, grow, shift, stride;
    if (!ns_mul_i64(g->dilation[a], g->kernel[a] - 1, &reach) ||
        !ns_mul_i64(reach, in->stride[a], &grow) || !ns_add_i64(in->size[a], grow, &r.size[a]) ||
        !ns_mul_i64(g->pad[a], in->stride[a], &shift) ||
        !ns_mul_i64(in->stride[a], g->stride[a], &stride)) {
      rf_unknown(&r); /* absurd geometry: say we do not know */
      break;
    }
    r.offset[a] = in->offset[a] - shift;
    r.stride[a] = stride;
  }
  *out = r;
}

/* Layers that keep every cell where it is (values change, not places). */
static int is_pointwise(const char *type) {
  static const char *const types[] = {
      "ReLU", "PReLU", "ELU",       "Sigmoid", "TanH",    "AbsVal",  "BNLL",      "Power",
      "Exp",  "Log",   "Threshold", "Dropout", "Split",   "Softmax", "BatchNorm", "Scale",
      "Bias", "MVN",   "Clip",      "Swish",   "Eltwise", NULL};
  for (int i = 0; types[i]; i++)
    if (strcmp(type, types[i]) == 0) return 1;
  return 0;
}

/* Bottoms read side by side (Eltwise, Concat along channels): the union. */
static void merge_fields(const rfield *const *in, int n, rfield *out) {
  rfield r = *in[0];
  for (int i = 1; i < n && r.known; i++) {
    const rfield *b = in[i];
    if (!b->known || b->input != r.input || b->stride[0] != r.stride[0] ||
        b->stride[1] != r.stride[1]) {
      rf_unknown(&r);
      break;
    }
    for (int a = 0; a < 2; a++) {
      int64_t end = r.offset[a] + r.size[a], bend = b->offset[a] + b->size[a];
      if (b->offset[a] < r.offset[a]) r.offset[a] = b->offset[a];
      r.size[a] = (end > bend ? end : bend) - r.offset[a];
    }
  }
  *out = r;
}

static int blob_index_of(const ns_net *net, const ns_blob *b) {
  for (int i = 0; i < net->n_blobs; i++)
    if (net->blobs[i] == b) return i;
  return -1;
}

static int spatial_axis_kept(const char *type, const Caffe__LayerParameter *p) {
  if (!strcmp(type, "Concat")) {
    const Caffe__ConcatParameter *c = p->concat_param;
    int axis = c ? (c->has_axis ? c->axis : (c->has_concat_dim ? (int)c->concat_dim : 1)) : 1;
    return axis == 0 || axis == 1;
  }
  if (!strcmp(type, "Slice")) {
    const Caffe__SliceParameter *s = p->slice_param;
    int axis = s ? (s->has_axis ? s->axis : (s->has_slice_dim ? (int)s->slice_dim : 1)) : 1;
    return axis == 0 || axis == 1;
  }
  return 0;
}

/* Crop moves the window by its offsets (Caffe's CropParameter: axis
 * default 2, one offset for every axis from it, or one each). */
static void crop_shift(const Caffe__CropParameter *cp, const ns_blob *bottom, rfield *r) {
  int axis = cp && cp->has_axis ? cp->axis : 2;
  if (axis < 0) axis += bottom->num_axes;
  for (int a = 0; a < 2 && r->known; a++) {
    int spatial = a + 2, idx = spatial - axis;
    if (idx < 0) continue;
    int64_t off = 0;
    if (cp && cp->n_offset == 1)
      off = cp->offset[0];
    else if (cp && (size_t)idx < cp->n_offset)
      off = cp->offset[idx];
    r->offset[a] += off * r->stride[a];
  }
}

/* The field of every top of layer l from its bottoms' fields. */
static void layer_fields(const ns_net *net, const ns_layer *l, rfield *rf) {
  const char *type = l->ops->type;
  const Caffe__LayerParameter *p = l->param;
  rfield out;
  geom g;
  rf_unknown(&out);
  if (!strcmp(type, "Input")) {
    for (int j = 0; j < l->n_top; j++) {
      int b = blob_index_of(net, l->top[j]);
      if (b < 0) continue;
      rfield r = {1, b, {1, 1}, {1, 1}, {0, 0}};
      rf[b] = r;
    }
    return;
  }
  if (l->n_bottom > 0) {
    const rfield *in[64];
    int n = l->n_bottom < 64 ? l->n_bottom : 64;
    for (int j = 0; j < n; j++) {
      int b = blob_index_of(net, l->bottom[j]);
      in[j] = b >= 0 ? &rf[b] : NULL;
      if (!in[j]) return;
    }
    const ns_blob *bottom = l->bottom[0];
    if (!strcmp(type, "Convolution")) {
      if (bottom->num_axes == 4 && conv_geom(p->convolution_param, &g) == 0)
        apply_geom(in[0], &g, &out);
    } else if (!strcmp(type, "Pooling")) {
      if (pool_geom(p->pooling_param, bottom, &g) == 0) apply_geom(in[0], &g, &out);
    } else if (!strcmp(type, "LRN")) {
      const Caffe__LRNParameter *lp = p->lrn_param;
      geom_identity(&g);
      if (lp && lp->norm_region == CAFFE__LRNPARAMETER__NORM_REGION__WITHIN_CHANNEL) {
        int64_t size = lp->has_local_size ? lp->local_size : 5;
        g.kernel[0] = g.kernel[1] = size;
        g.pad[0] = g.pad[1] = (size - 1) / 2;
      }
      apply_geom(in[0], &g, &out);
    } else if (!strcmp(type, "InnerProduct")) {
      const Caffe__InnerProductParameter *ip = p->inner_product_param;
      if (!ip || !ip->has_axis || ip->axis == 1) {
        whole_bottom_geom(bottom, &g);
        apply_geom(in[0], &g, &out);
      }
    } else if (!strcmp(type, "Flatten") || !strcmp(type, "SPP")) {
      whole_bottom_geom(bottom, &g);
      apply_geom(in[0], &g, &out);
    } else if (!strcmp(type, "Crop")) {
      out = *in[0];
      crop_shift(p->crop_param, bottom, &out);
    } else if (is_pointwise(type) || spatial_axis_kept(type, p)) {
      merge_fields(in, n, &out);
    }
  }
  for (int j = 0; j < l->n_top; j++) {
    int b = blob_index_of(net, l->top[j]);
    if (b >= 0) rf[b] = out;
  }
}

ns_status ns_net_receptive_fields(ns_ctx *ctx, ns_net *net, ns_receptive_field *out) {
  (void)ctx;
  for (int b = 0; b < net->n_blobs; b++) rf_unknown(&out[b]);
  for (int i = 0; i < net->n_layers; i++) layer_fields(net, &net->layers[i], out);
  return NS_OK;
}

/* ---- what a dense map covers ----------------------------------------- */

ns_status ns_fcn_map_describe(ns_ctx *ctx, ns_net *fcn, const char *blob, int64_t window_h,
                              int64_t window_w, ns_fcn_map *out) {
  memset(out, 0, sizeof *out);
  int b = ns_net_blob_index(fcn, blob);
  if (b < 0) return ns_fail(ctx, NS_ERR_USAGE, "no blob named '%s' in the net", blob);
  rfield *rf = ns_calloc(ctx, (size_t)fcn->n_blobs + 1, sizeof *rf);
  if (!rf) return ctx->status;
  ns_net_receptive_fields(ctx, fcn, rf);
  rfield r = rf[b];
  ns_free(ctx, rf);
  const ns_blob *map = fcn->blobs[b];
  if (!r.known || r.input < 0 || fcn->blobs[r.input]->num_axes != 4)
    return ns_fail(ctx, NS_ERR_UNSUPPORTED,
                   "blob '%s': cannot tell which input pixels its cells see (a layer on the way "
                   "has no fixed input grid)",
                   blob);
  const ns_blob *in = fcn->blobs[r.input];
  int64_t window[2] = {window_h, window_w};
  for (int a = 0; a < 2; a++) {
    out->input[a] = in->shape[2 + a];
    out->window[a] = window[a];
    out->stride[a] = r.stride[a];
    out->map[a] = map->num_axes == 4 ? map->shape[2 + a] : 1;
    out->field[a] = r.size[a];
    out->offset[a] = r.offset[a];
    out->excess[a] = (out->map[a] - 1) * out->stride[a] + window[a] - out->input[a];
    if (r.offset[a] < 0) out->padded = 1;
  }
  return NS_OK;
}

void ns_fcn_exact_sizes(int64_t size, int64_t window, int64_t stride, int64_t *below,
                        int64_t *above) {
  if (stride < 1) stride = 1;
  if (size < window) {
    *below = 0;
    *above = window;
    return;
  }
  int64_t k = (size - window) / stride;
  *below = window + k * stride;
  *above = *below == size ? size : *below + stride;
}

/* "451 = 227 + 7*32" or "450 = 227 + 6*32 + 31". */
static void decompose(char *buf, size_t size, int64_t input, int64_t window, int64_t stride) {
  if (input < window) {
    snprintf(buf, size, "%lld < %lld", (long long)input, (long long)window);
    return;
  }
  int64_t k = (input - window) / stride, r = (input - window) % stride;
  if (r)
    snprintf(buf, size, "%lld = %lld + %lld*%lld + %lld", (long long)input, (long long)window,
             (long long)k, (long long)stride, (long long)r);
  else
    snprintf(buf, size, "%lld = %lld + %lld*%lld", (long long)input, (long long)window,
             (long long)k, (long long)stride);
}

/* What happens at the far edge along one axis; `far` is "bottom"/"right". */
static void edge_clause(char *buf, size_t size, int64_t excess, const char *lines, const char *far,
                        int plural) {
  if (excess == 0)
    snprintf(buf, size, "whole windows tile the input exactly");
  else if (excess > 0)
    snprintf(buf, size, "the last %s of windows run%s %lld px past the %s edge%s (partial windows)",
             lines, plural ? "" : "s", (long long)excess, far, plural ? "s" : "");
  else
    snprintf(buf, size, "the last %lld px at the %s %s in no window", (long long)-excess, far,
             plural ? "are" : "is");
}

const char *ns_fcn_map_explain(const ns_fcn_map *m, char *buf, size_t size) {
  char d0[128], d1[128], e0[256], e1[256];
  decompose(d0, sizeof d0, m->input[0], m->window[0], m->stride[0]);
  decompose(d1, sizeof d1, m->input[1], m->window[1], m->stride[1]);
  int same = m->input[0] == m->input[1] && m->window[0] == m->window[1] &&
             m->stride[0] == m->stride[1] && m->excess[0] == m->excess[1];
  char cells[256];
  snprintf(cells, sizeof cells, "%lldx%lld map of %lldx%lld windows at stride %lld",
           (long long)m->map[0], (long long)m->map[1], (long long)m->window[0],
           (long long)m->window[1], (long long)m->stride[0]);
  if (m->stride[0] != m->stride[1])
    snprintf(cells + strlen(cells), sizeof cells - strlen(cells), "x%lld", (long long)m->stride[1]);
  if (same) {
    edge_clause(e0, sizeof e0, m->excess[0], "row and column", "bottom and right", 1);
    snprintf(buf, size, "%s: %s; %s", d0, cells, e0);
  } else {
    edge_clause(e0, sizeof e0, m->excess[0], "row", "bottom", 0);
    edge_clause(e1, sizeof e1, m->excess[1], "column", "right", 0);
    snprintf(buf, size, "rows %s, columns %s: %s; rows: %s; columns: %s", d0, d1, cells, e0, e1);
  }
  return buf;
}
