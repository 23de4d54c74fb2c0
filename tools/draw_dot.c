/* The diagram in Graphviz's language: a top-down digraph, one HTML-like
 * label per box, edges labelled with their blob's shape, a caption with
 * the totals and the colour legend. */
#include <stdlib.h>
#include <string.h>

#include "tools/draw_graph.h"

#define CAST_COLOUR "#c1121f"
#define FAILED_COLOUR "#c1121f"
#define QUIET_COLOUR "#555555"

/* One label row: <TR><TD>text</TD></TR>, text escaped, in a font when
 * font_attrs is set. */
static void row(FILE *f, const char *font_attrs, const char *text) {
  fputs("<TR><TD>", f);
  if (font_attrs) fprintf(f, "<FONT %s>", font_attrs);
  draw_dot_label(f, text);
  if (font_attrs) fputs("</FONT>", f);
  fputs("</TD></TR>", f);
}

/* Long text (an error) as rows of about `width` characters, cut at spaces. */
static void wrapped_rows(FILE *f, const char *font_attrs, const char *text, size_t width) {
  char line[256];
  size_t len = strlen(text), at = 0;
  for (int rows = 0; at < len && rows < 12; rows++) {
    size_t n = len - at < width ? len - at : width;
    if (at + n < len) {
      size_t cut = n;
      while (cut > width / 2 && text[at + cut] != ' ') cut--;
      if (text[at + cut] == ' ') n = cut;
    }
    memcpy(line, text + at, n);
    line[n] = 0;
    row(f, font_attrs, line);
    at += n;
    while (text[at] == ' ') at++;
  }
}

static void tops_fn(FILE *f, const draw_graph *g, const draw_box *b) {
  fputs("out ", f);
  draw_tops_text(f, g, b);
}

static void params_fn(FILE *f, const draw_graph *g, const draw_box *b) {
  fputs("params ", f);
  draw_params_text(f, g, b);
  fputs(" (", f);
  draw_count_text(f, (double)b->n_params);
  fputs(")", f);
}

static void macs_fn(FILE *f, const draw_graph *g, const draw_box *b) {
  (void)g;
  draw_count_text(f, b->macs);
  fputs(" multiply-adds", f);
}

static void rf_fn(FILE *f, const draw_graph *g, const draw_box *b) { draw_rf_text(f, g, b); }

static int text_row(FILE *f, const char *font_attrs,
                    void (*fn)(FILE *, const draw_graph *, const draw_box *), const draw_graph *g,
                    const draw_box *b) {
  char *s = draw_string(fn, g, b);
  if (!s) return NS_ERR_NOMEM;
  if (*s) row(f, font_attrs, s);
  free(s);
  return 0;
}

static void folded_rows(FILE *f, const draw_graph *g, const draw_box *b) {
  for (int k = 0; k < b->n_folded; k++) {
    char line[512];
    snprintf(line, sizeof line, "+ %s %s", ns_net_layer_type(g->net, b->folded[k]),
             ns_net_layer_name(g->net, b->folded[k]));
    row(f, "POINT-SIZE=\"9\" COLOR=\"" QUIET_COLOUR "\"", line);
  }
}

static int box_label(FILE *f, const draw_graph *g, const draw_box *b) {
  int rc = 0;
  fputs("<<TABLE BORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"1\">", f);
  fputs("<TR><TD><B>", f);
  draw_dot_label(f, draw_box_name(g, b));
  fputs("</B></TD></TR>", f);
  row(f, "POINT-SIZE=\"9\" COLOR=\"" QUIET_COLOUR "\"", draw_box_type(g, b));
  rc = rc ? rc : text_row(f, NULL, tops_fn, g, b);
  if (b->layer >= 0 && ns_net_param_count(g->net, b->layer))
    rc = rc ? rc : text_row(f, NULL, params_fn, g, b);
  if (b->macs > 0) rc = rc ? rc : text_row(f, NULL, macs_fn, g, b);
  rc = rc ? rc : text_row(f, NULL, rf_fn, g, b);
  if (b->layer >= 0) folded_rows(f, g, b);
  if (b->cast) row(f, "COLOR=\"" CAST_COLOUR "\"", "cast from InnerProduct");
  if (b->layer < 0) {
    row(f, "COLOR=\"" FAILED_COLOUR "\"", "cannot be shaped:");
    wrapped_rows(f, "POINT-SIZE=\"9\" COLOR=\"" FAILED_COLOUR "\"",
                 g->req->error ? g->req->error : "", 60);
  }
  fputs("</TABLE>>", f);
  return rc;
}

/* The hover text of a box (SVG <a xlink:title>): name, type, folded. */
static void box_tooltip(FILE *f, const draw_graph *g, const draw_box *b) {
  fputs("tooltip=\"", f);
  draw_dot_string(f, draw_box_name(g, b));
  fputs(" (", f);
  draw_dot_string(f, draw_box_type(g, b));
  fputs(")", f);
  for (int k = 0; k < b->n_folded; k++) {
    fputs(" + ", f);
    draw_dot_string(f, ns_net_layer_name(g->net, b->folded[k]));
  }
  fputs("\"", f);
}

