/* The notebook's first half, "designer filters", with the C API:
 *
 *   designer_filters NET INPUT OUT_PREFIX
 *
 * NET is Caffe's examples/net_surgery/conv.prototxt (one Convolution, three
 * 5x5 filters on a grey image; ../shared/conformance/designer_filters has
 * it, and scripts/demo.sh writes its own);
 * INPUT is a grey image (cat_gray.jpg) or a (1, 1, H, W) .npy.  Raising the
 * first filter's bias by 1 raises that output's mean by 1; then a Gaussian
 * blur and the horizontal and vertical Sobel kernels are written into the
 * filters and the three outputs saved as OUT_PREFIX-0.png .. -2.png. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "netsurg.h"

static int fail(ns_ctx *ctx) {
  fprintf(stderr, "designer_filters: %s\n", ns_ctx_error(ctx));
  return 1;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Reshapes the net to the input and copies it in: pycaffe's
 * net.blobs['data'].reshape(1, 1, H, W); net.blobs['data'].data[...] = im. */
static ns_status feed(ns_ctx *ctx, ns_net *net, const char *path) {
  int64_t shape[4] = {1, 1, 0, 0};
  ns_ndarray a = {0};
  ns_image im = {0};
  const float *data;
  if (ends_with(path, ".npy")) {
    if (ns_npy_load(ctx, path, &a) != NS_OK) return ns_ctx_status(ctx);
    shape[2] = a.shape[a.num_axes - 2];
    shape[3] = a.shape[a.num_axes - 1];
    data = a.data;
  } else {
    if (ns_image_load(ctx, path, NS_IMAGE_GREY, &im) != NS_OK) return ns_ctx_status(ctx);
    shape[2] = im.height;
    shape[3] = im.width;
    data = im.data;
  }
  ns_status st = ns_net_reshape_input(ctx, net, "data", 4, shape);
  if (st == NS_OK) {
    ns_tensor t = ns_net_blob(net, ns_net_find_blob(net, "data"));
    memcpy(t.data, data, (size_t)t.count * sizeof(float));
  }
  ns_ndarray_free(ctx, &a);
  ns_image_free(ctx, &im);
  return st;
}

static double channel_mean(ns_net *net, int c) {
  ns_tensor t = ns_net_blob(net, ns_net_find_blob(net, "conv"));
  int64_t per = t.shape[2] * t.shape[3];
  double sum = 0;
  for (int64_t i = 0; i < per; i++) sum += t.data[c * per + i];
  return sum / (double)per;
}

/* ksz = 5: y, x = np.mgrid[-2:3, -2:3]; g = exp(-(x^2 + y^2) / 2 sigma^2),
 * normalised; sobel = [-1 -2 -1; 0 0 0; 1 2 1] in the centre of filter 1,
 * its transpose in filter 2. */
static void design(float *w) {
  double g[25], sum = 0, sigma = 1.0;
  for (int y = -2; y <= 2; y++)
    for (int x = -2; x <= 2; x++)
      sum += g[(y + 2) * 5 + x + 2] = exp(-(x * x + y * y) / (2.0 * sigma * sigma));
  for (int i = 0; i < 25; i++) w[i] = (float)(g[i] / sum);
  static const float sobel[9] = {-1, -2, -1, 0, 0, 0, 1, 2, 1};
  memset(w + 25, 0, 50 * sizeof *w);
  for (int y = 0; y < 3; y++)
    for (int x = 0; x < 3; x++) {
      w[25 + (y + 1) * 5 + x + 1] = sobel[y * 3 + x]; /* horizontal edges */
      w[50 + (y + 1) * 5 + x + 1] = sobel[x * 3 + y]; /* vertical edges */
    }
}

static ns_status save_outputs(ns_ctx *ctx, ns_net *net, const char *prefix) {
  ns_tensor t = ns_net_blob(net, ns_net_find_blob(net, "conv"));
  int h = (int)t.shape[2], w = (int)t.shape[3];
  ns_heatmap_opts o;
  ns_heatmap_opts_init(&o);
  o.colormap = NS_COLORMAP_GREY; /* min black, max white, as plt.imshow(cmap='gray') */
  for (int c = 0; c < 3; c++) {
    char path[4096];
    snprintf(path, sizeof path, "%s-%d.png", prefix, c);
    if (ns_heatmap_save_png(ctx, path, t.data + (int64_t)c * h * w, h, w, &o) != NS_OK)
      return ns_ctx_status(ctx);
    printf("wrote %s\n", path);
  }
  return NS_OK;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: designer_filters NET INPUT OUT_PREFIX\n");
    return 1;
  }
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = NULL;
  int rc = 0;
  if (ns_net_load(ctx, argv[1], NULL, &net) != NS_OK || feed(ctx, net, argv[2]) != NS_OK ||
      ns_net_forward(ctx, net) != NS_OK) {
    rc = fail(ctx);
    goto done;
  }
  ns_tensor w, b;
  if (ns_net_param_by_name(ctx, net, "conv", 0, &w) != NS_OK ||
      ns_net_param_by_name(ctx, net, "conv", 1, &b) != NS_OK) {
    rc = fail(ctx);
    goto done;
  }
  if (w.count != 75 || b.count != 3) {
    fprintf(stderr, "designer_filters: the layer 'conv' should have 3 filters of 1x5x5\n");
    rc = 1;
    goto done;
  }
  double before = channel_mean(net, 0);
  printf("pre-surgery output mean %.6f\n", before);
  b.data[0] += 1.0f; /* net.params['conv'][1].data[0] = 1. (the filler's bias is 0) */
  if (ns_net_forward(ctx, net) != NS_OK) {
    rc = fail(ctx);
    goto done;
  }
  double after = channel_mean(net, 0);
  printf("post-surgery output mean %.6f: filter 0's output mean rises by %.6f\n", after,
         after - before);

  design(w.data);
  b.data[1] = b.data[2] = 0.0f;
  if (ns_net_forward(ctx, net) != NS_OK) {
    rc = fail(ctx);
    goto done;
  }
  printf(
      "designed filters: output means %.6f (Gaussian blur, bias 1), %.6f (horizontal Sobel), "
      "%.6f (vertical Sobel)\n",
      channel_mean(net, 0), channel_mean(net, 1), channel_mean(net, 2));
  if (save_outputs(ctx, net, argv[3]) != NS_OK) rc = fail(ctx);
done:
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return rc;
}
