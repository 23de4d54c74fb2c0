/* 8-bit RGB PNG output with libpng, written atomically (temporary file
 * next to the target, then rename).  libpng errors longjmp back here; the
 * temporary file is then removed and the old target left as it was. */
#include <png.h>
#include <setjmp.h>
#include <string.h>

#include "core/fileio.h"
#include "io/png_write.h"

typedef struct png_out_guard {
  char message[256];
} png_out_guard;

static void on_error(png_structp png, png_const_charp msg) {
  png_out_guard *g = png_get_error_ptr(png);
  snprintf(g->message, sizeof g->message, "%s", msg);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static png_voidp on_malloc(png_structp png, png_alloc_size_t n) {
  ns_ctx *ctx = png_get_mem_ptr(png);
  return ctx->alloc.alloc(ctx->alloc.user, n ? n : 1);
}

static void on_free(png_structp png, png_voidp p) {
  ns_ctx *ctx = png_get_mem_ptr(png);
  if (p) ctx->alloc.free(ctx->alloc.user, p);
}

ns_status ns_png_check_size(ns_ctx *ctx, const char *path, int64_t height, int64_t width) {
  if (height < 1 || width < 1 || height > NS_PNG_MAX_DIM || width > NS_PNG_MAX_DIM)
    return ns_fail(ctx, NS_ERR_USAGE, "%s: PNG size %lldx%lld is outside 1..%d", path,
                   (long long)width, (long long)height, NS_PNG_MAX_DIM);
  int64_t bytes = height * width * 3;                      /* < 2^34 */
  return ns_check_tensor_size(ctx, (bytes + 3) / 4, path); /* the limit counts floats */
}

static int fail_with(png_out_guard *g, const char *message) {
  snprintf(g->message, sizeof g->message, "%s", message);
  return -1;
}

/* Encodes into the open temporary file; 0 on success. */
static int encode(ns_ctx *ctx, FILE *fp, int height, int width, const unsigned char *rgb,
                  png_out_guard *g) {
  png_structp png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, g, on_error, on_warning, ctx,
                                              on_malloc, on_free);
  if (!png) return fail_with(g, "cannot create a PNG writer");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return fail_with(g, "cannot create a PNG writer");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return -1;
  }
  png_init_io(png, fp);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < height; y++) png_write_row(png, rgb + (size_t)y * (size_t)width * 3);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return 0;
}

ns_status ns_png_save_rgb8(ns_ctx *ctx, const char *path, int height, int width,
                           const unsigned char *rgb) {
  if (ns_png_check_size(ctx, path, height, width) != NS_OK) return ctx->status;
  if (!rgb) return ns_fail(ctx, NS_ERR_USAGE, "%s: no pixels to write", path);
  ns_atomic_file af;
  if (ns_atomic_open(ctx, path, &af) != NS_OK) return ctx->status;
  png_out_guard g = {{0}};
  if (encode(ctx, af.fp, height, width, rgb, &g) != 0) {
    ns_atomic_abort(ctx, &af);
    return ns_fail(ctx, NS_ERR_IO, "%s: cannot write PNG: %s", path, g.message);
  }
  return ns_atomic_commit(ctx, &af);
}
