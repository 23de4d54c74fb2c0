/* Streaming classify: decoders fill a ring of preprocessed inputs while the
 * main thread runs the net on batches of them and writes the results in
 * input order; see classify_stream.h.
 *
 * Job j (the j-th image of this run) lives in slot j % ring.  A decoder
 * claims the next job only when its slot is free (j < released + ring),
 * so memory stays at ring inputs however long the list, and the consumer
 * waits only when the decoders fall behind the net. */
#include "tools/classify_stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/classify_inputs.h"
#include "tools/classify_writer.h"
#include "tools/cli.h"

enum { MAX_DECODERS = 64, MAX_BATCH = 4096 };

void classify_stream_init(classify_stream_opts *o) {
  memset(o, 0, sizeof *o);
  o->batch = 1;
}

static int parse_shard(const char *arg, classify_stream_opts *o) {
  char *end;
  long k = strtol(arg, &end, 10), n;
  if (end == arg || *end != '/') return cli_usage_error("classify", "--shard: K/N, e.g. 0/4");
  const char *rest = end + 1;
  n = strtol(rest, &end, 10);
  if (end == rest || *end || n < 1 || n > 1000000 || k < 0 || k >= n)
    return cli_usage_error("classify", "--shard %s: need 0 <= K < N (K is 0-based)", arg);
  o->shard_k = (int)k;
  o->shard_n = (int)n;
  return 0;
}

static int parse_count(const char *opt, const char *arg, int max, int *out) {
  unsigned long long v;
  if (cli_parse_u64("classify", opt, arg, &v)) return NS_ERR_USAGE;
  if (v < 1 || v > (unsigned long long)max)
    return cli_usage_error("classify", "%s: 1 to %d", opt, max);
  *out = (int)v;
  return 0;
}

int classify_stream_option(int c, const char *arg, classify_stream_opts *o) {
  int rc = 0;
  switch (c) {
    case STREAM_OPT_LIST:
      o->list = arg;
      break;
    case STREAM_OPT_BATCH:
      rc = parse_count("--batch", arg, MAX_BATCH, &o->batch);
      break;
    case STREAM_OPT_OUTPUT:
      o->output = arg;
      break;
    case STREAM_OPT_OUT_DIR:
      o->out_dir = arg;
      break;
    case STREAM_OPT_SAVE_BLOB:
      o->save_blob = arg;
      break;
    case STREAM_OPT_RESUME:
      o->resume = 1;
      break;
    case STREAM_OPT_SHARD:
      rc = parse_shard(arg, o);
      break;
    case STREAM_OPT_DECODERS:
      rc = parse_count("--decoders", arg, MAX_DECODERS, &o->decoders);
      break;
    default:
      return CLASSIFY_STREAM_NOT_MINE;
  }
  o->given = 1;
  return rc;
}

int classify_stream_wanted(const classify_stream_opts *o, char **images, int n_images) {
  if (o->given) return 1;
  for (int i = 0; i < n_images; i++) {
    struct stat st;
    if (stat(images[i], &st) == 0 && S_ISDIR(st.st_mode)) return 1;
  }
  return 0;
}

/* ---- the ring of preprocessed inputs ---------------------------------- */

typedef struct slot {
  float *input; /* channels x height x width */
  int ready, failed;
  char error[STREAM_ERROR_TEXT];
} slot;

typedef struct pipeline {
  const classify_stream_model *m;
  const stream_jobs *jobs;
  int ring, stop;
  slot *slots;
  int64_t next_claim, released; /* jobs claimed by decoders, done by the net */
  pthread_mutex_t lock;
  pthread_cond_t claimable, filled;
} pipeline;

typedef struct decoder {
  pipeline *p;
  ns_ctx *ctx; /* its own: error text and allocations per thread */
  pthread_t thread;
  int started;
} decoder;

