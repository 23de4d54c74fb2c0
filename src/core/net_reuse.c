/* Activation reuse for inference (ns_net_reuse_activations), as ncnn and
 * llm.c plan memory: an intermediate blob is live from the layer that
 * first writes it to the last layer that touches it; once that layer has
 * run, its storage serves a later blob.  Only blobs written by a layer and
 * read after their last write take part: the net's inputs (the caller
 * writes them before a forward) and its outputs (read after it) keep their
 * own storage.  Nets with a layer that reshapes in forward are left as
 * they are (a top's size is known only while the forward runs). */
#include <string.h>

#include "core/net.h"

/* Per blob: the layer that first writes it, the last layer that touches
 * it, whether it may share (0 for inputs and outputs), and the blob whose
 * buffer it uses (itself, or a Split's bottom for the Split's tops). */
typedef struct lifetime {
  int first, last, shared, root;
} lifetime;

static int blob_index(const ns_net *net, const ns_blob *b) {
  return ns_net_find_blob(net, b->name);
}

static void lifetimes(const ns_net *net, lifetime *lt) {
  int *last_is_top = (int *)&lt[net->n_blobs]; /* scratch after the array */
  for (int b = 0; b < net->n_blobs; b++) lt[b] = (lifetime){-1, -1, 0, b};
  for (int i = 0; i < net->n_layers; i++) {
    const ns_layer *l = &net->layers[i];
    for (int j = 0; j < l->n_bottom; j++) {
      int b = blob_index(net, l->bottom[j]);
      lt[b].last = i;
      last_is_top[b] = 0;
    }
    for (int j = 0; j < l->n_top; j++) {
      int b = blob_index(net, l->top[j]);
      if (lt[b].first < 0) lt[b].first = l->ops->is_net_input ? -2 : i;
      lt[b].last = i;
      last_is_top[b] = 1;
    }
  }
  for (int b = 0; b < net->n_blobs; b++) lt[b].shared = lt[b].first >= 0 && !last_is_top[b];
  /* a sum folded into layer i writes its top there */
  for (int i = 0; i < net->n_layers; i++) {
    const ns_layer *sum = ns_net_folded_sum(net, i);
    if (!sum) continue;
    lifetime *t = &lt[blob_index(net, sum->top[0])];
    if (t->first > i) t->first = i;
  }
}

/* Whether a layer after layer i writes blob b in place (a top that is
 * also its bottom): a buffer a Split's bottom and tops share must not
 * change once the Split has run. */
static int written_in_place_after(const ns_net *net, int i, const ns_blob *b) {
  for (int k = i + 1; k < net->n_layers; k++) {
    const ns_layer *l = &net->layers[k];
    for (int t = 0; t < l->n_top; t++)
      for (int j = 0; j < l->n_bottom; j++)
        if (l->top[t] == b && l->bottom[j] == b) return 1;
  }
  return 0;
}

/* A Split's tops share its bottom's buffer (no copy) when all of them
 * take part in the plan and none is written in place later: the bottom
 * then lives until the last reader of any top (a net input lives on
 * anyway). */
static void alias_split_tops(const ns_net *net, lifetime *lt) {
  for (int i = 0; i < net->n_layers; i++) {
    const ns_layer *l = &net->layers[i];
    if (!l->ops->tops_copy_bottom) continue;
    int root = lt[blob_index(net, l->bottom[0])].root;
    /* the root: a planned blob, or a net input (the caller's buffer) */
    int ok = (lt[root].shared || lt[root].first == -2) &&
             !written_in_place_after(net, i, l->bottom[0]);
    for (int t = 0; ok && t < l->n_top; t++)
      ok = lt[blob_index(net, l->top[t])].shared && !written_in_place_after(net, i, l->top[t]);
    for (int t = 0; ok && t < l->n_top; t++) {
      lifetime *top = &lt[blob_index(net, l->top[t])];
      top->root = root;
      if (top->last > lt[root].last) lt[root].last = top->last;
    }
  }
}

static int reshapes_in_forward(const ns_net *net) {
  for (int i = 0; i < net->n_layers; i++)
    if (net->layers[i].ops->reshapes_in_forward) return 1;
  return 0;
}

void ns_blob_drop_storage(ns_ctx *ctx, ns_blob *b) {
  if (!b->borrowed) ns_floats_free(ctx, b->data);
  ns_floats_free(ctx, b->diff);
  b->data = b->diff = NULL;
  b->capacity = 0;
  b->borrowed = 0;
}

void ns_net_pool_free(ns_ctx *ctx, ns_net *net) {
  for (int k = 0; k < net->n_pool; k++) ns_floats_free(ctx, net->pool[k]);
  ns_free(ctx, net->pool);
  net->pool = NULL;
  net->n_pool = 0;
}

