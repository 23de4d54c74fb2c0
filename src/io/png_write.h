/* Internal helpers shared by the PNG writer and the heatmaps. */
#ifndef NS_IO_PNG_WRITE_H
#define NS_IO_PNG_WRITE_H

#include <stdint.h>

#include "core/ctx.h"

#define NS_PNG_MAX_DIM 65535 /* two 30000-pixel panels side by side fit */

/* Checks an output size (1..NS_PNG_MAX_DIM per side, memory limit). */
ns_status ns_png_check_size(ns_ctx *ctx, const char *path, int64_t height, int64_t width);

#endif
