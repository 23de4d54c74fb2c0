/* libFuzzer target: the streaming caffemodel reader (ns_weights_foreach +
 * ns_weights_read_blob) on a file holding the fuzzer's bytes; every blob
 * the header scan reports is decoded into a buffer of exactly the size the
 * header claims. */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz_common.h"

#include <sys/mman.h>
#include <unistd.h>

#include "format/weights_reader.h"

static ns_status each_layer(ns_ctx *ctx, ns_weights_file *f, const ns_layer_weights *lw,
                            void *user) {
  (void)user;
  if (!lw->name || lw->n_blobs < 0 || (lw->n_blobs > 0 && !lw->blobs))
    fz_abort("inconsistent layer record", ctx);
  for (int i = 0; i < lw->n_blobs; i++) {
    const ns_blob_header *h = &lw->blobs[i];
    if (h->num_axes < 0 || h->num_axes > NS_BLOB_MAX_AXES || h->n_values < 0)
      fz_abort("inconsistent blob header", ctx);
    float *dst = malloc((size_t)h->n_values * sizeof *dst + 1);
    if (!dst) continue;
    ns_status st = ns_weights_read_blob(ctx, f, h, dst);
    fz_check_status(ctx, st);
    free(dst);
    if (st != NS_OK) return st;
  }
  return NS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz_weights", 0);
  if (fd < 0) abort();
  for (size_t done = 0; done < size;) {
    ssize_t w = write(fd, data + done, size - done);
    if (w <= 0) abort();
    done += (size_t)w;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ns_ctx *ctx = fz_ctx_create(0);
  ns_status st = ns_weights_foreach(ctx, path, each_layer, NULL);
  fz_check_status(ctx, st);
  fz_ctx_destroy(ctx);
  close(fd);
  return 0;
}
