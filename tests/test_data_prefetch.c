/* The Data layer's prefetch thread (src/layers/data_prefetch.c), as
 * Caffe's BasePrefetchingDataLayer: the batches it serves are the ones a
 * synchronous read gives, in the same order (records in key order,
 * wrapping; TRAIN's random crops and mirrors drawn in the same sequence),
 * a corrupt record fails the forward that reaches it, and destroying the
 * net while the thread waits on a full queue or is mid-batch is clean
 * (make test-asan runs this under ASan and LeakSanitizer).  The LMDB is
 * written here with io/db.h: 7 raw Datums of 2 x 5 x 6 bytes whose
 * values encode the record, labels 10 + i. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "caffe.pb-c.h"
#include "io/db.h"
#include "netsurg.h"
#include "support/testutil.h"

enum { RECORDS = 7, C = 2, H = 5, W = 6, BATCH = 3, FORWARDS = 6 };

static void put_record(ns_ctx *ctx, ns_db *db, int i, int corrupt) {
  unsigned char bytes[C * H * W];
  for (int k = 0; k < C * H * W; k++) bytes[k] = (unsigned char)(i * 31 + k * 7);
  Caffe__Datum d = CAFFE__DATUM__INIT;
  d.has_channels = d.has_height = d.has_width = d.has_data = d.has_label = 1;
  d.channels = C, d.height = H, d.width = W, d.label = 10 + i;
  d.data.data = bytes, d.data.len = sizeof bytes;
  uint8_t packed[512];
  size_t len = caffe__datum__get_packed_size(&d);
  assert_true(len <= sizeof packed);
  caffe__datum__pack(&d, packed);
  if (corrupt) len = 5; /* cut inside the data field */
  char key[16];
  int key_len = snprintf(key, sizeof key, "%08d", i);
  assert_int_equal(ns_db_put(ctx, db, key, (size_t)key_len, packed, len), NS_OK);
}

static const char *make_db(tu_fixture *f, const char *name, int corrupt_at) {
  static char path[1024];
  tu_path(path, sizeof path, f->dir, name);
  ns_db *db = NULL;
  assert_int_equal(ns_db_open(f->ctx, path, NS_DB_LMDB, 1, &db), NS_OK);
  for (int i = 0; i < RECORDS; i++) put_record(f->ctx, db, i, i == corrupt_at);
  assert_int_equal(ns_db_close(f->ctx, db), NS_OK);
  return path;
}

static ns_net *data_net(tu_fixture *f, const char *db, int prefetch, ns_phase phase) {
  char text[2048], path[1024];
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'Data' top: 'data' top: 'label'\n"
           "  transform_param { crop_size: 4 mirror: true scale: 0.5 }\n"
           "  data_param { source: '%s' backend: LMDB batch_size: %d prefetch: %d } }\n",
           db, BATCH, prefetch);
  tu_path(path, sizeof path, f->dir, "net.prototxt");
  assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
  ns_net *net = NULL;
  ns_net_opts o = {phase, 5, NULL};
  if (ns_net_load(f->ctx, path, &o, &net) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
  return net;
}

static void pause_ms(long ms) {
  struct timespec ts = {0, ms * 1000 * 1000};
  nanosleep(&ts, NULL);
}

/* FORWARDS batches of data and labels, after a pause that lets the
 * thread fill its queue (the ring's order is then what is tested). */
static void run_batches(tu_fixture *f, ns_net *net, float *data, float *labels, int64_t *per) {
  pause_ms(30);
  for (int i = 0; i < FORWARDS; i++) {
    if (ns_net_forward(f->ctx, net) != NS_OK) fail_msg("%s", ns_ctx_error(f->ctx));
    ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
    ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, "label"));
    *per = x.count;
    memcpy(data + i * x.count, x.data, (size_t)x.count * sizeof *data);
    memcpy(labels + i * BATCH, y.data, BATCH * sizeof *labels);
  }
}

static void test_same_batches_with_and_without(void **state) {
  tu_fixture *f = *state;
  const char *db = make_db(f, "db", -1);
  const int prefetch[3] = {0, 1, 4};
  const ns_phase phases[2] = {NS_PHASE_TRAIN, NS_PHASE_TEST};
  for (int ph = 0; ph < 2; ph++) {
    static float data[3][FORWARDS * BATCH * C * 4 * 4], labels[3][FORWARDS * BATCH];
    int64_t per = 0;
    for (int k = 0; k < 3; k++) {
      ns_net *net = data_net(f, db, prefetch[k], phases[ph]);
      run_batches(f, net, data[k], labels[k], &per);
      ns_net_destroy(net);
    }
    assert_int_equal(per, BATCH * C * 4 * 4);
    for (int i = 0; i < FORWARDS * BATCH; i++)  /* key order, wrapping after 7 */
      assert_true(labels[0][i] == (float)(10 + i % RECORDS));
    for (int k = 1; k < 3; k++) {
      assert_memory_equal(labels[k], labels[0], sizeof labels[0]);
      assert_memory_equal(data[k], data[0], sizeof data[0]);
    }
  }
}

/* Record 4 is cut short: the first batch (0, 1, 2) is served, the second
 * fails at record 4 naming its key, the third goes on from record 5
 * (5, 6, 0); the same with and without the thread. */
static void test_corrupt_record_fails_its_batch(void **state) {
  tu_fixture *f = *state;
  const char *db = make_db(f, "bad", 4);
  for (int prefetch = 0; prefetch < 5; prefetch += 4) {
    ns_net *net = data_net(f, db, prefetch, NS_PHASE_TEST);
    assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
    assert_int_equal(ns_net_forward(f->ctx, net), NS_ERR_INPUT);
    assert_non_null(strstr(ns_ctx_error(f->ctx), "00000004"));
    assert_non_null(strstr(ns_ctx_error(f->ctx), "'d'"));
    assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
    ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, "label"));
    assert_true(y.data[0] == 15 && y.data[1] == 16 && y.data[2] == 10);
    ns_net_destroy(net);
  }
}

/* Destroyed at once (the worker mid-batch or not yet started), after the
 * queue filled (the worker waiting for a free slot), and after one
 * forward: no hang, no leak, no race (ASan / LeakSanitizer in
 * make test-asan). */
static void test_shutdown(void **state) {
  tu_fixture *f = *state;
  const char *db = make_db(f, "db", -1);
  for (int when = 0; when < 3; when++) {
    ns_net *net = data_net(f, db, 2, NS_PHASE_TRAIN);
    if (when == 1) pause_ms(50);
    if (when == 2) assert_int_equal(ns_net_forward(f->ctx, net), NS_OK);
    ns_net_destroy(net);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_same_batches_with_and_without, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_record_fails_its_batch, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_shutdown, tu_fixture_setup, tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
