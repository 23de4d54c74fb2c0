/* The ONNX graph builder: an arena for the protobuf-c messages (freed at
 * once when the export ends), value naming across in-place layers, nodes
 * and initializers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/net.h"
#include "export/onnx_graph_internal.h"

struct ns_onnx_chunk {
  ns_onnx_chunk *next;
  size_t used, size;
  max_align_t data[];
};

enum { CHUNK_BYTES = 64 * 1024, MAX_ATTRS = 8 };

ns_status ns_onnx_init(ns_ctx *ctx, ns_onnx *g, const ns_net *net, int opset, int dynamic_batch) {
  memset(g, 0, sizeof *g);
  g->ctx = ctx;
  g->net = net;
  g->opset = opset;
  g->dynamic_batch = dynamic_batch;
  size_t n = (size_t)net->n_blobs + 1;
  g->value = ns_calloc(ctx, n, sizeof *g->value);
  g->writes_left = ns_calloc(ctx, n, sizeof *g->writes_left);
  g->name_taken = ns_calloc(ctx, n, 1);
  if (!g->value || !g->writes_left || !g->name_taken) return g->status = ctx->status;
  for (int i = 0; i < net->n_layers; i++)
    for (int j = 0; j < net->layers[i].n_top; j++)
      g->writes_left[ns_net_find_blob(net, net->layers[i].top[j]->name)]++;
  return NS_OK;
}

void ns_onnx_free(ns_onnx *g) {
  ns_ctx *ctx = g->ctx;
  while (g->chunks) {
    ns_onnx_chunk *next = g->chunks->next;
    ns_free(ctx, g->chunks);
    g->chunks = next;
  }
  ns_free(ctx, g->nodes);
  ns_free(ctx, g->inits);
  ns_free(ctx, g->value);
  ns_free(ctx, g->writes_left);
  ns_free(ctx, g->name_taken);
}

void *ns_onnx_alloc(ns_onnx *g, size_t size) {
  if (g->status != NS_OK) return NULL;
  size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  ns_onnx_chunk *c = g->chunks;
  if (!c || c->size - c->used < size) {
    size_t want = size > CHUNK_BYTES ? size : CHUNK_BYTES;
    c = ns_alloc(g->ctx, sizeof *c + want);
    if (!c) {
      g->status = g->ctx->status;
      return NULL;
    }
    c->used = 0;
    c->size = want;
    c->next = g->chunks;
    g->chunks = c;
  }
  void *p = (char *)c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

char *ns_onnx_strdup(ns_onnx *g, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = ns_onnx_alloc(g, n);
  if (p) memcpy(p, s, n);
  return p;
}

static char *concat3(ns_onnx *g, const char *a, const char *sep, const char *b) {
  size_t na = strlen(a), ns = strlen(sep), nb = strlen(b);
  char *p = ns_onnx_alloc(g, na + ns + nb + 1);
  if (!p) return (char *)"";
  memcpy(p, a, na);
  memcpy(p + na, sep, ns);
  memcpy(p + na + ns, b, nb + 1);
  return p;
}

int ns_onnx_opset(const ns_onnx *g) { return g->opset; }
ns_ctx *ns_onnx_ctx(ns_onnx *g) { return g->ctx; }
int ns_onnx_dynamic_batch(const ns_onnx *g) { return g->dynamic_batch; }
ns_status ns_onnx_status(const ns_onnx *g) { return g->status; }

ns_status ns_onnx_fail(ns_onnx *g, const ns_layer *l, const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (g->status == NS_OK)
    g->status = ns_fail(g->ctx, NS_ERR_UNSUPPORTED, "layer '%s' (%s) cannot be exported to ONNX: %s",
                        l->name, l->ops->type, why);
  return g->status;
}

const char *ns_onnx_in(ns_onnx *g, const ns_layer *l, int i) {
  int b = ns_net_find_blob(g->net, l->bottom[i]->name);
  return b >= 0 && g->value[b] ? g->value[b] : l->bottom[i]->name;
}

const char *ns_onnx_out(ns_onnx *g, const ns_layer *l, int i) {
  int b = ns_net_find_blob(g->net, l->top[i]->name);
  const char *blob = l->top[i]->name;
  if (b < 0) return blob;
  /* ONNX values are written once: only the last writer may use the
   * blob's own name, unless a graph input holds it already. */
  int last = --g->writes_left[b] <= 0;
  const char *name = last && !g->name_taken[b] ? ns_onnx_strdup(g, blob) : concat3(g, blob, "@", l->name);
  if (!name) name = "";
  g->value[b] = name;
  return name;
}

const char *ns_onnx_tmp(ns_onnx *g, const ns_layer *l, const char *tag) {
  return concat3(g, l->name, "/", tag);
}

