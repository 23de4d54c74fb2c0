/* File helpers for the I/O modules: whole-file reads with a size cap, and
 * atomic writes (a temporary file in the same folder, then rename(), so a
 * reader never sees half a file and a failed write keeps the old one). */
#ifndef NS_CORE_FILEIO_H
#define NS_CORE_FILEIO_H

#include <stdint.h>
#include <stdio.h>

#include "core/ctx.h"

/* Reads all of `path` into a buffer from ns_alloc (NUL-terminated, the
 * NUL not counted in *size).  Files over max_bytes are an error. */
ns_status ns_io_read_file(ns_ctx *ctx, const char *path, uint64_t max_bytes, unsigned char **data,
                          size_t *size);

typedef struct ns_atomic_file {
  FILE *fp;
  char *tmp_path;
  const char *path; /* as the caller named it (for messages) */
  char *target;     /* path with its symlinks followed */
  int direct;       /* 1: a device or FIFO written in place */
} ns_atomic_file;

/* Creates `target`.tmp.<pid>.<n> next to the file `path` names for
 * writing: a symlink is followed (to its final target, which is replaced
 * and the link kept); a device, FIFO or socket (/dev/stdout, a named pipe)
 * is opened for writing in place instead, where commit only flushes and
 * closes and a failure cannot restore what was written. */
ns_status ns_atomic_open(ns_ctx *ctx, const char *path, ns_atomic_file *af);
/* Writes n bytes; on a short write records an error naming the file. */
ns_status ns_atomic_write(ns_ctx *ctx, ns_atomic_file *af, const void *data, size_t n);
/* Flushes, syncs, closes and renames over the target.  On any failure the
 * temporary file is removed and the target is left as it was. */
ns_status ns_atomic_commit(ns_ctx *ctx, ns_atomic_file *af);
/* Closes and removes the temporary file (after an error). */
void ns_atomic_abort(ns_ctx *ctx, ns_atomic_file *af);

#endif
