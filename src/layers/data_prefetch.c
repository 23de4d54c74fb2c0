/* The prefetch thread of data_prefetch.h: a ring of `count` batch slots
 * under one mutex and condition variable.  The worker fills slot
 * (head + filled) % count outside the lock (the consumer only reads slot
 * head, and only while filled > 0), then publishes it with how its fill
 * ended; forward copies slot head out (or returns its error, as a
 * synchronous read would have, the worker going on with the next
 * records) and frees it.  The worker's context allocates with
 * malloc (thread-safe; the caller's allocator, such as a budget, is
 * meant for one thread): what it allocates is one record's decoding at
 * a time, freed before the next; the slots come from the caller's. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "layers/data_prefetch.h"

struct ns_prefetch {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int count, head, filled, stop;
  float **data, **label;
  ns_status *status; /* per slot: how its fill ended */
  char (*error)[NS_ERROR_MAX];
  int64_t data_n, label_n;
  ns_ctx *wctx;
  ns_prefetch_fill fill;
  void *user;
};

static void *worker(void *arg) {
  ns_prefetch *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (p->filled == p->count && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
    int slot = (p->head + p->filled) % p->count, stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (stop) return NULL;
    ns_status st = p->fill(p->wctx, p->user, p->data[slot], p->label_n ? p->label[slot] : NULL);
    p->status[slot] = st;
    if (st != NS_OK) snprintf(p->error[slot], sizeof p->error[slot], "%s", ns_ctx_error(p->wctx));
    pthread_mutex_lock(&p->mu);
    p->filled++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
}

static void free_slots(ns_ctx *ctx, ns_prefetch *p) {
  for (int i = 0; i < p->count; i++) {
    if (p->data) ns_floats_free(ctx, p->data[i]);
    if (p->label) ns_floats_free(ctx, p->label[i]);
  }
  ns_free(ctx, p->data);
  ns_free(ctx, p->label);
  ns_free(ctx, p->status);
  ns_free(ctx, p->error);
  if (p->wctx) ns_ctx_destroy(p->wctx);
  ns_free(ctx, p);
}

ns_status ns_prefetch_start(ns_ctx *ctx, const ns_layer *l, int count, int64_t data_n,
                            int64_t label_n, ns_prefetch_fill fill, void *user,
                            ns_prefetch **out) {
  *out = NULL;
  ns_prefetch *p = ns_calloc(ctx, 1, sizeof *p);
  if (!p) return ctx->status;
  p->count = count, p->data_n = data_n, p->label_n = label_n, p->fill = fill, p->user = user;
  p->data = ns_calloc(ctx, (size_t)count, sizeof *p->data);
  p->label = ns_calloc(ctx, (size_t)count, sizeof *p->label);
  p->status = ns_calloc(ctx, (size_t)count, sizeof *p->status);
  p->error = ns_calloc(ctx, (size_t)count, sizeof *p->error);
  int ok = p->data && p->label && p->status && p->error;
  for (int i = 0; ok && i < count; i++) {
    ok = (p->data[i] = ns_floats_alloc(ctx, data_n > 0 ? data_n : 1)) != NULL;
    if (ok && label_n) ok = (p->label[i] = ns_floats_alloc(ctx, label_n)) != NULL;
  }
  if (ok && !(p->wctx = ns_ctx_create_with(NULL))) {
    ns_fail(ctx, NS_ERR_NOMEM, "out of memory for the worker's context");
    ok = 0;
  }
  if (!ok) {
    free_slots(ctx, p);
    ns_error_prefix(ctx, "layer '%s': prefetch: ", l->name);
    return ctx->status;
  }
  p->wctx->memory_limit = ctx->memory_limit;
  p->wctx->allow_unknown = ctx->allow_unknown;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  if (pthread_create(&p->thread, NULL, worker, p) != 0) {
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free_slots(ctx, p);
    return ns_layer_fail(ctx, l, NS_ERR_INTERNAL, "cannot start the prefetch thread");
  }
  *out = p;
  return NS_OK;
}

ns_status ns_prefetch_next(ns_ctx *ctx, ns_prefetch *p, float *data, float *label) {
  pthread_mutex_lock(&p->mu);
  while (p->filled == 0) pthread_cond_wait(&p->cv, &p->mu);
  int slot = p->head;
  pthread_mutex_unlock(&p->mu);
  ns_status st = p->status[slot];
  if (st != NS_OK) {
    ns_fail(ctx, st, "%s", p->error[slot]);
  } else {
    memcpy(data, p->data[slot], (size_t)p->data_n * sizeof *data);
    if (label && p->label_n) memcpy(label, p->label[slot], (size_t)p->label_n * sizeof *label);
  }
  pthread_mutex_lock(&p->mu);
  p->head = (p->head + 1) % p->count;
  p->filled--;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return st;
}

void ns_prefetch_stop(ns_ctx *ctx, ns_prefetch *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->thread, NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free_slots(ctx, p);
}
