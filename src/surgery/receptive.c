/* Receptive fields: for every blob, the window of input pixels one cell
 * sees and the stride between cells, walking the layers in order:
 *
 *   size'   = size + (dilation * (kernel - 1)) * stride
 *   offset' = offset - pad * stride
 *   stride' = stride * layer_stride
 *
 * with each layer's kernel, stride, pad and dilation as its ops report
 * them (ns_layer_ops.geometry); and what the cells of a dense map cover. */
#include <stdio.h>
#include <string.h>

#include "core/net.h"

typedef ns_receptive_field rfield;

static void rf_unknown(rfield *r) {
  memset(r, 0, sizeof *r);
  r->input = -1;
}

/* The bottom seen whole: an InnerProduct, a Flatten, global pooling. */
static void whole_bottom_geom(const ns_blob *bottom, ns_layer_geometry *g) {
  ns_layer_geometry_window(g);
  if (bottom->num_axes == 4) {
    g->kernel[0] = bottom->shape[2] > 0 ? bottom->shape[2] : 1;
    g->kernel[1] = bottom->shape[3] > 0 ? bottom->shape[3] : 1;
  }
}

static void apply_geom(const rfield *in, const ns_layer_geometry *g, rfield *out) {
  rfield r = *in;
  for (int a = 0; a < 2 && r.known; a++) {
    int64_t reach, grow, shift, stride;
    int64_t pad = g->pad[a] < 0 ? -g->pad[a] : g->pad[a]; /* a crop's pad is negative */
    if (!ns_mul_i64(g->dilation[a], g->kernel[a] - 1, &reach) ||
        !ns_mul_i64(reach, in->stride[a], &grow) || !ns_add_i64(in->size[a], grow, &r.size[a]) ||
        !ns_mul_i64(pad, in->stride[a], &shift) ||
        !ns_mul_i64(in->stride[a], g->stride[a], &stride)) {
      rf_unknown(&r); /* absurd geometry: say we do not know */
      break;
    }
    r.offset[a] = g->pad[a] < 0 ? in->offset[a] + shift : in->offset[a] - shift;
    r.stride[a] = stride;
  }
  *out = r;
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

/* The field of every top of layer l from its bottoms' fields, by the
 * geometry the layer reports. */
static void layer_fields(const ns_net *net, const ns_layer *l, rfield *rf) {
  rfield out;
  rf_unknown(&out);
  if (l->ops->is_net_input) {
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
    ns_layer_geometry g = {.grid = NS_GRID_UNKNOWN};
    if (l->ops->geometry) l->ops->geometry(l, &g);
    if (g.grid == NS_GRID_GLOBAL) whole_bottom_geom(l->bottom[0], &g);
    if (g.grid == NS_GRID_WINDOW) apply_geom(in[0], &g, &out);
    if (g.grid == NS_GRID_POINTWISE) merge_fields(in, n, &out);
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
  int b = ns_net_find_blob(fcn, blob);
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
