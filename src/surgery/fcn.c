/* The FCN cast (the seed's net surgery, done automatically): every
 * InnerProduct of a classifier becomes a Convolution whose kernel covers
 * its whole bottom at the classifier's input size, so the net slides over
 * a larger input and gives a map of classifications; the weights carry
 * over flat, since (out, c*h*w) and (out, c, h, w) are the same memory. */
#include "surgery/fcn.h"

#include <string.h>

#include "format/model_io.h"

/* ---- copying the definition ------------------------------------------ */

ns_status ns_net_param_copy_without_blobs(ns_ctx *ctx, Caffe__NetParameter *def,
                                          Caffe__NetParameter **out) {
  *out = NULL;
  size_t *saved = ns_calloc(ctx, def->n_layer + 1, sizeof *saved);
  if (!saved) return ctx->status;
  for (size_t i = 0; i < def->n_layer; i++) {
    saved[i] = def->layer[i]->n_blobs;
    def->layer[i]->n_blobs = 0;
  }
  size_t len = caffe__net_parameter__get_packed_size(def);
  uint8_t *buf = ns_alloc(ctx, len);
  if (buf) caffe__net_parameter__pack(def, buf);
  for (size_t i = 0; i < def->n_layer; i++) def->layer[i]->n_blobs = saved[i];
  ns_free(ctx, saved);
  if (!buf) return ctx->status;
  *out = caffe__net_parameter__unpack(&ctx->pb_alloc, len, buf);
  ns_free(ctx, buf);
  if (!*out)
    return ctx->status == NS_ERR_NOMEM ? ctx->status
                                       : ns_fail(ctx, NS_ERR_INTERNAL, "cannot copy the net");
  return NS_OK;
}

/* ---- names ------------------------------------------------------------ */

void ns_fcn_names_free(ns_ctx *ctx, ns_fcn_names *names) {
  if (!names) return;
  for (int i = 0; i < names->n; i++) {
    ns_free(ctx, names->old_names[i]);
    ns_free(ctx, names->new_names[i]);
  }
  ns_free(ctx, names->old_names);
  ns_free(ctx, names->new_names);
  memset(names, 0, sizeof *names);
}

static ns_status names_add(ns_ctx *ctx, ns_fcn_names *names, const char *old_name,
                           const char *new_name) {
  char **o = ns_realloc_array(ctx, names->old_names, (size_t)names->n + 1, sizeof *o);
  if (!o) return ctx->status;
  names->old_names = o;
  char **n = ns_realloc_array(ctx, names->new_names, (size_t)names->n + 1, sizeof *n);
  if (!n) return ctx->status;
  names->new_names = n;
  o[names->n] = ns_strdup(ctx, old_name);
  n[names->n] = ns_strdup(ctx, new_name);
  names->n++; /* counted first so that a failed strdup is freed too */
  return o[names->n - 1] && n[names->n - 1] ? NS_OK : ctx->status;
}

static int names_contain(const ns_fcn_names *names, const char *name) {
  for (int i = 0; i < names->n; i++)
    if (!strcmp(names->old_names[i], name)) return 1;
  return 0;
}

/* Replaces a string field of a message (strings are separate blocks from
 * the same allocator, as protobuf-c's unpacker makes them). */
static ns_status set_string(ns_ctx *ctx, char **slot, const char *value) {
  char *s = ns_strdup(ctx, value);
  if (!s) return ctx->status;
  ns_free(ctx, *slot);
  *slot = s;
  return NS_OK;
}

static char *concat(ns_ctx *ctx, const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *s = ns_alloc(ctx, na + nb + 1);
  if (!s) return NULL;
  memcpy(s, a, na);
  memcpy(s + na, b, nb + 1);
  return s;
}

/* ---- one InnerProduct -> Convolution ---------------------------------- */

/* Kernel = the bottom's spatial size.  A 2-D bottom is 1x1 once the layer
 * that made it is cast too; anything else (a Flatten in between) cannot be
 * cast flat. */
