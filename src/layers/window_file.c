/* The window file reader of window_data.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "layers/window_data.h"

#define WINDOW_FILE_MAX_BYTES (1ull << 31)

typedef struct reader {
  ns_ctx *ctx;
  const char *path, *p, *end;
  int line;
  char tok[4096];
} reader;

/* The next whitespace-separated token into r->tok; 0 at the end. */
static int next_token(reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n'))
    r->line += *r->p++ == '\n';
  size_t n = 0;
  while (r->p < r->end && !strchr(" \t\r\n", *r->p)) {
    if (n + 1 < sizeof r->tok) r->tok[n++] = *r->p;
    r->p++;
  }
  r->tok[n] = '\0';
  return n > 0;
}

static ns_status bad(reader *r, const char *what) {
  return ns_fail(r->ctx, NS_ERR_INPUT, "%s:%d: expected %s, got '%s'", r->path, r->line, what,
                 r->tok);
}

static ns_status read_int(reader *r, const char *what, long lo, long hi, int *out) {
  char *end;
  errno = 0;
  long v = next_token(r) ? strtol(r->tok, &end, 10) : 0;
  if (!r->tok[0] || *end || errno || v < lo || v > hi) return bad(r, what);
  *out = (int)v;
  return NS_OK;
}

static ns_status read_float(reader *r, const char *what, float *out) {
  char *end;
  float v = next_token(r) ? strtof(r->tok, &end) : 0;
  if (!r->tok[0] || *end || v != v) return bad(r, what);
  *out = v;
  return NS_OK;
}

static ns_status push_window(ns_ctx *ctx, ns_window **list, int *n, int *cap, const ns_window *w) {
  if (*n == *cap) {
    int grown = *cap ? 2 * *cap : 64;
    ns_window *p = ns_realloc_array(ctx, *list, (size_t)grown, sizeof *p);
    if (!p) return ctx->status;
    *list = p, *cap = grown;
  }
  (*list)[(*n)++] = *w;
  return NS_OK;
}

/* One window line of image `img` (declared h x w), sorted into fg/bg. */
static ns_status read_window(reader *r, ns_window_file *f, int img, float fg_t, float bg_t,
                             int caps[2]) {
  const ns_window_image *im = &f->images[img];
  ns_window w = {.image = img};
  if (read_int(r, "a class index", 0, 1 << 30, &w.label) != NS_OK ||
      read_float(r, "an overlap", &w.overlap) != NS_OK ||
      read_int(r, "x1", 0, im->width - 1, &w.x1) != NS_OK ||
      read_int(r, "y1", 0, im->height - 1, &w.y1) != NS_OK ||
      read_int(r, "x2 (inside the image)", w.x1, im->width - 1, &w.x2) != NS_OK ||
      read_int(r, "y2 (inside the image)", w.y1, im->height - 1, &w.y2) != NS_OK)
    return r->ctx->status;
  if (w.overlap >= fg_t) {
    if (w.label <= 0)
      return ns_fail(r->ctx, NS_ERR_INPUT, "%s:%d: a foreground window (overlap %g) of class 0",
                     r->path, r->line, (double)w.overlap);
    return push_window(r->ctx, &f->fg, &f->n_fg, &caps[0], &w);
  }
  if (w.overlap < bg_t) {
    w.label = 0, w.overlap = 0;
    return push_window(r->ctx, &f->bg, &f->n_bg, &caps[1], &w);
  }
  return NS_OK;
}

static ns_status read_image(reader *r, ns_window_file *f, const char *root, int *img_cap,
                            int *n_windows) {
  if (strcmp(r->tok, "#")) return bad(r, "'#' opening an image");
  int index;
  if (read_int(r, "the image index", 0, 1 << 30, &index) != NS_OK) return r->ctx->status;
  if (index != f->n_images)
    return ns_fail(r->ctx, NS_ERR_INPUT, "%s:%d: image index %d where %d comes next", r->path,
                   r->line, index, f->n_images);
  if (f->n_images == *img_cap) {
    int grown = *img_cap ? 2 * *img_cap : 16;
    ns_window_image *p = ns_realloc_array(r->ctx, f->images, (size_t)grown, sizeof *p);
    if (!p) return r->ctx->status;
    f->images = p, *img_cap = grown;
  }
  ns_window_image *im = &f->images[f->n_images];
  memset(im, 0, sizeof *im);
  if (!next_token(r)) return bad(r, "an image path");
  size_t len = strlen(root) + strlen(r->tok) + 1;
  if (!(im->path = ns_alloc(r->ctx, len))) return r->ctx->status;
  snprintf(im->path, len, "%s%s", root, r->tok);
  f->n_images++;
  if (read_int(r, "3 channels (images are read in colour)", 3, 3, &im->channels) != NS_OK ||
      read_int(r, "the height", 1, 1 << 20, &im->height) != NS_OK ||
      read_int(r, "the width", 1, 1 << 20, &im->width) != NS_OK ||
      read_int(r, "the number of windows", 0, 1 << 30, n_windows) != NS_OK)
    return r->ctx->status;
  return NS_OK;
}

ns_status ns_window_file_read(ns_ctx *ctx, const char *path, const char *root, float fg_threshold,
                              float bg_threshold, ns_window_file *out) {
  memset(out, 0, sizeof *out);
  unsigned char *text;
  size_t size;
  if (ns_io_read_file(ctx, path, WINDOW_FILE_MAX_BYTES, &text, &size) != NS_OK)
    return ctx->status;
  reader *r = ns_calloc(ctx, 1, sizeof *r);
  if (!r) {
    ns_free(ctx, text);
    return ctx->status;
  }
  *r = (reader){.ctx = ctx, .path = path, .p = (const char *)text,
                .end = (const char *)text + size, .line = 1};
  int img_cap = 0, caps[2] = {0, 0};
  ns_status st = NS_OK;
  while (st == NS_OK && next_token(r)) {
    int n_windows = 0;
    st = read_image(r, out, root, &img_cap, &n_windows);
    for (int i = 0; st == NS_OK && i < n_windows; i++)
      st = read_window(r, out, out->n_images - 1, fg_threshold, bg_threshold, caps);
  }
  if (st == NS_OK && out->n_images == 0) st = ns_fail(ctx, NS_ERR_INPUT, "%s: no images", path);
  ns_free(ctx, r);
  ns_free(ctx, text);
  if (st != NS_OK) ns_window_file_free(ctx, out);
  return st;
}

void ns_window_file_free(ns_ctx *ctx, ns_window_file *f) {
  for (int i = 0; i < f->n_images; i++) ns_free(ctx, f->images[i].path);
  ns_free(ctx, f->images);
  ns_free(ctx, f->fg);
  ns_free(ctx, f->bg);
  memset(f, 0, sizeof *f);
}
