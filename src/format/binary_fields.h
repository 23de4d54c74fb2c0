/* What a binary net definition (a .caffemodel read as the net, as
 * `netsurg info model.caffemodel` does) carries that our caffe.proto
 * cannot decode as its writer meant.
 *
 * Field-number clashes: a fork's field at a number BVLC (or a fork in
 * wider use) gives to something else (see caffe.proto: interp_param 143,
 * upsample_param 137, OpenCV's proposal_param 201, PR #3057's ceil_mode
 * 13).  Text files name fields and read right; a binary file's numbers
 * decode as our field, fail to decode, or stay unknown.  The raw bytes are
 * scanned before decoding so that the error can name the layer, the
 * number and the fork instead of "corrupt caffemodel".
 *
 * Unknown fields: numbers our schema lacks (SSD's training-only
 * multibox_loss_param, ...) are kept by the decoder and written back by
 * the writer, unused; each is reported once per message and number. */
#ifndef NS_FORMAT_BINARY_FIELDS_H
#define NS_FORMAT_BINARY_FIELDS_H

#include <stddef.h>

#include "caffe.pb-c.h"
#include "core/ctx.h"

/* NS_ERR_UNSUPPORTED naming layer, number and fork where a layer holds a
 * fork's field that would decode wrongly or not at all; a warning where
 * the bytes fit both readings (ceil_mode / round_mode).  NS_OK also for
 * bytes that are not a valid NetParameter: the decoder reports those. */
ns_status ns_binary_check_clashes(ns_ctx *ctx, const unsigned char *data, size_t len,
                                  const char *file);

/* One warning per (message, field number) that the decoded net holds as
 * an unknown field, naming the first layer it appeared in and how often. */
void ns_binary_warn_unknown(ns_ctx *ctx, const Caffe__NetParameter *net, const char *file);

#endif
