/* The words and numbers of the diagram (unescaped: the DOT, SVG and HTML
 * writers escape them). */
#include <stdlib.h>
#include <string.h>

#include "tools/draw_graph.h"

#define TIMES "\xc3\x97" /* U+00D7, the multiplication sign of 1×96×55×55 */

void draw_shape_text(FILE *f, const int64_t *shape, int n) {
  if (!n) fputs("scalar", f);
  for (int i = 0; i < n; i++) fprintf(f, i ? TIMES "%lld" : "%lld", (long long)shape[i]);
}

void draw_blob_shape_text(FILE *f, const draw_graph *g, int blob) {
  if (blob < 0 || !g->net) return;
  ns_tensor t = ns_net_blob(g->net, blob);
  draw_shape_text(f, t.shape, t.num_axes);
}

void draw_tops_text(FILE *f, const draw_graph *g, const draw_box *b) {
  if (b->layer < 0) {
    fputs("not shaped", f);
    return;
  }
  for (int j = 0; j < ns_net_layer_top_count(g->net, b->layer); j++) {
    if (j) fputs(", ", f);
    draw_blob_shape_text(f, g, ns_net_find_blob(g->net, ns_net_layer_top(g->net, b->layer, j)));
  }
}

void draw_params_text(FILE *f, const draw_graph *g, const draw_box *b) {
  if (b->layer < 0) return;
  for (int j = 0; j < ns_net_param_count(g->net, b->layer); j++) {
    ns_tensor t = ns_net_param(g->net, b->layer, j);
    if (j) fputs(", ", f);
    draw_shape_text(f, t.shape, t.num_axes);
  }
}

void draw_count_text(FILE *f, double n) {
  if (n < 1e3)
    fprintf(f, "%.0f", n);
  else if (n < 1e6)
    fprintf(f, "%.1fK", n / 1e3);
  else if (n < 1e9)
    fprintf(f, "%.1fM", n / 1e6);
  else
    fprintf(f, "%.2fG", n / 1e9);
}

/* 60,965,224 */
static void draw_thousands(FILE *f, int64_t n) {
  char digits[32];
  int len = snprintf(digits, sizeof digits, "%lld", (long long)n);
  for (int i = 0; i < len; i++) {
    if (i && digits[i - 1] != '-' && (len - i) % 3 == 0) fputc(',', f);
    fputc(digits[i], f);
  }
}

static void pair_text(FILE *f, const int64_t *v) {
  if (v[0] == v[1])
    fprintf(f, "%lld", (long long)v[0]);
  else
    fprintf(f, "%lld" TIMES "%lld", (long long)v[0], (long long)v[1]);
}

/* Spatial layers only: those whose top sees a different window or stride
 * of the input than their first bottom (or an input's own 1 px). */
int draw_rf_text(FILE *f, const draw_graph *g, const draw_box *b) {
  if (b->layer < 0 || !ns_net_layer_top_count(g->net, b->layer)) return 0;
  int top = ns_net_find_blob(g->net, ns_net_layer_top(g->net, b->layer, 0));
  if (top < 0 || !g->rf[top].known) return 0;
  const ns_receptive_field *t = &g->rf[top];
  int bottom = ns_net_layer_bottom_count(g->net, b->layer)
                   ? ns_net_find_blob(g->net, ns_net_layer_bottom(g->net, b->layer, 0))
                   : -1;
  if (bottom < 0) {
    if (t->size[0] == 1 && t->size[1] == 1 && t->stride[0] == 1 && t->stride[1] == 1) return 0;
  } else {
    const ns_receptive_field *s = &g->rf[bottom];
    if (s->known && !memcmp(s->size, t->size, sizeof t->size) &&
        !memcmp(s->stride, t->stride, sizeof t->stride))
      return 0;
  }
  fputs("RF ", f);
  pair_text(f, t->size);
  fputs(" px, stride ", f);
  pair_text(f, t->stride);
  fputs(" px", f);
  return 1;
}

void draw_totals_text(FILE *f, const draw_graph *g) {
  if (!g->net) {
    fputs("nothing shaped", f);
    return;
  }
  draw_thousands(f, g->total_params);
  fprintf(f, " params (%.1f MB as float32), ", (double)g->total_params * 4 / 1e6);
  draw_count_text(f, g->total_macs);
  fputs(" multiply-adds", f);
  if (g->largest_blob >= 0) {
    ns_tensor t = ns_net_blob(g->net, g->largest_blob);
    fprintf(f, "; largest activation %s ", t.name);
    draw_shape_text(f, t.shape, t.num_axes);
    fprintf(f, " (%.1f MB)", (double)t.count * 4 / 1e6);
  }
}

char *draw_string(void (*fn)(FILE *, const draw_graph *, const draw_box *), const draw_graph *g,
                  const draw_box *b) {
  char *s = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&s, &n);
  if (!f) return NULL;
  fn(f, g, b);
  if (fclose(f) != 0) {
    free(s);
    return NULL;
  }
  return s;
}