static void decode_job(const pipeline *p, ns_ctx *ctx, int64_t j, slot *s) {
  const classify_stream_model *m = p->m;
  int64_t count = (int64_t)m->channels * m->height * m->width;
  ns_image im;
  s->failed = 0;
  if (ns_image_load(ctx, p->jobs->paths[j], m->channels == 1 ? NS_IMAGE_GREY : 0, &im) == NS_OK) {
    if (ns_transform_preprocess(ctx, m->tf, &im, m->height, m->width, s->input, count) != NS_OK)
      s->failed = 1;
    ns_image_free(ctx, &im);
  } else {
    s->failed = 1;
  }
  if (s->failed) {
    snprintf(s->error, sizeof s->error, "%s", ns_ctx_error(ctx));
    ns_ctx_clear_error(ctx);
  }
}

static void *decoder_main(void *arg) {
  decoder *d = arg;
  pipeline *p = d->p;
  for (;;) {
    pthread_mutex_lock(&p->lock);
    while (!p->stop && p->next_claim < p->jobs->count && p->next_claim >= p->released + p->ring)
      pthread_cond_wait(&p->claimable, &p->lock);
    if (p->stop || p->next_claim >= p->jobs->count) {
      pthread_mutex_unlock(&p->lock);
      return NULL;
    }
    int64_t j = p->next_claim++;
    pthread_mutex_unlock(&p->lock);
    slot *s = &p->slots[j % p->ring];
    decode_job(p, d->ctx, j, s);
    pthread_mutex_lock(&p->lock);
    s->ready = 1;
    pthread_cond_broadcast(&p->filled);
    pthread_mutex_unlock(&p->lock);
  }
}

static void wait_filled(pipeline *p, int64_t first, int n) {
  pthread_mutex_lock(&p->lock);
  for (int i = 0; i < n; i++)
    while (!p->slots[(first + i) % p->ring].ready) pthread_cond_wait(&p->filled, &p->lock);
  pthread_mutex_unlock(&p->lock);
}

static void release(pipeline *p, int64_t first, int n) {
  pthread_mutex_lock(&p->lock);
  for (int i = 0; i < n; i++) p->slots[(first + i) % p->ring].ready = 0;
  p->released = first + n;
  pthread_cond_broadcast(&p->claimable);
  pthread_mutex_unlock(&p->lock);
}

static void stop_all(pipeline *p) {
  pthread_mutex_lock(&p->lock);
  p->stop = 1;
  pthread_cond_broadcast(&p->claimable);
  pthread_mutex_unlock(&p->lock);
}

/* ---- one batch through the net ---------------------------------------- */

typedef struct run_state {
  const classify_stream_opts *o;
  classify_stream_model *m;
  pipeline *p;
  stream_writer *writer;
  FILE *out;
  int save_blob, net_batch;
  int64_t before, before_failed, written, failed;
} run_state;

/* The net's batch set to the `ok` inputs that decoded, copied in, and run. */
static int forward_batch(run_state *r, int64_t first, int n, int ok) {
  classify_stream_model *m = r->m;
  if (ok != r->net_batch) {
    int64_t shape[4] = {ok, m->channels, m->height, m->width};
    if (ns_net_reshape_input(m->ctx, m->net, ns_net_blob(m->net, m->input).name, 4, shape) != NS_OK)
      return cli_fail(m->ctx, "classify");
    r->net_batch = ok;
  }
  ns_tensor in = ns_net_blob(m->net, m->input);
  int64_t per = in.count / ok;
  for (int i = 0, k = 0; i < n; i++) {
    const slot *s = &r->p->slots[(first + i) % r->p->ring];
    if (!s->failed) memcpy(in.data + per * k++, s->input, (size_t)per * sizeof *in.data);
  }
  return ns_net_forward(m->ctx, m->net) == NS_OK ? 0 : cli_fail(m->ctx, "classify");
}

