/* Streaming classify's writer thread; see classify_writer.h. */
#include "tools/classify_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"

struct stream_writer {
  stream_writer_config c;
  ns_ctx *ctx; /* the writer's own: ns_classify's allocations and errors */
  stream_batch buf[2];
  int queued[2], fill, drain, closing, status;
  int64_t written, failed;
  double started;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t changed;
};

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void write_error(FILE *f, const char *path, const char *message) {
  fputs("{\"image\": ", f);
  cli_json_string(f, path);
  fputs(", \"error\": ", f);
  cli_json_string(f, message);
  fputs("}\n", f);
}

/* D/IIIIIIII_NAME.npy: the input index keeps names unique across folders. */
static char *npy_path(const char *dir, int64_t index, const char *image) {
  const char *base = strrchr(image, '/');
  base = base ? base + 1 : image;
  const char *dot = strrchr(base, '.');
  int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
  size_t len = strlen(dir) + (size_t)stem + 32;
  char *p = malloc(len);
  if (p) snprintf(p, len, "%s/%08lld_%.*s.npy", dir, (long long)index, stem, base);
  return p;
}

static int save_npy(stream_writer *w, int64_t job, const float *data) {
  const stream_writer_config *c = &w->c;
  char *path = npy_path(c->out_dir, c->jobs->index[job], c->jobs->paths[job]);
  if (!path) return NS_ERR_NOMEM;
  int rc = 0;
  if (ns_npy_save_f32(w->ctx, path, c->save_axes, c->save_shape, data) != NS_OK)
    rc = cli_fail(w->ctx, "classify");
  free(path);
  return rc;
}

static int write_result(stream_writer *w, int64_t job, const float *prob) {
  const classify_json *j = w->c.json;
  int map_h = j->num_axes == 4 ? (int)j->shape[2] : 1;
  int map_w = j->num_axes == 4 ? (int)j->shape[3] : 1;
  ns_classification r;
  if (ns_classify(w->ctx, prob, (int)j->shape[1], map_h, map_w, w->c.top, j->class_k, &r) != NS_OK)
    return cli_fail(w->ctx, "classify");
  classify_json_write(w->c.out, j, w->c.jobs->paths[job], &r, prob);
  ns_classification_free(w->ctx, &r);
  return 0;
}

/* Flushed and synced per batch: a kill loses at most the batch in flight. */
static int commit(stream_writer *w) {
  if (fflush(w->c.out) != 0 || (w->c.out != stdout && fsync(fileno(w->c.out)) != 0))
    return stream_io_error(w->c.out_name);
  return 0;
}

static void show_progress(const stream_writer *w) {
  int64_t total = w->c.jobs->count, done = w->c.before + w->written;
  double rate = (double)w->written / (now_seconds() - w->started + 1e-9);
  long eta = rate > 0 ? (long)((double)(total - done) / rate) : 0;
  fprintf(stderr, "\r[%lld/%lld] %.1f images/s, ETA %ld:%02ld:%02ld\033[K", (long long)done,
          (long long)total, rate, eta / 3600, eta / 60 % 60, eta % 60);
}

static int write_batch(stream_writer *w, const stream_batch *b) {
  int rc = 0;
  for (int i = 0, k = 0; !rc && i < b->n; i++) {
    int64_t job = b->first + i;
    if (b->failed[i]) {
      write_error(w->c.out, w->c.jobs->paths[job], b->error[i]);
      w->failed++;
      continue;
    }
    rc = write_result(w, job, b->prob + w->c.per_out * k);
    if (!rc && w->c.out_dir) rc = save_npy(w, job, b->saved + w->c.per_save * k);
    k++;
  }
  if (!rc) rc = commit(w);
  w->written += b->n;
  if (w->c.progress) show_progress(w);
  return rc;
}

static void *writer_main(void *arg) {
  stream_writer *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->lock);
    while (!w->queued[w->drain] && !w->closing) pthread_cond_wait(&w->changed, &w->lock);
    if (!w->queued[w->drain]) {
      pthread_mutex_unlock(&w->lock);
      return NULL;
    }
    pthread_mutex_unlock(&w->lock);
    int rc = w->status ? 0 : write_batch(w, &w->buf[w->drain]);
    pthread_mutex_lock(&w->lock);
    if (rc) w->status = rc;
    w->queued[w->drain] = 0;
    w->drain ^= 1;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
  }
}

static int alloc_batch(const stream_writer_config *c, stream_batch *b) {
  size_t n = (size_t)c->max_batch;
  b->failed = calloc(n, sizeof *b->failed);
  b->error = calloc(n, sizeof *b->error);
  b->prob = malloc(n * (size_t)c->per_out * sizeof *b->prob);
  b->saved = c->out_dir ? malloc(n * (size_t)c->per_save * sizeof *b->saved) : NULL;
  return b->failed && b->error && b->prob && (b->saved || !c->out_dir) ? 0 : NS_ERR_NOMEM;
}

static void free_writer(stream_writer *w) {
  for (int i = 0; i < 2; i++) {
    free(w->buf[i].failed);
    free(w->buf[i].error);
    free(w->buf[i].prob);
    free(w->buf[i].saved);
  }
  if (w->ctx) ns_ctx_destroy(w->ctx);
  pthread_cond_destroy(&w->changed);
  pthread_mutex_destroy(&w->lock);
  free(w);
}

int stream_writer_start(const stream_writer_config *c, stream_writer **out) {
  stream_writer *w = calloc(1, sizeof *w);
  if (!w) return cli_usage_error("classify", "out of memory");
  w->c = *c;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->changed, NULL);
  w->ctx = ns_ctx_create();
  if (!w->ctx || alloc_batch(c, &w->buf[0]) || alloc_batch(c, &w->buf[1])) {
    free_writer(w);
    return cli_usage_error("classify", "out of memory for two batches of outputs");
  }
  w->started = now_seconds();
  if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
    free_writer(w);
    return cli_usage_error("classify", "cannot start the writer thread");
  }
  *out = w;
  return 0;
}

stream_batch *stream_writer_acquire(stream_writer *w) {
  pthread_mutex_lock(&w->lock);
  while (w->queued[w->fill] && !w->status) pthread_cond_wait(&w->changed, &w->lock);
  stream_batch *b = w->status ? NULL : &w->buf[w->fill];
  pthread_mutex_unlock(&w->lock);
  return b;
}

void stream_writer_submit(stream_writer *w) {
  pthread_mutex_lock(&w->lock);
  w->queued[w->fill] = 1;
  w->fill ^= 1;
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
}

int stream_writer_finish(stream_writer *w, int64_t *written, int64_t *failed) {
  pthread_mutex_lock(&w->lock);
  w->closing = 1;
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  if (w->c.progress) fprintf(stderr, "\r\033[K");
  int rc = w->status;
  *written = w->written;
  *failed = w->failed;
  free_writer(w);
  return rc;
}
