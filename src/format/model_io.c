#include "format/model_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/textformat.h"
#include "format/upgrade.h"

ns_status ns_read_file(ns_ctx *ctx, const char *path, unsigned char **data, size_t *len) {
  *data = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return ns_fail(ctx, NS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ns_fail(ctx, NS_ERR_IO, "%s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  unsigned char *buf = ns_alloc(ctx, size + 1);
  if (!buf) {
    close(fd);
    ns_error_prefix(ctx, "%s: ", path);
    return ctx->status;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, buf + got, size - got > (1u << 30) ? (1u << 30) : size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      ns_free(ctx, buf);
      return ns_fail(ctx, NS_ERR_IO, "%s: read failed: %s", path, n ? strerror(err) : "file shrank");
    }
    got += (size_t)n;
  }
  close(fd);
  buf[size] = '\0';
  *data = buf;
  *len = size;
  return NS_OK;
}

/* ---- atomic writes ---------------------------------------------------- */

typedef struct atomic_file {
  char *tmp;
  int fd;
  ns_status status;
} atomic_file;

static ns_status atomic_open(ns_ctx *ctx, const char *path, atomic_file *af) {
  af->fd = -1;
  af->status = NS_OK;
  size_t n = strlen(path) + 16;
  af->tmp = ns_alloc(ctx, n);
  if (!af->tmp) return ctx->status;
  snprintf(af->tmp, n, "%s.tmpXXXXXX", path);
  af->fd = mkstemp(af->tmp);
  if (af->fd < 0) {
    ns_fail(ctx, NS_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
            strerror(errno));
    ns_free(ctx, af->tmp);
    af->tmp = NULL;
    return ctx->status;
  }
  fchmod(af->fd, 0644);
  return NS_OK;
}

static void atomic_write(ns_ctx *ctx, atomic_file *af, const void *data, size_t len) {
  const unsigned char *p = data;
  while (af->status == NS_OK && len > 0) {
    ssize_t n = write(af->fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      af->status = ns_fail(ctx, NS_ERR_IO, "%s: write failed: %s", af->tmp,
                           n < 0 ? strerror(errno) : "no progress");
      return;
    }
    p += n;
    len -= (size_t)n;
  }
}

/* Commits (fsync + rename) if every write succeeded, else removes. */
static ns_status atomic_close(ns_ctx *ctx, atomic_file *af, const char *path) {
  if (af->status == NS_OK && fsync(af->fd) != 0)
    af->status = ns_fail(ctx, NS_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
  if (close(af->fd) != 0 && af->status == NS_OK)
    af->status = ns_fail(ctx, NS_ERR_IO, "%s: close failed: %s", path, strerror(errno));
  if (af->status == NS_OK && rename(af->tmp, path) != 0)
    af->status = ns_fail(ctx, NS_ERR_IO, "%s: cannot rename the temporary file into place: %s",
                         path, strerror(errno));
  if (af->status != NS_OK) unlink(af->tmp);
  ns_free(ctx, af->tmp);
  return af->status;
}

ns_status ns_write_file_atomic(ns_ctx *ctx, const char *path, const void *data, size_t len) {
  atomic_file af;
  if (atomic_open(ctx, path, &af) != NS_OK) return ctx->status;
  atomic_write(ctx, &af, data, len);
  return atomic_close(ctx, &af, path);
}

/* ---- reading nets ----------------------------------------------------- */

int ns_looks_like_text(const unsigned char *data, size_t len) {
  size_t n = len < 4096 ? len : 4096;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = data[i];
    if (c == 0 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v'))
      return 0;
  }
  return 1;
}

ns_status ns_parse_net_param(ns_ctx *ctx, const unsigned char *data, size_t len,
                             const char *filename, Caffe__NetParameter **out, int *what) {
  *out = NULL;
  if (what) *what = 0;
  Caffe__NetParameter *net = NULL;
  if (ns_looks_like_text(data, len)) {
    ProtobufCMessage *m = NULL;
    if (ns_text_parse(ctx, (const char *)data, len, filename, &caffe__net_parameter__descriptor,
                      &m) != NS_OK)
      return ctx->status;
    net = (Caffe__NetParameter *)m;
  } else {
    net = caffe__net_parameter__unpack(&ctx->pb_alloc, len, data);
    if (!net) {
      if (ctx->status == NS_ERR_NOMEM) return ns_fail(ctx, NS_ERR_NOMEM, "%s: out of memory", filename);
      return ns_fail(ctx, NS_ERR_INPUT,
                     "%s: not a valid binary NetParameter (truncated or corrupt caffemodel)",
                     filename);
    }
  }
  if (ns_upgrade_net(ctx, &net, filename, what) != NS_OK) {
    ns_net_param_free(ctx, net);
    return ctx->status;
  }
  *out = net;
  return NS_OK;
}

ns_status ns_load_net_param(ns_ctx *ctx, const char *path, Caffe__NetParameter **out, int *what) {
  unsigned char *data;
  size_t len;
  *out = NULL;
  if (ns_read_file(ctx, path, &data, &len) != NS_OK) return ctx->status;
  if (len == 0) {
    ns_free(ctx, data);
    return ns_fail(ctx, NS_ERR_INPUT, "%s: empty file", path);
  }
  ns_status st = ns_parse_net_param(ctx, data, len, path, out, what);
  ns_free(ctx, data);
  return st;
}

ns_status ns_load_solver_param(ns_ctx *ctx, const char *path, Caffe__SolverParameter **out) {
  unsigned char *data;
  size_t len;
  *out = NULL;
  if (ns_read_file(ctx, path, &data, &len) != NS_OK) return ctx->status;
  ProtobufCMessage *m = NULL;
  ns_status st = ns_text_parse(ctx, (const char *)data, len, path,
                               &caffe__solver_parameter__descriptor, &m);
  ns_free(ctx, data);
  if (st != NS_OK) return st;
  if (ns_upgrade_solver(ctx, (Caffe__SolverParameter *)m, path, NULL) != NS_OK) {
    protobuf_c_message_free_unpacked(m, &ctx->pb_alloc);
    return ctx->status;
  }
  *out = (Caffe__SolverParameter *)m;
  return NS_OK;
}

void ns_net_param_free(ns_ctx *ctx, Caffe__NetParameter *net) {
  if (net) protobuf_c_message_free_unpacked(&net->base, &ctx->pb_alloc);
}

/* ---- writing nets ----------------------------------------------------- */

/* Hides every layer's blobs while fn runs (text output carries no weights).
 * The message is const to callers; the blobs are restored before return. */
ns_status ns_net_param_to_text(ns_ctx *ctx, const Caffe__NetParameter *cnet, ns_strbuf *out) {
  Caffe__NetParameter *net = (Caffe__NetParameter *)cnet;
  size_t *saved = ns_calloc(ctx, net->n_layer + 1, sizeof *saved);
  if (!saved) return ctx->status;
  for (size_t i = 0; i < net->n_layer; i++) {
    saved[i] = net->layer[i]->n_blobs;
    net->layer[i]->n_blobs = 0;
  }
  ns_status st = ns_text_write(ctx, &net->base, out);
  for (size_t i = 0; i < net->n_layer; i++) net->layer[i]->n_blobs = saved[i];
  ns_free(ctx, saved);
  return st;
}

ns_status ns_save_net_text(ns_ctx *ctx, const char *path, const Caffe__NetParameter *net) {
  ns_strbuf sb;
  ns_strbuf_init(&sb, ctx);
  ns_status st = ns_net_param_to_text(ctx, net, &sb);
  if (st == NS_OK) st = ns_strbuf_status(&sb);
  if (st == NS_OK) st = ns_write_file_atomic(ctx, path, sb.data ? sb.data : "", sb.len);
  ns_strbuf_free(&sb);
  return st;
}

/* protobuf-c packs into a ProtobufCBuffer; ours writes through a 1 MiB
 * buffer straight into the temp file. */
typedef struct file_sink {
  ProtobufCBuffer base;
  ns_ctx *ctx;
  atomic_file *af;
  unsigned char buf[1 << 20];
  size_t used;
} file_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
  file_sink *s = (file_sink *)b;
  if (len >= sizeof s->buf - s->used) {
    atomic_write(s->ctx, s->af, s->buf, s->used);
    s->used = 0;
    if (len >= sizeof s->buf) {
      atomic_write(s->ctx, s->af, data, len);
      return;
    }
  }
  memcpy(s->buf + s->used, data, len);
  s->used += len;
}

ns_status ns_save_net_binary(ns_ctx *ctx, const char *path, const Caffe__NetParameter *net) {
  atomic_file af;
  if (atomic_open(ctx, path, &af) != NS_OK) return ctx->status;
  file_sink *sink = ns_alloc(ctx, sizeof *sink);
  if (!sink) {
    af.status = ctx->status;
    return atomic_close(ctx, &af, path);
  }
  sink->base.append = sink_append;
  sink->ctx = ctx;
  sink->af = &af;
  sink->used = 0;
  protobuf_c_message_pack_to_buffer(&net->base, &sink->base);
  atomic_write(ctx, &af, sink->buf, sink->used);
  ns_free(ctx, sink);
  return atomic_close(ctx, &af, path);
}
