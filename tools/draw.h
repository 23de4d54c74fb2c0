/* netsurg draw: a net as a diagram (DOT, SVG laid out by Graphviz's dot, or
 * a self-contained HTML page), shared by the draw and fcn verbs. */
#ifndef NS_TOOLS_DRAW_H
#define NS_TOOLS_DRAW_H

#include "netsurg.h"

typedef struct draw_request {
  ns_net *net;          /* the shaped net (or the shaped part of it); may be NULL */
  const ns_netdef *def; /* the definition; needed only with failed_layer */
  int failed_layer;     /* definition index of the layer that could not be shaped, or -1 */
  const char *error;    /* why it could not (drawn in its box) */
  const char *source;   /* the file drawn, for the caption */
  /* The fcn cast: these layers are highlighted ("cast from InnerProduct")
   * and the note (map size, each cell's window) is captioned. */
  const char *const *highlight;
  int n_highlight;
  const char *note;
  const char *out; /* .svg, .html or .dot */
} draw_request;

/* Writes r->out (atomically: a temporary file renamed); prints what it
 * wrote, or an error prefixed by verb.  Returns 0 or an ns_status. */
int draw_write(ns_ctx *ctx, const draw_request *r, const char *verb);
/* 1 when path ends in .svg, .html or .dot (case-insensitive). */
int draw_format_known(const char *path);
/* fcn --draw: the cast net fcn, its layers cast from the classifier's
 * InnerProducts (<name><suffix>) highlighted, the map's size and window
 * (the classifier's input blob) in the caption. */
int draw_fcn_cast(ns_ctx *ctx, ns_net *classifier, ns_net *fcn, const char *suffix, int input,
                  const char *out);

#endif
