/* Caffe 1.0's upgrade_proto rules (UpgradeNetAsNeeded, UpgradeSolverType)
 * applied to protobuf-c messages.  Every step works in place and moves
 * sub-messages, strings and arrays from the old message to the new one
 * (blobs can be hundreds of MB), clearing the old pointer, so that after any
 * error the net is still one consistent tree that
 * protobuf_c_message_free_unpacked frees.
 *
 * Where Caffe stops (LOG(FATAL), CHECK) we fail with NS_ERR_INPUT; where
 * Caffe logs a problem and carries on (LOG(ERROR) "continuing anyway",
 * LOG(WARNING)) we warn and carry on the same way. */
#include "format/upgrade.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/name_map.h"
#include "format/pbreflect.h"

/* ---- moving fields through the descriptors (format/pbreflect.h) -------- */

static const char *file_or_default(const char *filename) { return filename ? filename : "(net)"; }

static void msg_free(ns_ctx *ctx, void *m) {
  if (m) protobuf_c_message_free_unpacked(m, &ctx->pb_alloc);
}

static void *msg_new(ns_ctx *ctx, const ProtobufCMessageDescriptor *d) {
  return ns_pb_message_new(ctx, d);
}

static pbfield *field_named(const pbmsg *m, const char *name) {
  return ns_pb_field_named(m->descriptor, name, strlen(name));
}

static int present_by_name(const pbmsg *m, const char *name) {
  pbfield *fd = field_named(m, name);
  return fd && ns_pb_field_present(m, fd);
}

/* The sub-message in field fd of m, created empty if absent. */
static pbmsg *mutable_sub(ns_ctx *ctx, pbmsg *m, pbfield *fd) {
  pbmsg **slot = ns_pb_member(m, fd);
  if (!*slot) *slot = ns_pb_message_new(ctx, fd->descriptor);
  return *slot;
}

/* Moves one optional field of src (present) into field dfd of dst: strings
 * and sub-messages change owner, scalars are converted (and appended when
 * dfd is repeated).  src's field is left absent. */
static ns_status move_field(ns_ctx *ctx, pbmsg *dst, pbfield *dfd, pbmsg *src, pbfield *sfd) {
  if (sfd->type == PROTOBUF_C_TYPE_STRING || sfd->type == PROTOBUF_C_TYPE_MESSAGE) {
    if (dfd->type != sfd->type || dfd->label == PROTOBUF_C_LABEL_REPEATED ||
        (sfd->type == PROTOBUF_C_TYPE_MESSAGE && dfd->descriptor != sfd->descriptor))
      return ns_fail(ctx, NS_ERR_INTERNAL, "upgrade: cannot move %s into %s", sfd->name, dfd->name);
    void **from = ns_pb_member(src, sfd);
    void **to = ns_pb_member(dst, dfd);
    if (sfd->type == PROTOBUF_C_TYPE_MESSAGE)
      msg_free(ctx, *to);
    else if (ns_pb_field_present(dst, dfd))
      ns_free(ctx, *to);
    *to = *from;
    *from = NULL;
    return NS_OK;
  }
  double v = ns_pb_scalar_get(ns_pb_member(src, sfd), sfd->type);
  *(protobuf_c_boolean *)ns_pb_quantifier(src, sfd) = 0;
  if (dfd->label == PROTOBUF_C_LABEL_REPEATED) return ns_pb_scalar_append(ctx, dst, dfd, v);
  if (ns_pb_scalar_put(ns_pb_member(dst, dfd), dfd->type, v) == 0)
    return ns_fail(ctx, NS_ERR_INTERNAL, "upgrade: field %s is not a scalar", dfd->name);
  ns_pb_mark_present(dst, dfd);
  return NS_OK;
}

/* Moves a whole repeated field (count and array) between messages. */
#define MOVE_REPEATED(dst, src, field)   \
  do {                                   \
    (dst)->n_##field = (src)->n_##field; \
    (dst)->field = (src)->field;         \
    (src)->n_##field = 0;                \
    (src)->field = NULL;                 \
  } while (0)

#define MOVE_PTR(dst, src, field) \
  do {                            \
    (dst)->field = (src)->field;  \
    (src)->field = NULL;          \
  } while (0)

/* "layer "conv1"" or, for unnamed ones, "layer #3". */
static const char *layer_label(char *buf, size_t size, const char *name, size_t index) {
  if (name)
    snprintf(buf, size, "layer \"%s\"", name);
  else
    snprintf(buf, size, "layer #%zu", index);
  return buf;
}

/* ---- V0 -> V1 ------------------------------------------------------------ */

static const char *v0_type_of(const Caffe__V1LayerParameter *l) {
  return l->layer && l->layer->type ? l->layer->type : "";
}

static int is_v0_padding(const Caffe__V1LayerParameter *l) {
  return strcmp(v0_type_of(l), "padding") == 0;
}

int ns_net_needs_v0_upgrade(const Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layers; i++)
    if (net->layers[i]->layer) return 1;
  return 0;
}

/* A layer fed by a V0 "padding" layer takes the padding itself and reads
 * the padding layer's input instead (UpgradeV0PaddingLayers). */
