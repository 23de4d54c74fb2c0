/* classify's input list, shard and resume point; see classify_inputs.h. */
#include "tools/classify_inputs.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli.h"

int stream_io_error(const char *path) {
  fprintf(stderr, "netsurg classify: %s: %s\n", path, strerror(errno));
  return NS_ERR_IO;
}

static int push(stream_jobs *j, char *path) {
  if (!path) return cli_usage_error("classify", "out of memory");
  if (j->count == j->cap) {
    int64_t cap = j->cap ? 2 * j->cap : 256;
    char **p = realloc(j->paths, (size_t)cap * sizeof *p);
    if (p) j->paths = p;
    int64_t *ix = p ? realloc(j->index, (size_t)cap * sizeof *ix) : NULL;
    if (!ix) {
      free(path);
      return cli_usage_error("classify", "out of memory");
    }
    j->index = ix;
    j->cap = cap;
  }
  j->index[j->count] = j->count;
  j->paths[j->count++] = path;
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The directory's entries other than hidden ones and subdirectories, sorted
 * by name (byte order, so the same on every machine and locale). */
static int add_directory(stream_jobs *j, const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return stream_io_error(dir);
  int64_t first = j->count;
  int rc = 0;
  size_t dlen = strlen(dir);
  int slash = dlen && dir[dlen - 1] == '/';
  for (struct dirent *e; !rc && (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    size_t len = dlen + strlen(e->d_name) + 2;
    char *path = malloc(len);
    if (path) snprintf(path, len, "%s%s%s", dir, slash ? "" : "/", e->d_name);
    struct stat st;
    if (path && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
      free(path);
      continue;
    }
    rc = push(j, path);
  }
  closedir(d);
  qsort(j->paths + first, (size_t)(j->count - first), sizeof *j->paths, by_name);
  return rc;
}

static int add_named(stream_jobs *j, const char *name) {
  struct stat st;
  if (stat(name, &st) == 0 && S_ISDIR(st.st_mode)) return add_directory(j, name);
  return push(j, strdup(name)); /* a missing file becomes its error line */
}

static int add_list(stream_jobs *j, const char *list) {
  FILE *f = strcmp(list, "-") ? fopen(list, "r") : stdin;
  if (!f) return stream_io_error(list);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = 0;
  while (!rc && (len = getline(&line, &cap, f)) >= 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (len) rc = push(j, strdup(line));
  }
  free(line);
  if (f != stdin) fclose(f);
  return rc;
}

int stream_jobs_collect(char **images, int n_images, const char *list, stream_jobs *out) {
  memset(out, 0, sizeof *out);
  int rc = 0;
  for (int i = 0; !rc && i < n_images; i++) rc = add_named(out, images[i]);
  if (!rc && list) rc = add_list(out, list);
  if (rc) stream_jobs_free(out);
  return rc;
}

void stream_jobs_shard(stream_jobs *j, int k, int n) {
  int64_t kept = 0;
  for (int64_t i = 0; i < j->count; i++) {
    if (j->index[i] % n == k) {
      j->paths[kept] = j->paths[i];
      j->index[kept++] = j->index[i];
    } else {
      free(j->paths[i]);
    }
  }
  j->count = kept;
}

void stream_jobs_free(stream_jobs *j) {
  for (int64_t i = 0; i < j->count; i++) free(j->paths[i]);
  free(j->paths);
  free(j->index);
  memset(j, 0, sizeof *j);
}

/* ---- resume ----------------------------------------------------------- */

/* The start every line for `path` has: {"image": "<path, escaped>", */
static char *line_prefix(const char *path, size_t *len) {
  char *buf = NULL;
  FILE *m = open_memstream(&buf, len);
  if (!m) return NULL;
  fputs("{\"image\": ", m);
  cli_json_string(m, path);
  fputs(", ", m);
  fclose(m);
  return buf;
}

static int check_line(const char *line, size_t len, const stream_jobs *jobs, int64_t i,
                      int64_t *failed) {
  if (i >= jobs->count)
    return cli_usage_error("classify",
                           "--resume: the output has more lines than this run has images");
  size_t plen;
  char *prefix = line_prefix(jobs->paths[i], &plen);
  if (!prefix) return cli_usage_error("classify", "out of memory");
  int same = len >= plen && !memcmp(line, prefix, plen);
  free(prefix);
  if (!same)
    return cli_usage_error("classify",
                           "--resume: output line %lld is not for %s: an output of another list "
                           "or shard?",
                           (long long)i + 1, jobs->paths[i]);
  static const char error_key[] = "\"error\": ";
  if (len - plen >= sizeof error_key - 1 && !memcmp(line + plen, error_key, sizeof error_key - 1))
    (*failed)++;
  return 0;
}

static int scan_lines(const char *text, size_t size, const stream_jobs *jobs, int64_t *done,
                      int64_t *failed, size_t *complete) {
  size_t start = 0;
  *complete = 0;
  for (size_t i = 0; i < size; i++) {
    if (text[i] != '\n') continue;
    int rc = check_line(text + start, i - start, jobs, *done, failed);
    if (rc) return rc;
    (*done)++;
    start = *complete = i + 1;
  }
  return 0;
}

static int read_all(FILE *f, char **text, size_t *size) {
  *text = NULL;
  *size = 0;
  size_t cap = 0;
  for (;;) {
    if (*size == cap) {
      cap = cap ? 2 * cap : 1 << 16;
      char *t = realloc(*text, cap);
      if (!t) return NS_ERR_NOMEM;
      *text = t;
    }
    size_t got = fread(*text + *size, 1, cap - *size, f);
    *size += got;
    if (got == 0) return ferror(f) ? NS_ERR_IO : 0;
  }
}

int stream_resume_scan(const char *output, const stream_jobs *jobs, int64_t *done,
                       int64_t *failed) {
  *done = *failed = 0;
  FILE *f = fopen(output, "r+");
  if (!f && errno == ENOENT) return 0;
  if (!f) return stream_io_error(output);
  char *text;
  size_t size, complete = 0;
  int rc = read_all(f, &text, &size);
  if (rc) fprintf(stderr, "netsurg classify: %s: cannot read it\n", output);
  if (!rc) rc = scan_lines(text, size, jobs, done, failed, &complete);
  if (!rc && complete < size) {
    fprintf(stderr, "netsurg classify: %s: the last line was cut; redoing its image\n", output);
    if (ftruncate(fileno(f), (off_t)complete) != 0) rc = stream_io_error(output);
  }
  free(text);
  fclose(f);
  return rc;
}
