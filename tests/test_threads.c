/* Thread counts are per context: a forward or backward changes no
 * process-wide setting (OpenMP's default team size, OpenBLAS's pool), and
 * two contexts with different counts, running at the same time in two
 * threads, each get the results a lone one-thread run gives (the library
 * promises the same bits on any thread count).  The net mixes our own
 * kernels (convolution, pooling, inner product) with OpenBLAS
 * (Deconvolution's forward, every backward GEMM). */
#include <omp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

static const char net_text[] =
    "layer { name: 'data' type: 'Input' top: 'data' top: 'target'\n"
    "  input_param { shape { dim: 2 dim: 3 dim: 19 dim: 17 } shape { dim: 2 dim: 5 } } }\n"
    "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv'\n"
    "  convolution_param { num_output: 8 kernel_size: 3 pad: 1\n"
    "    weight_filler { type: 'gaussian' std: 0.3 } bias_filler { type: 'uniform' } } }\n"
    "layer { name: 'relu' type: 'ReLU' bottom: 'conv' top: 'conv' }\n"
    "layer { name: 'up' type: 'Deconvolution' bottom: 'conv' top: 'up'\n"
    "  convolution_param { num_output: 4 kernel_size: 4 stride: 2\n"
    "    weight_filler { type: 'gaussian' std: 0.2 } bias_filler { type: 'uniform' } } }\n"
    "layer { name: 'pool' type: 'Pooling' bottom: 'up' top: 'pool'\n"
    "  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n"
    "layer { name: 'fc' type: 'InnerProduct' bottom: 'pool' top: 'fc'\n"
    "  inner_product_param { num_output: 5 weight_filler { type: 'xavier' } } }\n"
    "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'fc' bottom: 'target' top: 'loss' }\n";

/* What one run yields: the loss, the output and two param gradients (one
 * from our own kernels' layer, one from Deconvolution's BLAS backward). */
typedef struct run_result {
  float loss;
  float fc[10];
  float *conv_diff, *up_diff;
  int64_t conv_count, up_count;
} run_result;

typedef struct job {
  const char *path;
  int threads, repeats;
  run_result ref; /* the lone one-thread run to match */
  int mismatches;
  ns_status status;
  char error[512];
} job;

static void fill_inputs(ns_net *net) {
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  ns_tensor t = ns_net_blob(net, ns_net_find_blob(net, "target"));
  for (int64_t i = 0; i < x.count; i++) x.data[i] = (float)((i * 37) % 23) / 11.0f - 1.0f;
  for (int64_t i = 0; i < t.count; i++) t.data[i] = (float)i / 4.0f - 1.0f;
}

static float *copy_diff(ns_net *net, const char *layer, int64_t *count) {
  ns_learnable p;
  for (int i = 0; i < ns_net_learnable_count(net); i++)
    if (ns_net_learnable(net, i, &p) == NS_OK && !strcmp(p.layer_name, layer) && p.index == 0) {
      float *copy = malloc((size_t)p.data.count * sizeof *copy);
      if (copy) memcpy(copy, p.diff, (size_t)p.data.count * sizeof *copy);
      *count = p.data.count;
      return copy;
    }
  return NULL;
}

/* Load in its own context, forward with the loss, backward. */
static ns_status run_once(const char *path, int threads, run_result *out, char *error,
                          size_t size) {
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = NULL;
  if (!ctx) return NS_ERR_NOMEM;
  ns_ctx_set_threads(ctx, threads);
  ns_status st = ns_net_load(ctx, path, &(ns_net_opts){NS_PHASE_TEST, 7, NULL}, &net);
  if (st == NS_OK) {
    fill_inputs(net);
    ns_net_clear_param_diffs(net);
    st = ns_net_forward_loss(ctx, net, &out->loss);
  }
  if (st == NS_OK) st = ns_net_backward(ctx, net);
  if (st == NS_OK) {
    memcpy(out->fc, ns_net_blob(net, ns_net_find_blob(net, "fc")).data, sizeof out->fc);
    out->conv_diff = copy_diff(net, "conv", &out->conv_count);
    out->up_diff = copy_diff(net, "up", &out->up_count);
    if (!out->conv_diff || !out->up_diff) st = NS_ERR_NOMEM;
    if (ns_ctx_threads(ctx) != threads) st = NS_ERR_INTERNAL;
  }
  if (st != NS_OK) strncpy(error, ns_ctx_error(ctx), size - 1);
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return st;
}