static ns_status fold_padding_input(ns_ctx *ctx, const char *file, Caffe__V1LayerParameter *l,
                                    size_t i, size_t j, const Caffe__V1LayerParameter *pad) {
  char lb[300];
  const char *type = v0_type_of(l);
  layer_label(lb, sizeof lb, l->layer ? l->layer->name : NULL, i);
  if (strcmp(type, "conv") != 0 && strcmp(type, "pool") != 0)
    return ns_fail(ctx, NS_ERR_INPUT,
                   "%s: %s: a V0 padding layer feeds a layer of type \"%s\" (only conv and pool "
                   "can take it)",
                   file, lb, type);
  if (l->n_bottom != 1)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: %s: a padded conv/pool layer takes a single input", file,
                   lb);
  if (pad->n_bottom != 1 || pad->n_top != 1)
    return ns_fail(ctx, NS_ERR_INPUT,
                   "%s: %s: its V0 padding layer must have one bottom and one top", file, lb);
  char *bottom = ns_strdup(ctx, pad->bottom[0]);
  if (!bottom) return ctx->status;
  ns_free(ctx, l->bottom[j]);
  l->bottom[j] = bottom;
  l->layer->has_pad = 1;
  l->layer->pad = pad->layer->pad;
  return NS_OK;
}

static ns_status count_v0_blobs(ns_ctx *ctx, const Caffe__NetParameter *net, size_t *count) {
  size_t n = net->n_input;
  for (size_t i = 0; i < net->n_layers; i++) {
    if (net->layers[i]->n_top > SIZE_MAX / 4 - n)
      return ns_fail(ctx, NS_ERR_NOMEM, "upgrade: too many blobs");
    n += net->layers[i]->n_top;
  }
  *count = n;
  return NS_OK;
}

/* producer maps each blob to 1 + the layer that makes it, or to 0 for a
 * net input (ns_name_map holds values >= 0 and gives -1 for a miss). */
static ns_status fold_padding_pass(ns_ctx *ctx, const char *file, Caffe__NetParameter *net,
                                   ns_name_map *producer) {
  for (size_t i = 0; i < net->n_input; i++) ns_name_map_put(producer, net->input[i], 0);
  for (size_t i = 0; i < net->n_layers; i++) {
    Caffe__V1LayerParameter *l = net->layers[i];
    for (size_t j = 0; j < l->n_bottom; j++) {
      int src = ns_name_map_get(producer, l->bottom[j]) - 1;
      if (src < -1) {
        char lb[300];
        return ns_fail(ctx, NS_ERR_INPUT, "%s: %s: unknown bottom blob \"%s\"", file,
                       layer_label(lb, sizeof lb, l->layer ? l->layer->name : NULL, i),
                       l->bottom[j]);
      }
      if (src >= 0 && is_v0_padding(net->layers[src]) &&
          fold_padding_input(ctx, file, l, i, j, net->layers[src]) != NS_OK)
        return ctx->status;
    }
    if (i >= INT32_MAX) return ns_fail(ctx, NS_ERR_INPUT, "%s: too many layers", file);
    for (size_t j = 0; j < l->n_top; j++) ns_name_map_put(producer, l->top[j], (int)i + 1);
  }
  return NS_OK;
}

static ns_status upgrade_v0_padding(ns_ctx *ctx, const char *file, Caffe__NetParameter *net) {
  size_t blobs = 0;
  ns_name_map producer = {0};
  if (count_v0_blobs(ctx, net, &blobs) != NS_OK ||
      ns_name_map_init(ctx, &producer, blobs) != NS_OK) {
    ns_name_map_free(ctx, &producer);
    return ctx->status;
  }
  ns_status st = fold_padding_pass(ctx, file, net, &producer);
  ns_name_map_free(ctx, &producer);
  if (st != NS_OK) return st;
  size_t kept = 0;
  for (size_t i = 0; i < net->n_layers; i++) {
    if (is_v0_padding(net->layers[i]))
      msg_free(ctx, net->layers[i]);
    else
      net->layers[kept++] = net->layers[i];
  }
  net->n_layers = kept;
  return NS_OK;
}

static const struct {
  const char *v0;
  Caffe__V1LayerParameter__LayerType v1;
} v0_types[] = {
    {"accuracy", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ACCURACY},
    {"bnll", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__BNLL},
    {"concat", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONCAT},
    {"conv", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONVOLUTION},
    {"data", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DATA},
    {"dropout", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DROPOUT},
    {"euclidean_loss", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__EUCLIDEAN_LOSS},
    {"flatten", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__FLATTEN},
    {"hdf5_data", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HDF5_DATA},
    {"hdf5_output", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HDF5_OUTPUT},
    {"im2col", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IM2COL},
    {"images", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IMAGE_DATA},
    {"infogain_loss", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INFOGAIN_LOSS},
    {"innerproduct", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INNER_PRODUCT},
    {"lrn", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__LRN},
    {"multinomial_logistic_loss", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MULTINOMIAL_LOGISTIC_LOSS},
    {"pool", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__POOLING},
    {"relu", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__RELU},
    {"sigmoid", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SIGMOID},
    {"softmax", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SOFTMAX},
    {"softmax_loss", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SOFTMAX_LOSS},
    {"split", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SPLIT},
    {"tanh", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__TANH},
    {"window_data", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__WINDOW_DATA},
};

/* Where each V0 field goes, per V0 layer type (UpgradeV0LayerParameter):
 * the V1 sub-message field and its field (NULL: the sub-message itself).
 * A NULL type matches every type.  A field set on a type not listed is
 * dropped with a warning, as Caffe does. */
