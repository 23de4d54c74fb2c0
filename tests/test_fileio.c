/* Saves that respect what the path is (core/fileio.c through the public
 * writers): a symlink stays a link and its target gets the new contents;
 * a FIFO is written in place, not replaced by a file; a failed save through
 * a link keeps the target intact (test_io checks the same for plain files).
 * Contents are checked against the .npy format's own layout. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "netsurg.h"
#include "support/testutil.h"

/* A (2,) float32 .npy: 128 bytes of header (format 1.0 pads to 64 bytes,
 * so the 10-byte preamble and the dict fill 64) and 8 of data. */
static void save_pair(ns_ctx *ctx, const char *path, float a, float b, ns_status want) {
  float v[2] = {a, b};
  int64_t n = 2;
  assert_int_equal(ns_npy_save_f32(ctx, path, 1, &n, v), want);
  if (want != NS_OK) ns_ctx_clear_error(ctx);
}

static void expect_pair(ns_ctx *ctx, const char *path, float a, float b) {
  ns_ndarray arr;
  assert_int_equal(ns_npy_load(ctx, path, &arr), NS_OK);
  assert_int_equal(arr.count, 2);
  assert_true(arr.data[0] == a && arr.data[1] == b);
  ns_ndarray_free(ctx, &arr);
}

/* Entries of dir other than . and .. (no temporary file may be left). */
static int entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(d);
  return n;
}

static void test_symlink_kept(void **state) {
  tu_fixture *f = *state;
  char models[1024], real[1024], link[1024], dangling[1024], fresh[1024];
  tu_path(models, sizeof models, f->dir, "models");
  assert_int_equal(mkdir(models, 0777), 0);
  tu_path(real, sizeof real, models, "model.npy");
  tu_path(link, sizeof link, f->dir, "model.npy");
  save_pair(f->ctx, real, 1, 2, NS_OK);
  /* a relative link, as `ln -s models/model.npy model.npy` makes */
  assert_int_equal(symlink("models/model.npy", link), 0);
  save_pair(f->ctx, link, 3, 4, NS_OK);
  struct stat st;
  assert_int_equal(lstat(link, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  expect_pair(f->ctx, real, 3, 4);
  assert_int_equal(entries(models), 1);
  /* a link whose target does not exist yet: the target is created */
  tu_path(dangling, sizeof dangling, f->dir, "next.npy");
  tu_path(fresh, sizeof fresh, models, "next.npy");
  assert_int_equal(symlink("models/next.npy", dangling), 0);
  save_pair(f->ctx, dangling, 5, 6, NS_OK);
  assert_int_equal(lstat(dangling, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  expect_pair(f->ctx, fresh, 5, 6);
  /* a loop of links is an I/O error, not a hang */
  char a[1024], b[1024];
  tu_path(a, sizeof a, f->dir, "loop-a");
  tu_path(b, sizeof b, f->dir, "loop-b");
  assert_int_equal(symlink("loop-b", a), 0);
  assert_int_equal(symlink("loop-a", b), 0);
  save_pair(f->ctx, a, 7, 8, NS_ERR_IO);
}

/* A named pipe with a reader: the bytes go down the pipe, and the pipe is
 * still a pipe afterwards (the old save renamed a file over it). */
static void test_fifo_written_in_place(void **state) {
  tu_fixture *f = *state;
  char fifo[1024];
  tu_path(fifo, sizeof fifo, f->dir, "pipe.npy");
  assert_int_equal(mkfifo(fifo, 0600), 0);
  int rd = open(fifo, O_RDONLY | O_NONBLOCK); /* a reader, so the writer's open succeeds */
  assert_true(rd >= 0);
  save_pair(f->ctx, fifo, 1.5f, -2, NS_OK);
  unsigned char buf[512];
  ssize_t got = read(rd, buf, sizeof buf);
  close(rd);
  assert_int_equal(got, 128 + 8);
  assert_memory_equal(buf, "\x93NUMPY\x01\x00", 8);
  float v[2];
  memcpy(v, buf + 128, sizeof v);
  assert_true(v[0] == 1.5f && v[1] == -2.0f);
  struct stat st;
  assert_int_equal(lstat(fifo, &st), 0);
  assert_true(S_ISFIFO(st.st_mode));
  assert_int_equal(entries(f->dir), 1);
  /* the same through a symlink to the pipe */
  char link[1024];
  tu_path(link, sizeof link, f->dir, "link.npy");
  assert_int_equal(symlink("pipe.npy", link), 0);
  rd = open(fifo, O_RDONLY | O_NONBLOCK);
  assert_true(rd >= 0);
  save_pair(f->ctx, link, 3, 4, NS_OK);
  assert_int_equal(read(rd, buf, sizeof buf), 128 + 8);
  close(rd);
  assert_int_equal(lstat(fifo, &st), 0);
  assert_true(S_ISFIFO(st.st_mode));
  /* /dev/stdout on a pipe: a link to /proc/self/fd/1, whose link text
   * ("pipe:[...]") names no file; the same through our own pipe's fd */
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", fds[1]);
  save_pair(f->ctx, self, 5, 6, NS_OK);
  close(fds[1]);
  assert_int_equal(read(fds[0], buf, sizeof buf), 128 + 8);
  close(fds[0]);
  memcpy(v, buf + 128, sizeof v);
  assert_true(v[0] == 5.0f && v[1] == 6.0f);
}

/* A save through a symlink that fails half-way (a file size limit makes
 * the write fail with EFBIG) keeps the old target whole, the link a link,
 * and leaves no temporary file beside the target. */
static void test_symlink_target_intact_on_failure(void **state) {
  tu_fixture *f = *state;
  char real[1024], link[1024];
  tu_path(real, sizeof real, f->dir, "real.npy");
  tu_path(link, sizeof link, f->dir, "link.npy");
  save_pair(f->ctx, real, 1, 2, NS_OK);
  assert_int_equal(symlink("real.npy", link), 0);
  int64_t n = 100000;
  float *big = calloc((size_t)n, sizeof *big);
  assert_non_null(big);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit saved, small;
  getrlimit(RLIMIT_FSIZE, &saved);
  small = saved;
  small.rlim_cur = 4096;
  setrlimit(RLIMIT_FSIZE, &small);
  ns_status st = ns_npy_save_f32(f->ctx, link, 1, &n, big);
  setrlimit(RLIMIT_FSIZE, &saved);
  free(big);
  assert_int_equal(st, NS_ERR_IO);
  assert_non_null(strstr(ns_ctx_error(f->ctx), link)); /* named as the caller named it */
  ns_ctx_clear_error(f->ctx);
  expect_pair(f->ctx, real, 1, 2);
  struct stat sb;
  assert_int_equal(lstat(link, &sb), 0);
  assert_true(S_ISLNK(sb.st_mode));
  assert_int_equal(entries(f->dir), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_symlink_kept, tu_fixture_setup, tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_fifo_written_in_place, tu_fixture_setup,
                                      tu_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_symlink_target_intact_on_failure, tu_fixture_setup,
                                      tu_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
