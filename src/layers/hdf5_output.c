/* Caffe's HDF5Output layer: hdf5_output_param { file_name }; its two
 * bottoms are written as the float datasets "data" and "label" of a new
 * HDF5 file, at full shape.  Caffe writes the first batch and then fails
 * (its datasets exist by the second); here every forward writes the file
 * anew, so it holds the last batch.  No tops. */
#include "core/layer.h"
#include "io/hdf5.h"

static ns_status h5out_setup(ns_ctx *ctx, ns_layer *l) {
  const Caffe__HDF5OutputParameter *hp = l->param->hdf5_output_param;
  if (!hp || !hp->file_name || !hp->file_name[0])
    return ns_layer_fail(ctx, l, NS_ERR_NET, "hdf5_output_param { file_name } is required");
  return NS_OK;
}

static ns_status h5out_reshape(ns_ctx *ctx, ns_layer *l) { return NS_OK; }

static ns_status h5out_forward(ns_ctx *ctx, ns_layer *l) {
  const char *names[2] = {"data", "label"};
  int ranks[2] = {l->bottom[0]->num_axes, l->bottom[1]->num_axes};
  const int64_t *shapes[2] = {l->bottom[0]->shape, l->bottom[1]->shape};
  const float *datas[2] = {l->bottom[0]->data, l->bottom[1]->data};
  if (ns_hdf5_write(ctx, l->param->hdf5_output_param->file_name, 2, names, ranks, shapes, datas) !=
      NS_OK) {
    ns_error_prefix(ctx, "layer '%s': ", l->name);
    return ctx->status;
  }
  return NS_OK;
}

const ns_layer_ops ns_hdf5_output_ops = {
    .type = "HDF5Output",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 0,
    .max_tops = 0,
    .setup = h5out_setup,
    .reshape = h5out_reshape,
    .forward = h5out_forward,
};