static ns_status cast_kernel(ns_ctx *ctx, const ns_layer *l, const ns_fcn_names *derived,
                             int64_t kernel[2]) {
  const Caffe__InnerProductParameter *ip = l->param->inner_product_param;
  if (ip && ip->has_axis && ip->axis != 1)
    return ns_fail(ctx, NS_ERR_UNSUPPORTED, "layer '%s': cannot cast an InnerProduct with axis %d",
                   l->name, ip->axis);
  if (ip && ip->transpose)
    return ns_fail(ctx, NS_ERR_UNSUPPORTED,
                   "layer '%s': cannot cast an InnerProduct with transpose: true (its weights "
                   "are (in, out))",
                   l->name);
  const ns_blob *b = l->bottom[0];
  if (b->num_axes == 4) {
    kernel[0] = b->shape[2];
    kernel[1] = b->shape[3];
    if (kernel[0] < 1 || kernel[1] < 1 || kernel[0] > INT32_MAX || kernel[1] > INT32_MAX)
      return ns_fail(ctx, NS_ERR_NET, "layer '%s': bad bottom size", l->name);
    return NS_OK;
  }
  if (b->num_axes == 2 && names_contain(derived, b->name)) {
    kernel[0] = kernel[1] = 1;
    return NS_OK;
  }
  char shape[256];
  return ns_fail(ctx, NS_ERR_UNSUPPORTED,
                 "layer '%s': its bottom '%s' is %s, neither (N, C, H, W) nor the output of "
                 "another InnerProduct; a Flatten or Reshape before it cannot be cast (remove it)",
                 l->name, b->name, ns_shape_str(b->shape, b->num_axes, shape, sizeof shape));
}

static ns_status to_convolution(ns_ctx *ctx, Caffe__LayerParameter *lp, const int64_t kernel[2]) {
  Caffe__InnerProductParameter *ip = lp->inner_product_param;
  Caffe__ConvolutionParameter *cp = ns_alloc(ctx, sizeof *cp);
  if (!cp) return ctx->status;
  caffe__convolution_parameter__init(cp);
  if (kernel[0] == kernel[1]) {
    cp->kernel_size = ns_alloc(ctx, sizeof *cp->kernel_size);
    if (!cp->kernel_size) {
      ns_free(ctx, cp);
      return ctx->status;
    }
    cp->n_kernel_size = 1;
    cp->kernel_size[0] = (uint32_t)kernel[0];
  } else {
    cp->has_kernel_h = cp->has_kernel_w = 1;
    cp->kernel_h = (uint32_t)kernel[0];
    cp->kernel_w = (uint32_t)kernel[1];
  }
  if (ip) {
    cp->has_num_output = ip->has_num_output;
    cp->num_output = ip->num_output;
    cp->has_bias_term = ip->has_bias_term;
    cp->bias_term = ip->bias_term;
    cp->weight_filler = ip->weight_filler;
    cp->bias_filler = ip->bias_filler;
    ip->weight_filler = ip->bias_filler = NULL;
    protobuf_c_message_free_unpacked(&ip->base, &ctx->pb_alloc);
    lp->inner_product_param = NULL;
  }
  lp->convolution_param = cp;
  return set_string(ctx, &lp->type, "Convolution");
}

/* Renames blob `from` to `to` for every layer after `start` that reads it,
 * in-place layers included, until a layer makes a new blob of that name. */
static ns_status rewire(ns_ctx *ctx, Caffe__NetParameter *def, size_t start, const char *from,
                        const char *to) {
  for (size_t i = start; i < def->n_layer; i++) {
    Caffe__LayerParameter *l = def->layer[i];
    int redefined = 0;
    for (size_t j = 0; j < l->n_top; j++) {
      if (strcmp(l->top[j], from) != 0) continue;
      int in_place = j < l->n_bottom && strcmp(l->bottom[j], from) == 0;
      if (!in_place)
        redefined = 1;
      else if (set_string(ctx, &l->top[j], to) != NS_OK)
        return ctx->status;
    }
    for (size_t j = 0; j < l->n_bottom; j++)
      if (!strcmp(l->bottom[j], from) && set_string(ctx, &l->bottom[j], to) != NS_OK)
        return ctx->status;
    if (redefined) break;
  }
  return NS_OK;
}

static int def_has_name(const Caffe__NetParameter *def, const char *name) {
  for (size_t i = 0; i < def->n_layer; i++) {
    const Caffe__LayerParameter *l = def->layer[i];
    if (l->name && !strcmp(l->name, name)) return 1;
    for (size_t j = 0; j < l->n_top; j++)
      if (!strcmp(l->top[j], name)) return 1;
  }
  return 0;
}