typedef struct v0_dest {
  const char *type, *param, *field;
} v0_dest;

static const struct {
  const char *field;
  v0_dest dest[5];
} v0_rules[] = {
    {"num_output",
     {{"conv", "convolution_param", "num_output"},
      {"innerproduct", "inner_product_param", "num_output"}}},
    {"biasterm",
     {{"conv", "convolution_param", "bias_term"},
      {"innerproduct", "inner_product_param", "bias_term"}}},
    {"weight_filler",
     {{"conv", "convolution_param", "weight_filler"},
      {"innerproduct", "inner_product_param", "weight_filler"}}},
    {"bias_filler",
     {{"conv", "convolution_param", "bias_filler"},
      {"innerproduct", "inner_product_param", "bias_filler"}}},
    {"pad", {{"conv", "convolution_param", "pad"}, {"pool", "pooling_param", "pad"}}},
    {"kernelsize",
     {{"conv", "convolution_param", "kernel_size"}, {"pool", "pooling_param", "kernel_size"}}},
    {"group", {{"conv", "convolution_param", "group"}}},
    {"stride", {{"conv", "convolution_param", "stride"}, {"pool", "pooling_param", "stride"}}},
    {"pool", {{"pool", "pooling_param", "pool"}}},
    {"dropout_ratio", {{"dropout", "dropout_param", "dropout_ratio"}}},
    {"local_size", {{"lrn", "lrn_param", "local_size"}}},
    {"alpha", {{"lrn", "lrn_param", "alpha"}}},
    {"beta", {{"lrn", "lrn_param", "beta"}}},
    {"k", {{"lrn", "lrn_param", "k"}}},
    {"source",
     {{"data", "data_param", "source"},
      {"hdf5_data", "hdf5_data_param", "source"},
      {"images", "image_data_param", "source"},
      {"window_data", "window_data_param", "source"},
      {"infogain_loss", "infogain_loss_param", "source"}}},
    {"scale", {{NULL, "transform_param", "scale"}}},
    {"meanfile", {{NULL, "transform_param", "mean_file"}}},
    {"batchsize",
     {{"data", "data_param", "batch_size"},
      {"hdf5_data", "hdf5_data_param", "batch_size"},
      {"images", "image_data_param", "batch_size"},
      {"window_data", "window_data_param", "batch_size"}}},
    {"cropsize", {{NULL, "transform_param", "crop_size"}}},
    {"mirror", {{NULL, "transform_param", "mirror"}}},
    {"rand_skip",
     {{"data", "data_param", "rand_skip"}, {"images", "image_data_param", "rand_skip"}}},
    {"shuffle_images", {{"images", "image_data_param", "shuffle"}}},
    {"new_height", {{"images", "image_data_param", "new_height"}}},
    {"new_width", {{"images", "image_data_param", "new_width"}}},
    {"concat_dim", {{"concat", "concat_param", "concat_dim"}}},
    {"det_fg_threshold", {{"window_data", "window_data_param", "fg_threshold"}}},
    {"det_bg_threshold", {{"window_data", "window_data_param", "bg_threshold"}}},
    {"det_fg_fraction", {{"window_data", "window_data_param", "fg_fraction"}}},
    {"det_context_pad", {{"window_data", "window_data_param", "context_pad"}}},
    {"det_crop_mode", {{"window_data", "window_data_param", "crop_mode"}}},
    {"hdf5_output_param", {{"hdf5_output", "hdf5_output_param", NULL}}},
};

static const v0_dest *v0_dest_for(const v0_dest *dest, const char *type) {
  for (int k = 0; k < 5 && dest[k].param; k++)
    if (!dest[k].type || strcmp(dest[k].type, type) == 0) return &dest[k];
  return NULL;
}

/* Moves one V0 field to its place in the V1 layer. */
static ns_status apply_v0_dest(ns_ctx *ctx, const char *file, const char *lb,
                               Caffe__V1LayerParameter *v1, Caffe__V0LayerParameter *v0,
                               pbfield *sfd, const v0_dest *d) {
  pbfield *pfd = field_named(&v1->base, d->param);
  if (!pfd) return ns_fail(ctx, NS_ERR_INTERNAL, "upgrade: schema lacks V1 field %s", d->param);
  if (!d->field) return move_field(ctx, &v1->base, pfd, &v0->base, sfd);
  if (sfd->type == PROTOBUF_C_TYPE_ENUM) {
    pbfield *probe = protobuf_c_message_descriptor_get_field_by_name(pfd->descriptor, d->field);
    int v = *(const int *)ns_pb_member(&v0->base, sfd);
    if (probe && !protobuf_c_enum_descriptor_get_value(probe->descriptor, v)) {
      ns_warn(ctx, "%s: %s: unknown V0 %s value %d; dropped", file, lb, sfd->name, v);
      return NS_OK;
    }
  }
  pbmsg *sub = mutable_sub(ctx, &v1->base, pfd);
  if (!sub) return ctx->status;
  pbfield *dfd = field_named(sub, d->field);
  if (!dfd) return ns_fail(ctx, NS_ERR_INTERNAL, "upgrade: schema lacks %s.%s", d->param, d->field);
  return move_field(ctx, sub, dfd, &v0->base, sfd);
}

