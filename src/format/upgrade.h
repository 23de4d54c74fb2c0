/* Caffe's upgrade_proto, once, on the NetParameter: V0 -> V1 -> current,
 * input/input_dim/input_shape -> Input layer, blobs_lr/weight_decay ->
 * ParamSpec, data-transformation fields moved, BatchNorm param fix-up, ...
 * After it, the rest of netsurg only sees `layer` in the current format. */
#ifndef NS_FORMAT_UPGRADE_H
#define NS_FORMAT_UPGRADE_H

#include "caffe.pb-c.h"
#include "core/ctx.h"

/* Upgrades *net in place (it may be replaced by a new message; the old one
 * is then freed).  filename is used in errors and warnings.  *what (may be
 * NULL) receives a bit set of NS_UPGRADED_* telling what was done.  Caffe's
 * fatal upgrade errors fail with NS_ERR_INPUT; what Caffe only logs (a V0
 * field the layer type does not take, ...) is a warning.  On failure *net
 * is still one valid message (partly upgraded) that
 * protobuf_c_message_free_unpacked(&(*net)->base, &ctx->pb_alloc) frees. */
enum {
  NS_UPGRADED_V0 = 1,
  NS_UPGRADED_V1 = 2,
  NS_UPGRADED_INPUT = 4,
  NS_UPGRADED_DATA_TRANSFORM = 8,
  NS_UPGRADED_BATCHNORM = 16,
  NS_UPGRADED_SOLVER = 32
};
ns_status ns_upgrade_net(ns_ctx *ctx, Caffe__NetParameter **net, const char *filename, int *what);
/* True if the net needs any upgrade (any of the steps below, or V1
 * `layers`, or `input` fields). */
int ns_net_needs_upgrade(const Caffe__NetParameter *net);
/* The single steps' tests (Caffe's NetNeeds*Upgrade). */
int ns_net_needs_v0_upgrade(const Caffe__NetParameter *net);
int ns_net_needs_data_upgrade(const Caffe__NetParameter *net);
int ns_net_needs_batchnorm_upgrade(const Caffe__NetParameter *net);

/* Caffe's name of a V1 LayerType enum value ("Convolution", "" for NONE);
 * NULL for a value the enum lacks. */
const char *ns_v1_layer_type_name(int type);

/* SolverParameter: solver_type enum -> type string (an error if type is
 * also given and names another solver), then ns_upgrade_net on net_param,
 * train_net_param and every test_net_param.  *what gets NS_UPGRADED_SOLVER
 * and the bits of the nested nets. */
ns_status ns_upgrade_solver(ns_ctx *ctx, Caffe__SolverParameter *solver, const char *filename,
                            int *what);

#endif
