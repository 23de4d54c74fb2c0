/* The dict literal of a .npy header, parsed strictly. */
#ifndef NS_IO_NPY_HEADER_H
#define NS_IO_NPY_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"

typedef struct ns_npy_header {
  int num_axes;
  int64_t shape[NS_NDARRAY_MAX_AXES];
  int64_t count;      /* product of shape, overflow-checked */
  int itemsize;       /* 4 (float32) or 8 (float64) */
  int little_endian;  /* byte order of the data */
  int64_t data_bytes; /* count * itemsize, overflow-checked */
} ns_npy_header;

/* Parses `len` bytes of header text (after the length field).  Accepts
 * only the keys 'descr', 'fortran_order' and 'shape', each exactly once;
 * float32/float64 in C order; the text must end with '\n'. */
ns_status ns_npy_parse_header(ns_ctx *ctx, const char *name, const char *text, size_t len,
                              ns_npy_header *h);

#endif
