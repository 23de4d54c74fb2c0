/* LMDB and LevelDB through their C APIs, as Caffe's db_lmdb.cpp and
 * db_leveldb.cpp use them: LMDB is a directory holding data.mdb, opened
 * read-only without thread-local readers, written in transactions of 1000
 * puts; LevelDB is a directory opened with create_if_missing and
 * error_if_exists when made new. */
#include "io/db.h"

#include <errno.h>
#include <leveldb/c.h>
#include <lmdb.h>
#include <string.h>
#include <sys/stat.h>

#define DB_PUTS_PER_TXN 1000
/* LMDB reserves (not allocates) its map: 1 TiB, as Caffe's first LMDB code. */
#define LMDB_MAP_SIZE (1ull << 40)

struct ns_db {
  int backend, write;
  const char *path;
  int pending; /* puts not yet committed */
  /* LMDB */
  MDB_env *env;
  MDB_dbi dbi;
  MDB_txn *txn;
  MDB_cursor *cursor;
  int started; /* the cursor has a position */
  /* LevelDB */
  leveldb_t *ldb;
  leveldb_options_t *lopts;
  leveldb_readoptions_t *ropts;
  leveldb_writeoptions_t *wopts;
  leveldb_iterator_t *it;
  leveldb_writebatch_t *batch;
};

const char *ns_db_backend_name(int backend) {
  return backend == NS_DB_LMDB ? "lmdb" : backend == NS_DB_LEVELDB ? "leveldb" : "?";
}

static ns_status lmdb_fail(ns_ctx *ctx, const ns_db *db, const char *what, int rc) {
  const char *why = rc == ENOENT        ? "no such LMDB directory (or no data.mdb in it)"
                    : rc == ENOTDIR     ? "not an LMDB directory"
                    : rc == MDB_INVALID ? "not an LMDB file (bad header)"
                                        : mdb_strerror(rc);
  /* missing: cannot open (4); there but not an LMDB: a bad input file (2) */
  return ns_fail(ctx, rc == ENOENT ? NS_ERR_IO : NS_ERR_INPUT, "%s: lmdb %s: %s", db->path, what,
                 why);
}

static ns_status lmdb_open(ns_ctx *ctx, ns_db *db) {
  int rc = mdb_env_create(&db->env);
  if (rc) return lmdb_fail(ctx, db, "env_create", rc);
  if (db->write) {
    if (mkdir(db->path, 0775) != 0)
      return ns_fail(ctx, NS_ERR_IO, "%s: cannot create the LMDB directory: %s", db->path,
                     strerror(errno));
    if ((rc = mdb_env_set_mapsize(db->env, LMDB_MAP_SIZE)))
      return lmdb_fail(ctx, db, "set_mapsize", rc);
  }
  struct stat sb;
  if (!db->write && stat(db->path, &sb) != 0) return lmdb_fail(ctx, db, "open", ENOENT);
  if (!db->write && !S_ISDIR(sb.st_mode)) return lmdb_fail(ctx, db, "open", ENOTDIR);
  rc = mdb_env_open(db->env, db->path, db->write ? 0 : MDB_RDONLY | MDB_NOTLS, 0664);
  if (rc) return lmdb_fail(ctx, db, "open", rc);
  if ((rc = mdb_txn_begin(db->env, NULL, db->write ? 0 : MDB_RDONLY, &db->txn)))
    return lmdb_fail(ctx, db, "txn_begin", rc);
  if ((rc = mdb_dbi_open(db->txn, NULL, 0, &db->dbi))) return lmdb_fail(ctx, db, "dbi_open", rc);
  if (!db->write && (rc = mdb_cursor_open(db->txn, db->dbi, &db->cursor)))
    return lmdb_fail(ctx, db, "cursor_open", rc);
  return NS_OK;
}

static ns_status leveldb_open_db(ns_ctx *ctx, ns_db *db) {
  db->lopts = leveldb_options_create();
  db->ropts = leveldb_readoptions_create();
  db->wopts = leveldb_writeoptions_create();
  db->batch = leveldb_writebatch_create();
  leveldb_options_set_create_if_missing(db->lopts, db->write);
  leveldb_options_set_error_if_exists(db->lopts, db->write);
  leveldb_options_set_max_open_files(db->lopts, 100);
  leveldb_readoptions_set_fill_cache(db->ropts, 0);
  char *err = NULL;
  db->ldb = leveldb_open(db->lopts, db->path, &err);
  if (err) {
    ns_status st = ns_fail(ctx, NS_ERR_INPUT, "%s: leveldb: %s", db->path, err);
    leveldb_free(err);
    return st;
  }
  if (!db->write) db->it = leveldb_create_iterator(db->ldb, db->ropts);
  return NS_OK;
}