/* The batch's outcome copied for the writer, so the net can go on. */
static void hand_over(run_state *r, stream_batch *b, int64_t first, int n, int ok) {
  b->first = first;
  b->n = n;
  b->ok = ok;
  for (int i = 0; i < n; i++) {
    const slot *s = &r->p->slots[(first + i) % r->p->ring];
    b->failed[i] = s->failed;
    if (s->failed) memcpy(b->error[i], s->error, sizeof s->error);
  }
  if (!ok) return;
  ns_tensor out = ns_net_blob(r->m->net, r->m->output);
  memcpy(b->prob, out.data, (size_t)out.count * sizeof *out.data);
  if (b->saved) {
    ns_tensor t = ns_net_blob(r->m->net, r->save_blob);
    memcpy(b->saved, t.data, (size_t)t.count * sizeof *t.data);
  }
}

static int run_batch(run_state *r, int64_t first, int n) {
  int ok = 0, rc;
  for (int i = 0; i < n; i++) ok += !r->p->slots[(first + i) % r->p->ring].failed;
  if (ok && (rc = forward_batch(r, first, n, ok)) != 0) return rc;
  stream_batch *b = stream_writer_acquire(r->writer);
  if (!b) return NS_ERR_IO; /* the writer failed and said why */
  hand_over(r, b, first, n, ok);
  stream_writer_submit(r->writer);
  return 0;
}

/* ---- the whole run ---------------------------------------------------- */

static int consume(run_state *r) {
  int rc = 0;
  int64_t total = r->p->jobs->count;
  for (int64_t b = r->before; !rc && b < total; b += r->o->batch) {
    int n = (int)(total - b < r->o->batch ? total - b : r->o->batch);
    wait_filled(r->p, b, n);
    rc = run_batch(r, b, n);
    release(r->p, b, n);
  }
  return rc;
}

static int start_decoders(pipeline *p, decoder *d, int count) {
  for (int i = 0; i < count; i++) {
    d[i].p = p;
    d[i].ctx = ns_ctx_create();
    if (!d[i].ctx) return cli_usage_error("classify", "out of memory");
    ns_ctx_set_threads(d[i].ctx, 1); /* the cores are for the net */
    if (pthread_create(&d[i].thread, NULL, decoder_main, &d[i]) != 0)
      return cli_usage_error("classify", "cannot start a decoder thread");
    d[i].started = 1;
  }
  return 0;
}

static void join_decoders(pipeline *p, decoder *d, int count) {
  stop_all(p);
  for (int i = 0; i < count; i++) {
    if (d[i].started) pthread_join(d[i].thread, NULL);
    if (d[i].ctx) ns_ctx_destroy(d[i].ctx);
  }
}

static int default_decoders(void) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores < 1 ? 1 : cores > 8 ? 8 : (int)cores;
}

static int alloc_ring(pipeline *p, int64_t per) {
  p->slots = calloc((size_t)p->ring, sizeof *p->slots);
  for (int i = 0; p->slots && i < p->ring; i++)
    if (!(p->slots[i].input = malloc((size_t)per * sizeof(float)))) return NS_ERR_NOMEM;
  return p->slots ? 0 : NS_ERR_NOMEM;
}

static void free_ring(pipeline *p) {
  for (int i = 0; p->slots && i < p->ring; i++) free(p->slots[i].input);
  free(p->slots);
}

static int run_pipeline(run_state *r, const stream_jobs *jobs) {
  int decoders = r->o->decoders ? r->o->decoders : default_decoders();
  pipeline p = {.m = r->m, .jobs = jobs, .next_claim = r->before, .released = r->before};
  p.ring = 2 * r->o->batch + decoders; /* a batch running, the next filling */
  pthread_mutex_init(&p.lock, NULL);
  pthread_cond_init(&p.claimable, NULL);
  pthread_cond_init(&p.filled, NULL);
  r->p = &p;
  decoder d[MAX_DECODERS];
  memset(d, 0, sizeof d);
  int rc = alloc_ring(&p, (int64_t)r->m->channels * r->m->height * r->m->width);
  if (rc) cli_usage_error("classify", "out of memory for %d preprocessed inputs", p.ring);
  if (!rc) rc = start_decoders(&p, d, decoders);
  if (!rc) rc = consume(r);
  join_decoders(&p, d, decoders);
  free_ring(&p);
  pthread_cond_destroy(&p.filled);
  pthread_cond_destroy(&p.claimable);
  pthread_mutex_destroy(&p.lock);
  return rc;
}

