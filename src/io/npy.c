/* NumPy .npy files (format versions 1.0, 2.0 and 3.0).
 *
 * Layout: "\x93NUMPY", major, minor, header length (2 bytes little-endian
 * for 1.0, 4 bytes for 2.0/3.0), then a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 256, 256), }
 * padded with spaces and ended by '\n', then the raw data.  The header is
 * untrusted: it is parsed strictly, every size product is checked, and the
 * data must fill the rest of the file exactly. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "core/blob.h"
#include "core/fileio.h"
#include "io/npy_header.h"

#define NPY_PRELUDE_V1 10
#define NPY_PRELUDE_V2 12
#define NPY_MAX_HEADER (1u << 20) /* numpy itself writes < 1 KiB */
#define NPY_CHUNK 65536

static int host_is_little_endian(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

void ns_ndarray_free(ns_ctx *ctx, ns_ndarray *a) {
  if (!a) return;
  ns_floats_free(ctx, a->data);
  memset(a, 0, sizeof *a);
}

/* Reads the fixed part before the header: magic, version, header length.
 * `avail` is how many prelude bytes the caller has (>= 10). */
static ns_status parse_prelude(ns_ctx *ctx, const char *name, const unsigned char *p, size_t avail,
                               size_t *prelude_len, uint32_t *header_len) {
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (avail < NPY_PRELUDE_V1 || memcmp(p, magic, sizeof magic) != 0)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: not a .npy file (bad magic)", name);
  int major = p[6], minor = p[7];
  if (minor != 0 || major < 1 || major > 3)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: unsupported .npy format version %d.%d", name, major,
                   minor);
  if (major == 1) {
    *prelude_len = NPY_PRELUDE_V1;
    *header_len = (uint32_t)p[8] | (uint32_t)p[9] << 8;
  } else {
    if (avail < NPY_PRELUDE_V2)
      return ns_fail(ctx, NS_ERR_INPUT, "%s: truncated .npy header", name);
    *prelude_len = NPY_PRELUDE_V2;
    *header_len =
        (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
  }
  if (*header_len > NPY_MAX_HEADER)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: .npy header of %u bytes is too long", name,
                   (unsigned)*header_len);
  return NS_OK;
}

/* Converts n elements of raw data (in the file's dtype) to floats. */
static void convert_elements(const ns_npy_header *h, const unsigned char *src, int64_t n,
                             float *dst) {
  int swap = h->little_endian != host_is_little_endian();
  for (int64_t i = 0; i < n; i++) {
    unsigned char b[8];
    const unsigned char *s = src + i * h->itemsize;
    for (int k = 0; k < h->itemsize; k++) b[k] = swap ? s[h->itemsize - 1 - k] : s[k];
    if (h->itemsize == 4) {
      float f;
      memcpy(&f, b, 4);
      dst[i] = f;
    } else {
      double d;
      memcpy(&d, b, 8);
      dst[i] = (float)d;
    }
  }
}

/* Allocates out->data for the header's shape (memory limit applies). */
static ns_status alloc_array(ns_ctx *ctx, const char *name, const ns_npy_header *h,
                             ns_ndarray *out) {
  memset(out, 0, sizeof *out);
  if (ns_check_tensor_size(ctx, h->count, name) != NS_OK) return ctx->status;
  out->data = ns_floats_alloc(ctx, h->count);
  if (!out->data) return ctx->status;
  out->num_axes = h->num_axes;
  memcpy(out->shape, h->shape, sizeof(int64_t) * (size_t)h->num_axes);
  out->count = h->count;
  return NS_OK;
}

static ns_status size_mismatch(ns_ctx *ctx, const char *name, int64_t expected, uint64_t have) {
  if (have < (uint64_t)expected)
    return ns_fail(ctx, NS_ERR_INPUT,
                   "%s: truncated .npy data: the shape needs %lld bytes, the file has %llu", name,
                   (long long)expected, (unsigned long long)have);
  return ns_fail(ctx, NS_ERR_INPUT, "%s: %llu bytes of trailing garbage after the .npy data", name,
                 (unsigned long long)(have - (uint64_t)expected));
}

