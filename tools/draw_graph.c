/* The diagram's model (draw_graph.h): boxes, folded in-place layers,
 * edges, totals. */
#include <stdlib.h>
#include <string.h>

#include "tools/draw_graph.h"

/* Families by layer type, first match wins; a layer without bottoms is
 * "data" whatever its type. */
const draw_family draw_families[] = {
    {"data", "#e9ecef", "data, input"},
    {"conv", "#9ecae1", "convolution"},
    {"fc", "#fdae6b", "inner product"},
    {"pool", "#a1d99b", "pooling"},
    {"norm", "#fee391", "normalisation, scale"},
    {"act", "#dadaeb", "activation, dropout"},
    {"merge", "#c7e9c0", "concat, eltwise, slice, reshape"},
    {"out", "#fcbba1", "softmax, loss, output"},
    {"other", "#ffffff", "other"},
};
const int draw_family_count = (int)(sizeof draw_families / sizeof draw_families[0]);

static const struct {
  const char *needle;
  int family;
} family_rules[] = {
    {"Deconvolution", 1}, {"Convolution", 1}, {"Im2col", 1},  {"InnerProduct", 2},
    {"Pool", 3},          {"SPP", 3},         {"Norm", 4},    {"LRN", 4},
    {"MVN", 4},           {"Scale", 4},       {"Bias", 4},    {"BN", 4},
    {"ReLU", 5},          {"Sigmoid", 5},     {"TanH", 5},    {"ELU", 5},
    {"Dropout", 5},       {"Power", 5},       {"AbsVal", 5},  {"BNLL", 5},
    {"Threshold", 5},     {"Clip", 5},        {"Swish", 5},   {"Exp", 5},
    {"Log", 5},           {"Concat", 6},      {"Eltwise", 6}, {"Slice", 6},
    {"Split", 6},         {"Reshape", 6},     {"Flatten", 6}, {"Permute", 6},
    {"Crop", 6},          {"Tile", 6},        {"Axpy", 6},    {"Loss", 7},
    {"Softmax", 7},       {"Accuracy", 7},    {"ArgMax", 7},  {"DetectionOutput", 7},
};

const char *draw_box_name(const draw_graph *g, const draw_box *b) {
  if (b->layer < 0) return ns_netdef_layer_name(g->req->def, g->req->failed_layer);
  return ns_net_layer_name(g->net, b->layer);
}

const char *draw_box_type(const draw_graph *g, const draw_box *b) {
  if (b->layer < 0) return ns_netdef_layer_type(g->req->def, g->req->failed_layer);
  return ns_net_layer_type(g->net, b->layer);
}

int draw_box_family(const draw_graph *g, const draw_box *b) {
  int bottoms = b->layer < 0 ? ns_netdef_layer_bottom_count(g->req->def, g->req->failed_layer)
                             : ns_net_layer_bottom_count(g->net, b->layer);
  if (!bottoms) return 0;
  const char *type = draw_box_type(g, b);
  for (size_t i = 0; i < sizeof family_rules / sizeof family_rules[0]; i++)
    if (strstr(type, family_rules[i].needle)) return family_rules[i].family;
  return draw_family_count - 1;
}

/* Caffe's InsertSplits names its layers <blob>_<producer>_<i>_split with
 * tops <name>_<k>: the net's own Split layers are drawn, these are not. */
static int inserted_split(const ns_net *net, int l) {
  if (strcmp(ns_net_layer_type(net, l), "Split") || ns_net_layer_bottom_count(net, l) != 1)
    return 0;
  const char *name = ns_net_layer_name(net, l), *bottom = ns_net_layer_bottom(net, l, 0);
  size_t n = strlen(name), nb = strlen(bottom);
  if (n < nb + 7 || strncmp(name, bottom, nb) || name[nb] != '_' || strcmp(name + n - 6, "_split"))
    return 0;
  for (int k = 0; k < ns_net_layer_top_count(net, l); k++) {
    const char *top = ns_net_layer_top(net, l, k);
    char *end;
    if (strncmp(top, name, n) || top[n] != '_' || strtol(top + n + 1, &end, 10) != k || *end)
      return 0;
  }
  return 1;
}

