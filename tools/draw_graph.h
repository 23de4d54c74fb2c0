/* The diagram's model: one box per layer with the in-place layers that
 * modify its tops folded in (as Netscope draws), and the edges between
 * boxes, one per blob read.  Caffe's inserted Split layers are not drawn:
 * their readers are joined to the blob's writer directly. */
#ifndef NS_TOOLS_DRAW_GRAPH_H
#define NS_TOOLS_DRAW_GRAPH_H

#include <stdint.h>
#include <stdio.h>

#include "tools/draw.h"

typedef struct draw_box {
  int layer;    /* net layer index; -1: the definition's failed layer */
  int n_folded; /* in-place layers folded into this box, in net order */
  int *folded;  /* net layer indexes */
  int cast;     /* a former InnerProduct (fcn) */
  int64_t n_params;
  double macs; /* multiply-adds, folded layers included */
} draw_box;

typedef struct draw_edge {
  int from, to; /* box indexes */
  int blob;     /* net blob index (its shape labels the edge); -1 if unknown */
} draw_edge;

typedef struct draw_graph {
  const draw_request *req;
  ns_net *net; /* may be NULL */
  ns_receptive_field *rf;
  int n_boxes, n_edges;
  draw_box *boxes;
  draw_edge *edges;
  int64_t total_params; /* shared params counted once */
  double total_macs;
  int largest_blob; /* -1 if none */
  int failed_box;   /* -1 if the whole net is shaped */
} draw_graph;

/* 0, or NS_ERR_NOMEM. */
int draw_graph_build(ns_ctx *ctx, const draw_request *r, draw_graph *g);
void draw_graph_free(draw_graph *g);

/* What a box shows: the layer's name and type, each line of its text. */
const char *draw_box_name(const draw_graph *g, const draw_box *b);
const char *draw_box_type(const draw_graph *g, const draw_box *b);
/* Its colour family, an index into draw_families. */
int draw_box_family(const draw_graph *g, const draw_box *b);
typedef struct draw_family {
  const char *key, *colour, *label;
} draw_family;
extern const draw_family draw_families[];
extern const int draw_family_count;

/* Text pieces (written to f, not escaped: the writers escape them). */
void draw_shape_text(FILE *f, const int64_t *shape, int n); /* 1×96×55×55 */
void draw_tops_text(FILE *f, const draw_graph *g, const draw_box *b);
void draw_params_text(FILE *f, const draw_graph *g, const draw_box *b); /* shapes */
/* "RF 11 px, stride 4 px" when the box changes the receptive field; 0 if
 * nothing was written. */
int draw_rf_text(FILE *f, const draw_graph *g, const draw_box *b);
void draw_count_text(FILE *f, double n); /* 34.9K, 105.4M, 1.1G */
/* "1×96×55×55" of a blob. */
void draw_blob_shape_text(FILE *f, const draw_graph *g, int blob);
/* The caption's totals line. */
void draw_totals_text(FILE *f, const draw_graph *g);

/* Escapers (draw_escape.c): XML text or attribute; text in a Graphviz
 * HTML-like label; the inside of a Graphviz quoted string; a JSON string
 * literal, quotes included, safe inside an HTML <script>. */
void draw_xml(FILE *f, const char *s);
void draw_dot_label(FILE *f, const char *s);
void draw_dot_string(FILE *f, const char *s);
void draw_json(FILE *f, const char *s);

/* The graph in Graphviz's language (draw_dot.c). */
int draw_dot_write(FILE *f, const draw_graph *g);
/* The page (draw_html.c): svg is Graphviz's output, inlined. */
int draw_html_write(FILE *f, const draw_graph *g, const char *svg, size_t svg_len);

/* A malloc'ed string built by fn (open_memstream); NULL when out of memory. */
char *draw_string(void (*fn)(FILE *, const draw_graph *, const draw_box *), const draw_graph *g,
                  const draw_box *b);

#endif