static int write_box(FILE *f, const draw_graph *g, int i) {
  const draw_box *b = &g->boxes[i];
  fprintf(f, "  b%d [id=\"L%d\", fillcolor=\"%s\"", i, i,
          b->layer < 0 ? "#ffe5e5" : draw_families[draw_box_family(g, b)].colour);
  if (b->cast) fputs(", color=\"" CAST_COLOUR "\", penwidth=3", f);
  if (b->layer < 0)
    fputs(", color=\"" FAILED_COLOUR "\", penwidth=2, style=\"rounded,filled,dashed\"", f);
  fputs(", ", f);
  box_tooltip(f, g, b);
  fputs(", label=", f);
  int rc = box_label(f, g, b);
  fputs("];\n", f);
  return rc;
}

static int write_edge(FILE *f, const draw_graph *g, int i) {
  const draw_edge *e = &g->edges[i];
  char *shape = NULL;
  size_t n = 0;
  FILE *s = open_memstream(&shape, &n);
  if (!s) return NS_ERR_NOMEM;
  draw_blob_shape_text(s, g, e->blob);
  if (fclose(s) != 0) {
    free(shape);
    return NS_ERR_NOMEM;
  }
  fprintf(f, "  b%d -> b%d [id=\"E%d\", label=<", e->from, e->to, i);
  draw_dot_label(f, shape);
  fputs(">, tooltip=\"", f);
  draw_dot_string(f, e->blob >= 0 ? ns_net_blob(g->net, e->blob).name : "");
  fputs(" ", f);
  draw_dot_string(f, shape);
  fputs("\"];\n", f);
  free(shape);
  return 0;
}

static void legend(FILE *f, const draw_graph *g) {
  int used[64] = {0};
  for (int i = 0; i < g->n_boxes; i++)
    if (g->boxes[i].layer >= 0) used[draw_box_family(g, &g->boxes[i])] = 1;
  fputs("<TR><TD><TABLE BORDER=\"0\" CELLSPACING=\"4\" CELLPADDING=\"3\"><TR>", f);
  for (int k = 0; k < draw_family_count; k++)
    if (used[k])
      fprintf(f, "<TD BGCOLOR=\"%s\">%s</TD>", draw_families[k].colour, draw_families[k].label);
  if (g->req->n_highlight)
    fputs("<TD BORDER=\"3\" COLOR=\"" CAST_COLOUR "\">cast from InnerProduct</TD>", f);
  if (g->failed_box >= 0)
    fputs("<TD BGCOLOR=\"#ffe5e5\" BORDER=\"1\" COLOR=\"" FAILED_COLOUR "\">not shaped</TD>", f);
  fputs("</TR></TABLE></TD></TR>", f);
}

static int caption(FILE *f, const draw_graph *g) {
  const draw_request *r = g->req;
  const char *name = g->net ? ns_net_name(g->net) : r->def ? ns_netdef_name(r->def) : "";
  char title[1024];
  snprintf(title, sizeof title, "%s%s%s", *name ? name : "net", r->source ? "  (" : "",
           r->source ? r->source : "");
  if (r->source) strncat(title, ")", sizeof title - strlen(title) - 1);
  fputs("  label=<<TABLE BORDER=\"0\" CELLSPACING=\"2\" CELLPADDING=\"1\"><TR><TD><B>", f);
  draw_dot_label(f, title);
  fputs("</B></TD></TR>", f);
  char *totals = NULL;
  size_t n = 0;
  FILE *s = open_memstream(&totals, &n);
  if (!s) return NS_ERR_NOMEM;
  draw_totals_text(s, g);
  if (fclose(s) != 0) return NS_ERR_NOMEM;
  row(f, NULL, totals);
  free(totals);
  if (r->note) wrapped_rows(f, "COLOR=\"" CAST_COLOUR "\"", r->note, 110);
  if (g->failed_box >= 0) {
    char line[512];
    snprintf(line, sizeof line,
             "drawn up to layer %s, which cannot be shaped; later layers "
             "not drawn",
             draw_box_name(g, &g->boxes[g->failed_box]));
    row(f, "COLOR=\"" FAILED_COLOUR "\"", line);
  }
  legend(f, g);
  fputs("</TABLE>>;\n", f);
  return 0;
}

int draw_dot_write(FILE *f, const draw_graph *g) {
  fputs(
      "digraph net {\n"
      "  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=11, nodesep=0.25, ranksep=0.3,\n"
      "         labelloc=b, labeljust=l];\n"
      "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10,\n"
      "        color=\"#444444\", margin=\"0.12,0.03\"];\n"
      "  edge [fontname=\"Helvetica\", fontsize=8, color=\"#666666\", fontcolor=\"#333333\",\n"
      "        arrowsize=0.6];\n",
      f);
  int rc = caption(f, g);
  for (int i = 0; i < g->n_boxes && !rc; i++) rc = write_box(f, g, i);
  for (int i = 0; i < g->n_edges && !rc; i++) rc = write_edge(f, g, i);
  fputs("}\n", f);
  return rc;
}
