/* Shared helpers for the cmocka tests. */
#ifndef NS_TESTS_TESTUTIL_H
#define NS_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "netsurg.h"

/* Folder with the project's test data (tests/), from NS_TEST_DIR or
 * "tests" relative to the working directory (the repo root). */
const char *tu_test_dir(void);
/* The shared folder (NS_SHARED, else ../shared); NULL if absent. */
const char *tu_shared_dir(void);
/* Caffe's conformance figures (nets, Caffe-saved weights, the blobs BVLC
 * Caffe 1.0 computed), read from the shared folder's conformance/ and never
 * committed; NULL if absent, so that the tests using them skip. */
const char *tu_conformance_dir(void);
/* path = a + "/" + b into buf. */
const char *tu_path(char *buf, size_t size, const char *a, const char *b);
/* A fresh empty temp folder for one test; removed by tu_rmtree. */
char *tu_mkdtemp(void);
void tu_rmtree(const char *dir);
/* Writes bytes to a file; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t len);
/* Max of |a-b| - (abs_tol + rel_tol*|b|) over n values: <= 0 means within. */
double tu_excess(const float *a, const float *b, int64_t n, double abs_tol, double rel_tol,
                 double *max_abs);
/* Runs a shell command, returns its exit status (or -1). */
int tu_run(const char *cmd);

/* A cmocka fixture: a fresh temporary folder and a 1-thread context
 * (deterministic sums), removed by the teardown. */
typedef struct tu_fixture {
  char *dir;
  ns_ctx *ctx;
} tu_fixture;
int tu_fixture_setup(void **state);
int tu_fixture_teardown(void **state);

#endif
