/* Caffe's fillers (filler.hpp), drawn from our own deterministic generator:
 * the same seed gives the same weights, though not Caffe's exact numbers. */
#include "core/filler.h"

#include <math.h>
#include <string.h>

/* Caffe's fan-in / fan-out: count / shape(0) and count / shape(1). */
static double fan_n(const ns_blob *b, const Caffe__FillerParameter *f) {
  double count = (double)b->count;
  double fan_in = b->num_axes > 0 && b->shape[0] ? count / (double)b->shape[0] : count;
  double fan_out = b->num_axes > 1 && b->shape[1] ? count / (double)b->shape[1] : count;
  if (f->has_variance_norm) {
    if (f->variance_norm == CAFFE__FILLER_PARAMETER__VARIANCE_NORM__FAN_OUT) return fan_out;
    if (f->variance_norm == CAFFE__FILLER_PARAMETER__VARIANCE_NORM__AVERAGE)
      return (fan_in + fan_out) / 2.0;
  }
  return fan_in;
}

static void fill_gaussian(ns_blob *b, const Caffe__FillerParameter *f, ns_rng *rng) {
  for (int64_t i = 0; i < b->count; i++) b->data[i] = ns_rng_gaussian(rng, f->mean, f->std);
  if (f->sparse < 0 || b->num_axes < 1 || b->shape[0] == 0) return;
  /* Sparse: keep each weight with probability sparse / num_outputs. */
  double keep = (double)f->sparse / (double)b->shape[0];
  for (int64_t i = 0; i < b->count; i++)
    if (ns_rng_uniform01(rng) >= keep) b->data[i] = 0.0f;
}

static void fill_positive_unitball(ns_blob *b, ns_rng *rng) {
  int64_t num = b->num_axes > 0 ? b->shape[0] : 1;
  int64_t dim = num ? b->count / num : 0;
  for (int64_t i = 0; i < b->count; i++) b->data[i] = ns_rng_uniform(rng, 0.0f, 1.0f);
  for (int64_t n = 0; n < num; n++) {
    double sum = 0;
    for (int64_t j = 0; j < dim; j++) sum += b->data[n * dim + j];
    if (sum > 0)
      for (int64_t j = 0; j < dim; j++) b->data[n * dim + j] = (float)(b->data[n * dim + j] / sum);
  }
}

/* The bilinear upsampling kernel used to initialise Deconvolution. */
static ns_status fill_bilinear(ns_ctx *ctx, ns_blob *b) {
  if (b->num_axes != 4 || b->shape[2] != b->shape[3])
    return ns_fail(ctx, NS_ERR_NET, "param '%s': the bilinear filler needs a 4-D blob with square kernels",
                   b->name);
  int64_t width = b->shape[3], height = b->shape[2];
  double f = ceil((double)width / 2.0);
  double c = (2.0 * f - 1.0 - fmod(f, 2.0)) / (2.0 * f);
  for (int64_t i = 0; i < b->count; i++) {
    double x = (double)(i % width), y = (double)((i / width) % height);
    b->data[i] = (float)((1.0 - fabs(x / f - c)) * (1.0 - fabs(y / f - c)));
  }
  return NS_OK;
}

ns_status ns_filler_fill(ns_ctx *ctx, ns_blob *b, const Caffe__FillerParameter *f, ns_rng *rng) {
  if (!f) {
    memset(b->data, 0, (size_t)b->count * sizeof(float));
    return NS_OK;
  }
  const char *type = f->type ? f->type : "constant";
  if (strcmp(type, "constant") == 0) {
    for (int64_t i = 0; i < b->count; i++) b->data[i] = f->value;
  } else if (strcmp(type, "uniform") == 0) {
    for (int64_t i = 0; i < b->count; i++) b->data[i] = ns_rng_uniform(rng, f->min, f->max);
  } else if (strcmp(type, "gaussian") == 0) {
    fill_gaussian(b, f, rng);
  } else if (strcmp(type, "positive_unitball") == 0) {
    fill_positive_unitball(b, rng);
  } else if (strcmp(type, "xavier") == 0) {
    float scale = (float)sqrt(3.0 / fan_n(b, f));
    for (int64_t i = 0; i < b->count; i++) b->data[i] = ns_rng_uniform(rng, -scale, scale);
  } else if (strcmp(type, "msra") == 0) {
    float std = (float)sqrt(2.0 / fan_n(b, f));
    for (int64_t i = 0; i < b->count; i++) b->data[i] = ns_rng_gaussian(rng, 0.0f, std);
  } else if (strcmp(type, "bilinear") == 0) {
    return fill_bilinear(ctx, b);
  } else {
    return ns_fail(ctx, NS_ERR_UNSUPPORTED, "param '%s': unknown filler type '%s'", b->name, type);
  }
  return NS_OK;
}