static int open_output(run_state *r, const stream_jobs *jobs) {
  const classify_stream_opts *o = r->o;
  if (!o->output) {
    r->out = stdout;
    return o->resume ? cli_usage_error("classify", "--resume needs --output FILE") : 0;
  }
  if (o->resume) {
    int rc = stream_resume_scan(o->output, jobs, &r->before, &r->before_failed);
    if (rc) return rc;
  }
  r->out = fopen(o->output, o->resume ? "a" : "w");
  return r->out ? 0 : stream_io_error(o->output);
}

static int find_save_blob(run_state *r) {
  const char *name = r->o->save_blob;
  r->save_blob = name ? ns_net_find_blob(r->m->net, name) : r->m->output;
  if (r->save_blob < 0) return cli_usage_error("classify", "no blob named '%s' in the net", name);
  if (name && !r->o->out_dir) return cli_usage_error("classify", "--save-blob needs --out-dir");
  ns_tensor t = ns_net_blob(r->m->net, r->save_blob);
  if (t.num_axes < 1 || t.num_axes > STREAM_SAVE_MAX_AXES || t.shape[0] != 1)
    return cli_usage_error("classify", "--save-blob %s: not a (1, ...) blob of at most %d axes",
                           t.name, STREAM_SAVE_MAX_AXES);
  return 0;
}

/* What the writer needs, read from the net at batch 1. */
static stream_writer_config writer_config(const run_state *r, const stream_jobs *jobs) {
  const classify_stream_model *m = r->m;
  stream_writer_config c = {.out = r->out,
                            .out_name = r->o->output ? r->o->output : "stdout",
                            .out_dir = r->o->out_dir,
                            .jobs = jobs,
                            .json = &m->json,
                            .top = m->top,
                            .max_batch = r->o->batch,
                            .progress = isatty(STDERR_FILENO),
                            .before = r->before};
  c.per_out = ns_net_blob(m->net, m->output).count;
  ns_tensor t = ns_net_blob(m->net, r->save_blob);
  c.save_axes = t.num_axes;
  for (int a = 0; a < t.num_axes; a++) c.save_shape[a] = t.shape[a];
  c.per_save = t.count;
  return c;
}

static int summary(const run_state *r, int rc) {
  int64_t failed = r->failed + r->before_failed;
  fprintf(stderr, "netsurg classify: %lld images this run", (long long)r->written);
  if (r->before) fprintf(stderr, " (%lld done before)", (long long)r->before);
  fprintf(stderr, ", %lld failed%s\n", (long long)failed, failed ? " (lines with \"error\")" : "");
  return rc ? rc : failed ? STREAM_SOME_FAILED : 0;
}

int classify_stream_run(const classify_stream_opts *o, classify_stream_model *m, char **images,
                        int n_images) {
  run_state r = {.o = o, .m = m, .net_batch = 1};
  stream_jobs jobs;
  int rc = find_save_blob(&r);
  if (!rc) rc = stream_jobs_collect(images, n_images, o->list, &jobs);
  if (rc) return rc;
  if (o->shard_n) stream_jobs_shard(&jobs, o->shard_k, o->shard_n);
  if (!(rc = open_output(&r, &jobs))) {
    stream_writer_config c = writer_config(&r, &jobs);
    if (!(rc = stream_writer_start(&c, &r.writer))) {
      rc = run_pipeline(&r, &jobs);
      int wrc = stream_writer_finish(r.writer, &r.written, &r.failed);
      if (!rc) rc = wrc;
    }
    if (r.out != stdout && fclose(r.out) != 0 && !rc) rc = stream_io_error(o->output);
    rc = summary(&r, rc);
  }
  stream_jobs_free(&jobs);
  return rc;
}
