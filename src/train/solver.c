/* Caffe's Solver and SGDSolver family (solver.cpp, sgd_solver.cpp and the
 * per-rule files), in the same float operations and the same order, so
 * that a run follows Caffe's numbers: ApplyUpdate = learning rate, clip
 * gradients, then per param: 1/iter_size, weight decay, the rule's update
 * value; then data -= diff.  Snapshots are a caffemodel of the train net
 * and a SolverState with the history blobs (Adam keeps 2 per param: m
 * then v, as Caffe's AdamSolver appends them). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "format/model_io.h"
#include "api/netdef.h"

typedef enum rule {
  RULE_SGD,
  RULE_NESTEROV,
  RULE_ADAGRAD,
  RULE_RMSPROP,
  RULE_ADADELTA,
  RULE_ADAM
} rule;

/* The last test of one test net: its scores, and the same values as floats
 * for the TEST event. */
typedef struct outputs {
  ns_net_score score;
  float *values;
} outputs;

struct ns_solver {
  ns_ctx *ctx;
  Caffe__SolverParameter *param;
  ns_solver_opts opts;
  rule type;
  uint64_t seed;
  char *prefix;
  ns_net *net;
  int n_test;
  ns_net **test_nets;
  outputs *test_out;
  int n_params; /* learnables of the train net */
  int n_history;
  float **history;
  float *update, *temp; /* scratch of the largest param's size */
  int iter, current_step;
  int stopped;
  float *losses; /* average_loss ring */
  int n_losses;
  float smoothed;
};

void ns_solver_opts_init(ns_solver_opts *o) {
  memset(o, 0, sizeof *o);
  o->seed = -1;
}

/* ---- building the nets ------------------------------------------------- */

/* A deep copy through the wire format (net_param is shared by the train
 * net and every generic test net). */
static ns_status copy_net_param(ns_ctx *ctx, const Caffe__NetParameter *src,
                                Caffe__NetParameter **out) {
  size_t n = protobuf_c_message_get_packed_size(&src->base);
  uint8_t *buf = ns_alloc(ctx, n ? n : 1);
  if (!buf) return ctx->status;
  protobuf_c_message_pack(&src->base, buf);
  *out = caffe__net_parameter__unpack(&ctx->pb_alloc, n, buf);
  ns_free(ctx, buf);
  if (!*out) return ctx->status != NS_OK ? ctx->status : ns_fail(ctx, NS_ERR_INTERNAL, "net copy");
  return NS_OK;
}

/* NetState::MergeFrom: phase and level overwrite, stages append. */
static ns_status merge_state(ns_ctx *ctx, Caffe__NetState *dst, const Caffe__NetState *src) {
  if (!src) return NS_OK;
  if (src->has_phase) dst->phase = src->phase;
  if (src->has_level) dst->has_level = 1, dst->level = src->level;
  if (!src->n_stage) return NS_OK;
  char **st = ns_realloc_array(ctx, dst->stage, dst->n_stage + src->n_stage, sizeof *st);
  if (!st) return ctx->status;
  dst->stage = st;
  for (size_t i = 0; i < src->n_stage; i++) {
    if (!(st[dst->n_stage] = ns_strdup(ctx, src->stage[i]))) return ctx->status;
    dst->n_stage++;
  }
  return NS_OK;
}

/* Caffe's InitTrainNet / InitTestNets: the state is the phase, merged with
 * the net's own state, merged with the solver's train_state/test_state. */
static ns_status build_net(ns_ctx *ctx, const char *file, const Caffe__NetParameter *inline_param,
                           Caffe__Phase phase, const Caffe__NetState *extra, uint64_t seed,
                           ns_net **out) {
  Caffe__NetParameter *np = NULL;
  int what = 0;
  ns_status st =
      file ? ns_load_net_param(ctx, file, &np, &what) : copy_net_param(ctx, inline_param, &np);
  if (st != NS_OK) return st;
  Caffe__NetState *state = ns_alloc(ctx, sizeof *state);
  if (!state) {
    ns_net_param_free(ctx, np);
    return ctx->status;
  }
  caffe__net_state__init(state);
  state->has_phase = 1;
  state->phase = phase;
  Caffe__NetState *old = np->state;
  np->state = state;
  st = merge_state(ctx, state, old);
  if (st == NS_OK) st = merge_state(ctx, state, extra);
  if (old) protobuf_c_message_free_unpacked(&old->base, &ctx->pb_alloc);
  if (st != NS_OK) {
    ns_net_param_free(ctx, np);
    return st;
  }
  ns_net_opts opts;
  ns_net_opts_init(&opts);
  opts.phase = state->phase == CAFFE__PHASE__TRAIN ? NS_PHASE_TRAIN : NS_PHASE_TEST;
  opts.seed = seed;
  ns_netdef *def = ns_netdef_wrap(ctx, np);
  if (!def) return ctx->status;
  st = ns_net_build_from(ctx, def, &opts, out);
  if (st != NS_OK && file) ns_error_prefix(ctx, "%s: ", file);
  return st;
}

