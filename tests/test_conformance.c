/* Every case of Caffe's conformance figures (../shared/conformance, read
 * from there and never committed; without it the program reports one
 * skipped test): load the net and weights, feed the inputs, run forward,
 * and compare every blob with Caffe's within 1e-5 absolute + 1e-4 relative.
 *
 * Each case folder holds the net (net.prototxt; mini_caffenet_v1's is the
 * legacy V1 format, and so is its caffemodel, with 4-D blob dims), its
 * weights as Caffe saved them (weights.caffemodel), its inputs
 * (in_<blob>.npy) and every blob after a forward pass as BVLC Caffe 1.0
 * computed it (blob_<blob>.npy, '/' written '_'); manifest.json lists the
 * cases, and the first test checks that each of them runs here. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

#define ABS_TOL 1e-5
#define REL_TOL 1e-4

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Caffe's blob names with '/' are stored with '_'. */
static void blob_file(char *buf, size_t size, const char *dir, const char *blob) {
  char name[512];
  snprintf(name, sizeof name, "blob_%s.npy", blob);
  for (char *p = name; *p; p++)
    if (*p == '/') *p = '_';
  snprintf(buf, size, "%s/%s", dir, name);
}

static void feed_inputs(ns_ctx *ctx, ns_net *net, const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  int fed = 0;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (strncmp(e->d_name, "in_", 3) != 0 || n < 8 || strcmp(e->d_name + n - 4, ".npy")) continue;
    char blob[256], path[1024];
    snprintf(blob, sizeof blob, "%.*s", (int)(n - 7), e->d_name + 3);
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    ns_ndarray a;
    assert_int_equal(ns_npy_load(ctx, path, &a), NS_OK);
    if (ns_net_reshape_input(ctx, net, blob, a.num_axes, a.shape) != NS_OK)
      fail_msg("%s: %s", path, ns_ctx_error(ctx));
    ns_tensor t = ns_net_blob(net, ns_net_find_blob(net, blob));
    assert_int_equal(t.count, a.count);
    memcpy(t.data, a.data, (size_t)a.count * sizeof(float));
    ns_ndarray_free(ctx, &a);
    fed++;
  }
  closedir(d);
  assert_true(fed > 0);
}

static void run_case(void **state) {
  const char *dir = *state;
  char proto[1024], weights[1024], path[1024];
  tu_path(proto, sizeof proto, dir, "net.prototxt");
  tu_path(weights, sizeof weights, dir, "weights.caffemodel");
  ns_ctx *ctx = ns_ctx_create();
  ns_ctx_set_threads(ctx, 2);
  ns_net *net = NULL;
  if (ns_net_load(ctx, proto, &(ns_net_opts){NS_PHASE_TEST, 0, weights}, &net) != NS_OK)
    fail_msg("%s", ns_ctx_error(ctx));
  feed_inputs(ctx, net, dir);
  if (ns_net_forward(ctx, net) != NS_OK) fail_msg("%s", ns_ctx_error(ctx));
  int compared = 0;
  for (int b = 0; b < ns_net_blob_count(net); b++) {
    ns_tensor t = ns_net_blob(net, b);
    blob_file(path, sizeof path, dir, t.name);
    if (!file_exists(path)) fail_msg("blob '%s': Caffe has no such blob (%s)", t.name, path);
    ns_ndarray want;
    assert_int_equal(ns_npy_load(ctx, path, &want), NS_OK);
    if (want.num_axes != t.num_axes) fail_msg("blob '%s': %d axes, Caffe %d", t.name, t.num_axes, want.num_axes);
    for (int i = 0; i < t.num_axes; i++)
      if (want.shape[i] != t.shape[i]) fail_msg("blob '%s': axis %d is %lld, Caffe %lld", t.name, i, (long long)t.shape[i], (long long)want.shape[i]);
    double max_abs;
    double excess = tu_excess(t.data, want.data, t.count, ABS_TOL, REL_TOL, &max_abs);
    if (excess > 0) fail_msg("blob '%s': max abs error %g is over the tolerance", t.name, max_abs);
    ns_ndarray_free(ctx, &want);
    compared++;
  }
  /* and Caffe has no blob we lack */
  DIR *d = opendir(dir);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(d))) files += strncmp(e->d_name, "blob_", 5) == 0;
  closedir(d);
  assert_int_equal(files, compared);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const struct CMUnitTest *)a)->name, ((const struct CMUnitTest *)b)->name);
}

/* The top-level keys of manifest.json (one per case): the strings at depth
 * 1, since every case's value is an object. -1 if it cannot be read. */
static int manifest_cases(const char *root) {
  char path[1024];
  FILE *f = fopen(tu_path(path, sizeof path, root, "manifest.json"), "r");
  if (!f) return -1;
  int depth = 0, keys = 0, in_string = 0, c;
  while ((c = fgetc(f)) != EOF) {
    if (in_string) {
      if (c == '\\') {
        fgetc(f); /* the escaped character cannot end the string */
      } else if (c == '"') {
        in_string = 0;
      }
    } else if (c == '"') {
      in_string = 1;
      keys += depth == 1;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  fclose(f);
  return keys;
}

/* state: the number of case folders main found (each one a test). */
static void every_manifest_case_runs(void **state) {
  int found_cases = *(int *)*state;
  const char *root = tu_conformance_dir();
  if (!root) skip(); /* no ../shared: nothing to compare with */
  int listed = manifest_cases(root);
  if (listed != found_cases)
    fail_msg("%s/manifest.json lists %d cases, %d folders with weights found", root, listed,
             found_cases);
}

int main(void) {
  const char *root = tu_conformance_dir();
  struct CMUnitTest tests[256] = {cmocka_unit_test(every_manifest_case_runs)};
  int n = 1, found_cases = 0;
  tests[0].initial_state = &found_cases;
  DIR *d = root ? opendir(root) : NULL;
  struct dirent *e;
  while (d && (e = readdir(d)) && n < 256) {
    char dir[1024], w[1100];
    if (e->d_name[0] == '.') continue;
    tu_path(dir, sizeof dir, root, e->d_name);
    tu_path(w, sizeof w, dir, "weights.caffemodel");
    if (!file_exists(w)) continue; /* e.g. designer_filters: a surgery case */
    tests[n].name = strdup(e->d_name);
    tests[n].test_func = run_case;
    tests[n].setup_func = NULL;
    tests[n].teardown_func = NULL;
    tests[n].initial_state = strdup(dir);
    n++;
  }
  if (d) closedir(d);
  found_cases = n - 1;
  qsort(tests + 1, (size_t)(n - 1), sizeof tests[0], by_name);
  int failed = _cmocka_run_group_tests("conformance", tests, (size_t)n, NULL, NULL);
  for (int i = 1; i < n; i++) { /* LeakSanitizer counts these otherwise */
    free((char *)tests[i].name);
    free(tests[i].initial_state);
  }
  return failed;
}
