/* Images as caffe.io.load_image returns them (scikit-image 0.19 with the
 * imageio 2.4 + Pillow reader of Debian 12):
 *   img = skimage.img_as_float(skimage.io.imread(f, as_gray=not color))
 *   grey 2-D -> (H, W, 1), tiled to 3 channels when color; RGBA -> RGB.
 * img_as_float divides by 255 (by 65535 for 16-bit grey PNGs).  as_gray
 * converts colour with rgb2gray (0.2125 R + 0.7154 G + 0.0721 B) after
 * rgba2rgb (alpha blended onto white); grey files are taken as they are.
 * imageio rotates JPEGs by their EXIF orientation. */
#include <string.h>

#include "core/blob.h"
#include "core/fileio.h"
#include "io/image_decode.h"

#define IMAGE_MAX_FILE_BYTES (1ull << 30)

/* skimage.color.rgb2gray on img_as_float values. */
static double rgb_to_grey(double r, double g, double b) {
  return r * 0.2125 + g * 0.7154 + b * 0.0721;
}

/* skimage.color.rgba2rgb with a white background, one channel. */
static double over_white(double c, double a) {
  double v = (1.0 - a) * 1.0 + a * c;
  return v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
}

/* One pixel of an 8-bit raw image to 1 (grey) or 3 floats. */
static void convert_pixel8(const unsigned char *p, int channels, int grey, float *dst) {
  double r, g, b, a = 1.0;
  if (channels <= 2) {
    r = g = b = p[0] / 255.0;
    if (channels == 2) a = p[1] / 255.0;
  } else {
    r = p[0] / 255.0;
    g = p[1] / 255.0;
    b = p[2] / 255.0;
    if (channels == 4) a = p[3] / 255.0;
  }
  if (!grey) {
    dst[0] = (float)r;
    dst[1] = (float)g;
    dst[2] = (float)b;
  } else if (channels == 1) {
    dst[0] = (float)r; /* grey files stay as they are */
  } else if (channels == 3) {
    dst[0] = (float)rgb_to_grey(r, g, b);
  } else { /* imageio makes LA and RGBA into RGBA; as_gray blends, then weighs */
    dst[0] = (float)rgb_to_grey(over_white(r, a), over_white(g, a), over_white(b, a));
  }
}

static ns_status raw_to_floats(ns_ctx *ctx, const ns_raw_image *raw, int grey, ns_image *out) {
  int oc = grey ? 1 : 3;
  if (ns_image_alloc(ctx, raw->height, raw->width, oc, out) != NS_OK) return ctx->status;
  int64_t n = (int64_t)raw->height * raw->width;
  for (int64_t i = 0; i < n; i++) {
    float *dst = out->data + i * oc;
    if (raw->bits == 16) { /* 16-bit grey (imageio gives uint16) */
      const unsigned char *p = raw->pixels + 2 * i;
      float v = (float)(((unsigned)p[0] << 8 | p[1]) / 65535.0);
      for (int c = 0; c < oc; c++) dst[c] = v;
    } else {
      convert_pixel8(raw->pixels + i * raw->channels, raw->channels, grey, dst);
    }
  }
  return NS_OK;
}

/* Where output pixel (y, x) comes from, for each EXIF orientation, as
 * imageio's np.rot90 / np.fliplr sequence maps it (h, w: stored size). */
static void oriented_source(int orientation, int h, int w, int y, int x, int *sy, int *sx) {
  switch (orientation) {
    case 2:
      *sy = y, *sx = w - 1 - x;
      break; /* mirror left-right */
    case 3:
      *sy = h - 1 - y, *sx = w - 1 - x;
      break; /* rotate 180 */
    case 4:
      *sy = h - 1 - y, *sx = x;
      break; /* mirror top-bottom */
    case 5:
      *sy = x, *sx = y;
      break; /* transpose */
    case 6:
      *sy = h - 1 - x, *sx = y;
      break; /* rotate 90 clockwise */
    case 7:
      *sy = h - 1 - x, *sx = w - 1 - y;
      break; /* transverse */
    case 8:
      *sy = x, *sx = w - 1 - y;
      break; /* rotate 90 counter-clockwise */
    default:
      *sy = y, *sx = x;
      break;
  }
}

static ns_status apply_orientation(ns_ctx *ctx, int orientation, ns_image *im) {
  if (orientation <= 1 || orientation > 8) return NS_OK;
  int swap = orientation >= 5;
  ns_image out;
  if (ns_image_alloc(ctx, swap ? im->width : im->height, swap ? im->height : im->width,
                     im->channels, &out) != NS_OK)
    return ctx->status;
  int c = im->channels;
  for (int y = 0; y < out.height; y++)
    for (int x = 0; x < out.width; x++) {
      int sy, sx;
      oriented_source(orientation, im->height, im->width, y, x, &sy, &sx);
      memcpy(out.data + ((int64_t)y * out.width + x) * c,
             im->data + ((int64_t)sy * im->width + sx) * c, sizeof(float) * (size_t)c);
    }
  ns_image_free(ctx, im);
  *im = out;
  return NS_OK;
}

static int is_jpeg(const unsigned char *p, size_t n) {
  return n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff;
}

static int is_png(const unsigned char *p, size_t n) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return n >= 8 && memcmp(p, sig, 8) == 0;
}

ns_status ns_image_decode(ns_ctx *ctx, const void *bytes, size_t size, const char *name, int flags,
                          ns_image *out) {
  const unsigned char *p = bytes;
  ns_raw_image raw;
  memset(out, 0, sizeof *out);
  if (!name) name = "<memory>";
  ns_status st;
  if (is_jpeg(p, size))
    st = ns_jpeg_decode(ctx, p, size, name, &raw);
  else if (is_png(p, size))
    st = ns_png_decode(ctx, p, size, name, &raw);
  else
    return ns_fail(ctx, NS_ERR_UNSUPPORTED, "%s: not a JPEG or PNG image", name);
  if (st != NS_OK) return st;
  st = raw_to_floats(ctx, &raw, (flags & NS_IMAGE_GREY) != 0, out);
  ns_free(ctx, raw.pixels);
  if (st == NS_OK && !(flags & NS_IMAGE_IGNORE_EXIF))
    st = apply_orientation(ctx, raw.orientation, out);
  if (st != NS_OK) ns_image_free(ctx, out);
  return st;
}

ns_status ns_image_load(ns_ctx *ctx, const char *path, int flags, ns_image *out) {
  unsigned char *bytes;
  size_t size;
  memset(out, 0, sizeof *out);
  if (ns_io_read_file(ctx, path, IMAGE_MAX_FILE_BYTES, &bytes, &size) != NS_OK) return ctx->status;
  ns_status st = ns_image_decode(ctx, bytes, size, path, flags, out);
  ns_free(ctx, bytes);
  return st;
}