static ns_status apply_v0_rules(ns_ctx *ctx, const char *file, const char *lb,
                                Caffe__V1LayerParameter *v1, Caffe__V0LayerParameter *v0) {
  const char *type = v0->type ? v0->type : "";
  for (size_t r = 0; r < sizeof v0_rules / sizeof v0_rules[0]; r++) {
    pbfield *sfd = field_named(&v0->base, v0_rules[r].field);
    if (!sfd)
      return ns_fail(ctx, NS_ERR_INTERNAL, "upgrade: schema lacks V0 field %s", v0_rules[r].field);
    if (!ns_pb_field_present(&v0->base, sfd)) continue;
    const v0_dest *d = v0_dest_for(v0_rules[r].dest, type);
    if (!d) {
      ns_warn(ctx, "%s: %s: V0 field %s does not apply to layer type \"%s\"; dropped", file, lb,
              sfd->name, type);
      continue;
    }
    if (apply_v0_dest(ctx, file, lb, v1, v0, sfd, d) != NS_OK) return ctx->status;
  }
  return NS_OK;
}

static ns_status v0_layer_type(ns_ctx *ctx, const char *file, const char *lb, const char *type,
                               Caffe__V1LayerParameter__LayerType *out) {
  for (size_t k = 0; k < sizeof v0_types / sizeof v0_types[0]; k++)
    if (strcmp(v0_types[k].v0, type) == 0) {
      *out = v0_types[k].v1;
      return NS_OK;
    }
  return ns_fail(ctx, NS_ERR_INPUT, "%s: %s: unknown V0 layer type \"%s\"", file, lb, type);
}

/* One V0 layer connection -> a new V1 layer; only bottoms and tops of the
 * connection itself carry over, as in Caffe. */
static ns_status upgrade_v0_layer(ns_ctx *ctx, const char *file, size_t index,
                                  Caffe__V1LayerParameter *old, Caffe__V1LayerParameter **out) {
  Caffe__V0LayerParameter *v0 = old->layer;
  char lb[300];
  layer_label(lb, sizeof lb, v0 ? v0->name : NULL, index);
  Caffe__V1LayerParameter__LayerType type = CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__NONE;
  if (v0 && v0->type && v0_layer_type(ctx, file, lb, v0->type, &type) != NS_OK) return ctx->status;
  Caffe__V1LayerParameter *l = msg_new(ctx, &caffe__v1_layer_parameter__descriptor);
  if (!l) return ctx->status;
  if (!v0)
    ns_warn(ctx,
            "%s: %s has no V0 `layer` in a V0 net; only its bottoms and tops are kept, as "
            "Caffe does",
            file, lb);
  MOVE_REPEATED(l, old, bottom);
  MOVE_REPEATED(l, old, top);
  if (v0) {
    MOVE_PTR(l, v0, name);
    l->has_type = v0->type != NULL;
    l->type = type;
    MOVE_REPEATED(l, v0, blobs);
    MOVE_REPEATED(l, v0, blobs_lr);
    MOVE_REPEATED(l, v0, weight_decay);
    if (apply_v0_rules(ctx, file, lb, l, v0) != NS_OK) {
      msg_free(ctx, l);
      return ctx->status;
    }
  }
  *out = l;
  return NS_OK;
}

/* UpgradeV0Net keeps the name, the layers, input, input_dim and
 * force_backward, and drops every other net field. */
static void drop_non_v0_net_fields(ns_ctx *ctx, const char *file, Caffe__NetParameter *net) {
  if (net->n_input_shape || net->state || net->has_debug_info || net->n_layer)
    ns_warn(ctx,
            "%s: input_shape, state, debug_info and layer fields are dropped when upgrading a V0 "
            "net, as Caffe does",
            file);
  for (size_t i = 0; i < net->n_input_shape; i++) msg_free(ctx, net->input_shape[i]);
  ns_free(ctx, net->input_shape);
  net->input_shape = NULL;
  net->n_input_shape = 0;
  msg_free(ctx, net->state);
  net->state = NULL;
  net->has_debug_info = 0;
  net->debug_info = 0;
  for (size_t i = 0; i < net->n_layer; i++) msg_free(ctx, net->layer[i]);
  ns_free(ctx, net->layer);
  net->layer = NULL;
  net->n_layer = 0;
}

static ns_status upgrade_v0_net(ns_ctx *ctx, const char *file, Caffe__NetParameter *net) {
  if (upgrade_v0_padding(ctx, file, net) != NS_OK) return ctx->status;
  for (size_t i = 0; i < net->n_layers; i++) {
    Caffe__V1LayerParameter *l;
    if (upgrade_v0_layer(ctx, file, i, net->layers[i], &l) != NS_OK) return ctx->status;
    msg_free(ctx, net->layers[i]);
    net->layers[i] = l;
  }
  drop_non_v0_net_fields(ctx, file, net);
  return NS_OK;
}

/* ---- data transformation fields -> transform_param ----------------------- */

static const char *const transform_fields[] = {"scale", "mean_file", "crop_size", "mirror"};

/* The data-layer param of a V1 layer that may hold transformation fields. */
static pbmsg *v1_data_param(const Caffe__V1LayerParameter *l) {
  if (!l->has_type) return NULL;
  switch (l->type) {
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DATA:
      return (pbmsg *)l->data_param;
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IMAGE_DATA:
      return (pbmsg *)l->image_data_param;
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__WINDOW_DATA:
      return (pbmsg *)l->window_data_param;
    default:
      return NULL;
  }
}

