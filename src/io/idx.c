/* IDX files, the format of MNIST and Fashion-MNIST: two zero bytes, a type
 * byte, the number of axes, each dimension as a big-endian int32, then the
 * data, big-endian.  Debian ships them gzipped; zlib's gzread reads plain
 * and gzipped files alike.  The header is untrusted: sizes are checked
 * before anything is allocated, and the data must fill the file exactly. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/blob.h"

#define IDX_CHUNK 65536

static int item_size(int type) {
  switch (type) {
    case 0x08: /* unsigned byte */
    case 0x09:
      return 1; /* signed byte */
    case 0x0B:
      return 2; /* int16 */
    case 0x0C:  /* int32 */
    case 0x0D:
      return 4; /* float32 */
    case 0x0E:
      return 8; /* float64 */
    default:
      return 0;
  }
}

static float convert(int type, const unsigned char *b) {
  switch (type) {
    case 0x08:
      return (float)b[0];
    case 0x09:
      return (float)(int8_t)b[0];
    case 0x0B:
      return (float)(int16_t)(uint16_t)((unsigned)b[0] << 8 | b[1]);
    case 0x0C:
      return (float)(int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
                              b[3]);
    case 0x0D: {
      uint32_t u = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
      float f;
      memcpy(&f, &u, 4);
      return f;
    }
    default: {
      uint64_t u = 0;
      for (int k = 0; k < 8; k++) u = u << 8 | b[k];
      double d;
      memcpy(&d, &u, 8);
      return (float)d;
    }
  }
}

/* Reads exactly n bytes; returns how many were read (< n at the end). */
static int64_t read_full(gzFile f, unsigned char *buf, int64_t n) {
  int64_t got = 0;
  while (got < n) {
    unsigned want = n - got > IDX_CHUNK ? IDX_CHUNK : (unsigned)(n - got);
    int r = gzread(f, buf + got, want);
    if (r <= 0) break;
    got += r;
  }
  return got;
}

/* What the whole file holds once decompressed: the size of a plain file,
 * or a gzip member's ISIZE trailer (the size mod 2^32); *mod32 says which.
 * -1 if unknown (not a regular file). */
static int64_t stored_size(const char *path, int *mod32) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return -1;
  unsigned char magic[2] = {0}, tail[4];
  int64_t size = -1;
  *mod32 = 0;
  if (fread(magic, 1, 2, fp) == 2 && fseek(fp, 0, SEEK_END) == 0) {
    long end = ftell(fp);
    if (magic[0] == 0x1f && magic[1] == 0x8b) {
      if (end >= 18 && fseek(fp, -4, SEEK_END) == 0 && fread(tail, 1, 4, fp) == 4) {
        size = (int64_t)((uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 |
                         (uint32_t)tail[3] << 24);
        *mod32 = 1;
      }
    } else if (end >= 0) {
      size = end;
    }
  }
  fclose(fp);
  return size;
}

static ns_status read_idx(ns_ctx *ctx, const char *path, gzFile f, ns_ndarray *out) {
  unsigned char head[4];
  if (read_full(f, head, 4) != 4 || head[0] != 0 || head[1] != 0)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: not an IDX file (bad magic)", path);
  int type = head[2], axes = head[3], size = item_size(type);
  if (!size) return ns_fail(ctx, NS_ERR_INPUT, "%s: unknown IDX data type 0x%02x", path, type);
  if (axes < 1 || axes > NS_NDARRAY_MAX_AXES)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: IDX file with %d axes", path, axes);
  int64_t count = 1;
  for (int i = 0; i < axes; i++) {
    unsigned char d[4];
    if (read_full(f, d, 4) != 4)
      return ns_fail(ctx, NS_ERR_INPUT, "%s: truncated IDX header", path);
    uint32_t dim = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    if (dim > INT32_MAX || !ns_mul_i64(count, dim, &count))
      return ns_fail(ctx, NS_ERR_INPUT, "%s: IDX dimension %u is too large", path, dim);
    out->shape[i] = dim;
  }
  out->num_axes = axes;
  if (ns_check_tensor_size(ctx, count, path) != NS_OK) return ctx->status;
  /* Check the size before allocating, so a lying header costs nothing
   * (a gzip file only tells its size mod 2^32: a cheap, partial check). */
  int mod32;
  int64_t have = stored_size(path, &mod32), want;
  if (have >= 0 && ns_mul_i64(count, size, &want) && ns_add_i64(want, 4 + 4 * axes, &want)) {
    int64_t w = mod32 ? (int64_t)((uint64_t)want & 0xFFFFFFFFu) : want;
    if (w != have)
      return ns_fail(ctx, NS_ERR_INPUT,
                     "%s: the IDX header's shape needs %lld bytes, the file "
                     "holds %lld%s",
                     path, (long long)want, (long long)have, mod32 ? " (mod 2^32)" : "");
  }
  out->data = ns_floats_alloc(ctx, count ? count : 1);
  if (!out->data) return ctx->status;
  out->count = count;
  unsigned char *buf = ns_alloc(ctx, IDX_CHUNK);
  if (!buf) return ctx->status;
  int64_t per_chunk = IDX_CHUNK / size, done = 0;
  while (done < count) {
    int64_t n = count - done < per_chunk ? count - done : per_chunk;
    if (read_full(f, buf, n * size) != n * size) {
      ns_free(ctx, buf);
      return ns_fail(ctx, NS_ERR_INPUT, "%s: truncated IDX data (%lld of %lld values)", path,
                     (long long)done, (long long)count);
    }
    for (int64_t i = 0; i < n; i++) out->data[done + i] = convert(type, buf + i * size);
    done += n;
  }
  int extra = read_full(f, buf, 1) != 0;
  ns_free(ctx, buf);
  if (extra) return ns_fail(ctx, NS_ERR_INPUT, "%s: trailing bytes after the IDX data", path);
  return NS_OK;
}

ns_status ns_idx_load(ns_ctx *ctx, const char *path, ns_ndarray *out) {
  memset(out, 0, sizeof *out);
  gzFile f = gzopen(path, "rb");
  if (!f) return ns_fail(ctx, NS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  ns_status st = read_idx(ctx, path, f, out);
  gzclose(f);
  if (st != NS_OK) ns_ndarray_free(ctx, out);
  return st;
}
