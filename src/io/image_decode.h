/* Decoders from file bytes to 8-bit (or 16-bit grey) pixels, before the
 * conversion to load_image's floats in image.c.  They check sizes with
 * io/image_alloc.h and never include image.c's side. */
#ifndef NS_IO_IMAGE_DECODE_H
#define NS_IO_IMAGE_DECODE_H

#include <stddef.h>

#include "core/ctx.h"

typedef struct ns_raw_image {
  int width, height;
  int channels;          /* 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA */
  int bits;              /* 8, or 16 for 16-bit grey PNGs (big-endian pairs) */
  int orientation;       /* EXIF orientation 1..8 (1: as stored) */
  unsigned char *pixels; /* rows packed, from ns_alloc */
} ns_raw_image;

ns_status ns_jpeg_decode(ns_ctx *ctx, const unsigned char *bytes, size_t size, const char *name,
                         ns_raw_image *out);
ns_status ns_png_decode(ns_ctx *ctx, const unsigned char *bytes, size_t size, const char *name,
                        ns_raw_image *out);

/* Orientation (1..8) from an APP1 segment's payload ("Exif\0\0" + TIFF);
 * 1 when absent or malformed. */
int ns_exif_orientation(const unsigned char *data, size_t len);

#endif
