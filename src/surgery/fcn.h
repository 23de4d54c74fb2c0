/* The FCN cast on the definition alone (the public ns_fcn_cast builds it
 * and transplants the params). */
#ifndef NS_SURGERY_FCN_H
#define NS_SURGERY_FCN_H

#include "caffe.pb-c.h"
#include "core/net.h"

/* A copy of the classifier's definition (without param blobs) cast as
 * described at ns_fcn_cast.  names (may be NULL) receives, for every cast
 * layer k, its old and new name (strings from the ctx allocator; free with
 * ns_fcn_names_free). */
typedef struct ns_fcn_names {
  int n;
  char **old_names, **new_names;
} ns_fcn_names;

ns_status ns_fcn_cast_param(ns_ctx *ctx, ns_net *classifier, const ns_fcn_opts *opts,
                            Caffe__NetParameter **out, ns_fcn_names *names);
void ns_fcn_names_free(ns_ctx *ctx, ns_fcn_names *names);

/* A deep copy of a net's definition with every layer's blobs left out. */
ns_status ns_net_param_copy_without_blobs(ns_ctx *ctx, Caffe__NetParameter *def,
                                          Caffe__NetParameter **out);

#endif
