/* The results side of streaming classify: a thread that turns each batch's
 * outputs (copied out of the net, so the next batch runs meanwhile) into
 * JSON lines and .npy files, syncs the output after every batch and shows
 * the progress.  Two batch buffers: the net fills one while the other is
 * written. */
#ifndef NS_TOOLS_CLASSIFY_WRITER_H
#define NS_TOOLS_CLASSIFY_WRITER_H

#include <stdio.h>

#include "tools/classify_inputs.h"
#include "tools/classify_json.h"

enum { STREAM_ERROR_TEXT = 512, STREAM_SAVE_MAX_AXES = 8 };

typedef struct stream_writer_config {
  FILE *out;
  const char *out_name; /* for messages */
  const char *out_dir;  /* NULL: no .npy */
  const stream_jobs *jobs;
  const classify_json *json;
  int top, max_batch, progress;
  int64_t per_out; /* floats of one image's output blob */
  int save_axes;   /* one image's saved blob (shape[0] = 1) */
  int64_t save_shape[STREAM_SAVE_MAX_AXES], per_save;
  int64_t before; /* jobs an earlier run finished (--resume) */
} stream_writer_config;

/* Jobs first .. first + n - 1; failed[i], error[i] for each; prob (and
 * saved, with out_dir) hold the outputs of the `ok` jobs that did not
 * fail, in order. */
typedef struct stream_batch {
  int64_t first;
  int n, ok;
  int *failed;
  char (*error)[STREAM_ERROR_TEXT];
  float *prob, *saved;
} stream_batch;

typedef struct stream_writer stream_writer;

/* 0, or an exit status with its message printed. */
int stream_writer_start(const stream_writer_config *c, stream_writer **out);
/* The next buffer to fill (waits while both are queued); NULL once the
 * writer has failed. */
stream_batch *stream_writer_acquire(stream_writer *w);
void stream_writer_submit(stream_writer *w);
/* Writes what is queued, stops the thread, frees w; returns 0 or the
 * status that stopped the writer, and the jobs written and failed. */
int stream_writer_finish(stream_writer *w, int64_t *written, int64_t *failed);

#endif