static void free_outputs(ns_ctx *ctx, outputs *o) {
  ns_net_score_free(ctx, &o->score);
  ns_free(ctx, o->values);
  o->values = NULL;
}

/* Caffe's UpgradeSnapshotPrefixProperty: no prefix means the solver file
 * without its extension; a folder means <folder>/<solver file stem>. */
static char *snapshot_prefix(ns_ctx *ctx, const char *solver_path, const char *prefix) {
  const char *base = strrchr(solver_path, '/');
  base = base ? base + 1 : solver_path;
  const char *dot = strrchr(base, '.');
  size_t stem = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  struct stat sb;
  if (!prefix || !prefix[0]) {
    size_t keep = (size_t)(base - solver_path) + stem;
    return ns_strndup(ctx, solver_path, keep);
  }
  if (stat(prefix, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    size_t n = strlen(prefix) + stem + 2;
    char *p = ns_alloc(ctx, n);
    if (!p) return NULL;
    size_t pl = strlen(prefix);
    snprintf(p, n, "%s%s%.*s", prefix, pl && prefix[pl - 1] == '/' ? "" : "/", (int)stem, base);
    return p;
  }
  return ns_strdup(ctx, prefix);
}

static ns_status parse_type(ns_ctx *ctx, const Caffe__SolverParameter *p, const char *forced,
                            rule *out) {
  const char *t = forced ? forced : p->type ? p->type : "SGD";
  static const struct {
    const char *name;
    rule r;
  } names[] = {{"SGD", RULE_SGD},         {"Nesterov", RULE_NESTEROV}, {"AdaGrad", RULE_ADAGRAD},
               {"RMSProp", RULE_RMSPROP}, {"AdaDelta", RULE_ADADELTA}, {"Adam", RULE_ADAM}};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (!strcmp(t, names[i].name)) {
      *out = names[i].r;
      if (names[i].r == RULE_ADAGRAD && p->momentum != 0)
        return ns_fail(ctx, NS_ERR_INPUT, "Momentum cannot be used with AdaGrad.");
      return NS_OK;
    }
  return ns_fail(
      ctx, NS_ERR_UNSUPPORTED,
      "solver type '%s' is not supported (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam)", t);
}

static ns_status check_policy(ns_ctx *ctx, const Caffe__SolverParameter *p) {
  const char *pol = p->lr_policy ? p->lr_policy : "";
  if (!pol[0]) return ns_fail(ctx, NS_ERR_INPUT, "lr_policy is not set (fixed, step, inv, ...)");
  static const char *const known[] = {"fixed",     "step", "exp",    "inv",
                                      "multistep", "poly", "sigmoid"};
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (!strcmp(pol, known[i])) {
      if ((!strcmp(pol, "step")) && p->stepsize <= 0)
        return ns_fail(ctx, NS_ERR_INPUT, "lr_policy step needs a positive stepsize");
      if (!strcmp(pol, "poly") && p->max_iter <= 0)
        return ns_fail(ctx, NS_ERR_INPUT, "lr_policy poly needs a positive max_iter");
      return NS_OK;
    }
  return ns_fail(ctx, NS_ERR_UNSUPPORTED, "Unknown learning rate policy: '%s'", pol);
}

static ns_status init_nets(ns_ctx *ctx, ns_solver *s, const char *path) {
  const Caffe__SolverParameter *p = s->param;
  int n_train = (p->train_net_param != NULL) + (p->train_net && p->train_net[0]) +
                (p->net_param != NULL) + (p->net && p->net[0]);
  if (n_train != 1)
    return ns_fail(ctx, NS_ERR_INPUT,
                   "%s: give exactly one of train_net_param, train_net, net_param, net (got %d)",
                   path, n_train);
  const char *file = p->train_net_param                ? NULL
                     : p->train_net && p->train_net[0] ? p->train_net
                     : p->net_param                    ? NULL
                                                       : p->net;
  const Caffe__NetParameter *inl = p->train_net_param ? p->train_net_param : p->net_param;
  if (build_net(ctx, file, inl, CAFFE__PHASE__TRAIN, p->train_state, s->seed, &s->net) != NS_OK)
    return ctx->status;

  int has_generic = p->net_param != NULL || (p->net && p->net[0]);
  int specified = (int)(p->n_test_net_param + p->n_test_net);
  if ((int)p->n_test_iter < specified)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: test_iter must be specified for each test network",
                   path);
  int generic = has_generic ? (int)p->n_test_iter - specified : 0;
  int total = specified + generic;
  if (total != (int)p->n_test_iter)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: %zu test_iter values for %d test nets", path,
                   p->n_test_iter, total);
  if (p->n_test_state && (int)p->n_test_state != total)
    return ns_fail(ctx, NS_ERR_INPUT,
                   "%s: test_state must be unspecified or given for each test net", path);
  if (total && p->test_interval <= 0)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: test nets need a positive test_interval", path);
  s->test_nets = ns_calloc(ctx, (size_t)total + 1, sizeof *s->test_nets);
  s->test_out = ns_calloc(ctx, (size_t)total + 1, sizeof *s->test_out);
  if (!s->test_nets || !s->test_out) return ctx->status;
  for (int i = 0; i < total; i++) {
    const char *tf = NULL;
    const Caffe__NetParameter *tp = NULL;
    if (i < (int)p->n_test_net_param)
      tp = p->test_net_param[i];
    else if (i < specified)
      tf = p->test_net[i - (int)p->n_test_net_param];
    else if (p->net_param)
      tp = p->net_param;
    else
      tf = p->net;
    const Caffe__NetState *ts = p->n_test_state ? p->test_state[i] : NULL;
    if (build_net(ctx, tf, tp, CAFFE__PHASE__TEST, ts, s->seed + 1 + (uint64_t)i,
                  &s->test_nets[i]) != NS_OK)
      return ctx->status;
    s->n_test = i + 1;
  }
  return NS_OK;
}