static int v1_layer_needs_data_upgrade(const Caffe__V1LayerParameter *l) {
  const pbmsg *p = v1_data_param(l);
  if (!p) return 0;
  for (size_t k = 0; k < 4; k++)
    if (present_by_name(p, transform_fields[k])) return 1;
  return 0;
}

int ns_net_needs_data_upgrade(const Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layers; i++)
    if (v1_layer_needs_data_upgrade(net->layers[i])) return 1;
  return 0;
}

static ns_status upgrade_data_transform(ns_ctx *ctx, Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layers; i++) {
    Caffe__V1LayerParameter *l = net->layers[i];
    pbmsg *p = v1_data_param(l);
    if (!p) continue;
    for (size_t k = 0; k < 4; k++) {
      pbfield *sfd = field_named(p, transform_fields[k]);
      if (!sfd || !ns_pb_field_present(p, sfd)) continue;
      if (!l->transform_param) {
        l->transform_param = msg_new(ctx, &caffe__transformation_parameter__descriptor);
        if (!l->transform_param) return ctx->status;
      }
      pbfield *dfd = field_named(&l->transform_param->base, transform_fields[k]);
      if (move_field(ctx, &l->transform_param->base, dfd, p, sfd) != NS_OK) return ctx->status;
    }
  }
  return NS_OK;
}

/* ---- V1 -> current ------------------------------------------------------- */

static const struct {
  Caffe__V1LayerParameter__LayerType v1;
  const char *name;
} v1_types[] = {
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__NONE, ""},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ABSVAL, "AbsVal"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ACCURACY, "Accuracy"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ARGMAX, "ArgMax"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__BNLL, "BNLL"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONCAT, "Concat"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONTRASTIVE_LOSS, "ContrastiveLoss"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONVOLUTION, "Convolution"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DECONVOLUTION, "Deconvolution"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DATA, "Data"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DROPOUT, "Dropout"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DUMMY_DATA, "DummyData"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__EUCLIDEAN_LOSS, "EuclideanLoss"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ELTWISE, "Eltwise"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__EXP, "Exp"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__FLATTEN, "Flatten"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HDF5_DATA, "HDF5Data"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HDF5_OUTPUT, "HDF5Output"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HINGE_LOSS, "HingeLoss"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IM2COL, "Im2col"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IMAGE_DATA, "ImageData"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INFOGAIN_LOSS, "InfogainLoss"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INNER_PRODUCT, "InnerProduct"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__LRN, "LRN"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MEMORY_DATA, "MemoryData"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MULTINOMIAL_LOGISTIC_LOSS, "MultinomialLogisticLoss"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MVN, "MVN"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__POOLING, "Pooling"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__POWER, "Power"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__RELU, "ReLU"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SIGMOID, "Sigmoid"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SIGMOID_CROSS_ENTROPY_LOSS, "SigmoidCrossEntropyLoss"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SILENCE, "Silence"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SOFTMAX, "Softmax"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SOFTMAX_LOSS, "SoftmaxWithLoss"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SPLIT, "Split"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SLICE, "Slice"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__TANH, "TanH"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__WINDOW_DATA, "WindowData"},
    {CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__THRESHOLD, "Threshold"},
};

const char *ns_v1_layer_type_name(int type) {
  for (size_t k = 0; k < sizeof v1_types / sizeof v1_types[0]; k++)
    if ((int)v1_types[k].v1 == type) return v1_types[k].name;
  return NULL;
}

/* V1 fields that upgrade_v1_layer handles by name; every other V1 field
 * must be a *_param sub-message with a same-named LayerParameter field. */
static const char *const v1_named_fields[] = {
    "bottom",       "top",         "name",  "include",         "exclude",
    "type",         "blobs",       "param", "blob_share_mode", "blobs_lr",
    "weight_decay", "loss_weight", "layer",
};

static int is_v1_named_field(const char *name) {
  for (size_t k = 0; k < sizeof v1_named_fields / sizeof v1_named_fields[0]; k++)
    if (strcmp(v1_named_fields[k], name) == 0) return 1;
  return 0;
}

/* ParamSpecs from param (names), blob_share_mode, blobs_lr, weight_decay:
 * one per index used by any of them. */
static ns_status v1_param_specs(ns_ctx *ctx, Caffe__LayerParameter *dst,
                                Caffe__V1LayerParameter *v1) {
  size_t n = v1->n_param;
  if (v1->n_blob_share_mode > n) n = v1->n_blob_share_mode;
  if (v1->n_blobs_lr > n) n = v1->n_blobs_lr;
  if (v1->n_weight_decay > n) n = v1->n_weight_decay;
  if (n == 0) return NS_OK;
  dst->param = ns_calloc(ctx, n, sizeof *dst->param);
  if (!dst->param) return ctx->status;
  while (dst->n_param < n) {
    Caffe__ParamSpec *p = msg_new(ctx, &caffe__param_spec__descriptor);
    if (!p) return ctx->status;
    dst->param[dst->n_param++] = p;
  }
  for (size_t i = 0; i < n; i++) {
    Caffe__ParamSpec *p = dst->param[i];
    if (i < v1->n_param) {
      p->name = v1->param[i];
      v1->param[i] = NULL;
    }
    if (i < v1->n_blob_share_mode) {
      p->has_share_mode = 1;
      p->share_mode = (Caffe__ParamSpec__DimCheckMode)v1->blob_share_mode[i];
    }
    if (i < v1->n_blobs_lr) {
      p->has_lr_mult = 1;
      p->lr_mult = v1->blobs_lr[i];
    }
    if (i < v1->n_weight_decay) {
      p->has_decay_mult = 1;
      p->decay_mult = v1->weight_decay[i];
    }
  }
  return NS_OK;
}

