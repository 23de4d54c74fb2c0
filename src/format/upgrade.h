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
 * NULL) receives a bit set of NS_UPGRADED_* telling what was done. */
enum {
  NS_UPGRADED_V0 = 1,
  NS_UPGRADED_V1 = 2,
  NS_UPGRADED_INPUT = 4,
  NS_UPGRADED_DATA_TRANSFORM = 8,
  NS_UPGRADED_BATCHNORM = 16,
  NS_UPGRADED_SOLVER = 32
};
ns_status ns_upgrade_net(ns_ctx *ctx, Caffe__NetParameter **net, const char *filename, int *what);
/* True if the net needs any upgrade. */
int ns_net_needs_upgrade(const Caffe__NetParameter *net);

/* SolverParameter: solver_type enum -> type string, and its net params. */
ns_status ns_upgrade_solver(ns_ctx *ctx, Caffe__SolverParameter *solver, const char *filename,
                            int *what);

#endif
