#include "core/layer.h"

#include <stdio.h>
#include <string.h>

#include "core/net.h"

/* Each layer family defines its ops in src/layers/<family>.c and is
 * listed here once.  Keep the list sorted by family. */
#define NS_LAYER_LIST(X) \
  X(input)               \
  NS_LAYER_LIST_CAFFENET(X) NS_LAYER_LIST_ZOO(X) NS_LAYER_LIST_LOSS(X) NS_LAYER_LIST_DATA(X) \
  NS_LAYER_LIST_FORKS(X) NS_LAYER_LIST_SSD(X) NS_LAYER_LIST_RCNN(X)

/* Data layers (src/layers: data.c; Data on LMDB/LevelDB in data_db.c,
 * HDF5Data in hdf5_data.c, HDF5Output in hdf5_output.c, dummy_data.c,
 * memory_data.c; window_data.c only refuses, saying what is missing). */
#define NS_LAYER_LIST_DATA(X)                                              \
  X(image_data) X(npy_data) X(idx_data) X(db_data) X(hdf5_data) X(hdf5_output) \
  X(dummy_data) X(memory_data) X(window_data)

/* CaffeNet's layers (src/layers: conv.c, inner_product.c, activation.c,
 * pooling.c, lrn.c, dropout.c, softmax.c). */
#define NS_LAYER_LIST_CAFFENET(X) \
  X(convolution) X(inner_product) X(relu) X(pooling) X(lrn) X(dropout) X(softmax)

/* The model zoo's layers. */
#define NS_LAYER_LIST_ZOO(X)                                                             \
  X(argmax) X(batchnorm) X(bias) X(concat) X(crop) X(deconv) X(eltwise) X(flatten)       \
  X(reshape) X(scale) X(silence) X(slice) X(split) X(sigmoid) X(tanh) X(absval) X(power) \
  X(elu) X(bnll) X(exp) X(log) X(prelu) X(clip)                                          \
  NS_LAYER_LIST_BVLC(X)

/* The rest of BVLC Caffe's compute layers (src/layers: threshold.c,
 * tile.c, reduction.c, mvn.c, swish.c, parameter.c, embed.c, filter.c,
 * batch_reindex.c, spp.c, im2col.c, lstm_unit.c, lstm.c, rnn.c). */
#define NS_LAYER_LIST_BVLC(X) \
  X(threshold) X(tile) X(reduction) X(mvn) X(swish) X(parameter) X(embed) X(filter)  \
  X(batch_reindex) X(spp) X(im2col) X(lstm_unit) X(lstm) X(rnn)

/* The forks' layers (src/layers: interp.c, upsample.c, shuffle_channel.c,
 * axpy.c, bn.c, relu6.c, conv_depthwise.c). */
#define NS_LAYER_LIST_FORKS(X)                                                \
  X(interp) X(upsample) X(shuffle_channel) X(axpy) X(bn) X(relu6)               \
  X(depthwise_convolution) X(convolution_depthwise)

/* Wei Liu's SSD fork (normalize.c, permute.c, prior_box.c, detection_output.c). */
#define NS_LAYER_LIST_SSD(X) X(normalize) X(permute) X(prior_box) X(detection_output)

/* Fast/Faster R-CNN and R-FCN (src/layers: roi_pooling.c, psroi_pooling.c,
 * proposal.c; python.c runs py-faster-rcnn's proposal layer natively). */
#define NS_LAYER_LIST_RCNN(X) X(roi_pooling) X(psroi_pooling) X(proposal) X(python)

/* Losses and metrics for training (src/layers: loss.c, accuracy.c). */
#define NS_LAYER_LIST_LOSS(X)                                                           \
  X(softmax_loss) X(euclidean_loss) X(sigmoid_ce_loss) X(accuracy) X(infogain_loss)     \
  X(hinge_loss) X(contrastive_loss) X(multinomial_loss)

#define NS_DECLARE_OPS(name) extern const ns_layer_ops ns_##name##_ops;
NS_LAYER_LIST(NS_DECLARE_OPS)

#define NS_REF_OPS(name) &ns_##name##_ops,
static const ns_layer_ops *const registry[] = {NS_LAYER_LIST(NS_REF_OPS) NULL};

const ns_layer_ops *ns_layer_find(const char *type) {
  for (int i = 0; registry[i]; i++)
    if (strcmp(registry[i]->type, type) == 0) return registry[i];
  return NULL;
}

const ns_layer_ops *const *ns_layer_all(void) { return registry; }

int ns_layer_param_rank(const char *type, int index) {
  if (index > 0) return 1; /* biases and the per-channel blobs */
  const ns_layer_ops *ops = ns_layer_find(type);
  return ops && ops->weight_rank ? ops->weight_rank : 1;
}

void ns_layer_geometry_window(ns_layer_geometry *g) {
  g->grid = NS_GRID_WINDOW;
  for (int a = 0; a < 2; a++) {
    g->kernel[a] = g->stride[a] = g->dilation[a] = 1;
    g->pad[a] = 0;
  }
}

void ns_layer_geometry_pointwise(const ns_layer *l, ns_layer_geometry *g) {
  (void)l;
  ns_layer_geometry_window(g);
  g->grid = NS_GRID_POINTWISE;
}

ns_status ns_layer_add_param(ns_ctx *ctx, ns_layer *l, int num_axes, const int64_t *shape) {
  char name[256];
  snprintf(name, sizeof name, "%s[%d]", l->name, l->n_params);
  ns_blob **params = ns_realloc_array(ctx, l->params, (size_t)l->n_params + 1, sizeof *params);
  if (!params) return ctx->status;
  l->params = params;
  ns_blob *b = ns_blob_create(ctx, name);
  if (!b) return ctx->status;
  if (ns_blob_reshape(ctx, b, num_axes, shape) != NS_OK) {
    ns_blob_destroy(ctx, b);
    return ctx->status;
  }
  l->params[l->n_params++] = b;
  return NS_OK;
}

void ns_layer_fused_affine(const ns_layer *l, float *a, float *b) {
  for (int k = 1; k <= l->affine_fused; k++) l[k].ops->affine_compose(&l[k], a, b);
}

uint64_t ns_layer_params_epoch(const ns_layer *l) { return l->net->params_epoch; }
int ns_layer_params_exposed(const ns_layer *l) { return l->net->params_exposed; }

float *ns_layer_scratch(ns_ctx *ctx, ns_layer *l, int64_t count) {
  ns_net *net = l->net;
  if (count <= net->scratch_cap) return net->scratch;
  float *p = ns_floats_alloc(ctx, count);
  if (!p) return NULL;
  ns_floats_free(ctx, net->scratch);
  net->scratch = p;
  net->scratch_cap = count;
  return p;
}

ns_status ns_layer_fail(ns_ctx *ctx, const ns_layer *l, ns_status st, const char *fmt, ...) {
  char msg[NS_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ns_fail(ctx, st, "layer '%s' (%s): %s", l->name, l->ops ? l->ops->type : "?", msg);
}
