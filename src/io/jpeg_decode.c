/* JPEG decoding with libjpeg(-turbo), set up as Pillow sets it up, so the
 * pixels equal what pycaffe's load_image sees: libjpeg's defaults (ISLOW
 * DCT, fancy upsampling), RGB or grey output, CMYK converted with Pillow's
 * formula.  libjpeg reports fatal errors through error_exit, which must
 * not return: ours longjmps back here and the decode fails cleanly.
 * Premature end of data is only a warning in libjpeg (it pads the image
 * with grey); Pillow refuses such files, and so do we. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "io/image_alloc.h"
#include "io/image_decode.h"

#define MAX_PROGRESSIVE_SCANS 1000 /* a guard against scan-flood files */
#define TRUNCATED "premature end of data (truncated file)"

typedef struct jpeg_guard {
  struct jpeg_error_mgr pub;
  struct jpeg_progress_mgr progress;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
  int truncated;
  int nomem; /* our allocation failed: ctx already holds the error */
} jpeg_guard;

static void on_error_exit(j_common_ptr cinfo) {
  jpeg_guard *g = (jpeg_guard *)cinfo->err;
  g->pub.format_message(cinfo, g->message);
  longjmp(g->jump, 1);
}

/* Warnings (level < 0) are counted, not printed; trace messages dropped. */
static void on_emit_message(j_common_ptr cinfo, int level) {
  jpeg_guard *g = (jpeg_guard *)cinfo->err;
  if (level >= 0) return;
  if (g->pub.msg_code == JWRN_JPEG_EOF) g->truncated = 1;
  g->pub.num_warnings++;
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void fail_jump(jpeg_guard *g, const char *message) {
  snprintf(g->message, sizeof g->message, "%s", message);
  longjmp(g->jump, 1);
}

static void on_progress(j_common_ptr cinfo) {
  jpeg_guard *g = (jpeg_guard *)cinfo->err;
  j_decompress_ptr d = (j_decompress_ptr)cinfo;
  if (cinfo->is_decompressor && d->progressive_mode &&
      d->input_scan_number > MAX_PROGRESSIVE_SCANS) {
    fail_jump(g, "too many progressive scans");
  }
}

/* Pillow reads 4-component JPEGs as inverted ("Adobe") CMYK and converts
 * with r = nk - nk * c / 255 (rounded as MULDIV255), nk = 255 - k. */
static void cmyk_row_to_rgb(const unsigned char *in, int width, unsigned char *out) {
  for (int x = 0; x < width; x++) {
    int nk = in[4 * x + 3]; /* 255 - inverted k */
    for (int ch = 0; ch < 3; ch++) {
      int c = 255 - in[4 * x + ch];
      int t = c * nk + 128;
      int v = nk - (((t >> 8) + t) >> 8);
      out[3 * x + ch] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
}

static int first_exif_orientation(j_decompress_ptr cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0)
      return ns_exif_orientation(m->data, m->data_length);
  return 1;
}

/* Reads all scanlines into pixels (3 or 1 bytes per pixel); cmyk_row is
 * scratch for CMYK input (4 bytes per pixel) or NULL. */
static void read_rows(j_decompress_ptr cinfo, unsigned char *pixels, size_t stride,
                      unsigned char *cmyk_row) {
  while (cinfo->output_scanline < cinfo->output_height) {
    unsigned char *dst = pixels + stride * cinfo->output_scanline;
    JSAMPROW row = cmyk_row ? cmyk_row : dst;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) break;
    if (cmyk_row) cmyk_row_to_rgb(cmyk_row, (int)cinfo->output_width, dst);
  }
}

ns_status ns_jpeg_decode(ns_ctx *ctx, const unsigned char *bytes, size_t size, const char *name,
                         ns_raw_image *out) {
  struct jpeg_decompress_struct cinfo;
  jpeg_guard g;
  unsigned char *volatile pixels = NULL;
  unsigned char *volatile cmyk_row = NULL;
  memset(out, 0, sizeof *out);
  memset(&g, 0, sizeof g);
  cinfo.err = jpeg_std_error(&g.pub);
  g.pub.error_exit = on_error_exit;
  g.pub.emit_message = on_emit_message;
  g.pub.output_message = on_output_message;
  if (setjmp(g.jump)) {
    jpeg_destroy_decompress(&cinfo);
    ns_free(ctx, pixels);
    ns_free(ctx, cmyk_row);
    if (g.nomem) return NS_ERR_NOMEM;
    if (g.pub.msg_code == JERR_NO_BACKING_STORE) /* over max_memory_to_use */
      return ns_fail(ctx, NS_ERR_NOMEM, "%s: decoding this JPEG needs more than the memory limit",
                     name);
    return ns_fail(ctx, NS_ERR_INPUT, "%s: corrupt JPEG: %s", name, g.message);
  }
  jpeg_create_decompress(&cinfo);
  g.progress.progress_monitor = on_progress;
  cinfo.progress = &g.progress;
  if (ctx->memory_limit) cinfo.mem->max_memory_to_use = (long)(ctx->memory_limit / 2);
  jpeg_mem_src(&cinfo, bytes, (unsigned long)size);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&cinfo, TRUE);
  out->orientation = first_exif_orientation(&cinfo); /* markers die at finish */

  int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE
                          : cmyk                                  ? JCS_CMYK
                                                                  : JCS_RGB;
  int channels = cinfo.out_color_space == JCS_GRAYSCALE ? 1 : 3;
  size_t raw_bytes;
  if (ns_image_check_dims(ctx, name, cinfo.image_width, cinfo.image_height, channels, &raw_bytes) !=
      NS_OK) {
    jpeg_destroy_decompress(&cinfo);
    return ctx->status;
  }
  jpeg_start_decompress(&cinfo); /* reads all scans of progressive files */
  if (g.truncated) fail_jump(&g, TRUNCATED);
  pixels = ns_alloc(ctx, raw_bytes);
  if (cmyk && pixels) cmyk_row = ns_alloc(ctx, (size_t)cinfo.output_width * 4);
  if (!pixels || (cmyk && !cmyk_row)) {
    g.nomem = 1;
    fail_jump(&g, "out of memory");
  }
  read_rows(&cinfo, pixels, (size_t)cinfo.output_width * (size_t)channels, cmyk_row);
  jpeg_finish_decompress(&cinfo);
  if (g.truncated) fail_jump(&g, TRUNCATED);
  out->width = (int)cinfo.output_width;
  out->height = (int)cinfo.output_height;
  out->channels = channels;
  out->bits = 8;
  out->pixels = pixels;
  ns_free(ctx, cmyk_row);
  jpeg_destroy_decompress(&cinfo);
  return NS_OK;
}
