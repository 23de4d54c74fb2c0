/* The images a streaming classify run works on: named files, directories'
 * files sorted by name, then a list file's lines; a shard of them; and
 * with --resume, how many the output already holds. */
#ifndef NS_TOOLS_CLASSIFY_INPUTS_H
#define NS_TOOLS_CLASSIFY_INPUTS_H

#include <stdint.h>

typedef struct stream_jobs {
  char **paths;
  int64_t *index; /* each path's place in the whole input, before sharding */
  int64_t count, cap;
} stream_jobs;

/* Prints "netsurg classify: PATH: <errno's text>"; returns NS_ERR_IO. */
int stream_io_error(const char *path);

/* 0, or an exit status with its message printed. */
int stream_jobs_collect(char **images, int n_images, const char *list, stream_jobs *out);
void stream_jobs_shard(stream_jobs *jobs, int k, int n);
void stream_jobs_free(stream_jobs *jobs);

/* Reads an earlier run's output: its complete lines must be the first jobs'
 * (in order), a cut last line is truncated away.  Sets *done to the lines
 * kept and *failed to those among them that carry "error".  A missing
 * output is an empty one.  0, or an exit status with its message printed. */
int stream_resume_scan(const char *output, const stream_jobs *jobs, int64_t *done, int64_t *failed);

#endif
