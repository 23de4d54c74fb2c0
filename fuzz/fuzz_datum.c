/* libFuzzer target: the Datum decoder of the Data layer and compute-mean
 * (ns_datum_decode): raw bytes, float_data or an encoded JPEG/PNG.  The
 * first byte picks the decoding (native, force_color, force_gray).  A
 * sample holds channels x height x width readable floats. */
#include "fuzz_common.h"
#include "io/datum.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  ns_ctx *ctx = fz_ctx_create(64 << 20);
  ns_datum_sample s;
  ns_status st = ns_datum_decode(ctx, data + 1, size - 1, "fuzz", data[0] % 3, &s);
  fz_check_status(ctx, st);
  if (st == NS_OK) {
    if (s.channels < 1 || s.height < 1 || s.width < 1) fz_abort("an empty sample", ctx);
    fz_touch(s.data, (int64_t)s.channels * s.height * s.width);
    ns_datum_sample_free(ctx, &s);
  }
  fz_ctx_destroy(ctx);
  return 0;
}
