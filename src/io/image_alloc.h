/* The size check every decoder makes before allocating, and (in
 * netsurg.h) ns_image_alloc / ns_image_free. */
#ifndef NS_IO_IMAGE_ALLOC_H
#define NS_IO_IMAGE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"

/* Checks decoded dimensions against NS_IMAGE_MAX_DIM and the memory
 * limit (for the float image of `channels` channels), and computes the
 * raw buffer size height * width * bytes_per_pixel. */
ns_status ns_image_check_dims(ns_ctx *ctx, const char *name, int64_t width, int64_t height,
                              int64_t bytes_per_pixel, size_t *raw_bytes);

#endif