Onnx__NodeProto *ns_onnx_node(ns_onnx *g, const ns_layer *l, const char *name, const char *op,
                              int n_in, const char *const *in, int n_out, const char *const *out) {
  Onnx__NodeProto *n = ns_onnx_alloc(g, sizeof *n);
  char **ins = ns_onnx_alloc(g, sizeof *ins * (size_t)(n_in + 1));
  char **outs = ns_onnx_alloc(g, sizeof *outs * (size_t)(n_out + 1));
  Onnx__AttributeProto **attrs = ns_onnx_alloc(g, sizeof *attrs * MAX_ATTRS);
  if (!n || !ins || !outs || !attrs) return NULL;
  onnx__node_proto__init(n);
  for (int i = 0; i < n_in; i++) ins[i] = (char *)in[i];
  for (int i = 0; i < n_out; i++) outs[i] = (char *)out[i];
  n->n_input = (size_t)n_in;
  n->input = ins;
  n->n_output = (size_t)n_out;
  n->output = outs;
  n->op_type = (char *)op;
  n->name = ns_onnx_strdup(g, name ? name : l->name);
  n->attribute = attrs;
  if (g->n_nodes == g->cap_nodes) {
    size_t cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
    Onnx__NodeProto **p = ns_realloc_array(g->ctx, g->nodes, cap, sizeof *p);
    if (!p) {
      g->status = g->ctx->status;
      return NULL;
    }
    g->nodes = p;
    g->cap_nodes = cap;
  }
  g->nodes[g->n_nodes++] = n;
  return n;
}

Onnx__NodeProto *ns_onnx_node1(ns_onnx *g, const ns_layer *l, const char *name, const char *op,
                               const char *in, const char *out) {
  return ns_onnx_node(g, l, name, op, 1, &in, 1, &out);
}

static Onnx__AttributeProto *add_attr(ns_onnx *g, Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type) {
  if (!n || g->status != NS_OK) return NULL;
  if (n->n_attribute == MAX_ATTRS) {
    g->status = ns_fail(g->ctx, NS_ERR_INTERNAL, "ONNX node '%s': too many attributes", n->name);
    return NULL;
  }
  Onnx__AttributeProto *a = ns_onnx_alloc(g, sizeof *a);
  if (!a) return NULL;
  onnx__attribute_proto__init(a);
  a->name = (char *)name;
  a->has_type = 1;
  a->type = type;
  n->attribute[n->n_attribute++] = a;
  return a;
}

void ns_onnx_attr_int(ns_onnx *g, Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a = add_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  if (!a) return;
  a->has_i = 1;
  a->i = v;
}

void ns_onnx_attr_float(ns_onnx *g, Onnx__NodeProto *n, const char *name, float v) {
  Onnx__AttributeProto *a = add_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  if (!a) return;
  a->has_f = 1;
  a->f = v;
}

void ns_onnx_attr_ints(ns_onnx *g, Onnx__NodeProto *n, const char *name, int count,
                       const int64_t *v) {
  Onnx__AttributeProto *a = add_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  int64_t *copy = ns_onnx_alloc(g, sizeof *copy * (size_t)(count + 1));
  if (!a || !copy) return;
  memcpy(copy, v, sizeof *copy * (size_t)count);
  a->n_ints = (size_t)count;
  a->ints = copy;
}

void ns_onnx_attr_string(ns_onnx *g, Onnx__NodeProto *n, const char *name, const char *v) {
  Onnx__AttributeProto *a = add_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  if (!a) return;
  a->has_s = 1;
  a->s.len = strlen(v);
  a->s.data = (uint8_t *)v;
}

const char *ns_onnx_reduce(ns_onnx *g, const ns_layer *l, const char *tag, const char *op,
                           const char *in, int n_axes, const int64_t *axes, int keepdims,
                           const char *out) {
  const char *y = out ? out : ns_onnx_tmp(g, l, tag);
  int axes_input = ns_onnx_opset(g) >= (strcmp(op, "ReduceSum") == 0 ? 13 : 18);
  const char *ins[2] = {in, NULL};
  if (axes_input) ins[1] = ns_onnx_int64s(g, l, concat3(g, tag, "", "_axes"), n_axes, axes);
  Onnx__NodeProto *n = ns_onnx_node(g, l, out ? NULL : y, op, axes_input ? 2 : 1, ins, 1, &y);
  if (!axes_input) ns_onnx_attr_ints(g, n, "axes", n_axes, axes);
  ns_onnx_attr_int(g, n, "keepdims", keepdims);
  return y;
}

