/* Caffe's Datum records (one sample of a Data layer's database) and the
 * images Caffe's OpenCV code makes: 0..255 values, BGR or one grey
 * channel, channel-major. */
#ifndef NS_IO_DATUM_H
#define NS_IO_DATUM_H

#include <stddef.h>

#include "core/ctx.h"
#include "netsurg.h"

/* How an encoded Datum is decoded (TransformationParameter's force_color /
 * force_gray; native keeps the file's own grey or colour, IMREAD_ANYCOLOR). */
enum { NS_DATUM_NATIVE = 0, NS_DATUM_COLOR = 1, NS_DATUM_GREY = 2 };

typedef struct ns_datum_sample {
  int channels, height, width;
  int label;
  float *data; /* channels x height x width, from ns_floats_alloc */
} ns_datum_sample;

/* Parses a serialized Datum (raw bytes, float_data or an encoded image);
 * name (the record's key) is for errors. */
ns_status ns_datum_decode(ns_ctx *ctx, const void *bytes, size_t size, const char *name, int mode,
                          ns_datum_sample *out);
void ns_datum_sample_free(ns_ctx *ctx, ns_datum_sample *s);

/* An image from ns_image_load / ns_image_decode as cv::imread gives it
 * (BGR, or grey by 0.299 R + 0.587 G + 0.114 B when !color), resized with
 * cv::resize INTER_LINEAR when new_h > 0, as channel-major 0..255 floats. */
ns_status ns_caffe_image(ns_ctx *ctx, const ns_image *im, int color, int new_h, int new_w,
                         int *h, int *w, float **chw);

/* cv::resize(INTER_LINEAR) of an interleaved (h, w, c) image with values
 * 0..255, rounded as into 8 bits (OpenCV's fixed point may differ by 1). */
void ns_cv_resize_linear(const float *src, int ih, int iw, int c, float *dst, int oh, int ow);

/* Whether encoded image bytes hold one grey channel (PNG grey or grey +
 * alpha, one-component JPEG): IMREAD_ANYCOLOR's choice. */
int ns_encoded_is_grey(const unsigned char *p, size_t n);

#endif
