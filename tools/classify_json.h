/* The JSON line classify writes per image (--json), shared by the
 * one-image-at-a-time loop in cmd_classify.c and the streaming engine in
 * classify_stream.c, so that the two outputs are the same bytes. */
#ifndef NS_TOOLS_CLASSIFY_JSON_H
#define NS_TOOLS_CLASSIFY_JSON_H

#include <stdio.h>

#include "netsurg.h"

typedef struct classify_json {
  const char *blob;        /* the output blob's name */
  int num_axes;            /* 2 or 4 */
  int64_t shape[4];        /* one image's shape: shape[0] is 1 */
  int class_k;             /* --class, or -1 */
  const ns_labels *labels; /* NULL: no --labels */
} classify_json;

/* One line: {"image": ..., "blob": ..., "shape": ..., "map": ..., "class": ...,
 * "argmax": ..., "confidence": ..., "top": ..., "top_mean": ...}\n.
 * prob is this image's classes x cells probabilities. */
void classify_json_write(FILE *f, const classify_json *j, const char *image,
                         const ns_classification *r, const float *prob);

#endif
