/* Scoring a net on its own data: what `caffe test` prints and what the
 * solver's test phase reports, in one place so the two cannot drift. */
#include <limits.h>
#include <string.h>

#include "core/ctx.h"

void ns_net_score_free(ns_ctx *ctx, ns_net_score *score) {
  if (!score) return;
  ns_free(ctx, score->names);
  ns_free(ctx, score->values);
  memset(score, 0, sizeof *score);
}

/* Sizes the result from the output blobs' shapes after the first pass. */
static ns_status alloc_values(ns_ctx *ctx, ns_net *net, const int *outs, int n_out,
                              ns_net_score *sc) {
  int64_t n = 0;
  for (int k = 0; k < n_out; k++) n += ns_net_blob(net, outs[k]).count;
  if (n > INT_MAX) return ns_fail(ctx, NS_ERR_NOMEM, "scoring: %lld output values", (long long)n);
  sc->n_values = (int)n;
  sc->names = ns_calloc(ctx, (size_t)n + 1, sizeof *sc->names);
  sc->values = ns_calloc(ctx, (size_t)n + 1, sizeof *sc->values);
  return sc->names && sc->values ? NS_OK : ctx->status;
}

/* Adds this pass's outputs; a blob that grew since the first pass adds no
 * more values than were counted then. */
static void add_outputs(ns_net *net, const int *outs, int n_out, ns_net_score *sc) {
  int v = 0;
  for (int k = 0; k < n_out; k++) {
    ns_tensor t = ns_net_blob(net, outs[k]);
    for (int64_t e = 0; e < t.count && v < sc->n_values; e++, v++) {
      sc->values[v] += t.data[e];
      sc->names[v] = t.name;
    }
  }
}

static ns_status run_passes(ns_ctx *ctx, ns_net *net, int iterations, volatile int *stop,
                            const int *outs, int n_out, ns_net_score *sc) {
  for (int it = 0; it < iterations; it++) {
    if (stop && *stop) break;
    float loss = 0;
    if (ns_net_forward_loss(ctx, net, &loss) != NS_OK) return ctx->status;
    sc->loss += loss;
    if (it == 0 && alloc_values(ctx, net, outs, n_out, sc) != NS_OK) return ctx->status;
    add_outputs(net, outs, n_out, sc);
  }
  return NS_OK;
}

ns_status ns_net_score_outputs(ns_ctx *ctx, ns_net *net, int iterations, volatile int *stop,
                               ns_net_score *out) {
  memset(out, 0, sizeof *out);
  int *outs = ns_calloc(ctx, (size_t)ns_net_blob_count(net) + 1, sizeof *outs);
  if (!outs) return ctx->status;
  int n_out = ns_net_output_blobs(net, outs);
  ns_status st = run_passes(ctx, net, iterations, stop, outs, n_out, out);
  ns_free(ctx, outs);
  if (st != NS_OK) {
    ns_net_score_free(ctx, out);
    return st;
  }
  for (int v = 0; v < out->n_values; v++) out->values[v] /= iterations;
  out->loss = iterations ? out->loss / iterations : 0;
  return NS_OK;
}