static ns_status cast_layer(ns_ctx *ctx, Caffe__NetParameter *def, size_t i, const ns_layer *l,
                            const char *suffix, const ns_fcn_names *derived, ns_fcn_names *cast) {
  int64_t kernel[2] = {1, 1};
  if (cast_kernel(ctx, l, derived, kernel) != NS_OK) return ctx->status;
  Caffe__LayerParameter *lp = def->layer[i];
  char *new_name = concat(ctx, l->name, suffix);
  if (!new_name) return ctx->status;
  ns_status st = NS_OK;
  if (*suffix && def_has_name(def, new_name)) {
    st = ns_fail(ctx, NS_ERR_NET,
                 "cannot cast '%s': the net already has a layer or blob named '%s' (choose "
                 "another suffix)",
                 l->name, new_name);
  } else if ((st = to_convolution(ctx, lp, kernel)) == NS_OK &&
             (st = set_string(ctx, &lp->name, new_name)) == NS_OK) {
    if (lp->n_top == 1 && !strcmp(lp->top[0], l->name)) {
      st = set_string(ctx, &lp->top[0], new_name);
      if (st == NS_OK) st = rewire(ctx, def, i + 1, l->name, new_name);
    }
  }
  if (st == NS_OK) st = names_add(ctx, cast, l->name, new_name);
  ns_free(ctx, new_name);
  return st;
}

/* Tops of layers that keep their bottom's grid: a 2-D blob made from a
 * cast layer's output by these is still 1x1 after the cast. */
static int keeps_grid(const ns_layer *l) {
  ns_layer_geometry g = {.grid = NS_GRID_UNKNOWN};
  if (l->ops->geometry) l->ops->geometry(l, &g);
  return g.grid == NS_GRID_POINTWISE;
}

static ns_status note_derived(ns_ctx *ctx, const ns_layer *l, ns_fcn_names *derived) {
  if (!keeps_grid(l)) return NS_OK;
  for (int j = 0; j < l->n_top && j < l->n_bottom; j++)
    if (names_contain(derived, l->bottom[j]->name) && !names_contain(derived, l->top[j]->name) &&
        names_add(ctx, derived, l->top[j]->name, "") != NS_OK)
      return ctx->status;
  return NS_OK;
}

/* ---- the input -------------------------------------------------------- */

static int first_image_input(const ns_net *net) {
  for (int i = 0; i < ns_net_input_count(net); i++) {
    int b = ns_net_input_blob(net, i);
    if (b >= 0 && net->blobs[b]->num_axes == 4) return b;
  }
  return -1;
}

/* Writes the new input shape: the options' sizes, else the classifier's
 * current ones (it may have been reshaped since its definition was read). */
static ns_status set_input_size(ns_ctx *ctx, Caffe__NetParameter *def, const ns_blob *input,
                                const ns_fcn_opts *o) {
  const char *blob = input->name;
  for (size_t i = 0; i < def->n_layer; i++) {
    Caffe__LayerParameter *l = def->layer[i];
    const ns_layer_ops *ops = l->type ? ns_layer_find(l->type) : NULL;
    if (!ops || !ops->is_net_input || !l->input_param) continue;
    for (size_t j = 0; j < l->n_top; j++) {
      if (strcmp(l->top[j], blob) != 0) continue;
      Caffe__InputParameter *in = l->input_param;
      size_t k = in->n_shape == 1 ? 0 : j;
      if (k >= in->n_shape || in->shape[k]->n_dim != 4)
        return ns_fail(ctx, NS_ERR_NET, "input '%s': no 4-D shape in its Input layer", blob);
      int64_t *dim = in->shape[k]->dim;
      dim[0] = o->batch > 0 ? o->batch : input->shape[0];
      dim[1] = input->shape[1];
      dim[2] = o->height > 0 ? o->height : input->shape[2];
      dim[3] = o->width > 0 ? o->width : input->shape[3];
      return NS_OK;
    }
  }
  return ns_fail(ctx, NS_ERR_NET, "input '%s': no Input layer makes it", blob);
}

/* ---- the cast --------------------------------------------------------- */

void ns_fcn_opts_init(ns_fcn_opts *o) {
  memset(o, 0, sizeof *o);
  o->suffix = "-conv";
}

static ns_status check_size(ns_ctx *ctx, const ns_net *net, int input, const ns_fcn_opts *o) {
  if (o->height < 0 || o->width < 0 || o->batch < 0)
    return ns_fail(ctx, NS_ERR_USAGE, "negative input size");
  if (input < 0) {
    if (o->height || o->width || o->batch)
      return ns_fail(ctx, NS_ERR_NET, "the net has no (N, C, H, W) input to resize");
    return NS_OK;
  }
  const ns_blob *b = net->blobs[input];
  if ((o->height && o->height < b->shape[2]) || (o->width && o->width < b->shape[3]))
    return ns_fail(ctx, NS_ERR_USAGE,
                   "input %dx%d is smaller than the classifier's %lldx%lld window (one cell "
                   "needs a whole window)",
                   o->height ? o->height : (int)b->shape[2], o->width ? o->width : (int)b->shape[3],
                   (long long)b->shape[2], (long long)b->shape[3]);
  return NS_OK;
}

