#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Size hint for the first buffer: the file size for regular files. */
static size_t initial_capacity(FILE *fp, uint64_t max_bytes) {
  struct stat st;
  size_t cap = 65536;
  if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0) {
    uint64_t n = (uint64_t)st.st_size;
    if (n > max_bytes) n = max_bytes; /* the read loop reports the excess */
    cap = (size_t)n + 1;
  }
  return cap;
}

/* Doubles the buffer (keeping room for the terminating NUL). */
static int grow(ns_ctx *ctx, unsigned char **buf, size_t *cap) {
  size_t grown = *cap < SIZE_MAX / 4 ? *cap * 2 : SIZE_MAX / 2;
  unsigned char *nb = ns_realloc(ctx, *buf, grown);
  if (!nb) return 0;
  *buf = nb;
  *cap = grown;
  return 1;
}

ns_status ns_io_read_file(ns_ctx *ctx, const char *path, uint64_t max_bytes, unsigned char **data,
                          size_t *size) {
  *data = NULL;
  *size = 0;
  if (max_bytes > SIZE_MAX / 4) max_bytes = SIZE_MAX / 4;
  FILE *fp = fopen(path, "rb");
  if (!fp) return ns_fail(ctx, NS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = initial_capacity(fp, max_bytes), len = 0;
  unsigned char *buf = ns_alloc(ctx, cap);
  ns_status st = buf ? NS_OK : ctx->status;
  while (st == NS_OK) {
    if (len + 1 >= cap) {
      /* Full: probe for EOF before growing, so exact-size buffers stay. */
      int c = fgetc(fp);
      if (c == EOF) break;
      if (!grow(ctx, &buf, &cap)) {
        st = ctx->status;
        break;
      }
      buf[len++] = (unsigned char)c;
    }
    size_t got = fread(buf + len, 1, cap - 1 - len, fp);
    len += got;
    if ((uint64_t)len > max_bytes)
      st = ns_fail(ctx, NS_ERR_INPUT, "%s: file is larger than %llu bytes", path,
                   (unsigned long long)max_bytes);
    else if (got == 0 && len + 1 < cap)
      break;
  }
  if (st == NS_OK && ferror(fp)) st = ns_fail(ctx, NS_ERR_IO, "%s: read error", path);
  fclose(fp);
  if (st != NS_OK) {
    ns_free(ctx, buf);
    return st;
  }
  buf[len] = '\0';
  *data = buf;
  *size = len;
  return NS_OK;
}

ns_status ns_atomic_open(ns_ctx *ctx, const char *path, ns_atomic_file *af) {
  memset(af, 0, sizeof *af);
  af->path = path;
  size_t n = strlen(path) + 64;
  af->tmp_path = ns_alloc(ctx, n);
  if (!af->tmp_path) return ctx->status;
  /* O_EXCL with a pid-and-counter name: no global state, no races with
   * other writers of the same path. */
  int fd = -1;
  for (int attempt = 0; attempt < 1000 && fd < 0; attempt++) {
    snprintf(af->tmp_path, n, "%s.tmp.%ld.%d", path, (long)getpid(), attempt);
    fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int err = errno;
    ns_free(ctx, af->tmp_path);
    af->tmp_path = NULL;
    return ns_fail(ctx, NS_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                   strerror(err));
  }
  af->fp = fdopen(fd, "wb");
  if (!af->fp) {
    int err = errno;
    close(fd);
    unlink(af->tmp_path);
    ns_free(ctx, af->tmp_path);
    af->tmp_path = NULL;
    return ns_fail(ctx, NS_ERR_IO, "%s: %s", path, strerror(err));
  }
  return NS_OK;
}

ns_status ns_atomic_write(ns_ctx *ctx, ns_atomic_file *af, const void *data, size_t n) {
  if (n && fwrite(data, 1, n, af->fp) != n)
    return ns_fail(ctx, NS_ERR_IO, "%s: write error: %s", af->path, strerror(errno));
  return NS_OK;
}

void ns_atomic_abort(ns_ctx *ctx, ns_atomic_file *af) {
  if (af->fp) fclose(af->fp);
  if (af->tmp_path) unlink(af->tmp_path);
  ns_free(ctx, af->tmp_path);
  af->fp = NULL;
  af->tmp_path = NULL;
}

ns_status ns_atomic_commit(ns_ctx *ctx, ns_atomic_file *af) {
  int err = 0;
  if (fflush(af->fp) != 0 || ferror(af->fp)) err = errno ? errno : EIO;
  if (!err && fsync(fileno(af->fp)) != 0 && errno != EINVAL) err = errno;
  int close_rc = fclose(af->fp);
  af->fp = NULL;
  if (!err && close_rc != 0) err = errno ? errno : EIO;
  if (!err && rename(af->tmp_path, af->path) != 0) err = errno;
  if (err) {
    ns_atomic_abort(ctx, af);
    return ns_fail(ctx, NS_ERR_IO, "%s: cannot write: %s", af->path, strerror(err));
  }
  ns_free(ctx, af->tmp_path);
  af->tmp_path = NULL;
  return NS_OK;
}
