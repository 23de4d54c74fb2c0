/* Caffe's BasePrefetchingDataLayer: a thread that fills the next batches
 * (data_param.prefetch of them, Caffe's PREFETCH_COUNT, default 4) while
 * the net runs, so that forward only copies a ready batch.  The batches
 * come out in the order they were filled, each filled by the same
 * function a synchronous forward would call, so the sequence is the same
 * with and without the thread. */
#ifndef NS_LAYERS_DATA_PREFETCH_H
#define NS_LAYERS_DATA_PREFETCH_H

#include "core/layer.h"

/* Fills one batch: data_n floats into data, label_n into label (NULL when
 * label_n is 0).  Runs on the worker thread with its own context. */
typedef ns_status (*ns_prefetch_fill)(ns_ctx *ctx, void *user, float *data, float *label);

typedef struct ns_prefetch ns_prefetch;

/* Starts the worker; from here until ns_prefetch_stop only the worker may
 * touch what fill reads (the layer's database cursor and generator). */
ns_status ns_prefetch_start(ns_ctx *ctx, const ns_layer *l, int count, int64_t data_n,
                            int64_t label_n, ns_prefetch_fill fill, void *user,
                            ns_prefetch **out);
/* Waits for the next batch and copies it out; a batch whose fill failed
 * gives its error (with the worker's message) instead, and the next call
 * the batch after it, as synchronous reads would. */
ns_status ns_prefetch_next(ns_ctx *ctx, ns_prefetch *p, float *data, float *label);
/* Stops and joins the worker (waking it if it waits for a free slot) and
 * frees everything; NULL is fine. */
void ns_prefetch_stop(ns_ctx *ctx, ns_prefetch *p);

#endif