static ns_status init_history(ns_ctx *ctx, ns_solver *s) {
  s->n_params = ns_net_learnable_count(s->net);
  /* Adam and AdaDelta keep two histories per param, the second set after
   * the first (as their Caffe constructors append them) */
  int two = s->type == RULE_ADAM || s->type == RULE_ADADELTA;
  s->n_history = two ? 2 * s->n_params : s->n_params;
  s->history = ns_calloc(ctx, (size_t)s->n_history + 1, sizeof *s->history);
  if (!s->history) return ctx->status;
  int64_t most = 1;
  for (int h = 0; h < s->n_history; h++) {
    /* this first call allocates every param's diff; later ones cannot fail */
    ns_learnable L;
    memset(&L, 0, sizeof L);
    if (ns_net_learnable(s->net, h % s->n_params, &L) != NS_OK) return ctx->status;
    if (!(s->history[h] = ns_floats_alloc(ctx, L.data.count ? L.data.count : 1)))
      return ctx->status;
    memset(s->history[h], 0, sizeof(float) * (size_t)(L.data.count ? L.data.count : 1));
    if (L.data.count > most) most = L.data.count;
  }
  s->update = ns_floats_alloc(ctx, most);
  s->temp = ns_floats_alloc(ctx, most);
  if (!s->update || !s->temp) return ctx->status;
  int avg = s->param->has_average_loss && s->param->average_loss > 0 ? s->param->average_loss : 1;
  s->losses = ns_calloc(ctx, (size_t)avg, sizeof *s->losses);
  return s->losses ? NS_OK : ctx->status;
}

