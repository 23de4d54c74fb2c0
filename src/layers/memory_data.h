/* MemoryData's arrays, handed over by the API (ns_net_set_input_arrays). */
#ifndef NS_LAYERS_MEMORY_DATA_H
#define NS_LAYERS_MEMORY_DATA_H

#include "core/layer.h"

/* Caffe's MemoryDataLayer::Reset: n items (n x channels x height x width
 * floats, and n labels), copied; serving restarts at the first.  An error
 * naming the layer when it is not a MemoryData layer or n is not a
 * positive multiple of batch_size. */
ns_status ns_memory_data_reset(ns_ctx *ctx, ns_layer *l, const float *data, const float *labels,
                               int64_t n);

#endif