static void db_free(ns_ctx *ctx, ns_db *db) {
  if (db->cursor) mdb_cursor_close(db->cursor);
  if (db->txn) mdb_txn_abort(db->txn);
  if (db->env) mdb_env_close(db->env);
  if (db->it) leveldb_iter_destroy(db->it);
  if (db->ldb) leveldb_close(db->ldb);
  if (db->batch) leveldb_writebatch_destroy(db->batch);
  if (db->lopts) leveldb_options_destroy(db->lopts);
  if (db->ropts) leveldb_readoptions_destroy(db->ropts);
  if (db->wopts) leveldb_writeoptions_destroy(db->wopts);
  ns_free(ctx, db);
}

ns_status ns_db_open(ns_ctx *ctx, const char *path, int backend, int write, ns_db **out) {
  *out = NULL;
  if (backend != NS_DB_LMDB && backend != NS_DB_LEVELDB)
    return ns_fail(ctx, NS_ERR_UNSUPPORTED, "%s: unknown database backend %d", path, backend);
  ns_db *db = ns_calloc(ctx, 1, sizeof *db);
  if (!db) return ctx->status;
  db->backend = backend, db->write = write, db->path = path;
  ns_status st = backend == NS_DB_LMDB ? lmdb_open(ctx, db) : leveldb_open_db(ctx, db);
  if (st != NS_OK) {
    db_free(ctx, db);
    return st;
  }
  *out = db;
  return NS_OK;
}

static ns_status lmdb_next(ns_ctx *ctx, ns_db *db, int wrap, MDB_val *k, MDB_val *v, int *got) {
  int rc = mdb_cursor_get(db->cursor, k, v, db->started ? MDB_NEXT : MDB_FIRST);
  if (rc == MDB_NOTFOUND && wrap && db->started)
    rc = mdb_cursor_get(db->cursor, k, v, MDB_FIRST);
  db->started = 1;
  if (rc == MDB_NOTFOUND) return NS_OK;
  if (rc) return lmdb_fail(ctx, db, "cursor_get", rc);
  *got = 1;
  return NS_OK;
}

static void leveldb_next(ns_db *db, int wrap, int *got) {
  if (!db->started)
    leveldb_iter_seek_to_first(db->it);
  else
    leveldb_iter_next(db->it);
  if (!leveldb_iter_valid(db->it) && wrap && db->started) leveldb_iter_seek_to_first(db->it);
  db->started = 1;
  *got = leveldb_iter_valid(db->it);
}

ns_status ns_db_next(ns_ctx *ctx, ns_db *db, int wrap, const void **key, size_t *key_len,
                     const void **value, size_t *value_len, int *got) {
  *got = 0;
  if (db->backend == NS_DB_LMDB) {
    MDB_val k, v;
    if (lmdb_next(ctx, db, wrap, &k, &v, got) != NS_OK) return ctx->status;
    if (!*got) return NS_OK;
    *key = k.mv_data, *key_len = k.mv_size, *value = v.mv_data, *value_len = v.mv_size;
    return NS_OK;
  }
  leveldb_next(db, wrap, got);
  if (*got) {
    *key = leveldb_iter_key(db->it, key_len);
    *value = leveldb_iter_value(db->it, value_len);
    return NS_OK;
  }
  char *err = NULL;
  leveldb_iter_get_error(db->it, &err);
  if (!err) return NS_OK;
  ns_status st = ns_fail(ctx, NS_ERR_INPUT, "%s: leveldb: %s", db->path, err);
  leveldb_free(err);
  return st;
}

ns_status ns_db_put(ns_ctx *ctx, ns_db *db, const void *key, size_t key_len, const void *value,
                    size_t value_len) {
  if (db->backend == NS_DB_LMDB) {
    MDB_val k = {key_len, (void *)key}, v = {value_len, (void *)value};
    int rc = mdb_put(db->txn, db->dbi, &k, &v, 0);
    if (rc) return lmdb_fail(ctx, db, "put", rc);
  } else {
    leveldb_writebatch_put(db->batch, key, key_len, value, value_len);
  }
  if (++db->pending >= DB_PUTS_PER_TXN) return ns_db_commit(ctx, db);
  return NS_OK;
}

ns_status ns_db_commit(ns_ctx *ctx, ns_db *db) {
  if (!db->write) return NS_OK;
  db->pending = 0;
  if (db->backend == NS_DB_LEVELDB) {
    char *err = NULL;
    leveldb_write(db->ldb, db->wopts, db->batch, &err);
    leveldb_writebatch_clear(db->batch);
    if (!err) return NS_OK;
    ns_status st = ns_fail(ctx, NS_ERR_IO, "%s: leveldb write: %s", db->path, err);
    leveldb_free(err);
    return st;
  }
  int rc = mdb_txn_commit(db->txn);
  db->txn = NULL;
  if (rc) return lmdb_fail(ctx, db, "commit", rc);
  if ((rc = mdb_txn_begin(db->env, NULL, 0, &db->txn))) return lmdb_fail(ctx, db, "txn_begin", rc);
  return NS_OK;
}

ns_status ns_db_close(ns_ctx *ctx, ns_db *db) {
  if (!db) return NS_OK;
  ns_status st = db->pending ? ns_db_commit(ctx, db) : NS_OK;
  db_free(ctx, db);
  return st;
}