ns_status ns_solver_create(ns_ctx *ctx, const char *path, const ns_solver_opts *opts,
                           ns_solver **out) {
  *out = NULL;
  ns_solver *s = ns_calloc(ctx, 1, sizeof *s);
  if (!s) return ctx->status;
  s->ctx = ctx;
  if (opts)
    s->opts = *opts;
  else
    ns_solver_opts_init(&s->opts);
  ns_status st = ns_load_solver_param(ctx, path, &s->param);
  if (st == NS_OK) st = parse_type(ctx, s->param, s->opts.type, &s->type);
  if (st == NS_OK) st = check_policy(ctx, s->param);
  if (st == NS_OK && s->param->has_snapshot_format &&
      s->param->snapshot_format == CAFFE__SOLVER_PARAMETER__SNAPSHOT_FORMAT__HDF5)
    st = ns_fail(ctx, NS_ERR_UNSUPPORTED, "%s: snapshot_format HDF5 (only BINARYPROTO)", path);
  if (st == NS_OK && s->param->has_iter_size && s->param->iter_size < 1)
    st = ns_fail(ctx, NS_ERR_INPUT, "%s: iter_size must be positive", path);
  if (st == NS_OK) {
    if (s->opts.seed >= 0)
      s->seed = (uint64_t)s->opts.seed;
    else if (s->param->has_random_seed && s->param->random_seed >= 0)
      s->seed = (uint64_t)s->param->random_seed;
    else
      s->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    s->prefix = snapshot_prefix(ctx, path, s->param->snapshot_prefix);
    if (!s->prefix) st = ctx->status;
  }
  if (st == NS_OK) st = init_nets(ctx, s, path);
  if (st == NS_OK && s->opts.weights) st = ns_net_load_weights(ctx, s->net, s->opts.weights);
  for (size_t i = 0; st == NS_OK && i < s->param->n_weights; i++)
    st = ns_net_load_weights(ctx, s->net, s->param->weights[i]);
  if (st == NS_OK) st = init_history(ctx, s);
  if (st != NS_OK) {
    ns_solver_destroy(s);
    return st;
  }
  *out = s;
  return NS_OK;
}

void ns_solver_destroy(ns_solver *s) {
  if (!s) return;
  ns_ctx *ctx = s->ctx;
  for (int h = 0; s->history && h < s->n_history; h++) ns_floats_free(ctx, s->history[h]);
  ns_free(ctx, s->history);
  ns_floats_free(ctx, s->update);
  ns_floats_free(ctx, s->temp);
  ns_free(ctx, s->losses);
  for (int i = 0; i < s->n_test; i++) {
    ns_net_destroy(s->test_nets[i]);
    free_outputs(ctx, &s->test_out[i]);
  }
  ns_free(ctx, s->test_nets);
  ns_free(ctx, s->test_out);
  ns_net_destroy(s->net);
  if (s->param) protobuf_c_message_free_unpacked(&s->param->base, &ctx->pb_alloc);
  ns_free(ctx, s->prefix);
  ns_free(ctx, s);
}

/* ---- the learning rate (SGDSolver::GetLearningRate) -------------------- */

/* Mirrors Caffe's float/double mix: pow(float, int) is computed in double,
 * pow(float, float) and exp(float) in float.  *step is current_step_,
 * which Caffe advances inside this function. */
static float rate_at(const Caffe__SolverParameter *p, int iter, int *step) {
  const char *pol = p->lr_policy ? p->lr_policy : "";
  float base = p->base_lr, gamma = p->gamma, power = p->power;
  if (!strcmp(pol, "fixed")) return base;
  if (!strcmp(pol, "step")) {
    *step = iter / p->stepsize;
    return (float)(base * pow(gamma, *step));
  }
  if (!strcmp(pol, "exp")) return (float)(base * pow(gamma, iter));
  if (!strcmp(pol, "inv")) return base * powf(1.0f + gamma * (float)iter, -power);
  if (!strcmp(pol, "multistep")) {
    if (*step < (int)p->n_stepvalue && iter >= p->stepvalue[*step]) (*step)++;
    return (float)(base * pow(gamma, *step));
  }
  if (!strcmp(pol, "poly")) return base * powf(1.0f - (float)iter / (float)p->max_iter, power);
  /* sigmoid */
  return base * (1.0f / (1.0f + expf(-gamma * ((float)iter - (float)p->stepsize))));
}

float ns_solver_learning_rate(const ns_solver *s) {
  int step = s->current_step;
  return rate_at(s->param, s->iter, &step);
}

/* ---- ApplyUpdate --------------------------------------------------------- */