ns_status ns_npy_parse(ns_ctx *ctx, const void *bytes, size_t size, const char *name,
                       ns_ndarray *out) {
  const unsigned char *p = bytes;
  size_t prelude;
  uint32_t hlen;
  ns_npy_header h;
  memset(out, 0, sizeof *out);
  if (!name) name = "<memory>";
  if (parse_prelude(ctx, name, p, size, &prelude, &hlen) != NS_OK) return ctx->status;
  if (size - prelude < hlen) return ns_fail(ctx, NS_ERR_INPUT, "%s: truncated .npy header", name);
  if (ns_npy_parse_header(ctx, name, (const char *)p + prelude, hlen, &h) != NS_OK)
    return ctx->status;
  size_t data_len = size - prelude - hlen;
  if ((uint64_t)data_len != (uint64_t)h.data_bytes)
    return size_mismatch(ctx, name, h.data_bytes, data_len);
  if (alloc_array(ctx, name, &h, out) != NS_OK) return ctx->status;
  convert_elements(&h, p + prelude + hlen, h.count, out->data);
  return NS_OK;
}

/* Streams the data part of an open file into out->data, chunk by chunk. */
static ns_status read_data(ns_ctx *ctx, const char *path, FILE *fp, const ns_npy_header *h,
                           ns_ndarray *out) {
  unsigned char *chunk = ns_alloc(ctx, NPY_CHUNK);
  if (!chunk) return ctx->status;
  int64_t per_chunk = NPY_CHUNK / h->itemsize, done = 0;
  ns_status st = NS_OK;
  while (done < h->count) {
    int64_t n = h->count - done < per_chunk ? h->count - done : per_chunk;
    size_t want = (size_t)(n * h->itemsize);
    size_t got = fread(chunk, 1, want, fp);
    if (got != want) {
      st = ferror(fp)
               ? ns_fail(ctx, NS_ERR_IO, "%s: read error", path)
               : size_mismatch(ctx, path, h->data_bytes, (uint64_t)(done * h->itemsize) + got);
      break;
    }
    convert_elements(h, chunk, n, out->data + done);
    done += n;
  }
  ns_free(ctx, chunk);
  if (st == NS_OK && fgetc(fp) != EOF)
    st = ns_fail(ctx, NS_ERR_INPUT, "%s: trailing garbage after the .npy data", path);
  return st;
}

/* Reads prelude and header from an open file. */
static ns_status read_header(ns_ctx *ctx, const char *path, FILE *fp, ns_npy_header *h,
                             uint64_t *data_offset) {
  unsigned char pre[NPY_PRELUDE_V2];
  size_t got = fread(pre, 1, NPY_PRELUDE_V1, fp), prelude;
  uint32_t hlen;
  if (got == NPY_PRELUDE_V1 && pre[6] >= 2) got += fread(pre + got, 1, 2, fp);
  if (parse_prelude(ctx, path, pre, got, &prelude, &hlen) != NS_OK) return ctx->status;
  char *text = ns_alloc(ctx, hlen + 1u);
  if (!text) return ctx->status;
  ns_status st = NS_OK;
  if (fread(text, 1, hlen, fp) != hlen)
    st = ns_fail(ctx, NS_ERR_INPUT, "%s: truncated .npy header", path);
  else
    st = ns_npy_parse_header(ctx, path, text, hlen, h);
  ns_free(ctx, text);
  *data_offset = (uint64_t)prelude + hlen;
  return st;
}

ns_status ns_npy_load(ns_ctx *ctx, const char *path, ns_ndarray *out) {
  memset(out, 0, sizeof *out);
  FILE *fp = fopen(path, "rb");
  if (!fp) return ns_fail(ctx, NS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  ns_npy_header h;
  uint64_t offset = 0;
  ns_status st = read_header(ctx, path, fp, &h, &offset);
  struct stat sb;
  /* Check the size before allocating, so a lying header costs nothing. */
  if (st == NS_OK && fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode)) {
    uint64_t have = (uint64_t)sb.st_size > offset ? (uint64_t)sb.st_size - offset : 0;
    if (have != (uint64_t)h.data_bytes) st = size_mismatch(ctx, path, h.data_bytes, have);
  }
  if (st == NS_OK) st = alloc_array(ctx, path, &h, out);
  if (st == NS_OK) st = read_data(ctx, path, fp, &h, out);
  fclose(fp);
  if (st != NS_OK) ns_ndarray_free(ctx, out);
  return st;
}

/* ---- writing ---- */