/* Moves every *_param sub-message (and transform_param, loss_param). */
static ns_status v1_move_params(ns_ctx *ctx, const char *file, const char *lb,
                                Caffe__LayerParameter *dst, Caffe__V1LayerParameter *v1) {
  const ProtobufCMessageDescriptor *d = v1->base.descriptor;
  for (unsigned k = 0; k < d->n_fields; k++) {
    pbfield *sfd = &d->fields[k];
    if (is_v1_named_field(sfd->name)) continue;
    pbfield *dfd = field_named(&dst->base, sfd->name);
    if (sfd->type != PROTOBUF_C_TYPE_MESSAGE || !dfd || dfd->descriptor != sfd->descriptor) {
      if (!ns_pb_field_present(&v1->base, sfd)) continue;
      return ns_fail(ctx, NS_ERR_INPUT, "%s: %s: V1 field %s has no current-format equivalent",
                     file, lb, sfd->name);
    }
    if (ns_pb_field_present(&v1->base, sfd) &&
        move_field(ctx, &dst->base, dfd, &v1->base, sfd) != NS_OK)
      return ctx->status;
  }
  return NS_OK;
}

/* Checks what Caffe's UpgradeV1LayerParameter would abort on. */
static ns_status check_v1_layer(ns_ctx *ctx, const char *file, const char *lb,
                                const Caffe__V1LayerParameter *v1, const char **type) {
  *type = NULL;
  if (v1->has_type && !(*type = ns_v1_layer_type_name((int)v1->type)))
    return ns_fail(ctx, NS_ERR_INPUT, "%s: %s: unknown V1 layer type %d", file, lb, (int)v1->type);
  for (size_t i = 0; i < v1->n_blob_share_mode; i++)
    if (v1->blob_share_mode[i] != CAFFE__V1_LAYER_PARAMETER__DIM_CHECK_MODE__STRICT &&
        v1->blob_share_mode[i] != CAFFE__V1_LAYER_PARAMETER__DIM_CHECK_MODE__PERMISSIVE)
      return ns_fail(ctx, NS_ERR_INPUT, "%s: %s: unknown blob_share_mode %d", file, lb,
                     (int)v1->blob_share_mode[i]);
  return NS_OK;
}

static ns_status upgrade_v1_layer(ns_ctx *ctx, const char *file, size_t index,
                                  Caffe__V1LayerParameter *v1, Caffe__LayerParameter *dst) {
  char lb[300];
  const char *type;
  layer_label(lb, sizeof lb, v1->name, index);
  if (check_v1_layer(ctx, file, lb, v1, &type) != NS_OK) return ctx->status;
  if (type && !(dst->type = ns_strdup(ctx, type))) return ctx->status;
  if (v1->layer)
    ns_warn(ctx, "%s: %s: V0 layer inside a V1 layer ignored, as Caffe does", file, lb);
  if (v1->base.n_unknown_fields)
    ns_warn(ctx, "%s: %s: %u unknown field(s) of the V1 layer dropped", file, lb,
            v1->base.n_unknown_fields);
  MOVE_REPEATED(dst, v1, bottom);
  MOVE_REPEATED(dst, v1, top);
  MOVE_PTR(dst, v1, name);
  MOVE_REPEATED(dst, v1, include);
  MOVE_REPEATED(dst, v1, exclude);
  MOVE_REPEATED(dst, v1, blobs);
  MOVE_REPEATED(dst, v1, loss_weight);
  if (v1_param_specs(ctx, dst, v1) != NS_OK) return ctx->status;
  return v1_move_params(ctx, file, lb, dst, v1);
}

static void free_v1_layers(ns_ctx *ctx, Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layers; i++) msg_free(ctx, net->layers[i]);
  ns_free(ctx, net->layers);
  net->layers = NULL;
  net->n_layers = 0;
}

static ns_status upgrade_v1_net(ns_ctx *ctx, const char *file, Caffe__NetParameter *net) {
  if (net->n_layer) {
    ns_warn(ctx,
            "%s: the net has both V1 `layers` and current `layer` fields; the `layer` ones "
            "are ignored, as Caffe does",
            file);
    for (size_t i = 0; i < net->n_layer; i++) msg_free(ctx, net->layer[i]);
    net->n_layer = 0;
  }
  ns_free(ctx, net->layer);
  net->layer = ns_calloc(ctx, net->n_layers, sizeof *net->layer);
  if (!net->layer) return ctx->status;
  for (size_t i = 0; i < net->n_layers; i++) {
    Caffe__LayerParameter *l = msg_new(ctx, &caffe__layer_parameter__descriptor);
    if (!l) return ctx->status;
    net->layer[net->n_layer++] = l;
    if (upgrade_v1_layer(ctx, file, i, net->layers[i], l) != NS_OK) return ctx->status;
  }
  free_v1_layers(ctx, net);
  return NS_OK;
}