static Onnx__TensorProto *add_tensor(ns_onnx *g, const char *name, int type, int num_dims,
                                     const int64_t *dims) {
  Onnx__TensorProto *t = ns_onnx_alloc(g, sizeof *t);
  int64_t *d = ns_onnx_alloc(g, sizeof *d * (size_t)(num_dims + 1));
  if (!t || !d) return NULL;
  onnx__tensor_proto__init(t);
  if (num_dims > 0) memcpy(d, dims, sizeof *d * (size_t)num_dims); /* a scalar has none */
  t->n_dims = (size_t)num_dims;
  t->dims = d;
  t->has_data_type = 1;
  t->data_type = type;
  t->name = (char *)name;
  if (g->n_inits == g->cap_inits) {
    size_t cap = g->cap_inits ? 2 * g->cap_inits : 64;
    Onnx__TensorProto **p = ns_realloc_array(g->ctx, g->inits, cap, sizeof *p);
    if (!p) {
      g->status = g->ctx->status;
      return NULL;
    }
    g->inits = p;
    g->cap_inits = cap;
  }
  g->inits[g->n_inits++] = t;
  return t;
}

/* Raw data is little-endian IEEE floats: the host's own layout on every
 * machine netsurg builds for (x86-64, AArch64). */
const char *ns_onnx_blob(ns_onnx *g, const ns_layer *l, const char *tag, const ns_blob *b,
                         int num_dims, const int64_t *dims) {
  const char *name = ns_onnx_tmp(g, l, tag);
  Onnx__TensorProto *t = add_tensor(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, num_dims, dims);
  if (!t) return name;
  t->has_raw_data = 1;
  t->raw_data.len = (size_t)b->count * sizeof(float);
  t->raw_data.data = (uint8_t *)b->data;
  return name;
}

float *ns_onnx_floats(ns_onnx *g, const ns_layer *l, const char *tag, int num_dims,
                      const int64_t *dims, const char **value) {
  *value = ns_onnx_tmp(g, l, tag);
  int64_t count = 1;
  for (int i = 0; i < num_dims; i++) count *= dims[i];
  Onnx__TensorProto *t =
      add_tensor(g, *value, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, num_dims, dims);
  float *data = ns_onnx_alloc(g, sizeof *data * (size_t)(count + 1));
  if (!t || !data) return NULL;
  t->has_raw_data = 1;
  t->raw_data.len = (size_t)count * sizeof(float);
  t->raw_data.data = (uint8_t *)data;
  return data;
}

const char *ns_onnx_scalar(ns_onnx *g, const ns_layer *l, const char *tag, float v) {
  const char *name;
  float *p = ns_onnx_floats(g, l, tag, 0, NULL, &name);
  if (p) p[0] = v;
  return name;
}

const char *ns_onnx_int64s(ns_onnx *g, const ns_layer *l, const char *tag, int count,
                           const int64_t *v) {
  const char *name = ns_onnx_tmp(g, l, tag);
  int64_t dims[1] = {count};
  Onnx__TensorProto *t = add_tensor(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, dims);
  int64_t *data = ns_onnx_alloc(g, sizeof *data * (size_t)(count + 1));
  if (!t || !data) return name;
  memcpy(data, v, sizeof *data * (size_t)count);
  t->n_int64_data = (size_t)count;
  t->int64_data = data;
  return name;
}

/* A float tensor's type; axis 0 symbolic ("N") for a dynamic batch. */
Onnx__ValueInfoProto *ns_onnx_value_info(ns_onnx *g, const char *name, const ns_blob *b) {
  Onnx__ValueInfoProto *v = ns_onnx_alloc(g, sizeof *v);
  Onnx__TypeProto *type = ns_onnx_alloc(g, sizeof *type);
  Onnx__TypeProto__Tensor *tt = ns_onnx_alloc(g, sizeof *tt);
  Onnx__TensorShapeProto *shape = ns_onnx_alloc(g, sizeof *shape);
  Onnx__TensorShapeProto__Dimension **dims =
      ns_onnx_alloc(g, sizeof *dims * (size_t)(b->num_axes + 1));
  if (!v || !type || !tt || !shape || !dims) return NULL;
  onnx__value_info_proto__init(v);
  onnx__type_proto__init(type);
  onnx__type_proto__tensor__init(tt);
  onnx__tensor_shape_proto__init(shape);
  for (int i = 0; i < b->num_axes; i++) {
    Onnx__TensorShapeProto__Dimension *d = ns_onnx_alloc(g, sizeof *d);
    if (!d) return NULL;
    onnx__tensor_shape_proto__dimension__init(d);
    if (i == 0 && g->dynamic_batch) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = (char *)"N";
    } else {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = b->shape[i];
    }
    dims[i] = d;
  }
  shape->n_dim = (size_t)b->num_axes;
  shape->dim = dims;
  tt->has_elem_type = 1;
  tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  tt->shape = shape;
  type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  type->tensor_type = tt;
  v->name = (char *)name;
  v->type = type;
  return v;
}
