/* Drives one layer without a net: a LayerParameter set up by the test,
 * bottoms and tops made here, and a zeroed ns_net that only provides the
 * scratch area and the filler generator.  Plain calloc; every function
 * returns NULL / an error status rather than aborting. */
#ifndef NS_TESTS_LAYER_HARNESS_H
#define NS_TESTS_LAYER_HARNESS_H

#include <stdint.h>

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/layer.h"
#include "core/net.h"

#define LH_MAX_IO 6

typedef struct lh_harness {
  ns_ctx *ctx;
  ns_net net;
  ns_layer layer;
  Caffe__LayerParameter param; /* name "t"; the test sets the *_param pointers */
  ns_blob *bottom[LH_MAX_IO], *top[LH_MAX_IO];
  ns_blob *owned[2 * LH_MAX_IO];
  int n_owned;
} lh_harness;

/* NULL when the type is not registered or memory runs out. */
lh_harness *lh_create(const char *type);
void lh_destroy(lh_harness *h);

/* A new bottom of the given shape, filled from data (or zeros). */
ns_blob *lh_add_bottom(lh_harness *h, int num_axes, const int64_t *shape, const float *data);
/* A new, unshaped top. */
ns_blob *lh_add_top(lh_harness *h);
/* Top that is bottom `index` itself (in-place). */
void lh_add_top_in_place(lh_harness *h, int index);

/* setup alone (params exist afterwards, for the test to set); bottom and
 * top counts are checked against the ops' limits first, as the net does. */
ns_status lh_setup(lh_harness *h);
/* setup + reshape + forward; the status of the first failing step (the
 * message is ns_ctx_error(h->ctx)). */
ns_status lh_run(lh_harness *h);
/* reshape + forward again (after a bottom changed shape). */
ns_status lh_rerun(lh_harness *h);

#endif