/* Greedy assignment in execution order: each blob takes the free buffer
 * that fits it most tightly, else the largest free one (grown), else a
 * new one; a blob's buffer frees after the last layer touching it, not
 * before (a layer reads its bottoms while writing its tops). */
static int assign(const ns_net *net, const lifetime *lt, int *buf_of, int64_t *cap, int *busy) {
  int n = 0;
  for (int i = 0; i < net->n_layers; i++) {
    for (int b = 0; b < net->n_blobs; b++) {
      if (!lt[b].shared || lt[b].first != i || lt[b].root != b) continue;
      int64_t need = net->blobs[b]->count > 0 ? net->blobs[b]->count : 1;
      int best = -1, largest = -1;
      for (int k = 0; k < n; k++) {
        if (busy[k]) continue;
        if (cap[k] >= need && (best < 0 || cap[k] < cap[best])) best = k;
        if (largest < 0 || cap[k] > cap[largest]) largest = k;
      }
      if (best < 0) best = largest;
      if (best < 0) {
        best = n++;
        cap[best] = 0;
      }
      if (cap[best] < need) cap[best] = need;
      busy[best] = 1;
      buf_of[b] = best;
    }
    for (int b = 0; b < net->n_blobs; b++)
      if (lt[b].shared && lt[b].last == i && lt[b].root == b) busy[buf_of[b]] = 0;
  }
  for (int b = 0; b < net->n_blobs; b++) buf_of[b] = buf_of[lt[b].root];
  return n;
}

static ns_status make_pool(ns_ctx *ctx, ns_net *net, const lifetime *lt) {
  int nb = net->n_blobs;
  int *buf_of = ns_calloc(ctx, (size_t)nb + 1, sizeof *buf_of);
  int *busy = ns_calloc(ctx, (size_t)nb + 1, sizeof *busy);
  int64_t *cap = ns_calloc(ctx, (size_t)nb + 1, sizeof *cap);
  ns_status st = ctx->status;
  if (buf_of && busy && cap) {
    int n = assign(net, lt, buf_of, cap, busy);
    net->pool = ns_calloc(ctx, (size_t)n + 1, sizeof *net->pool);
    st = net->pool ? NS_OK : ctx->status;
    for (int k = 0; st == NS_OK && k < n; k++) {
      if (!(net->pool[k] = ns_floats_alloc(ctx, cap[k]))) st = ctx->status;
      else memset(net->pool[k], 0, (size_t)cap[k] * sizeof(float));
      net->n_pool = k + 1;
    }
    for (int b = 0; st == NS_OK && b < nb; b++) {
      if (!lt[b].shared) continue;
      ns_blob *blob = net->blobs[b];
      const ns_blob *root = net->blobs[lt[b].root];
      blob->data = lt[lt[b].root].shared ? net->pool[buf_of[b]] : root->data;
      blob->capacity = blob->count;
      blob->borrowed = 1;
    }
  }
  ns_free(ctx, buf_of);
  ns_free(ctx, busy);
  ns_free(ctx, cap);
  return st;
}

ns_status ns_net_reuse_off(ns_ctx *ctx, ns_net *net) {
  net->reuse_on = 0;
  for (int b = 0; b < net->n_blobs; b++)
    if (net->blobs[b]->borrowed) ns_blob_drop_storage(ctx, net->blobs[b]);
  ns_net_pool_free(ctx, net);
  return ns_net_reshape_all(ctx, net); /* storage for every dropped blob */
}

ns_status ns_net_reshape_reusing(ns_ctx *ctx, ns_net *net) {
  /* the scratch of lifetimes() sits after the array: room for both */
  lifetime *lt = ns_calloc(ctx, (size_t)net->n_blobs * 2 + 1, sizeof *lt);
  if (!lt) return ctx->status;
  lifetimes(net, lt);
  alias_split_tops(net, lt);
  int plan = !reshapes_in_forward(net);
  ns_status st = NS_OK;
  for (int i = 0; st == NS_OK && i < net->n_layers; i++) {
    st = net->layers[i].ops->reshape(ctx, &net->layers[i]);
    /* dropped as we go, so that all of them are never held at once */
    for (int b = 0; plan && st == NS_OK && b < net->n_blobs; b++)
      if (lt[b].shared && lt[b].last == i) ns_blob_drop_storage(ctx, net->blobs[b]);
  }
  if (plan && st == NS_OK) {
    ns_net_pool_free(ctx, net);
    st = make_pool(ctx, net, lt);
  }
  ns_free(ctx, lt);
  if (st != NS_OK) ns_net_reuse_off(ctx, net); /* the first error stays the one reported */
  return st;
}
