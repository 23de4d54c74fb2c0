/* Caffe's fillers: initial values for params no weights file fills. */
#ifndef NS_CORE_FILLER_H
#define NS_CORE_FILLER_H

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/rng.h"

/* Fills b by the FillerParameter f (NULL: Caffe's default, constant 0).
 * Unknown filler types are an NS_ERR_UNSUPPORTED error. */
ns_status ns_filler_fill(ns_ctx *ctx, ns_blob *b, const Caffe__FillerParameter *f, ns_rng *rng);

#endif