static void clip_gradients(ns_solver *s) {
  float clip = s->param->has_clip_gradients ? s->param->clip_gradients : -1;
  if (clip < 0) return;
  float sumsq = 0;
  for (int i = 0; i < s->n_params; i++) {
    ns_learnable L;
    ns_net_learnable(s->net, i, &L);
    float d = 0;
    for (int64_t k = 0; k < L.data.count; k++) d += L.diff[k] * L.diff[k];
    sumsq += d;
  }
  float norm = sqrtf(sumsq);
  if (norm > clip) {
    float f = clip / norm;
    for (int i = 0; i < s->n_params; i++) {
      ns_learnable L;
      ns_net_learnable(s->net, i, &L);
      for (int64_t k = 0; k < L.data.count; k++) L.diff[k] *= f;
    }
  }
}

static ns_status regularize(ns_ctx *ctx, ns_solver *s, ns_learnable *L) {
  float wd = s->param->weight_decay;
  float local = wd * L->decay_mult;
  if (local == 0) return NS_OK;
  const char *type = s->param->regularization_type ? s->param->regularization_type : "L2";
  float *d = L->diff, *w = L->data.data;
  if (!strcmp(type, "L2")) {
    for (int64_t k = 0; k < L->data.count; k++) d[k] = local * w[k] + d[k];
  } else if (!strcmp(type, "L1")) {
    for (int64_t k = 0; k < L->data.count; k++) {
      float sign = (float)((0 < w[k]) - (w[k] < 0));
      d[k] = local * sign + d[k];
    }
  } else {
    return ns_fail(ctx, NS_ERR_UNSUPPORTED, "Unknown regularization type: %s", type);
  }
  return NS_OK;
}

static void compute_update(ns_solver *s, int i, ns_learnable *L, float rate) {
  const Caffe__SolverParameter *p = s->param;
  float local = rate * L->lr_mult, mom = p->momentum, delta = p->delta;
  float *g = L->diff, *h = s->history[i], *u = s->update;
  int64_t n = L->data.count;
  switch (s->type) {
    case RULE_SGD:
      for (int64_t k = 0; k < n; k++) {
        h[k] = local * g[k] + mom * h[k];
        g[k] = h[k];
      }
      break;
    case RULE_NESTEROV:
      for (int64_t k = 0; k < n; k++) {
        u[k] = h[k];
        h[k] = local * g[k] + mom * h[k];
        u[k] = (1 + mom) * h[k] + -mom * u[k];
        g[k] = u[k];
      }
      break;
    case RULE_ADAGRAD:
      for (int64_t k = 0; k < n; k++) {
        u[k] = g[k] * g[k];
        h[k] = u[k] + h[k];
        u[k] = powf(h[k], 0.5f);
        u[k] += delta;
        u[k] = g[k] / u[k];
        g[k] = local * u[k];
      }
      break;
    case RULE_RMSPROP: {
      float decay = p->rms_decay;
      for (int64_t k = 0; k < n; k++) {
        u[k] = g[k] * g[k];
        h[k] = (1 - decay) * u[k] + decay * h[k];
        u[k] = powf(h[k], 0.5f);
        u[k] += delta;
        u[k] = g[k] / u[k];
        g[k] = local * u[k];
      }
      break;
    }
    case RULE_ADADELTA: {
      float *h2 = s->history[i + s->n_params], *tmp = s->temp;
      for (int64_t k = 0; k < n; k++) {
        u[k] = g[k] * g[k];
        h[k] = (1 - mom) * u[k] + mom * h[k];
        tmp[k] = delta;
        u[k] = tmp[k] + h2[k];
        tmp[k] = tmp[k] + h[k];
        u[k] = u[k] / tmp[k];
        u[k] = powf(u[k], 0.5f);
        g[k] = g[k] * u[k];
        u[k] = g[k] * g[k];
        h2[k] = (1 - mom) * u[k] + mom * h2[k];
        g[k] = local * g[k];
      }
      break;
    }
    case RULE_ADAM: {
      float b1 = p->momentum, b2 = p->momentum2;
      float *m = h, *v = s->history[i + s->n_params];
      int t = s->iter + 1;
      float correction = (float)(sqrt(1.0f - pow(b2, t)) / (1.0f - pow(b1, t)));
      float scale = local * correction;
      for (int64_t k = 0; k < n; k++) {
        m[k] = (1 - b1) * g[k] + b1 * m[k];
        u[k] = g[k] * g[k];
        v[k] = (1 - b2) * u[k] + b2 * v[k];
        u[k] = powf(v[k], 0.5f);
        u[k] += delta;
        u[k] = m[k] / u[k];
        g[k] = scale * u[k];
      }
      break;
    }
  }
}

