/* EXIF orientation (tag 0x0112 in IFD0), which imageio's JPEG reader
 * applies after decoding.  Every offset is bounds-checked. */
#include <string.h>

#include "io/image_decode.h"

#define TAG_ORIENTATION 0x0112
#define TIFF_SHORT 3
#define TIFF_LONG 4

static unsigned read16(const unsigned char *p, int big) {
  return big ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

static unsigned long read32(const unsigned char *p, int big) {
  return big ? (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 |
                   p[3]
             : (unsigned long)p[3] << 24 | (unsigned long)p[2] << 16 | (unsigned long)p[1] << 8 |
                   p[0];
}

int ns_exif_orientation(const unsigned char *data, size_t len) {
  if (len < 6 || memcmp(data, "Exif\0\0", 6) != 0) return 1;
  const unsigned char *tiff = data + 6;
  size_t n = len - 6;
  if (n < 8) return 1;
  int big;
  if (memcmp(tiff, "II\x2a\0", 4) == 0)
    big = 0;
  else if (memcmp(tiff, "MM\0\x2a", 4) == 0)
    big = 1;
  else
    return 1;
  unsigned long ifd = read32(tiff + 4, big);
  if (ifd > n || n - ifd < 2) return 1;
  unsigned entries = read16(tiff + ifd, big);
  for (unsigned i = 0; i < entries; i++) {
    unsigned long at = ifd + 2 + 12ul * i;
    if (at > n || n - at < 12) return 1;
    const unsigned char *e = tiff + at;
    if (read16(e, big) != TAG_ORIENTATION) continue;
    unsigned type = read16(e + 2, big);
    unsigned long value;
    if (read32(e + 4, big) < 1) return 1;
    if (type == TIFF_SHORT)
      value = read16(e + 8, big);
    else if (type == TIFF_LONG)
      value = read32(e + 8, big);
    else
      return 1;
    return value >= 1 && value <= 8 ? (int)value : 1;
  }
  return 1;
}
