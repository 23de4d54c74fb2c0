#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *mkdtemp(char *template);

const char *tu_test_dir(void) {
  const char *d = getenv("NS_TEST_DIR");
  return d && *d ? d : "tests";
}

const char *tu_shared_dir(void) {
  static char buf[4096];
  const char *d = getenv("NS_SHARED");
  if (!d || !*d) d = "../shared";
  struct stat st;
  if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
  snprintf(buf, sizeof buf, "%s", d);
  return buf;
}

const char *tu_conformance_dir(void) {
  static char buf[4096];
  const char *shared = tu_shared_dir();
  struct stat st;
  if (!shared) return NULL;
  snprintf(buf, sizeof buf, "%s/conformance", shared);
  return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? buf : NULL;
}

const char *tu_path(char *buf, size_t size, const char *a, const char *b) {
  snprintf(buf, size, "%s/%s", a, b);
  return buf;
}

char *tu_mkdtemp(void) {
  char *t = strdup("/tmp/netsurg-test-XXXXXX");
  if (t && !mkdtemp(t)) {
    free(t);
    return NULL;
  }
  return t;
}

void tu_rmtree(const char *dir) {
  if (!dir || strncmp(dir, "/tmp/netsurg-test-", 18) != 0) return;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  tu_run(cmd);
}

int tu_write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t n = fwrite(data, 1, len, f);
  return fclose(f) == 0 && n == len ? 0 : -1;
}

double tu_excess(const float *a, const float *b, int64_t n, double abs_tol, double rel_tol,
                 double *max_abs) {
  double worst = -INFINITY, m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (isnan(a[i]) != isnan(b[i])) d = INFINITY;
    if (d > m) m = d;
    double e = d - (abs_tol + rel_tol * fabs((double)b[i]));
    if (e > worst) worst = e;
  }
  if (max_abs) *max_abs = m;
  return n ? worst : 0;
}

int tu_run(const char *cmd) {
  int rc = system(cmd);
  if (rc == -1) return -1;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int tu_fixture_setup(void **state) {
  tu_fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  f->dir = tu_mkdtemp();
  f->ctx = ns_ctx_create();
  if (f->ctx) ns_ctx_set_threads(f->ctx, 1);
  *state = f;
  return f->dir && f->ctx ? 0 : -1;
}

int tu_fixture_teardown(void **state) {
  tu_fixture *f = *state;
  if (!f) return 0;
  if (f->dir) tu_rmtree(f->dir);
  free(f->dir);
  ns_ctx_destroy(f->ctx);
  free(f);
  return 0;
}
