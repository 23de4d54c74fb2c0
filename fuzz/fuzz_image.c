/* libFuzzer target: the image decoder (ns_image_decode: JPEG or PNG by
 * content, EXIF orientation, grey conversion) and a resize of what
 * decodes.  The first byte picks the flags; the rest is the file. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int flags = data[0] & (NS_IMAGE_GREY | NS_IMAGE_IGNORE_EXIF);
  int antialias = (data[0] >> 2) & 1;
  ns_ctx *ctx = fz_ctx_create(64 << 20);
  ns_image im;
  ns_status st = ns_image_decode(ctx, data + 1, size - 1, "fuzz.img", flags, &im);
  fz_check_status(ctx, st);
  if (st == NS_OK) {
    if (im.height <= 0 || im.width <= 0 || (im.channels != 1 && im.channels != 3))
      fz_abort("bad image geometry", ctx);
    if ((flags & NS_IMAGE_GREY) ? im.channels != 1 : im.channels != 3)
      fz_abort("channels do not follow the flags", ctx);
    fz_touch(im.data, (int64_t)im.height * im.width * im.channels);
    /* Shrink by about 3 x 2 (upscale tiny images): the anti-aliasing
     * kernel grows with the ratio, and a fixed tiny target would make a
     * 10000-pixel-wide image cost minutes, which is not what users run. */
    int h = im.height > 2 ? im.height / 3 + 1 : 5, w = im.width > 2 ? im.width / 2 + 1 : 7;
    ns_image small;
    st = ns_image_resize(ctx, &im, h, w, antialias, &small);
    fz_check_status(ctx, st);
    if (st == NS_OK) {
      if (small.height != h || small.width != w || small.channels != im.channels)
        fz_abort("resize gave another size", ctx);
      fz_touch(small.data, (int64_t)h * w * small.channels);
      ns_image_free(ctx, &small);
    }
    ns_image_free(ctx, &im);
  }
  fz_ctx_destroy(ctx);
  return 0;
}