static ns_status apply_update(ns_ctx *ctx, ns_solver *s, float *rate_out) {
  float rate = rate_at(s->param, s->iter, &s->current_step);
  if (rate_out) *rate_out = rate;
  clip_gradients(s);
  int iter_size = s->param->has_iter_size ? s->param->iter_size : 1;
  for (int i = 0; i < s->n_params; i++) {
    ns_learnable L;
    ns_net_learnable(s->net, i, &L);
    if (!L.diff)
      return ns_fail(ctx, NS_ERR_INTERNAL, "param %d of '%s' has no diff", L.index, L.layer_name);
    if (iter_size > 1) {
      float f = 1.0f / (float)iter_size;
      for (int64_t k = 0; k < L.data.count; k++) L.diff[k] *= f;
    }
    if (regularize(ctx, s, &L) != NS_OK) return ctx->status;
    if (L.lr_mult == 0) continue; /* frozen: Caffe's update is zero too */
    compute_update(s, i, &L, rate);
    for (int64_t k = 0; k < L.data.count; k++) L.data.data[k] -= L.diff[k];
  }
  return NS_OK;
}

ns_status ns_solver_apply_update(ns_ctx *ctx, ns_solver *s) {
  if (apply_update(ctx, s, NULL) != NS_OK) return ctx->status;
  s->iter++;
  return NS_OK;
}

/* ---- testing ----------------------------------------------------------- */

/* Caffe's ShareTrainedLayersWith: params by layer name (copied here); the
 * param counts and sizes must match, as Caffe checks them. */
static ns_status share_params(ns_ctx *ctx, ns_net *train, ns_net *test) {
  for (int l = 0; l < ns_net_layer_count(test); l++) {
    const char *name = ns_net_layer_name(test, l);
    if (ns_net_find_layer(train, name) >= 0 &&
        ns_net_copy_params(ctx, test, name, train, name) != NS_OK)
      return ctx->status;
  }
  return NS_OK;
}

static void emit(ns_solver *s, const ns_solver_event *ev) {
  if (s->opts.on_event) s->opts.on_event(s->opts.user, ev);
}

static int stop_requested(const ns_solver *s) { return s->opts.stop && *s->opts.stop; }

static ns_status test_net(ns_ctx *ctx, ns_solver *s, int t) {
  ns_net *net = s->test_nets[t];
  outputs *o = &s->test_out[t];
  if (share_params(ctx, s->net, net) != NS_OK) return ctx->status;
  free_outputs(ctx, o);
  if (ns_net_score_outputs(ctx, net, s->param->test_iter[t], s->opts.stop, &o->score) != NS_OK)
    return ctx->status;
  o->values = ns_calloc(ctx, (size_t)o->score.n_values + 1, sizeof *o->values);
  if (!o->values) return ctx->status;
  for (int v = 0; v < o->score.n_values; v++) o->values[v] = (float)o->score.values[v];
  ns_solver_event ev = {.kind = NS_SOLVER_TEST, .iter = s->iter, .test_net = t};
  ev.loss = (float)o->score.loss;
  ev.n_outputs = o->score.n_values;
  ev.output_names = o->score.names;
  ev.output_values = o->values;
  emit(s, &ev);
  return NS_OK;
}

ns_status ns_solver_test_all(ns_ctx *ctx, ns_solver *s) {
  for (int t = 0; t < s->n_test; t++)
    if (test_net(ctx, s, t) != NS_OK) return ctx->status;
  return NS_OK;
}

/* ---- snapshots ----------------------------------------------------------- */

static char *snapshot_name(ns_ctx *ctx, const ns_solver *s, const char *ext) {
  size_t n = strlen(s->prefix) + strlen(ext) + 32;
  char *p = ns_alloc(ctx, n);
  if (p) snprintf(p, n, "%s_iter_%d%s", s->prefix, s->iter, ext);
  return p;
}

