/* PNG decoding with libpng, matching what imageio + Pillow hand to
 * load_image: palettes expanded (with alpha when they carry tRNS), 1/2/4-bit
 * grey scaled to 8 bits, 16-bit channels cut to their high byte except
 * 16-bit grey, which keeps all 16 bits; tRNS of grey/RGB images and gAMA
 * are ignored.  libpng errors longjmp back here; reads past the end of
 * the buffer are errors, so truncated files fail cleanly. */
#include <png.h>
#include <setjmp.h>
#include <string.h>

#include "io/image_alloc.h"
#include "io/image_decode.h"

typedef struct png_guard {
  ns_ctx *ctx;
  const unsigned char *data;
  size_t size, pos;
  int nomem; /* one of libpng's allocations failed */
  char message[256];
} png_guard;

static void on_error(png_structp png, png_const_charp msg) {
  png_guard *g = png_get_error_ptr(png);
  snprintf(g->message, sizeof g->message, "%s", msg);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void on_read(png_structp png, png_bytep dst, size_t n) {
  png_guard *g = png_get_io_ptr(png);
  if (g->size - g->pos < n) png_error(png, "premature end of data (truncated file)");
  memcpy(dst, g->data + g->pos, n);
  g->pos += n;
}

/* libpng's allocations through the ctx allocator; a failure is noted so
 * that it is reported as out of memory, not as a corrupt file. */
static png_voidp on_malloc(png_structp png, png_alloc_size_t n) {
  png_guard *g = png_get_mem_ptr(png);
  png_voidp p = g->ctx->alloc.alloc(g->ctx->alloc.user, n ? n : 1);
  if (!p) g->nomem = 1;
  return p;
}

static void on_free(png_structp png, png_voidp p) {
  png_guard *g = png_get_mem_ptr(png);
  if (p) g->ctx->alloc.free(g->ctx->alloc.user, p);
}

/* Sets libpng's transformations (see the top of the file). */
static void set_transforms(png_structp png, png_infop info) {
  int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  }
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16 && color != PNG_COLOR_TYPE_GRAY) png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
}

ns_status ns_png_decode(ns_ctx *ctx, const unsigned char *bytes, size_t size, const char *name,
                        ns_raw_image *out) {
  png_guard g = {ctx, bytes, size, 0, 0, {0}};
  unsigned char *volatile pixels = NULL;
  png_bytep *volatile rows = NULL;
  int volatile nomem = 0;
  png_infop info = NULL;
  memset(out, 0, sizeof *out);
  png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &g, on_error, on_warning, &g,
                                             on_malloc, on_free);
  if (!png) return ns_fail(ctx, NS_ERR_NOMEM, "%s: cannot create a PNG reader", name);
  info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return ns_fail(ctx, NS_ERR_NOMEM, "%s: cannot create a PNG reader", name);
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    ns_free(ctx, pixels);
    ns_free(ctx, rows);
    if (nomem) return NS_ERR_NOMEM;
    if (g.nomem) return ns_fail(ctx, NS_ERR_NOMEM, "%s: out of memory decoding the PNG", name);
    return ns_fail(ctx, NS_ERR_INPUT, "%s: corrupt PNG: %s", name, g.message);
  }
  png_set_read_fn(png, &g, on_read);
  png_set_user_limits(png, NS_IMAGE_MAX_DIM, NS_IMAGE_MAX_DIM);
  png_read_info(png, info);
  set_transforms(png, info);
  int64_t width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  int channels = png_get_channels(png, info), bits = png_get_bit_depth(png, info);
  size_t rowbytes = png_get_rowbytes(png, info), raw_bytes;
  if ((bits != 8 && bits != 16) || rowbytes != (size_t)width * (size_t)channels * (bits / 8u))
    png_error(png, "unexpected pixel layout after expansion");
  if (ns_image_check_dims(ctx, name, width, height, channels * (bits / 8), &raw_bytes) != NS_OK) {
    png_destroy_read_struct(&png, &info, NULL);
    return ctx->status;
  }
  pixels = ns_alloc(ctx, raw_bytes);
  rows = pixels ? ns_alloc(ctx, sizeof(png_bytep) * (size_t)height) : NULL;
  if (!rows) {
    nomem = 1;
    png_error(png, "out of memory");
  }
  for (int64_t y = 0; y < height; y++) rows[y] = pixels + rowbytes * (size_t)y;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  ns_free(ctx, rows);
  out->width = (int)width;
  out->height = (int)height;
  out->channels = channels;
  out->bits = bits;
  out->orientation = 1;
  out->pixels = pixels;
  return NS_OK;
}
