#define _DEFAULT_SOURCE /* madvise */
#include "format/weights_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ns_weights_file {
  const char *path;
  const uint8_t *base;
  size_t size;
  size_t dropped; /* pages before this offset were released */
};

/* ---- wire format --------------------------------------------------------
 * A cursor over [p, end); every read is bounds-checked. */

typedef struct cursor {
  const uint8_t *p, *end;
} cursor;

enum { WT_VARINT = 0, WT_64 = 1, WT_LEN = 2, WT_32 = 5 };

static int read_varint(cursor *c, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (c->p >= c->end) return 0;
    uint8_t b = *c->p++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 1;
    }
  }
  return 0;
}

/* Reads a tag; for length-delimited fields also the payload cursor. */
static int read_field(cursor *c, uint32_t *field, int *wt, cursor *payload, uint64_t *value) {
  uint64_t tag;
  if (!read_varint(c, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return 0;
  *field = (uint32_t)(tag >> 3);
  *wt = (int)(tag & 7);
  switch (*wt) {
    case WT_VARINT: return read_varint(c, value);
    case WT_64:
      if ((size_t)(c->end - c->p) < 8) return 0;
      c->p += 8;
      return 1;
    case WT_32:
      if ((size_t)(c->end - c->p) < 4) return 0;
      c->p += 4;
      return 1;
    case WT_LEN: {
      uint64_t len;
      if (!read_varint(c, &len) || len > (uint64_t)(c->end - c->p)) return 0;
      payload->p = c->p;
      payload->end = c->p + len;
      c->p += len;
      return 1;
    }
    default: return 0; /* groups are not used by Caffe */
  }
}

static ns_status corrupt(ns_ctx *ctx, const ns_weights_file *f, const uint8_t *at, const char *what) {
  return ns_fail(ctx, NS_ERR_INPUT, "%s: corrupt caffemodel at byte %zu: %s", f->path,
                 (size_t)(at - f->base), what);
}

/* ---- blob headers --------------------------------------------------------- */

/* Count of values in a packed or unpacked float/double field occurrence. */
static int add_values(int wt, const cursor *payload, size_t elem, int64_t *n) {
  if (wt == WT_LEN) {
    size_t len = (size_t)(payload->end - payload->p);
    if (len % elem) return 0;
    *n += (int64_t)(len / elem);
    return 1;
  }
  if ((elem == 4 && wt == WT_32) || (elem == 8 && wt == WT_64)) {
    *n += 1;
    return 1;
  }
  return 0;
}

static ns_status parse_shape(ns_ctx *ctx, const ns_weights_file *f, cursor c, ns_blob_header *h) {
  h->num_axes = 0;
  h->legacy = 0;
  while (c.p < c.end) {
    uint32_t field;
    int wt;
    cursor pl;
    uint64_t v = 0;
    const uint8_t *at = c.p;
    if (!read_field(&c, &field, &wt, &pl, &v)) return corrupt(ctx, f, at, "bad BlobShape field");
    if (field != 1) continue;
    if (wt == WT_VARINT) {
      if (h->num_axes >= NS_BLOB_MAX_AXES) return corrupt(ctx, f, at, "more than 32 axes");
      h->shape[h->num_axes++] = (int64_t)v;
    } else if (wt == WT_LEN) {
      while (pl.p < pl.end) {
        if (h->num_axes >= NS_BLOB_MAX_AXES) return corrupt(ctx, f, at, "more than 32 axes");
        if (!read_varint(&pl, &v)) return corrupt(ctx, f, at, "bad packed dim");
        h->shape[h->num_axes++] = (int64_t)v;
      }
    } else {
      return corrupt(ctx, f, at, "bad BlobShape.dim encoding");
    }
  }
  return NS_OK;
}

static ns_status parse_blob_header(ns_ctx *ctx, const ns_weights_file *f, cursor c,
                                   ns_blob_header *h) {
  int64_t legacy[4] = {0, 0, 0, 0};
  int has_legacy = 0;
  int64_t n_float = 0, n_double = 0;
  memset(h, 0, sizeof *h);
  h->offset = (size_t)(c.p - f->base);
  h->length = (size_t)(c.end - c.p);
  while (c.p < c.end) {
    uint32_t field;
    int wt;
    cursor pl = {0, 0};
    uint64_t v = 0;
    const uint8_t *at = c.p;
    if (!read_field(&c, &field, &wt, &pl, &v)) return corrupt(ctx, f, at, "bad BlobProto field");
    if (field >= 1 && field <= 4 && wt == WT_VARINT) {
      legacy[field - 1] = (int64_t)(int32_t)(uint32_t)v;
      has_legacy = 1;
    } else if (field == 5) {
      if (!add_values(wt, &pl, 4, &n_float)) return corrupt(ctx, f, at, "bad float data");
    } else if (field == 8) {
      if (!add_values(wt, &pl, 8, &n_double)) return corrupt(ctx, f, at, "bad double data");
    } else if (field == 7 && wt == WT_LEN) {
      if (parse_shape(ctx, f, pl, h) != NS_OK) return ctx->status;
    }
  }
  /* Caffe's Blob::ShapeEquals: any of num/channels/height/width makes the
   * legacy 4-D dims the shape; otherwise `shape`, and no shape at all is a
   * 0-axis blob (a channel-shared PReLU slope is saved that way). */
  if (has_legacy) {
    h->legacy = 1;
    h->num_axes = 4;
    memcpy(h->shape, legacy, sizeof legacy);
  }
  for (int i = 0; i < h->num_axes; i++)
    if (h->shape[i] < 0) return ns_fail(ctx, NS_ERR_INPUT, "%s: negative blob dimension", f->path);
  h->n_values = n_double > 0 ? n_double : n_float;
  return NS_OK;
}

/* ---- layers ------------------------------------------------------------ */

typedef struct layer_scan {
  cursor name;
  int has_name;
  int n_blobs, cap;
  ns_blob_header *blobs;
} layer_scan;

static ns_status push_blob(ns_ctx *ctx, layer_scan *s, const ns_blob_header *h) {
  if (s->n_blobs == s->cap) {
    int cap = s->cap ? s->cap * 2 : 4;
    ns_blob_header *b = ns_realloc_array(ctx, s->blobs, (size_t)cap, sizeof *b);
    if (!b) return ctx->status;
    s->blobs = b;
    s->cap = cap;
  }
  s->blobs[s->n_blobs++] = *h;
  return NS_OK;
}

/* Scans a LayerParameter (name 1, blobs 7), a V1LayerParameter (name 4,
 * blobs 6, V0 `layer` 1) or a V0LayerParameter (name 1, blobs 50). */
enum { KIND_LAYER, KIND_V1, KIND_V0 };

static ns_status scan_layer(ns_ctx *ctx, const ns_weights_file *f, cursor c, int kind,
                            layer_scan *s) {
  uint32_t name_field = kind == KIND_V1 ? 4 : 1;
  uint32_t blobs_field = kind == KIND_LAYER ? 7 : kind == KIND_V1 ? 6 : 50;
  while (c.p < c.end) {
    uint32_t field;
    int wt;
    cursor pl = {0, 0};
    uint64_t v = 0;
    const uint8_t *at = c.p;
    if (!read_field(&c, &field, &wt, &pl, &v)) return corrupt(ctx, f, at, "bad layer field");
    if (wt != WT_LEN) continue;
    if (field == name_field) {
      s->name = pl;
      s->has_name = 1;
    } else if (field == blobs_field) {
      ns_blob_header h;
      if (parse_blob_header(ctx, f, pl, &h) != NS_OK || push_blob(ctx, s, &h) != NS_OK)
        return ctx->status;
    } else if (kind == KIND_V1 && field == 1) {
      /* A V0 layer wrapped by the V0->V1 layout: its name and blobs. */
      layer_scan inner = {0};
      ns_status st = scan_layer(ctx, f, pl, KIND_V0, &inner);
      if (st == NS_OK && inner.has_name) {
        s->name = inner.name;
        s->has_name = 1;
      }
      for (int i = 0; st == NS_OK && i < inner.n_blobs; i++) st = push_blob(ctx, s, &inner.blobs[i]);
      ns_free(ctx, inner.blobs);
      if (st != NS_OK) return st;
    }
  }
  return NS_OK;
}

static ns_status map_file(ns_ctx *ctx, const char *path, ns_weights_file *f) {
  memset(f, 0, sizeof *f);
  f->path = path;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return ns_fail(ctx, NS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ns_fail(ctx, NS_ERR_IO, "%s: not a regular file", path);
  }
  f->size = (size_t)st.st_size;
  if (f->size == 0) {
    close(fd);
    return ns_fail(ctx, NS_ERR_INPUT, "%s: empty file", path);
  }
  void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return ns_fail(ctx, NS_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
  f->base = p;
  return NS_OK;
}

/* Releases the pages before `upto` from our resident set. */
static void drop_pages(ns_weights_file *f, size_t upto) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t end = upto / page * page;
  if (end > f->dropped) {
    madvise((void *)(f->base + f->dropped), end - f->dropped, MADV_DONTNEED);
    f->dropped = end;
  }
}

ns_status ns_weights_foreach(ns_ctx *ctx, const char *path, ns_layer_weights_fn fn, void *user) {
  ns_weights_file f;
  if (map_file(ctx, path, &f) != NS_OK) return ctx->status;
  cursor c = {f.base, f.base + f.size};
  ns_status st = NS_OK;
  char *name = NULL;
  while (st == NS_OK && c.p < c.end) {
    uint32_t field;
    int wt;
    cursor pl = {0, 0};
    uint64_t v = 0;
    const uint8_t *at = c.p;
    if (!read_field(&c, &field, &wt, &pl, &v)) {
      st = corrupt(ctx, &f, at, "bad NetParameter field (truncated or not a caffemodel)");
      break;
    }
    if (wt != WT_LEN || (field != 100 && field != 2)) continue;
    layer_scan s = {0};
    st = scan_layer(ctx, &f, pl, field == 100 ? KIND_LAYER : KIND_V1, &s);
    if (st == NS_OK && s.has_name) {
      name = ns_strndup(ctx, (const char *)s.name.p, (size_t)(s.name.end - s.name.p));
      if (!name) st = ctx->status;
      if (st == NS_OK) {
        ns_layer_weights lw = {name, s.n_blobs, s.blobs};
        st = fn(ctx, &f, &lw, user);
      }
      ns_free(ctx, name);
    }
    ns_free(ctx, s.blobs);
    drop_pages(&f, (size_t)(c.p - f.base));
  }
  munmap((void *)f.base, f.size);
  return st;
}

/* ---- values -------------------------------------------------------------- */

static float read_f32(const uint8_t *p) {
  float x;
  memcpy(&x, p, 4); /* the wire is little-endian, as is every target we build for */
  return x;
}
static float read_f64(const uint8_t *p) {
  double x;
  memcpy(&x, p, 8);
  return (float)x;
}

ns_status ns_weights_read_blob(ns_ctx *ctx, ns_weights_file *f, const ns_blob_header *h,
                               float *dst) {
  cursor c = {f->base + h->offset, f->base + h->offset + h->length};
  int use_double = 0;
  /* Caffe prefers double_data when it holds values (an empty packed
   * double_data leaves the floats in charge, as the header count does). */
  cursor probe = c;
  while (probe.p < probe.end) {
    uint32_t field;
    int wt;
    cursor pl = {0, 0};
    uint64_t v = 0;
    if (!read_field(&probe, &field, &wt, &pl, &v)) break;
    if (field == 8 && (wt != WT_LEN || pl.end > pl.p)) use_double = 1;
  }
  uint32_t want = use_double ? 8 : 5;
  size_t elem = use_double ? 8 : 4;
  int64_t k = 0;
  while (c.p < c.end) {
    uint32_t field;
    int wt;
    cursor pl = {0, 0};
    uint64_t v = 0;
    const uint8_t *at = c.p;
    if (!read_field(&c, &field, &wt, &pl, &v)) return corrupt(ctx, f, at, "bad BlobProto field");
    if (field != want) continue;
    if (wt != WT_LEN) { /* one unpacked value: it ends just before c.p */
      pl.p = c.p - elem;
      pl.end = c.p;
    }
    size_t n = (size_t)(pl.end - pl.p) / elem;
    if (k + (int64_t)n > h->n_values) return corrupt(ctx, f, at, "more values than counted");
    /* Decode in 16 MiB steps, releasing the pages behind us. */
    const size_t step = ((size_t)16 << 20) / elem;
    for (size_t i = 0; i < n; i += step) {
      size_t m = n - i < step ? n - i : step;
      const uint8_t *src = pl.p + i * elem;
      for (size_t j = 0; j < m; j++)
        dst[k + (int64_t)(i + j)] = use_double ? read_f64(src + j * elem) : read_f32(src + j * elem);
      drop_pages(f, (size_t)(src + m * elem - f->base));
    }
    k += (int64_t)n;
  }
  return NS_OK;
}
