/* libFuzzer target: the mean-file reader for Caffe's .binaryproto
 * (ns_mean_parse_binaryproto).  A result is (C, H, W) or (C,) and holds
 * the product of its shape in readable floats. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ns_ctx *ctx = fz_ctx_create(64 << 20);
  ns_ndarray a;
  ns_status st = ns_mean_parse_binaryproto(ctx, data, size, "fuzz.binaryproto", &a);
  fz_check_status(ctx, st);
  if (st == NS_OK) {
    if (a.num_axes != 3 && a.num_axes != 1) fz_abort("a mean is (C, H, W) or (C,)", ctx);
    int64_t count = 1;
    for (int i = 0; i < a.num_axes; i++) {
      if (a.shape[i] < 0) fz_abort("negative dim", ctx);
      count *= a.shape[i];
    }
    if (count != a.count) fz_abort("count is not the product of the shape", ctx);
    fz_touch(a.data, a.count);
    ns_ndarray_free(ctx, &a);
  }
  fz_ctx_destroy(ctx);
  return 0;
}
