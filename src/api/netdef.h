/* Internal constructors of the public ns_netdef handle. */
#ifndef NS_API_NETDEF_H
#define NS_API_NETDEF_H

#include "caffe.pb-c.h"
#include "core/ctx.h"

/* Wraps an upgraded NetParameter (ownership taken, freed on failure);
 * NULL when out of memory. */
ns_netdef *ns_netdef_wrap(ns_ctx *ctx, Caffe__NetParameter *param);
/* Frees the handle and hands back its NetParameter (the caller owns it). */
Caffe__NetParameter *ns_netdef_release(ns_netdef *def);

#endif