/* Every top written over its own bottom (Caffe's in-place). */
static int in_place(const ns_net *net, int l) {
  int n = ns_net_layer_top_count(net, l);
  if (!n || n > ns_net_layer_bottom_count(net, l)) return 0;
  for (int j = 0; j < n; j++)
    if (strcmp(ns_net_layer_top(net, l, j), ns_net_layer_bottom(net, l, j))) return 0;
  return 1;
}

static int64_t layer_params(ns_net *net, int l) {
  int64_t n = 0;
  for (int j = 0; j < ns_net_param_count(net, l); j++) n += ns_net_param(net, l, j).count;
  return n;
}

typedef struct walk {
  int *writer;    /* blob -> box that last wrote it */
  int *alias;     /* blob -> the blob it copies (inserted splits' tops) */
  char *read;     /* blob read since its last write */
  int *fold_into; /* layer -> the box it is folded into, or -1 */
} walk;

static void add_edge(draw_graph *g, walk *w, int blob, int to) {
  if (blob < 0) return;
  int source = w->alias[blob];
  w->read[source] = 1;
  if (w->writer[source] < 0) return;
  g->edges[g->n_edges++] = (draw_edge){w->writer[source], to, source};
}

/* Folds an in-place layer into the box that wrote its blob, unless a
 * reader came between (then it reads the unmodified blob: its own box). */
static int fold(draw_graph *g, walk *w, int l) {
  int blob = ns_net_find_blob(g->net, ns_net_layer_bottom(g->net, l, 0));
  if (blob < 0) return 0;
  int source = w->alias[blob], box = w->writer[source];
  if (box < 0 || w->read[source]) return 0;
  g->boxes[box].n_folded++;
  w->fold_into[l] = box;
  return 1;
}

static int highlighted(const draw_request *r, const char *name) {
  for (int i = 0; i < r->n_highlight; i++)
    if (!strcmp(r->highlight[i], name)) return 1;
  return 0;
}

static void walk_layer(draw_graph *g, walk *w, int l) {
  ns_net *net = g->net;
  if (inserted_split(net, l)) {
    int from = ns_net_find_blob(net, ns_net_layer_bottom(net, l, 0));
    for (int k = 0; k < ns_net_layer_top_count(net, l); k++) {
      int top = ns_net_find_blob(net, ns_net_layer_top(net, l, k));
      if (top >= 0 && from >= 0) w->alias[top] = w->alias[from];
    }
    return;
  }
  if (in_place(net, l) && fold(g, w, l)) return;
  int box = g->n_boxes++;
  g->boxes[box].layer = l;
  g->boxes[box].cast = highlighted(g->req, ns_net_layer_name(net, l));
  for (int j = 0; j < ns_net_layer_bottom_count(net, l); j++)
    add_edge(g, w, ns_net_find_blob(net, ns_net_layer_bottom(net, l, j)), box);
  for (int j = 0; j < ns_net_layer_top_count(net, l); j++) {
    int top = ns_net_find_blob(net, ns_net_layer_top(net, l, j));
    if (top < 0) continue;
    w->alias[top] = top;
    w->writer[top] = box;
    w->read[top] = 0;
  }
}

static void failed_box(draw_graph *g, walk *w) {
  const draw_request *r = g->req;
  int box = g->failed_box = g->n_boxes++;
  g->boxes[box].layer = -1;
  for (int j = 0; j < ns_netdef_layer_bottom_count(r->def, r->failed_layer); j++)
    if (g->net)
      add_edge(g, w, ns_net_find_blob(g->net, ns_netdef_layer_bottom(r->def, r->failed_layer, j)),
               box);
}

typedef struct param_ref {
  const float *data;
  int64_t count;
} param_ref;

static int cmp_param_ref(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const param_ref *)a)->data;
  uintptr_t y = (uintptr_t)((const param_ref *)b)->data;
  return x < y ? -1 : x > y;
}

/* Params counted once per storage: shared params (Caffe's param names)
 * are one blob seen from several layers. */