static ns_status write_state(ns_ctx *ctx, ns_solver *s, const char *path, const char *model) {
  Caffe__SolverState st;
  caffe__solver_state__init(&st);
  st.has_iter = 1;
  st.iter = s->iter;
  st.learned_net = (char *)model;
  st.has_current_step = 1;
  st.current_step = s->current_step;
  int n = s->n_history;
  Caffe__BlobProto *bp = ns_calloc(ctx, (size_t)n + 1, sizeof *bp);
  Caffe__BlobShape *sh = ns_calloc(ctx, (size_t)n + 1, sizeof *sh);
  Caffe__BlobProto **ptrs = ns_calloc(ctx, (size_t)n + 1, sizeof *ptrs);
  ns_status status = NS_ERR_NOMEM;
  uint8_t *buf = NULL;
  if (bp && sh && ptrs) {
    for (int h = 0; h < n; h++) {
      ns_learnable L;
      ns_net_learnable(s->net, h % s->n_params, &L);
      caffe__blob_shape__init(&sh[h]);
      sh[h].n_dim = (size_t)L.data.num_axes;
      sh[h].dim = (int64_t *)L.data.shape;
      caffe__blob_proto__init(&bp[h]);
      bp[h].shape = &sh[h];
      bp[h].n_data = (size_t)L.data.count;
      bp[h].data = s->history[h];
      ptrs[h] = &bp[h];
    }
    st.n_history = (size_t)n;
    st.history = ptrs;
    size_t len = protobuf_c_message_get_packed_size(&st.base);
    buf = ns_alloc(ctx, len ? len : 1);
    if (buf) {
      protobuf_c_message_pack(&st.base, buf);
      status = ns_write_file_atomic(ctx, path, buf, len);
    } else {
      status = ctx->status;
    }
  }
  ns_free(ctx, buf);
  ns_free(ctx, bp);
  ns_free(ctx, sh);
  ns_free(ctx, ptrs);
  return status;
}

ns_status ns_solver_snapshot(ns_ctx *ctx, ns_solver *s) {
  char *model = snapshot_name(ctx, s, ".caffemodel");
  char *state = snapshot_name(ctx, s, ".solverstate");
  ns_status st = model && state ? NS_OK : ctx->status;
  if (st == NS_OK) st = ns_net_save_weights(ctx, s->net, model);
  if (st == NS_OK) st = write_state(ctx, s, state, model);
  if (st == NS_OK) {
    ns_solver_event ev = {.kind = NS_SOLVER_SNAPSHOT, .iter = s->iter};
    ev.path = model;
    ev.state_path = state;
    emit(s, &ev);
  }
  ns_free(ctx, model);
  ns_free(ctx, state);
  return st;
}

ns_status ns_solver_restore(ns_ctx *ctx, ns_solver *s, const char *path) {
  unsigned char *data;
  size_t len;
  if (ns_read_file(ctx, path, &data, &len) != NS_OK) return ctx->status;
  Caffe__SolverState *st = caffe__solver_state__unpack(&ctx->pb_alloc, len, data);
  ns_free(ctx, data);
  if (!st) {
    if (ctx->status == NS_ERR_NOMEM) return ns_fail(ctx, NS_ERR_NOMEM, "%s: out of memory", path);
    return ns_fail(ctx, NS_ERR_INPUT, "%s: not a SolverState (protobuf parse failed)", path);
  }
  ns_status status = NS_OK;
  if ((int)st->n_history != s->n_history)
    status = ns_fail(ctx, NS_ERR_INPUT, "%s: %zu history blobs, the solver has %d", path,
                     st->n_history, s->n_history);
  for (int h = 0; status == NS_OK && h < s->n_history; h++) {
    ns_learnable L;
    ns_net_learnable(s->net, h % s->n_params, &L);
    if ((int64_t)st->history[h]->n_data != L.data.count)
      status =
          ns_fail(ctx, NS_ERR_INPUT, "%s: history blob %d holds %zu values, param '%s'[%d] %lld",
                  path, h, st->history[h]->n_data, L.layer_name, L.index, (long long)L.data.count);
  }
  if (status == NS_OK && st->learned_net && st->learned_net[0])
    status = ns_net_load_weights(ctx, s->net, st->learned_net);
  if (status == NS_OK) {
    for (int h = 0; h < s->n_history; h++)
      memcpy(s->history[h], st->history[h]->data, sizeof(float) * st->history[h]->n_data);
    s->iter = st->has_iter ? st->iter : 0;
    s->current_step = st->has_current_step ? st->current_step : 0;
  }
  protobuf_c_message_free_unpacked(&st->base, &ctx->pb_alloc);
  return status;
}

/* ---- Step and Solve ------------------------------------------------------ */

