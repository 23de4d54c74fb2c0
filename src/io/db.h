/* The key-value stores Caffe keeps its datasets in: LMDB (a directory with
 * data.mdb) and LevelDB, behind one small cursor/writer interface so that
 * the Data layer and the dataset tools never see which one it is. */
#ifndef NS_IO_DB_H
#define NS_IO_DB_H

#include <stddef.h>

#include "core/ctx.h"
#include "netsurg.h"

typedef struct ns_db ns_db;

/* Opens path for reading (writing: 0) or creates it for writing (1; an
 * existing database is refused, as Caffe's NEW mode). */
ns_status ns_db_open(ns_ctx *ctx, const char *path, int backend, int write, ns_db **out);
/* The next record (from the first, and again from the first after the
 * last when wrap is set).  *got is 0 at the end (or if empty).  The key
 * and value stay valid until the next call. */
ns_status ns_db_next(ns_ctx *ctx, ns_db *db, int wrap, const void **key, size_t *key_len,
                     const void **value, size_t *value_len, int *got);
ns_status ns_db_put(ns_ctx *ctx, ns_db *db, const void *key, size_t key_len, const void *value,
                    size_t value_len);
/* Commits the puts so far (also done every 1000 puts and at close). */
ns_status ns_db_commit(ns_ctx *ctx, ns_db *db);
/* Closes, committing pending puts first; returns the commit's status. */
ns_status ns_db_close(ns_ctx *ctx, ns_db *db);
/* The name Caffe gives a backend ("lmdb", "leveldb"). */
const char *ns_db_backend_name(int backend);

#endif
