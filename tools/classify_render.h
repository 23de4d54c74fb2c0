/* The classify verb's heatmap figure: the input as the net sees it, the
 * confidence map scaled to it, and a labelled colour bar. */
#ifndef NS_TOOLS_CLASSIFY_RENDER_H
#define NS_TOOLS_CLASSIFY_RENDER_H

#include "netsurg.h"

/* image: floats in [0, 1] (1 or 3 channels); map: map_h x map_w values,
 * coloured from their min (dark) to their max (bright); caption: a few
 * characters from "0-9 . - + e ( ) p m a x" shown above the bar.
 * NS_ERR_NOMEM without an error in ctx: our own buffers failed. */
ns_status cli_save_heatmap_figure(ns_ctx *ctx, const char *path, const ns_image *image,
                                  const float *map, int map_h, int map_w, const char *caption);

#endif
