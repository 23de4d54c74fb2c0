/* The seed's net surgery by hand, as the notebook does it with numpy:
 *
 *   net_surgery DEPLOY WEIGHTS FULL_CONV OUT.caffemodel [IMAGE]
 *
 * 1. load the classifier and print its fully connected params' shapes;
 * 2. load the fully convolutional definition with the same weights: the
 *    renamed layers (fc6-conv, ...) are not filled, Caffe matches by name;
 * 3. transplant: the (out, c*h*w) InnerProduct weights, read flat, are the
 *    (out, c, h, w) filters; copy weights and biases;
 * 4. save OUT.caffemodel;
 * 5. with IMAGE: classify it with pycaffe's preprocessing (channel swap to
 *    BGR, scale 255, ImageNet's per-channel mean) and print the argmax map.
 *
 * `netsurg fcn` does all of this automatically, writing FULL_CONV too; this
 * program shows the C API it is made of. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netsurg.h"

static int fail(ns_ctx *ctx) {
  fprintf(stderr, "net_surgery: %s\n", ns_ctx_error(ctx));
  return 1;
}

static void print_shape(const ns_tensor *t) {
  printf("(");
  for (int i = 0; i < t->num_axes; i++) printf(i ? ", %lld" : "%lld", (long long)t->shape[i]);
  printf(t->num_axes == 1 ? ",)" : ")");
}

/* "fc6 weights are (4096, 9216) dimensional and biases are (4096,)
 * dimensional", as the notebook prints them. */
static void print_params(ns_net *net, int layer) {
  ns_tensor w = ns_net_param(net, layer, 0);
  printf("%s weights are ", ns_net_layer_name(net, layer));
  print_shape(&w);
  printf(" dimensional");
  if (ns_net_param_count(net, layer) > 1) {
    ns_tensor b = ns_net_param(net, layer, 1);
    printf(" and biases are ");
    print_shape(&b);
    printf(" dimensional");
  }
  printf("\n");
}

/* conv_params[pr_conv][0].flat = fc_params[pr][0].flat, and the biases. */
static int transplant(ns_ctx *ctx, ns_net *net, int fc, ns_net *full, int conv) {
  if (ns_net_param_count(net, fc) != ns_net_param_count(full, conv)) {
    fprintf(stderr, "net_surgery: %s and %s have different param counts\n",
            ns_net_layer_name(net, fc), ns_net_layer_name(full, conv));
    return 1;
  }
  for (int j = 0; j < ns_net_param_count(net, fc); j++) {
    ns_tensor src = ns_net_param(net, fc, j);
    /* ns_net_param_set checks the element count and names both layers' shapes */
    if (ns_net_param_set(ctx, full, ns_net_layer_name(full, conv), j, src.data, src.count) != NS_OK)
      return fail(ctx);
  }
  return 0;
}

/* numpy's print of an int matrix, as the seed shows the argmax map. */
static void print_argmax(ns_net *net, const char *blob) {
  ns_tensor p = ns_net_blob(net, ns_net_find_blob(net, blob));
  int64_t k = p.shape[1], h = p.num_axes == 4 ? p.shape[2] : 1,
          w = p.num_axes == 4 ? p.shape[3] : 1;
  for (int64_t y = 0; y < h; y++) {
    printf(y ? " [" : "[[");
    for (int64_t x = 0; x < w; x++) {
      int64_t best = 0;
      for (int64_t c = 1; c < k; c++)
        if (p.data[(c * h + y) * w + x] > p.data[(best * h + y) * w + x]) best = c;
      printf(x ? " %3lld" : "%3lld", (long long)best);
    }
    printf(y == h - 1 ? "]]\n" : "]\n");
  }
}

static int classify(ns_ctx *ctx, ns_net *full, const char *path) {
  ns_image im;
  if (ns_image_load(ctx, path, 0, &im) != NS_OK) return fail(ctx);
  ns_tensor in = ns_net_blob(full, ns_net_find_blob(full, "data"));
  int64_t shape[4] = {1, in.shape[1], in.shape[2], in.shape[3]};
  ns_transform t;
  ns_transform_init(&t);
  t.num_swap = 3; /* transformer.set_channel_swap('data', (2, 1, 0)) */
  t.channel_swap[0] = 2, t.channel_swap[1] = 1, t.channel_swap[2] = 0;
  t.raw_scale = 255.0;   /* transformer.set_raw_scale('data', 255.0) */
  t.num_mean_values = 3; /* ilsvrc_2012_mean.npy averaged per channel (BGR) */
  t.mean_values[0] = 104.00698793, t.mean_values[1] = 116.66876762, t.mean_values[2] = 122.67891434;
  int rc = 0;
  if (ns_net_reshape_input(ctx, full, "data", 4, shape) != NS_OK) rc = fail(ctx);
  in = ns_net_blob(full, ns_net_find_blob(full, "data"));
  if (!rc && (ns_transform_preprocess(ctx, &t, &im, (int)shape[2], (int)shape[3], in.data,
                                      in.count) != NS_OK ||
              ns_net_forward(ctx, full) != NS_OK))
    rc = fail(ctx);
  if (!rc) print_argmax(full, "prob");
  ns_image_free(ctx, &im);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: net_surgery DEPLOY WEIGHTS FULL_CONV OUT.caffemodel [IMAGE]\n");
    return 1;
  }
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = NULL, *full = NULL;
  int rc = 0;
  /* net = caffe.Net(deploy, weights, caffe.TEST) */
  ns_net_opts opts;
  ns_net_opts_init(&opts); /* phase TEST, seed 1 */
  opts.weights = argv[2];
  if (ns_net_load(ctx, argv[1], &opts, &net) != NS_OK ||
      ns_net_load(ctx, argv[3], &opts, &full) != NS_OK) {
    rc = fail(ctx);
    goto done;
  }
  for (int l = 0; l < ns_net_layer_count(net) && !rc; l++) {
    if (strcmp(ns_net_layer_type(net, l), "InnerProduct") != 0) continue;
    char conv_name[1024];
    snprintf(conv_name, sizeof conv_name, "%s-conv", ns_net_layer_name(net, l));
    int conv = ns_net_find_layer(full, conv_name);
    print_params(net, l);
    if (conv < 0) {
      fprintf(stderr, "net_surgery: %s has no layer %s\n", argv[3], conv_name);
      rc = 1;
      break;
    }
    print_params(full, conv);
    rc = transplant(ctx, net, l, full, conv);
  }
  if (!rc && ns_net_save_weights(ctx, full, argv[4]) != NS_OK) rc = fail(ctx);
  if (!rc) printf("wrote %s\n", argv[4]);
  if (!rc && argc == 6) rc = classify(ctx, full, argv[5]);
done:
  ns_net_destroy(full);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return rc;
}