static int totals(draw_graph *g) {
  ns_net *net = g->net;
  int n = 0, cap = 0;
  for (int l = 0; l < ns_net_layer_count(net); l++) cap += ns_net_param_count(net, l);
  param_ref *refs = calloc((size_t)cap + 1, sizeof *refs);
  if (!refs) return NS_ERR_NOMEM;
  for (int l = 0; l < ns_net_layer_count(net); l++)
    for (int j = 0; j < ns_net_param_count(net, l); j++) {
      ns_tensor t = ns_net_param(net, l, j);
      refs[n++] = (param_ref){t.data, t.count};
    }
  qsort(refs, (size_t)n, sizeof *refs, cmp_param_ref);
  for (int i = 0; i < n; i++)
    if (i == 0 || refs[i].data != refs[i - 1].data || !refs[i].data)
      g->total_params += refs[i].count;
  free(refs);
  int64_t best = -1;
  for (int b = 0; b < ns_net_blob_count(net); b++) {
    ns_tensor t = ns_net_blob(net, b);
    if (t.count > best) best = t.count, g->largest_blob = b;
  }
  return 0;
}

static void box_costs(draw_graph *g) {
  for (int i = 0; i < g->n_boxes; i++) {
    draw_box *b = &g->boxes[i];
    if (b->layer < 0) continue;
    b->n_params = layer_params(g->net, b->layer);
    b->macs = ns_net_layer_flops(g->net, b->layer) / 2;
    for (int k = 0; k < b->n_folded; k++) {
      b->n_params += layer_params(g->net, b->folded[k]);
      b->macs += ns_net_layer_flops(g->net, b->folded[k]) / 2;
    }
    g->total_macs += b->macs;
  }
}

int draw_graph_build(ns_ctx *ctx, const draw_request *r, draw_graph *g) {
  memset(g, 0, sizeof *g);
  g->req = r;
  g->net = r->net;
  g->largest_blob = g->failed_box = -1;
  int n_layers = g->net ? ns_net_layer_count(g->net) : 0;
  int n_blobs = g->net ? ns_net_blob_count(g->net) : 0, n_reads = 0;
  for (int l = 0; l < n_layers; l++) n_reads += ns_net_layer_bottom_count(g->net, l);
  if (r->failed_layer >= 0) n_reads += ns_netdef_layer_bottom_count(r->def, r->failed_layer);
  walk w = {calloc((size_t)n_blobs + 1, sizeof(int)), calloc((size_t)n_blobs + 1, sizeof(int)),
            calloc((size_t)n_blobs + 1, 1), calloc((size_t)n_layers + 1, sizeof(int))};
  g->boxes = calloc((size_t)n_layers + 2, sizeof *g->boxes);
  g->edges = calloc((size_t)n_reads + 1, sizeof *g->edges);
  g->rf = calloc((size_t)n_blobs + 1, sizeof *g->rf);
  int *folded = calloc((size_t)n_layers + 1, sizeof *folded);
  int rc = 0;
  if (!w.writer || !w.alias || !w.read || !w.fold_into || !g->boxes || !g->edges || !g->rf ||
      !folded) {
    rc = NS_ERR_NOMEM;
    goto done;
  }
  for (int b = 0; b < n_blobs; b++) w.writer[b] = -1, w.alias[b] = b;
  for (int l = 0; l < n_layers; l++) w.fold_into[l] = -1;
  for (int l = 0; l < n_layers; l++) walk_layer(g, &w, l);
  /* The folded layers: one array, each box's slice in net order. */
  for (int i = 0, at = 0; i < n_layers + 2; i++) {
    g->boxes[i].folded = folded + at;
    at += g->boxes[i].n_folded;
    g->boxes[i].n_folded = 0;
  }
  for (int l = 0; l < n_layers; l++)
    if (w.fold_into[l] >= 0) {
      draw_box *b = &g->boxes[w.fold_into[l]];
      b->folded[b->n_folded++] = l;
    }
  if (r->failed_layer >= 0) failed_box(g, &w);
  if (g->net) {
    /* A net with no fixed input grid still draws, without fields. */
    if (ns_net_receptive_fields(ctx, g->net, g->rf) != NS_OK) {
      ns_ctx_clear_error(ctx);
      memset(g->rf, 0, (size_t)n_blobs * sizeof *g->rf);
    }
    box_costs(g);
    rc = totals(g);
  }
done:
  if (rc) free(folded);
  free(w.writer);
  free(w.alias);
  free(w.read);
  free(w.fold_into);
  return rc;
}

void draw_graph_free(draw_graph *g) {
  if (g->boxes) free(g->boxes[0].folded);
  free(g->boxes);
  free(g->edges);
  free(g->rf);
  memset(g, 0, sizeof *g);
}
