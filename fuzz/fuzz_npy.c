/* libFuzzer target: the .npy reader (ns_npy_parse).  A result must hold
 * exactly the product of its shape in readable floats. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ns_ctx *ctx = fz_ctx_create(64 << 20);
  ns_ndarray a;
  ns_status st = ns_npy_parse(ctx, data, size, "fuzz.npy", &a);
  fz_check_status(ctx, st);
  if (st == NS_OK) {
    int64_t count = 1;
    if (a.num_axes < 0 || a.num_axes > NS_NDARRAY_MAX_AXES) fz_abort("bad num_axes", ctx);
    for (int i = 0; i < a.num_axes; i++) {
      if (a.shape[i] < 0) fz_abort("negative dim", ctx);
      count *= a.shape[i];
    }
    if (count != a.count) fz_abort("count is not the product of the shape", ctx);
    if (a.count > 0 && !a.data) fz_abort("no data", ctx);
    fz_touch(a.data, a.count);
    ns_ndarray_free(ctx, &a);
  }
  fz_ctx_destroy(ctx);
  return 0;
}
