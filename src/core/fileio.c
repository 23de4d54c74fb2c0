#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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

/* The path a symlink names: relative targets are relative to the link's
 * folder. */
static char *link_target(ns_ctx *ctx, const char *link, const char *target) {
  const char *slash = strrchr(link, '/');
  if (target[0] == '/' || !slash) return ns_strdup(ctx, target);
  size_t dir = (size_t)(slash - link) + 1, n = dir + strlen(target) + 1;
  char *p = ns_alloc(ctx, n);
  if (p) snprintf(p, n, "%.*s%s", (int)dir, link, target);
  return p;
}

/* Reads the symlink `path` (st from its lstat) into a new string. */
static char *read_link(ns_ctx *ctx, const char *path, const struct stat *st) {
  size_t cap = st->st_size > 0 ? (size_t)st->st_size + 1 : 4096;
  char *buf = ns_alloc(ctx, cap);
  if (!buf) return NULL;
  ssize_t n = readlink(path, buf, cap);
  if (n < 0 || (size_t)n >= cap) {
    int err = n < 0 ? errno : ENAMETOOLONG;
    ns_free(ctx, buf);
    ns_fail(ctx, NS_ERR_IO, "%s: cannot read the symbolic link: %s", path, strerror(err));
    return NULL;
  }
  buf[n] = '\0';
  char *target = link_target(ctx, path, buf);
  ns_free(ctx, buf);
  return target;
}

/* Follows symlinks from `path` to what they finally name (which need not
 * exist yet), so that the save replaces the target and the link stays a
 * link.  *st receives the final path's lstat; *exists whether it has one. */
static char *resolve_target(ns_ctx *ctx, const char *path, struct stat *st, int *exists) {
  char *cur = ns_strdup(ctx, path);
  for (int hops = 0; cur && hops <= 40; hops++) {
    *exists = lstat(cur, st) == 0;
    if (!*exists || !S_ISLNK(st->st_mode)) return cur;
    char *next = read_link(ctx, cur, st);
    ns_free(ctx, cur);
    cur = next;
  }
  if (cur) {
    ns_free(ctx, cur);
    ns_fail(ctx, NS_ERR_IO, "%s: %s", path, strerror(ELOOP));
  }
  return NULL;
}

/* A device, FIFO or socket (/dev/stdout, a named pipe) cannot be replaced
 * by a file: it is opened and written in place, with no temporary file
 * and no rename. */
static ns_status open_direct(ns_ctx *ctx, ns_atomic_file *af) {
  int fd = open(af->target, O_WRONLY | O_CLOEXEC);
  af->fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (!af->fp) {
    int err = errno;
    if (fd >= 0) close(fd);
    return ns_fail(ctx, NS_ERR_IO, "%s: cannot open for writing: %s", af->path, strerror(err));
  }
  af->direct = 1;
  return NS_OK;
}

/* `target`.tmp.<pid>.<n>, created with O_EXCL: a pid-and-counter name, so
 * no global state and no races with other writers of the same path. */
static ns_status open_temporary(ns_ctx *ctx, ns_atomic_file *af) {
  size_t n = strlen(af->target) + 64;
  af->tmp_path = ns_alloc(ctx, n);
  if (!af->tmp_path) return ctx->status;
  int fd = -1;
  for (int attempt = 0; attempt < 1000 && fd < 0; attempt++) {
    snprintf(af->tmp_path, n, "%s.tmp.%ld.%d", af->target, (long)getpid(), attempt);
    fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int err = errno;
    ns_free(ctx, af->tmp_path);
    af->tmp_path = NULL;
    return ns_fail(ctx, NS_ERR_IO, "%s: cannot create a temporary file next to it: %s", af->path,
                   strerror(err));
  }
  af->fp = fdopen(fd, "wb");
  if (!af->fp) {
    int err = errno;
    close(fd);
    unlink(af->tmp_path);
    ns_free(ctx, af->tmp_path);
    af->tmp_path = NULL;
    return ns_fail(ctx, NS_ERR_IO, "%s: %s", af->path, strerror(err));
  }
  return NS_OK;
}

static int is_special(const struct stat *st) {
  return S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) || S_ISFIFO(st->st_mode) ||
         S_ISSOCK(st->st_mode);
}

ns_status ns_atomic_open(ns_ctx *ctx, const char *path, ns_atomic_file *af) {
  memset(af, 0, sizeof *af);
  af->path = path;
  struct stat st;
  int exists = 0;
  /* Devices first, by what the path finally names: /dev/stdout is a link
   * to /proc/self/fd/1, whose text ("pipe:[...]") is no path to follow. */
  if (stat(path, &st) == 0 && is_special(&st)) {
    af->target = ns_strdup(ctx, path);
    exists = 1;
  } else {
    af->target = resolve_target(ctx, path, &st, &exists);
  }
  if (!af->target) return ctx->status;
  ns_status rc = exists && is_special(&st) ? open_direct(ctx, af) : open_temporary(ctx, af);
  if (rc != NS_OK) {
    ns_free(ctx, af->target);
    af->target = NULL;
  }
  return rc;
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
  ns_free(ctx, af->target);
  af->fp = NULL;
  af->tmp_path = NULL;
  af->target = NULL;
}

ns_status ns_atomic_commit(ns_ctx *ctx, ns_atomic_file *af) {
  int err = 0;
  if (fflush(af->fp) != 0 || ferror(af->fp)) err = errno ? errno : EIO;
  /* fsync is meaningless on a pipe or terminal (EINVAL there) */
  if (!err && !af->direct && fsync(fileno(af->fp)) != 0 && errno != EINVAL) err = errno;
  int close_rc = fclose(af->fp);
  af->fp = NULL;
  if (!err && close_rc != 0) err = errno ? errno : EIO;
  if (!err && !af->direct && rename(af->tmp_path, af->target) != 0) err = errno;
  if (err) {
    ns_atomic_abort(ctx, af);
    return ns_fail(ctx, NS_ERR_IO, "%s: cannot write: %s", af->path, strerror(err));
  }
  ns_free(ctx, af->tmp_path);
  ns_free(ctx, af->target);
  af->tmp_path = NULL;
  af->target = NULL;
  return NS_OK;
}