/* ---- input / input_dim / input_shape -> Input layer ---------------------- */

static ns_status check_input_counts(ns_ctx *ctx, const char *file, const Caffe__NetParameter *net) {
  if (net->n_input_shape) {
    if (net->n_input_shape != net->n_input)
      return ns_fail(ctx, NS_ERR_INPUT, "%s: %zu input_shape for %zu input(s)", file,
                     net->n_input_shape, net->n_input);
    if (net->n_input_dim)
      ns_warn(ctx, "%s: both input_shape and input_dim given; input_dim ignored", file);
    return NS_OK;
  }
  if (net->n_input_dim % 4 || net->n_input_dim / 4 != net->n_input)
    return ns_fail(ctx, NS_ERR_INPUT,
                   "%s: %zu input_dim values for %zu input(s) (4 per input expected)", file,
                   net->n_input_dim, net->n_input);
  return NS_OK;
}

/* The Input layer's shapes from input_dim, four per input. */
static ns_status shapes_from_dims(ns_ctx *ctx, Caffe__InputParameter *ip,
                                  const Caffe__NetParameter *net) {
  while (ip->n_shape < net->n_input) {
    size_t i = ip->n_shape;
    Caffe__BlobShape *s = msg_new(ctx, &caffe__blob_shape__descriptor);
    if (!s) return ctx->status;
    ip->shape[ip->n_shape++] = s; /* owned by ip from here on */
    s->dim = ns_calloc(ctx, 4, sizeof *s->dim);
    if (!s->dim) return ctx->status;
    s->n_dim = 4;
    for (size_t j = 0; j < 4; j++) s->dim[j] = net->input_dim[i * 4 + j];
  }
  return NS_OK;
}

/* Everything that can fail, before anything moves out of the net. */
static ns_status new_input_layer(ns_ctx *ctx, const Caffe__NetParameter *net,
                                 Caffe__LayerParameter **out) {
  Caffe__LayerParameter *l = msg_new(ctx, &caffe__layer_parameter__descriptor);
  *out = l;
  if (!l || !(l->name = ns_strdup(ctx, "input")) || !(l->type = ns_strdup(ctx, "Input")) ||
      !(l->input_param = msg_new(ctx, &caffe__input_parameter__descriptor)) ||
      !(l->input_param->shape = ns_calloc(ctx, net->n_input, sizeof *l->input_param->shape)))
    return ctx->status;
  if (!net->n_input_shape) return shapes_from_dims(ctx, l->input_param, net);
  return NS_OK;
}

static void clear_net_inputs(ns_ctx *ctx, Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_input; i++) ns_free(ctx, net->input[i]);
  ns_free(ctx, net->input);
  net->input = NULL;
  net->n_input = 0;
  for (size_t i = 0; i < net->n_input_shape; i++) msg_free(ctx, net->input_shape[i]);
  ns_free(ctx, net->input_shape);
  net->input_shape = NULL;
  net->n_input_shape = 0;
  ns_free(ctx, net->input_dim);
  net->input_dim = NULL;
  net->n_input_dim = 0;
}

/* UpgradeNetInput: one Input layer named "input", first in the net, with
 * a top and a shape per input.  Inputs without any shape (old caffemodels)
 * are simply dropped. */
static ns_status upgrade_net_input(ns_ctx *ctx, const char *file, Caffe__NetParameter *net) {
  if (!net->n_input_shape && !net->n_input_dim) {
    clear_net_inputs(ctx, net);
    return NS_OK;
  }
  if (check_input_counts(ctx, file, net) != NS_OK) return ctx->status;
  Caffe__LayerParameter *l;
  Caffe__LayerParameter **layers = NULL;
  if (new_input_layer(ctx, net, &l) != NS_OK ||
      !(layers = ns_realloc_array(ctx, net->layer, net->n_layer + 1, sizeof *layers))) {
    msg_free(ctx, l);
    return ctx->status;
  }
  net->layer = layers;
  memmove(layers + 1, layers, net->n_layer * sizeof *layers);
  layers[0] = l;
  net->n_layer++;
  if (net->n_input_shape) {
    for (size_t i = 0; i < net->n_input; i++) {
      l->input_param->shape[i] = net->input_shape[i];
      net->input_shape[i] = NULL;
    }
    l->input_param->n_shape = net->n_input;
  }
  l->n_top = net->n_input;
  l->top = net->input;
  net->n_input = 0;
  net->input = NULL;
  clear_net_inputs(ctx, net);
  return NS_OK;
}

/* ---- BatchNorm ----------------------------------------------------------- */

static int is_old_batchnorm(const Caffe__LayerParameter *l) {
  return l->type && strcmp(l->type, "BatchNorm") == 0 && l->n_param == 3;
}

int ns_net_needs_batchnorm_upgrade(const Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layer; i++)
    if (is_old_batchnorm(net->layer[i])) return 1;
  return 0;
}

/* Caffe 1.0's UpgradeNetBatchNorm: the three ParamSpecs that the old
 * BatchNorm definition required (lr_mult 0 on mean, variance and the
 * scale factor) go; the layer now keeps its statistics out of learning
 * itself. */