static void result_free(run_result *r) {
  free(r->conv_diff);
  free(r->up_diff);
}

static int same_bits(const run_result *a, const run_result *b) {
  return a->loss == b->loss && !memcmp(a->fc, b->fc, sizeof a->fc) &&
         a->conv_count == b->conv_count && a->up_count == b->up_count &&
         !memcmp(a->conv_diff, b->conv_diff, (size_t)a->conv_count * sizeof(float)) &&
         !memcmp(a->up_diff, b->up_diff, (size_t)a->up_count * sizeof(float));
}

static void *run_job(void *arg) {
  job *j = arg;
  for (int r = 0; r < j->repeats && j->status == NS_OK; r++) {
    run_result got = {0};
    j->status = run_once(j->path, j->threads, &got, j->error, sizeof j->error);
    if (j->status == NS_OK && !same_bits(&got, &j->ref)) j->mismatches++;
    result_free(&got);
  }
  return NULL;
}

static const char *write_net(char *dir, char *path, size_t size) {
  tu_path(path, size, dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, net_text, strlen(net_text)), 0);
  return path;
}

/* The caller's OpenMP default and OpenBLAS's count survive a forward and a
 * backward in a context that asks for another count. */
static void test_run_changes_no_process_setting(void **state) {
  (void)state;
  char *dir = tu_mkdtemp(), path[1024];
  assert_non_null(dir);
  omp_set_num_threads(3);
  openblas_set_num_threads(1);
  run_result r = {0};
  char error[512] = "";
  ns_status st = run_once(write_net(dir, path, sizeof path), 2, &r, error, sizeof error);
  if (st != NS_OK) fail_msg("%s", error);
  assert_int_equal(omp_get_max_threads(), 3);
  assert_int_equal(openblas_get_num_threads(), 1);
  result_free(&r);
  tu_rmtree(dir);
  free(dir);
}

/* Contexts of 1 and 2 threads in two threads at once, several times: each
 * run matches the lone one-thread run bit for bit. */
static void test_two_contexts_at_once(void **state) {
  (void)state;
  char *dir = tu_mkdtemp(), path[1024];
  assert_non_null(dir);
  write_net(dir, path, sizeof path);
  run_result ref = {0};
  char error[512] = "";
  if (run_once(path, 1, &ref, error, sizeof error) != NS_OK) fail_msg("%s", error);
  assert_true(ref.loss > 0.0f); /* a real loss, not an empty net */
  job jobs[2] = {{path, 1, 4, ref, 0, NS_OK, ""}, {path, 2, 4, ref, 0, NS_OK, ""}};
  pthread_t tid[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&tid[i], NULL, run_job, &jobs[i]), 0);
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(tid[i], NULL), 0);
  for (int i = 0; i < 2; i++) {
    if (jobs[i].status != NS_OK) fail_msg("%d threads: %s", jobs[i].threads, jobs[i].error);
    assert_int_equal(jobs[i].mismatches, 0);
  }
  result_free(&ref);
  tu_rmtree(dir);
  free(dir);
}

/* The one process-wide knob does what it says; 0 means every core. */
static void test_blas_knob(void **state) {
  (void)state;
  ns_blas_set_threads(2);
  assert_int_equal(openblas_get_num_threads(), 2);
  ns_blas_set_threads(0);
  assert_int_equal(openblas_get_num_threads(), omp_get_num_procs());
  ns_blas_set_threads(1);
  assert_int_equal(openblas_get_num_threads(), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_run_changes_no_process_setting),
      cmocka_unit_test(test_two_contexts_at_once),
      cmocka_unit_test(test_blas_knob),
  };
  return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
