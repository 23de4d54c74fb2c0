/* pycaffe's Net.set_input_arrays: arrays handed to a MemoryData layer. */
#include "core/net.h"
#include "layers/memory_data.h"
#include "netsurg.h"

ns_status ns_net_set_input_arrays(ns_ctx *ctx, ns_net *net, const char *layer, const float *data,
                                  const float *labels, int64_t n) {
  int li = layer ? ns_net_find_layer(net, layer) : 0;
  if (li < 0 || li >= net->n_layers)
    return layer ? ns_fail(ctx, NS_ERR_USAGE, "input arrays: no layer '%s' in the net", layer)
                 : ns_fail(ctx, NS_ERR_USAGE, "input arrays: the net has no layer");
  return ns_memory_data_reset(ctx, &net->layers[li], data, labels, n);
}