/* Solver::UpdateSmoothedLoss */
static void smooth_loss(ns_solver *s, float loss, int start_iter) {
  int avg = s->param->has_average_loss && s->param->average_loss > 0 ? s->param->average_loss : 1;
  if (s->n_losses < avg) {
    s->losses[s->n_losses++] = loss;
    s->smoothed = (s->smoothed * (float)(s->n_losses - 1) + loss) / (float)s->n_losses;
  } else {
    int idx = (s->iter - start_iter) % avg;
    s->smoothed += (loss - s->losses[idx]) / (float)avg;
    s->losses[idx] = loss;
  }
}

static int due(int iter, int every) { return every > 0 && iter % every == 0; }

ns_status ns_solver_step(ns_ctx *ctx, ns_solver *s, int iters) {
  const Caffe__SolverParameter *p = s->param;
  int start = s->iter, stop = s->iter + iters;
  int iter_size = p->has_iter_size ? p->iter_size : 1;
  int test_init = !p->has_test_initialization || p->test_initialization;
  s->n_losses = 0;
  s->smoothed = 0;
  while (s->iter < stop) {
    ns_net_clear_param_diffs(s->net);
    if (s->n_test && due(s->iter, p->test_interval) && (s->iter > 0 || test_init)) {
      if (ns_solver_test_all(ctx, s) != NS_OK) return ctx->status;
      if (stop_requested(s)) {
        s->stopped = 1;
        break;
      }
    }
    float loss = 0;
    for (int i = 0; i < iter_size; i++) {
      float l;
      if (ns_net_forward_loss(ctx, s->net, &l) != NS_OK) return ctx->status;
      if (ns_net_backward(ctx, s->net) != NS_OK) return ctx->status;
      loss += l;
    }
    loss /= (float)iter_size;
    smooth_loss(s, loss, start);
    float rate;
    if (apply_update(ctx, s, &rate) != NS_OK) return ctx->status;
    if (due(s->iter, p->display)) {
      ns_solver_event ev = {.kind = NS_SOLVER_DISPLAY, .iter = s->iter};
      ev.loss = s->smoothed;
      ev.rate = rate;
      emit(s, &ev);
    }
    s->iter++;
    if (due(s->iter, p->snapshot) && ns_solver_snapshot(ctx, s) != NS_OK) return ctx->status;
    if (stop_requested(s)) {
      s->stopped = 1;
      break;
    }
  }
  return NS_OK;
}

ns_status ns_solver_solve(ns_ctx *ctx, ns_solver *s) {
  const Caffe__SolverParameter *p = s->param;
  if (ns_solver_step(ctx, s, p->max_iter - s->iter) != NS_OK) return ctx->status;
  int after = !p->has_snapshot_after_train || p->snapshot_after_train;
  /* A stop always leaves a snapshot (Caffe's SIGINT does, through
   * snapshot_after_train), unless one was written at this iteration. */
  if ((after || s->stopped) && !due(s->iter, p->snapshot))
    if (ns_solver_snapshot(ctx, s) != NS_OK) return ctx->status;
  if (s->stopped) return NS_OK;
  if (s->n_test && due(s->iter, p->test_interval)) return ns_solver_test_all(ctx, s);
  return NS_OK;
}

/* ---- accessors ----------------------------------------------------------- */

int ns_solver_iter(const ns_solver *s) { return s->iter; }
int ns_solver_max_iter(const ns_solver *s) { return s->param->max_iter; }
int ns_solver_stopped(const ns_solver *s) { return s->stopped; }
uint64_t ns_solver_seed(const ns_solver *s) { return s->seed; }
ns_net *ns_solver_net(ns_solver *s) { return s->net; }
int ns_solver_test_net_count(const ns_solver *s) { return s->n_test; }
ns_net *ns_solver_test_net(ns_solver *s, int i) {
  return i >= 0 && i < s->n_test ? s->test_nets[i] : NULL;
}

int64_t ns_solver_batch_images(const ns_solver *s) {
  ns_net *net = s->net;
  int iter_size = s->param->has_iter_size ? s->param->iter_size : 1;
  for (int l = 0; l < ns_net_layer_count(net); l++) {
    if (ns_net_layer_bottom_count(net, l) || !ns_net_layer_top_count(net, l)) continue;
    ns_tensor t = ns_net_blob(net, ns_net_find_blob(net, ns_net_layer_top(net, l, 0)));
    return (t.num_axes ? t.shape[0] : 1) * iter_size;
  }
  return iter_size;
}