static ns_status cast_all(ns_ctx *ctx, ns_net *net, Caffe__NetParameter *def, const char *suffix,
                          ns_fcn_names *names, ns_fcn_names *derived) {
  for (int li = 0; li < net->n_layers; li++) {
    const ns_layer *l = &net->layers[li];
    if (strcmp(l->ops->type, "InnerProduct") != 0) {
      if (note_derived(ctx, l, derived) != NS_OK) return ctx->status;
      continue;
    }
    size_t i = 0; /* the same layer in the copy: same position as in the original */
    while (i < net->def->n_layer && net->def->layer[i] != l->param) i++;
    if (i == net->def->n_layer) continue; /* not from the definition */
    if (cast_layer(ctx, def, i, l, suffix, derived, names) != NS_OK) return ctx->status;
    if (l->n_top > 0 && names_add(ctx, derived, l->top[0]->name, "") != NS_OK) return ctx->status;
  }
  return NS_OK;
}

ns_status ns_fcn_cast_param(ns_ctx *ctx, ns_net *net, const ns_fcn_opts *opts,
                            Caffe__NetParameter **out, ns_fcn_names *names) {
  ns_fcn_opts defaults;
  if (!opts) {
    ns_fcn_opts_init(&defaults);
    opts = &defaults;
  }
  const char *suffix = opts->suffix ? opts->suffix : "-conv";
  *out = NULL;
  int input = first_image_input(net);
  if (check_size(ctx, net, input, opts) != NS_OK) return ctx->status;
  Caffe__NetParameter *def;
  if (ns_net_param_copy_without_blobs(ctx, net->def, &def) != NS_OK) return ctx->status;
  ns_fcn_names cast = {0}, derived = {0};
  ns_status st = cast_all(ctx, net, def, suffix, &cast, &derived);
  if (st == NS_OK && input >= 0) st = set_input_size(ctx, def, net->blobs[input], opts);
  if (st == NS_OK && cast.n == 0)
    st = ns_fail(ctx, NS_ERR_USAGE, "the net has no InnerProduct layer to cast");
  ns_fcn_names_free(ctx, &derived);
  if (st != NS_OK || !names) ns_fcn_names_free(ctx, &cast);
  if (st != NS_OK) {
    ns_net_param_free(ctx, def);
    return st;
  }
  if (names) *names = cast;
  *out = def;
  return NS_OK;
}

static const char *source_name(const ns_fcn_names *names, const char *layer) {
  for (int i = 0; i < names->n; i++)
    if (!strcmp(names->new_names[i], layer)) return names->old_names[i];
  return layer;
}

static ns_status transplant_all(ns_ctx *ctx, ns_net *fcn, ns_net *classifier,
                                const ns_fcn_names *names) {
  for (int li = 0; li < fcn->n_layers; li++) {
    const ns_layer *l = &fcn->layers[li];
    const char *src = source_name(names, l->name);
    if (l->n_params == 0 || ns_net_find_layer(classifier, src) < 0) continue;
    if (ns_net_copy_params(ctx, fcn, l->name, classifier, src) != NS_OK) return ctx->status;
  }
  return NS_OK;
}

ns_status ns_fcn_cast(ns_ctx *ctx, ns_net *classifier, const ns_fcn_opts *opts, ns_net **out) {
  *out = NULL;
  Caffe__NetParameter *def;
  ns_fcn_names names = {0};
  if (ns_fcn_cast_param(ctx, classifier, opts, &def, &names) != NS_OK) return ctx->status;
  ns_net *fcn;
  if (ns_net_build(ctx, def, opts ? opts->seed : 0, NS_PHASE_TEST, &fcn) != NS_OK) {
    ns_error_prefix(ctx, "the cast net: ");
    ns_fcn_names_free(ctx, &names);
    return ctx->status;
  }
  ns_status st = transplant_all(ctx, fcn, classifier, &names);
  ns_fcn_names_free(ctx, &names);
  if (st != NS_OK) {
    ns_net_destroy(fcn);
    return st;
  }
  *out = fcn;
  return NS_OK;
}