/* Writes prelude + header for the given dtype descr and shape. */
static ns_status write_header(ns_ctx *ctx, ns_atomic_file *af, const char *descr, int num_axes,
                              const int64_t *shape) {
  char dict[64 + NS_NDARRAY_MAX_AXES * 24];
  size_t n = (size_t)snprintf(dict, sizeof dict,
                              "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < num_axes; i++)
    n += (size_t)snprintf(dict + n, sizeof dict - n, i ? ", %lld" : "%lld", (long long)shape[i]);
  n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", num_axes == 1 ? "," : "");
  /* Pad with spaces so the data starts at a multiple of 64, as numpy does. */
  size_t total = NPY_PRELUDE_V1 + n + 1, padded = (total + 63) / 64 * 64;
  size_t hlen = padded - NPY_PRELUDE_V1;
  unsigned char pre[NPY_PRELUDE_V1] = {0x93,
                                       'N',
                                       'U',
                                       'M',
                                       'P',
                                       'Y',
                                       1,
                                       0,
                                       (unsigned char)(hlen & 0xff),
                                       (unsigned char)(hlen >> 8)};
  char pad[64];
  memset(pad, ' ', sizeof pad);
  pad[padded - total] = '\n';
  if (ns_atomic_write(ctx, af, pre, sizeof pre) != NS_OK ||
      ns_atomic_write(ctx, af, dict, n) != NS_OK ||
      ns_atomic_write(ctx, af, pad, padded - total + 1) != NS_OK)
    return ctx->status;
  return NS_OK;
}

static ns_status check_shape(ns_ctx *ctx, const char *path, int num_axes, const int64_t *shape,
                             int64_t *count) {
  if (num_axes < 0 || num_axes > NS_NDARRAY_MAX_AXES)
    return ns_fail(ctx, NS_ERR_USAGE, "%s: %d axes (at most %d)", path, num_axes,
                   NS_NDARRAY_MAX_AXES);
  *count = 1;
  for (int i = 0; i < num_axes; i++)
    if (!ns_mul_i64(*count, shape[i], count))
      return ns_fail(ctx, NS_ERR_USAGE, "%s: bad shape (axis %d is %lld)", path, i,
                     (long long)shape[i]);
  int64_t bytes;
  if (!ns_mul_i64(*count, 4, &bytes))
    return ns_fail(ctx, NS_ERR_USAGE, "%s: %lld elements is too many", path, (long long)*count);
  return NS_OK;
}

/* Writes 4-byte elements, little-endian, through a bounce buffer. */
static ns_status write_elements4(ns_ctx *ctx, ns_atomic_file *af, const void *data, int64_t count) {
  if (host_is_little_endian()) return ns_atomic_write(ctx, af, data, (size_t)count * 4);
  unsigned char buf[4096];
  const unsigned char *src = data;
  for (int64_t i = 0; i < count;) {
    int64_t n = count - i < 1024 ? count - i : 1024;
    for (int64_t k = 0; k < n * 4; k++) buf[k] = src[(i * 4) + (k & ~3) + 3 - (k & 3)];
    if (ns_atomic_write(ctx, af, buf, (size_t)n * 4) != NS_OK) return ctx->status;
    i += n;
  }
  return NS_OK;
}

static ns_status save4(ns_ctx *ctx, const char *path, const char *descr, int num_axes,
                       const int64_t *shape, const void *data) {
  int64_t count;
  if (check_shape(ctx, path, num_axes, shape, &count) != NS_OK) return ctx->status;
  if (count > 0 && !data) return ns_fail(ctx, NS_ERR_USAGE, "%s: no data to write", path);
  ns_atomic_file af;
  if (ns_atomic_open(ctx, path, &af) != NS_OK) return ctx->status;
  if (write_header(ctx, &af, descr, num_axes, shape) != NS_OK ||
      write_elements4(ctx, &af, data, count) != NS_OK) {
    ns_atomic_abort(ctx, &af);
    return ctx->status;
  }
  return ns_atomic_commit(ctx, &af);
}

ns_status ns_npy_save_f32(ns_ctx *ctx, const char *path, int num_axes, const int64_t *shape,
                          const float *data) {
  return save4(ctx, path, "<f4", num_axes, shape, data);
}

ns_status ns_npy_save_i32(ns_ctx *ctx, const char *path, int num_axes, const int64_t *shape,
                          const int32_t *data) {
  return save4(ctx, path, "<i4", num_axes, shape, data);
}