static void upgrade_batchnorm(ns_ctx *ctx, Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layer; i++) {
    Caffe__LayerParameter *l = net->layer[i];
    if (!is_old_batchnorm(l)) continue;
    for (size_t k = 0; k < l->n_param; k++) msg_free(ctx, l->param[k]);
    ns_free(ctx, l->param);
    l->param = NULL;
    l->n_param = 0;
  }
}

/* ---- the whole net ------------------------------------------------------- */

int ns_net_needs_upgrade(const Caffe__NetParameter *net) {
  return ns_net_needs_v0_upgrade(net) || ns_net_needs_data_upgrade(net) || net->n_layers > 0 ||
         net->n_input > 0 || ns_net_needs_batchnorm_upgrade(net);
}

static ns_status upgrade_steps(ns_ctx *ctx, const char *file, Caffe__NetParameter *net, int *what) {
  if (ns_net_needs_v0_upgrade(net)) {
    if (upgrade_v0_net(ctx, file, net) != NS_OK) return ctx->status;
    *what |= NS_UPGRADED_V0;
    ns_warn(ctx, "%s: upgraded from the deprecated V0 layer format; save it in the current format",
            file);
  }
  if (ns_net_needs_data_upgrade(net)) {
    if (upgrade_data_transform(ctx, net) != NS_OK) return ctx->status;
    *what |= NS_UPGRADED_DATA_TRANSFORM;
    ns_warn(ctx, "%s: deprecated data-transformation fields moved into transform_param", file);
  }
  if (net->n_layers > 0) {
    if (upgrade_v1_net(ctx, file, net) != NS_OK) return ctx->status;
    *what |= NS_UPGRADED_V1;
  }
  if (net->n_input > 0) {
    if (upgrade_net_input(ctx, file, net) != NS_OK) return ctx->status;
    *what |= NS_UPGRADED_INPUT;
    ns_warn(ctx, "%s: deprecated input fields turned into an Input layer", file);
  } else if (net->n_input_dim || net->n_input_shape) {
    ns_warn(ctx, "%s: input_dim/input_shape without input are ignored, as Caffe does", file);
  }
  if (ns_net_needs_batchnorm_upgrade(net)) {
    upgrade_batchnorm(ctx, net);
    *what |= NS_UPGRADED_BATCHNORM;
  }
  return NS_OK;
}

ns_status ns_upgrade_net(ns_ctx *ctx, Caffe__NetParameter **net, const char *filename, int *what) {
  if (what) *what = 0;
  if (!net || !*net) return ns_fail(ctx, NS_ERR_USAGE, "ns_upgrade_net: no net");
  int done = 0;
  ns_status st = upgrade_steps(ctx, file_or_default(filename), *net, &done);
  if (what) *what = done;
  return st;
}

/* ---- solver -------------------------------------------------------------- */

static const char *const solver_types[] = {"SGD",     "Nesterov", "AdaGrad",
                                           "RMSProp", "AdaDelta", "Adam"};

/* UpgradeSolverType: the solver_type enum becomes the type string. */
static ns_status upgrade_solver_type(ns_ctx *ctx, const char *file, Caffe__SolverParameter *s) {
  int v = (int)s->solver_type;
  if (v < 0 || v >= (int)(sizeof solver_types / sizeof solver_types[0]))
    return ns_fail(ctx, NS_ERR_INPUT, "%s: unknown solver_type %d", file, v);
  const char *name = solver_types[v];
  if (present_by_name(&s->base, "type")) {
    if (strcmp(s->type, name) != 0)
      return ns_fail(ctx, NS_ERR_INPUT,
                     "%s: solver_type %s and type \"%s\" disagree (give only type)", file, name,
                     s->type);
    ns_warn(ctx, "%s: both solver_type and type given; only type is kept", file);
  } else {
    char *t = ns_strdup(ctx, name);
    if (!t) return ctx->status;
    s->type = t;
  }
  s->has_solver_type = 0;
  s->solver_type = CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__SGD;
  ns_warn(ctx, "%s: deprecated solver_type enum replaced by the type string \"%s\"", file, name);
  return NS_OK;
}

static ns_status upgrade_solver_net(ns_ctx *ctx, const char *file, const char *field,
                                    Caffe__NetParameter **net, int *what) {
  if (!*net) return NS_OK;
  char where[1024];
  snprintf(where, sizeof where, "%s: %s", file, field);
  int done = 0;
  ns_status st = ns_upgrade_net(ctx, net, where, &done);
  *what |= done;
  return st;
}

ns_status ns_upgrade_solver(ns_ctx *ctx, Caffe__SolverParameter *solver, const char *filename,
                            int *what) {
  const char *file = file_or_default(filename);
  int done = 0;
  ns_status st = NS_OK;
  if (solver->has_solver_type) {
    st = upgrade_solver_type(ctx, file, solver);
    if (st == NS_OK) done |= NS_UPGRADED_SOLVER;
  }
  if (st == NS_OK) st = upgrade_solver_net(ctx, file, "net_param", &solver->net_param, &done);
  if (st == NS_OK)
    st = upgrade_solver_net(ctx, file, "train_net_param", &solver->train_net_param, &done);
  for (size_t i = 0; st == NS_OK && i < solver->n_test_net_param; i++)
    st = upgrade_solver_net(ctx, file, "test_net_param", &solver->test_net_param[i], &done);
  if (what) *what = done;
  return st;
}
