/* netsurg: load, edit, save and run Caffe models in C.
 *
 * Every call that can fail takes an ns_ctx and returns an ns_status; on
 * failure ns_ctx_error() tells what went wrong (file, line:column, layer,
 * blob or field where it applies).  The library never exits, aborts or
 * prints on bad input.  Handles are opaque; each _create has a _destroy.
 */
#ifndef NETSURG_H
#define NETSURG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every function declared in this header is exported from libnetsurg.so,
 * and nothing else: the library is compiled with -fvisibility=hidden and
 * this region restores the default visibility for the public API alone
 * (tests/oracle/test_shared_lib.py checks the two lists are equal). */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* Status codes double as the CLI's exit codes. */
typedef enum ns_status {
  NS_OK = 0,
  NS_ERR_USAGE = 1,       /* bad arguments from the caller */
  NS_ERR_INPUT = 2,       /* malformed or corrupt input file or data */
  NS_ERR_UNSUPPORTED = 3, /* valid Caffe, but a feature we do not run */
  NS_ERR_IO = 4,          /* cannot open, read or write a file */
  NS_ERR_NOMEM = 5,       /* allocation failed or over the memory limit */
  NS_ERR_NET = 6,         /* the net is inconsistent: shapes, graph */
  NS_ERR_INTERNAL = 7     /* a bug in netsurg */
} ns_status;

const char *ns_status_name(ns_status s);

/* ---- context ---------------------------------------------------------- */

typedef struct ns_ctx ns_ctx;

/* Optional allocator hook; all library memory goes through it. */
typedef struct ns_allocator {
  void *(*alloc)(void *user, size_t size);
  void *(*realloc)(void *user, void *ptr, size_t size);
  void (*free)(void *user, void *ptr);
  void *user;
} ns_allocator;

typedef void (*ns_warn_fn)(void *user, const char *message);

/* A counting allocator over malloc that refuses any block which would take
 * the live bytes past `limit`: with Linux's overcommit every malloc
 * succeeds and the OOM killer strikes only when pages are touched, so a
 * program that loads untrusted models caps its total here and gets
 * NS_ERR_NOMEM instead.  Set limit, zero the
 * counters, and pass ns_budget_allocator(&b) to ns_ctx_create_with; b must
 * outlive every context on it.  The counters are plain: use one budget
 * from one thread at a time. */
typedef struct ns_budget {
  size_t limit;
  size_t live_bytes, live_blocks;
} ns_budget;
ns_allocator ns_budget_allocator(ns_budget *b);

ns_ctx *ns_ctx_create(void);
/* alloc may be NULL for malloc/realloc/free. Returns NULL if even the
 * context cannot be allocated. */
ns_ctx *ns_ctx_create_with(const ns_allocator *alloc);
void ns_ctx_destroy(ns_ctx *ctx);

const char *ns_ctx_error(const ns_ctx *ctx);
ns_status ns_ctx_status(const ns_ctx *ctx);
void ns_ctx_clear_error(ns_ctx *ctx);

/* Threads for this context's compute loops (0 = OpenMP's default: all
 * cores unless OMP_NUM_THREADS says otherwise).  Each context keeps its own
 * count; no call changes a process-wide setting.  Results do not depend on
 * the thread count. */
void ns_ctx_set_threads(ns_ctx *ctx, int threads);
int ns_ctx_threads(const ns_ctx *ctx);
/* The one process-wide knob: OpenBLAS's thread pool, which the backward
 * passes and Deconvolution's forward use (every other forward runs on our
 * own kernels, threaded per context).  0 = all cores.  OpenBLAS has one
 * pool per process, shared with any other user of it in the program, so
 * the library never sets it: an application sets it once (the CLI does, to
 * --threads), or leaves OpenBLAS's default (OPENBLAS_NUM_THREADS, else all
 * cores). */
void ns_blas_set_threads(int threads);
/* Refuse single allocations of tensors larger than this (0 = no limit). */
void ns_ctx_set_memory_limit(ns_ctx *ctx, uint64_t bytes);
/* Prototxt fields and enum values caffe.proto lacks: 0 = error (default;
 * NS_ERR_UNSUPPORTED inside a layer, naming it), 1 = skip them with one
 * warning per name.  Fields whose loss changes results stay refused. */
void ns_ctx_set_allow_unknown(ns_ctx *ctx, int allow);
/* Warnings (e.g. skipped unknown fields) go here; default: dropped. */
void ns_ctx_set_warning_handler(ns_ctx *ctx, ns_warn_fn fn, void *user);


/* ---- nets ------------------------------------------------------------- */

typedef struct ns_net ns_net;

/* A view of a blob or param: valid until the net is reshaped or destroyed. */
typedef struct ns_tensor {
  const char *name;
  int num_axes;
  const int64_t *shape;
  int64_t count;
  float *data;
} ns_tensor;

/* Caffe's Phase: which NetStateRule-filtered layers a net has (a train net
 * keeps its TRAIN data layers and losses), and how Dropout and BatchNorm
 * behave. */
typedef enum ns_phase { NS_PHASE_TRAIN = 0, NS_PHASE_TEST = 1 } ns_phase;

/* How ns_net_load and ns_net_build_from make a net. */
typedef struct ns_net_opts {
  ns_phase phase;      /* default NS_PHASE_TEST */
  uint64_t seed;       /* the fillers draw from it; default 1 */
  const char *weights; /* NULL (default), or a caffemodel (or a prototxt
                          carrying blobs) whose params are copied by layer
                          name after the fillers, as Caffe does */
} ns_net_opts;
void ns_net_opts_init(ns_net_opts *opts);

/* Loads a net definition (.prototxt or .caffemodel, any Caffe version,
 * upgraded on load) as opts says (NULL: the defaults).  The ctx must
 * outlive the net. */
ns_status ns_net_load(ns_ctx *ctx, const char *prototxt, const ns_net_opts *opts, ns_net **out);
/* The same with activation reuse on (ns_net_reuse_activations) from the
 * build: each intermediate blob's storage goes as soon as its last
 * reader is set up, so that loading never holds every activation at
 * once (turning reuse on after ns_net_load would). */
ns_status ns_net_load_reusing(ns_ctx *ctx, const char *prototxt, const ns_net_opts *opts,
                              ns_net **out);
void ns_net_destroy(ns_net *net);

/* Copies params by layer name from a caffemodel into a built net. */
ns_status ns_net_load_weights(ns_ctx *ctx, ns_net *net, const char *caffemodel);
/* Saves the definition (current format) and all params as a caffemodel;
 * atomic. */
ns_status ns_net_save_weights(ns_ctx *ctx, ns_net *net, const char *caffemodel);
/* Saves the definition as a current-format prototxt; atomic. */
ns_status ns_net_save_prototxt(ns_ctx *ctx, const ns_net *net, const char *prototxt);

const char *ns_net_name(const ns_net *net);
int ns_net_layer_count(const ns_net *net);
const char *ns_net_layer_name(const ns_net *net, int layer);
const char *ns_net_layer_type(const ns_net *net, int layer);
int ns_net_find_layer(const ns_net *net, const char *name); /* -1 if absent */
int ns_net_layer_bottom_count(const ns_net *net, int layer);
int ns_net_layer_top_count(const ns_net *net, int layer);
const char *ns_net_layer_bottom(const ns_net *net, int layer, int i);
const char *ns_net_layer_top(const ns_net *net, int layer, int i);
int ns_net_param_count(const ns_net *net, int layer);
ns_tensor ns_net_param(ns_net *net, int layer, int index);

int ns_net_blob_count(const ns_net *net);
int ns_net_find_blob(const ns_net *net, const char *name); /* -1 if absent */
ns_tensor ns_net_blob(ns_net *net, int blob);
/* Input blobs: the tops of Input layers. */
int ns_net_input_count(const ns_net *net);
int ns_net_input_blob(const ns_net *net, int i);
/* Output blobs, as Caffe's net_output_blobs: produced and not read by a
 * later layer (an in-place layer does not count as a reader), in name
 * order (Caffe's Net::Init collects them in a std::set<string>).  Writes their indexes to out (room for
 * ns_net_blob_count entries) and returns how many. */
int ns_net_output_blobs(const ns_net *net, int *out);

/* Gives an input blob a new shape and reshapes the whole net. */
ns_status ns_net_reshape_input(ns_ctx *ctx, ns_net *net, const char *blob, int num_axes,
                               const int64_t *shape);
ns_status ns_net_forward(ns_ctx *ctx, ns_net *net);
/* Activation reuse, for inference that reads only the outputs (off by
 * default): on, every intermediate blob (written by a layer and read
 * after) shares storage with blobs whose last reader ran before it is
 * written, planned at each reshape, so that a forward holds about the
 * live blobs rather than all of them.  The inputs and outputs (blobs no
 * layer reads after their last write) keep their own.  While on, an
 * intermediate blob read after a forward holds whatever a later blob
 * left there (ns_net_blob_reused says which are shared), and
 * ns_net_forward_range from a layer other than 0 and any backward fail
 * with NS_ERR_USAGE.  Off gives every blob its own storage again (its
 * values are lost: run a forward).  A net with a layer that reshapes in
 * forward keeps every blob's own storage. */
ns_status ns_net_reuse_activations(ns_ctx *ctx, ns_net *net, int on);
int ns_net_blob_reused(const ns_net *net, int blob);
/* pycaffe's forward(start=, end=): runs layers first..last only (layer
 * indices, both inclusive) on the blobs as they are. */
ns_status ns_net_forward_range(ns_ctx *ctx, ns_net *net, int first, int last);
/* Forward that also adds each layer's wall time in seconds to
 * layer_seconds[layer] (ns_net_layer_count entries). */
ns_status ns_net_forward_profile(ns_ctx *ctx, ns_net *net, double *layer_seconds);
/* Floating-point operations of a layer's forward at the current shapes
 * (2 per multiply-add; convolutions, inner products, deconvolutions; 0 for
 * the cheap layers). */
double ns_net_layer_flops(const ns_net *net, int layer);

/* ---- ONNX export -------------------------------------------------------- */

typedef struct ns_onnx_options {
  int opset;       /* ONNX opset, 11 to 18; 0: 13 (Softmax over one axis) */
  int fixed_batch; /* 0: axis 0 of inputs and outputs is symbolic ("N");
                      1: the net's current batch size is written */
  int external_data; /* 0: weights inside the .onnx unless the model would
                        pass protobuf's 2 GB; 1: always in PATH.data */
} ns_onnx_options;

typedef struct ns_onnx_summary {
  int layers, nodes, initializers; /* layers exported, ONNX nodes written */
  uint64_t bytes;                  /* size of the .onnx file */
  uint64_t external_bytes;         /* size of PATH.data (0: none written) */
} ns_onnx_summary;

/* Writes the net, at its current input shapes and weights, as an ONNX
 * model whose nodes compute Caffe's numbers: graph inputs are the Input
 * tops (named as the blobs), outputs the net's output blobs, and every
 * node is named after its layer.  A layer with no exact ONNX form fails
 * the export with NS_ERR_UNSUPPORTED naming it and why (nothing is
 * skipped).  The file is replaced atomically.  Weights go to ONNX's
 * external data, the side file PATH.data (each tensor of 1 KB or more, at
 * 4096-byte aligned offsets; also replaced atomically), when asked or when
 * the model would pass protobuf's 2 GB.  opt may be NULL (the defaults);
 * summary may be NULL. */
ns_status ns_net_export_onnx(ns_ctx *ctx, ns_net *net, const char *path,
                             const ns_onnx_options *opt, ns_onnx_summary *summary);

/* Re-draws every layer's first param (the weights) from a filler of the
 * given type ("msra", "xavier", "gaussian", "uniform", "constant", ...),
 * with Caffe's defaults for its other fields, from `seed`. */
ns_status ns_net_refill_weights(ns_ctx *ctx, ns_net *net, const char *filler, uint64_t seed);

/* ---- training: phases, losses, backward, learnable params ------------- */

ns_phase ns_net_phase(const ns_net *net);

/* Forward; *loss (may be NULL) = the sum over every top with a loss weight
 * of loss_weight * (sum of the top's values): Caffe's Net::Forward loss.
 * Loss layers weigh their first top 1 unless loss_weight says otherwise. */
ns_status ns_net_forward_loss(ns_ctx *ctx, ns_net *net, float *loss);
/* Backward from the losses of the last forward.  Blob diffs are
 * overwritten; param diffs ACCUMULATE (as Caffe's, so that iter_size
 * works): clear them before each accumulation.  Layers whose params all
 * have lr_mult 0 and that feed nothing needing a gradient are skipped;
 * propagate_down false stops the gradient at that bottom. */
ns_status ns_net_backward(ns_ctx *ctx, ns_net *net);
void ns_net_clear_param_diffs(ns_net *net);
/* pycaffe's backward(start=, end=): layers last down to first (inclusive),
 * from the diffs their tops hold; the layers above keep theirs, so a
 * caller can write a top's diff (ns_net_blob_diff) and start below it.
 * A deploy net has no loss: set force_backward: true for gradients. */
ns_status ns_net_backward_range(ns_ctx *ctx, ns_net *net, int first, int last);
/* A blob's or a param's diff (gradient) as a writable view, allocated
 * zeroed on first use; valid until the net is reshaped or destroyed. */
ns_status ns_net_blob_diff(ns_ctx *ctx, ns_net *net, int blob, ns_tensor *out);
ns_status ns_net_param_diff(ns_ctx *ctx, ns_net *net, int layer, int index, ns_tensor *out);

/* A learnable param: every param blob of every layer, in Caffe's
 * learnable_params order (layer order, then param order).  lr_mult and
 * decay_mult come from the layer's ParamSpec (default 1).  diff has
 * data.count floats (allocated by ns_net_learnable); both views stay valid
 * until the net is destroyed. */
typedef struct ns_learnable {
  int layer, index;
  const char *layer_name;
  ns_tensor data;
  float *diff;
  float lr_mult, decay_mult;
} ns_learnable;
int ns_net_learnable_count(const ns_net *net);
ns_status ns_net_learnable(ns_net *net, int i, ns_learnable *out);

/* pycaffe's set_input_arrays (Caffe's MemoryDataLayer::Reset): hands n
 * items, data (n x channels x height x width floats, C order) and labels
 * (n floats), to the MemoryData layer named `layer` (NULL: the net's first
 * layer, as pycaffe).  Each forward then serves the next batch_size items,
 * wrapping to the first after the last; n must be a positive multiple of
 * batch_size.  The arrays are copied (Caffe keeps the caller's); as
 * Caffe's Reset, transform_param is not applied. */
ns_status ns_net_set_input_arrays(ns_ctx *ctx, ns_net *net, const char *layer, const float *data,
                                  const float *labels, int64_t n);

/* Caffe's test scoring (Solver::Test, `caffe test`): `iterations` forward
 * passes of a net that feeds itself (data layers); every element of every
 * output blob (ns_net_output_blobs order) and the loss are summed in double
 * and divided by `iterations`.  stop (may be NULL) is polled before each
 * pass: non-zero ends the run early (the sums are still divided by
 * `iterations`, as the solver's test always did). */
typedef struct ns_net_score {
  int n_values;
  const char **names; /* per value: its blob's name, borrowed from the net */
  double *values;
  double loss;
} ns_net_score;
ns_status ns_net_score_outputs(ns_ctx *ctx, ns_net *net, int iterations, volatile int *stop,
                               ns_net_score *out);
void ns_net_score_free(ns_ctx *ctx, ns_net_score *score);

/* ---- net definitions (no weights, no shapes) -------------------------- */

/* A parsed, upgraded NetParameter: what `info` shows for nets that cannot
 * be built (train nets with data layers) and what `upgrade` writes. */
typedef struct ns_netdef ns_netdef;

/* Reads a .prototxt or .caffemodel (text or binary decided by content) in
 * any Caffe version and upgrades it to the current format. */
ns_status ns_netdef_load(ns_ctx *ctx, const char *path, ns_netdef **out);
void ns_netdef_destroy(ns_netdef *def);
/* 1 if the file was in a legacy format (V0/V1, input_dim, ...). */
int ns_netdef_was_upgraded(const ns_netdef *def);
/* 1 if the file was binary (a caffemodel), 0 if text. */
int ns_netdef_is_binary(const ns_netdef *def);
/* 1 if any layer carries param blobs (the file was a caffemodel). */
int ns_netdef_has_weights(const ns_netdef *def);
/* 1 when a layer has include/exclude rules (a train/test file). */
int ns_netdef_has_state_rules(const ns_netdef *def);
const char *ns_netdef_name(const ns_netdef *def);
int ns_netdef_layer_count(const ns_netdef *def);
const char *ns_netdef_layer_name(const ns_netdef *def, int i);
const char *ns_netdef_layer_type(const ns_netdef *def, int i);
int ns_netdef_layer_bottom_count(const ns_netdef *def, int i);
const char *ns_netdef_layer_bottom(const ns_netdef *def, int i, int j);
int ns_netdef_layer_top_count(const ns_netdef *def, int i);
const char *ns_netdef_layer_top(const ns_netdef *def, int i, int j);
/* Param blobs stored in the definition (caffemodels): count, and each
 * one's shape in the current convention (legacy 4-D dims such as
 * (1, 1, 4096, 9216) of an InnerProduct become (4096, 9216)); returns the
 * number of axes written to shape (room for 32). */
int ns_netdef_layer_blob_count(const ns_netdef *def, int i);
int ns_netdef_layer_blob_shape(const ns_netdef *def, int i, int j, int64_t *shape);
/* Keeps the first n_layers layers (definition order, before any phase
 * filtering) and frees the rest: building the result shows how far a net
 * that fails to build gets (netsurg draw). */
void ns_netdef_truncate(ns_netdef *def, int n_layers);
ns_status ns_netdef_save_prototxt(ns_ctx *ctx, const ns_netdef *def, const char *path);
ns_status ns_netdef_save_caffemodel(ns_ctx *ctx, const ns_netdef *def, const char *path);
/* Builds a net from the definition (consumed: def is destroyed) as opts
 * says (NULL: the defaults), like ns_net_load. */
ns_status ns_net_build_from(ns_ctx *ctx, ns_netdef *def, const ns_net_opts *opts, ns_net **out);

/* ---- images, .npy, preprocessing ---- */

/* An image as pycaffe's caffe.io.load_image returns it: height x width x
 * channels floats, interleaved (HWC), RGB order, values in [0, 1].
 * data comes from the ctx allocator (64-byte aligned); ns_image_free. */
typedef struct ns_image {
  int height, width, channels;
  float *data;
} ns_image;

/* ns_image_load flags. */
enum {
  NS_IMAGE_GREY = 1,       /* load_image(color=False): one grey channel */
  NS_IMAGE_IGNORE_EXIF = 2 /* keep a JPEG's stored orientation */
};
#define NS_IMAGE_MAX_DIM 30000

/* Decodes a JPEG or PNG (chosen by content) like caffe.io.load_image on
 * scikit-image 0.19 + imageio + Pillow: RGB floats v/255 (16-bit grey PNG:
 * v/65535); grey files tiled to 3 channels; alpha dropped; JPEG EXIF
 * orientation applied.  With NS_IMAGE_GREY: colour is converted with
 * 0.2125 R + 0.7154 G + 0.0721 B (alpha blended onto white first). */
ns_status ns_image_load(ns_ctx *ctx, const char *path, int flags, ns_image *out);
ns_status ns_image_decode(ns_ctx *ctx, const void *bytes, size_t size, const char *name, int flags,
                          ns_image *out);
/* Allocates a zeroed image. */
ns_status ns_image_alloc(ns_ctx *ctx, int height, int width, int channels, ns_image *out);
void ns_image_free(ns_ctx *ctx, ns_image *im);

/* caffe.io.resize_image(im, (height, width), interp_order=1): scales the
 * values to [0, 1] by the image's min and max, resizes as scikit-image's
 * transform.resize(order=1, mode='constant') does, and scales back; a
 * constant image is filled with its value.  antialias = 1 smooths first
 * when shrinking (Gaussian, sigma = (in/out - 1) / 2 per axis), as
 * scikit-image >= 0.15 does (the default of ns_transform); antialias = 0
 * is what Caffe's authors ran with older scikit-image. */
ns_status ns_image_resize(ns_ctx *ctx, const ns_image *in, int height, int width, int antialias,
                          ns_image *out);

/* N-D float arrays: .npy contents, mean images. */
#define NS_NDARRAY_MAX_AXES 32
typedef struct ns_ndarray {
  int num_axes;
  int64_t shape[NS_NDARRAY_MAX_AXES];
  int64_t count;
  float *data; /* ctx allocator, 64-byte aligned */
} ns_ndarray;
void ns_ndarray_free(ns_ctx *ctx, ns_ndarray *a);

/* Reads a .npy file (format 1.0, 2.0, 3.0) of float32 or float64, either
 * byte order, C order, into floats.  The size must match exactly. */
ns_status ns_npy_load(ns_ctx *ctx, const char *path, ns_ndarray *out);
ns_status ns_npy_parse(ns_ctx *ctx, const void *bytes, size_t size, const char *name,
                       ns_ndarray *out);
/* Writes a C-order little-endian array (format 1.0); atomic. */
ns_status ns_npy_save_f32(ns_ctx *ctx, const char *path, int num_axes, const int64_t *shape,
                          const float *data);
ns_status ns_npy_save_i32(ns_ctx *ctx, const char *path, int num_axes, const int64_t *shape,
                          const int32_t *data);

/* Reads an IDX file (MNIST's and Fashion-MNIST's format: u8, i8, i16,
 * i32, f32 or f64 big-endian data), plain or gzip-compressed, into floats
 * holding the raw values (no scaling). */
ns_status ns_idx_load(ns_ctx *ctx, const char *path, ns_ndarray *out);

/* Loads a mean: a .npy of shape (C, H, W), (H, W) or (C,), or a Caffe
 * .binaryproto (BlobProto with num 1, or shape (1, C, H, W) / (C, H, W)).
 * The result has shape (C, H, W), or (C,) for per-channel values. */
ns_status ns_mean_load(ns_ctx *ctx, const char *path, ns_ndarray *out);
ns_status ns_mean_parse_binaryproto(ns_ctx *ctx, const void *bytes, size_t size, const char *name,
                                    ns_ndarray *out);

/* pycaffe's Transformer.preprocess for one image: resize to the net's
 * input (if its size differs), HWC -> CHW, channel_swap, * raw_scale,
 * - mean, * input_scale. */
#define NS_TRANSFORM_MAX_CHANNELS 16
typedef struct ns_transform {
  int num_swap; /* 0: no channel swap; else channel i <- channel_swap[i] */
  int channel_swap[NS_TRANSFORM_MAX_CHANNELS];
  double raw_scale; /* 1: none */
  /* Mean in the net's channel order and scale: either per-channel values
   * (num_mean_values == channels) or an image (C, H, W), which is resized
   * to the input as Caffe 1.0's Transformer.set_mean did if H x W differ;
   * the array is borrowed. */
  int num_mean_values;
  double mean_values[NS_TRANSFORM_MAX_CHANNELS];
  const ns_ndarray *mean_image;
  double input_scale; /* 1: none */
  int antialias;      /* see ns_image_resize; default 1 */
} ns_transform;
void ns_transform_init(ns_transform *t);
/* Writes channels x height x width floats to out (out_count of room). */
ns_status ns_transform_preprocess(ns_ctx *ctx, const ns_transform *t, const ns_image *im,
                                  int height, int width, float *out, int64_t out_count);
/* Sets t's mean from a mean as ns_mean_load returns it (borrowed, must
 * outlive t): a (C,) mean gives per-channel values; a (C, H, W) image is
 * used whole (mean_image) unless channel_average is set, which gives each
 * channel's average over H x W instead (the later notebooks'
 * mean.mean(1).mean(1)).  Clears any mean t had. */
ns_status ns_transform_set_mean(ns_ctx *ctx, ns_transform *t, const ns_ndarray *mean,
                                int channel_average);
/* The mean image (C, H, W) resized to (C, height, width) as set_mean does
 * (min/max normalisation around caffe.io.resize_image). */
ns_status ns_mean_resize(ns_ctx *ctx, const ns_ndarray *mean, int height, int width, int antialias,
                         ns_ndarray *out);

/* PNG output.  Every writer is atomic: a temporary file next to the target,
 * renamed over it; on error the old file is left intact.  A symlink is
 * followed (its target is replaced, the link stays); a device or FIFO
 * (/dev/stdout, a named pipe) is written in place. */
ns_status ns_png_save_rgb8(ns_ctx *ctx, const char *path, int height, int width,
                           const unsigned char *rgb);

typedef enum ns_colormap {
  NS_COLORMAP_VIRIDIS = 0, /* perceptual: dark blue-violet, teal, green, yellow */
  NS_COLORMAP_HOT = 1,     /* black, red, yellow, white */
  NS_COLORMAP_GREY = 2
} ns_colormap;

typedef struct ns_heatmap_opts {
  int height, width; /* output size; 0: the map's (alone) or the image's (side by side) */
  int bilinear;      /* 0: nearest (each cell a block), 1: bilinear */
  int fixed_range;   /* 1: [lo, hi] maps to [0, 1]; 0: the map's min..max */
  float lo, hi;
  ns_colormap colormap;
  int gap; /* side by side: white pixels between the panels */
  /* side by side: a colour bar labelled with the range's ends and middle,
   * and a caption above it (characters of "0-9 . - + e ( ) p m a x") */
  int colour_bar;
  const char *caption;
} ns_heatmap_opts;
void ns_heatmap_opts_init(ns_heatmap_opts *o);
/* Renders a map_h x map_w float map to out_h x out_w RGB bytes. */
ns_status ns_heatmap_render(ns_ctx *ctx, const float *map, int map_h, int map_w,
                            const ns_heatmap_opts *opts, int out_h, int out_w, unsigned char *rgb);
ns_status ns_heatmap_save_png(ns_ctx *ctx, const char *path, const float *map, int map_h,
                              int map_w, const ns_heatmap_opts *opts);
/* The image (floats in [0, 1], 1 or 3 channels) on the left and the
 * heatmap, at the image's size unless opts says otherwise, on the right. */
ns_status ns_heatmap_save_side_by_side(ns_ctx *ctx, const char *path, const ns_image *image,
                                       const float *map, int map_h, int map_w,
                                       const ns_heatmap_opts *opts);

/* Class labels from a synset_words.txt: one per line, "n01440764 tench,
 * Tinca tinca"; id is the text before the first space, name the text
 * after it (the whole line when it has no space).  CR before LF is
 * dropped; a missing final newline is fine. */
typedef struct ns_labels {
  int count;
  char **ids;
  char **names;
} ns_labels;
ns_status ns_labels_load(ns_ctx *ctx, const char *path, ns_labels *out);
ns_status ns_labels_parse(ns_ctx *ctx, const char *text, size_t size, const char *name,
                          ns_labels *out);
void ns_labels_free(ns_ctx *ctx, ns_labels *labels);

/* What a classifier's probabilities say, per cell of its map (one cell for
 * a plain (N, K) classifier): prob holds classes x cells floats (one image
 * of an (N, K) or (N, K, H, W) blob, class-major as Caffe lays it out).
 * Ties go to the lower class id, as numpy's argmax and a stable sort. */
typedef struct ns_classification {
  int classes, map_h, map_w;
  int k;             /* min(top, classes) */
  int *argmax;       /* cells: the most probable class */
  float *confidence; /* cells: the probability of class_k, or of the argmax */
  int *top;          /* cells x k: class ids by falling probability */
  double *mean;      /* classes: the probability averaged over the cells */
  int *top_mean;     /* k: class ids by falling mean probability */
} ns_classification;
/* class_k < 0: confidence is the argmax's probability.  Arrays come from
 * the ctx allocator; ns_classification_free. */
ns_status ns_classify(ns_ctx *ctx, const float *prob, int classes, int map_h, int map_w, int top,
                      int class_k, ns_classification *out);
void ns_classification_free(ns_ctx *ctx, ns_classification *c);
/* ---- end of images, .npy, preprocessing ---- */

/* ---- detection (the SSD family's DetectionOutput) ---- */

/* One box of a DetectionOutput row in pixels of the image it was found
 * in: the row's normalised corners times the image's width and height
 * (not clipped: the fork's boxes may reach past the border). */
typedef struct ns_detection {
  int label;
  float score;
  float xmin, ymin, xmax, ymax;
} ns_detection;
typedef struct ns_detections {
  int count;
  ns_detection *boxes; /* ctx allocator; ns_detections_free */
} ns_detections;
void ns_detections_free(ns_ctx *ctx, ns_detections *d);

/* The rows of a DetectionOutput blob (1, 1, K, 7: image_id, label,
 * score, xmin, ymin, xmax, ymax) for image `image`, with score >=
 * threshold, in pixels of a width x height image.  The fork's rows of -1
 * (no detection) are skipped.  Errors: a blob that is not (..., 7). */
ns_status ns_detections_read(ns_ctx *ctx, const ns_tensor *rows, int image, int width, int height,
                             float threshold, ns_detections *out);
/* One image through an SSD net: t's preprocessing into blob `input`
 * (resized to that blob's H x W), a forward pass, and the rows of blob
 * `output` (a DetectionOutput top) as ns_detections_read gives them, in
 * pixels of im. */
ns_status ns_detect(ns_ctx *ctx, ns_net *net, int input, int output, const ns_transform *t,
                    const ns_image *im, float threshold, ns_detections *out);
/* im (RGB or grey floats in [0, 1]) with each box outlined in a colour
 * of its label and "label score" written above it, as an 8-bit RGB PNG
 * (atomic, as ns_png_save_rgb8). */
ns_status ns_detections_save_png(ns_ctx *ctx, const char *path, const ns_image *im,
                                 const ns_detections *d);
/* ---- end of detection ---- */

/* ---- datasets: Caffe's LMDB / LevelDB of Datum records ---- */

/* Database backends, numbered as Caffe's DataParameter.DB. */
enum { NS_DB_LEVELDB = 0, NS_DB_LMDB = 1 };

/* Called with records done and the total (also once at the end). */
typedef void (*ns_progress_fn)(void *user, int64_t done, int64_t total);

typedef struct ns_imageset_opts {
  int backend;                     /* NS_DB_LMDB or NS_DB_LEVELDB (set it) */
  int resize_height, resize_width; /* both > 0: cv::resize INTER_LINEAR */
  int grey;                        /* one grey channel (raw records) */
  int shuffle;                     /* shuffle the list (with seed) first */
  uint64_t seed;
  int encoded; /* store the image files' own bytes (no resize allowed) */
  ns_progress_fn progress;
  void *user;
} ns_imageset_opts;

/* Caffe's convert_imageset: each "path label" line of list (root + path)
 * becomes a Datum (raw: BGR or grey bytes, channel-major, as cv::imread
 * gives them; encoded: the file's bytes) under the key "%08d_%s" of its
 * index and path, in a new database at db_path. */
ns_status ns_convert_imageset(ns_ctx *ctx, const char *root, const char *list,
                              const char *db_path, const ns_imageset_opts *opts);
/* Caffe's compute_image_mean: the mean of every Datum of the database
 * (encoded ones decoded in their own colours), written to mean_path as a
 * BlobProto of num 1, channels, height, width. */
ns_status ns_compute_mean(ns_ctx *ctx, const char *db_path, int backend, const char *mean_path,
                          ns_progress_fn progress, void *user);
/* Caffe's extract_features output: a new database at path (backend
 * NS_DB_LMDB or NS_DB_LEVELDB; an existing one is refused) to which each
 * ns_feature_db_put adds one Datum per item (along axis 0) of a blob:
 * float_data the item's values, channels, height and width the blob's
 * axes 1, 2, 3 (1 where it has fewer; a blob of more than 4 axes gives
 * channels = the item's count, height = width = 1), under the key
 * "%010d" of a running index from 0 (Caffe's format_int(i, 10)). */
typedef struct ns_feature_db ns_feature_db;
ns_status ns_feature_db_create(ns_ctx *ctx, const char *path, int backend, ns_feature_db **out);
ns_status ns_feature_db_put(ns_ctx *ctx, ns_feature_db *f, const ns_tensor *blob);
/* Commits and closes (NULL is fine); the records written so far. */
ns_status ns_feature_db_close(ns_ctx *ctx, ns_feature_db *f, int64_t *records);
/* ---- end of datasets ---- */

/* ---- surgery ---- */

/* Params by layer name.  `index` 0 is the weights, 1 the biases (pycaffe's
 * net.params['conv1'][1]).  The view stays valid until the net is
 * destroyed; writing through .data edits the param.  Errors name the layer
 * and the params it has. */
ns_status ns_net_param_by_name(ns_ctx *ctx, ns_net *net, const char *layer, int index,
                               ns_tensor *out);
/* Copies a param out of / into the net, flat in C order; count must be the
 * param's element count. */
ns_status ns_net_param_get(ns_ctx *ctx, ns_net *net, const char *layer, int index, float *out,
                           int64_t count);
ns_status ns_net_param_set(ns_ctx *ctx, ns_net *net, const char *layer, int index,
                           const float *data, int64_t count);
/* The flat offset of an element: n == 1 takes a flat index, n == num_axes
 * a multi-index (fc8[0][2,3] is {2, 3}); negative or out-of-range indices
 * are an error naming the shape. */
ns_status ns_tensor_offset(ns_ctx *ctx, const ns_tensor *t, int n, const int64_t *index,
                           int64_t *offset);

/* Transplant: copies every param of src's layer into dst's layer flat, as
 * pycaffe's `dst.params[b][i].flat = src.params[a][i].flat` (an
 * InnerProduct's (out, c*h*w) weights are the (out, c, h, w) filters of the
 * same memory).  Both layers must have the same number of params and each
 * pair the same element count; otherwise an error naming both shapes.  src
 * may be dst (a copy between two layers of one net). */
ns_status ns_net_copy_params(ns_ctx *ctx, ns_net *dst, const char *dst_layer, ns_net *src,
                             const char *src_layer);
/* The same for every layer with params whose name both nets have;
 * *n_copied (may be NULL) receives the number of layers copied. */
ns_status ns_net_copy_params_by_name(ns_ctx *ctx, ns_net *dst, ns_net *src, int *n_copied);

/* Receptive fields: what one cell of a blob sees of the input, along rows
 * [0] and columns [1].  Cell (i, j) sees input rows offset[0] + i*stride[0]
 * to offset[0] + i*stride[0] + size[0] - 1 (negative or past the edge:
 * padding).  Convolution and pooling kernels, strides, dilation and padding
 * count; an InnerProduct counts as a convolution whose kernel is its whole
 * bottom (the FCN cast's view); element-wise layers keep their bottom's. */
typedef struct ns_receptive_field {
  int known;       /* 0: a layer on the way has no fixed input grid (e.g. Deconvolution) */
  int input;       /* the input blob (index in ns_net_blob) it refers to; -1 if none */
  int64_t size[2]; /* input pixels one cell sees */
  int64_t stride[2];
  int64_t offset[2]; /* first input pixel of cell (0, 0) */
} ns_receptive_field;
/* Fills out[b] for every blob b (ns_net_blob_count entries) at the net's
 * current shapes. */
ns_status ns_net_receptive_fields(ns_ctx *ctx, ns_net *net, ns_receptive_field *out);

/* The FCN cast.  From a built classifier (its definition, the shapes at
 * its current input, its params), a new net where every InnerProduct
 * becomes a Convolution named <name><suffix>, kernel = its bottom's spatial
 * size (1x1 for the later ones, whose bottoms are 1x1 after the cast),
 * stride 1, num_output, bias_term, fillers and param specs kept; its top is
 * renamed too when it was the layer's own name (fc6 -> fc6-conv), and every
 * later consumer (in-place ReLU and Dropout included) rewired.  The first
 * 4-D input gets height x width; then all params are transplanted flat.
 * The result is built at the new size; save it with ns_net_save_prototxt
 * and ns_net_save_weights. */
typedef struct ns_fcn_opts {
  const char *suffix; /* default "-conv" */
  int height, width;  /* new input size; 0 keeps the classifier's */
  int batch;          /* new batch size; 0 keeps it */
  uint64_t seed;      /* fillers of the new net before the transplant */
} ns_fcn_opts;
void ns_fcn_opts_init(ns_fcn_opts *opts);
ns_status ns_fcn_cast(ns_ctx *ctx, ns_net *classifier, const ns_fcn_opts *opts, ns_net **out);

/* What the cells of a dense map cover.  window is the classifier's input
 * (what one cell classifies); stride and the receptive field come from the
 * map blob.  excess = (map - 1) * stride + window - input: 0 when whole
 * windows tile the input, > 0 when the last windows run past the edge
 * (partial windows), < 0 when pixels at the bottom/right are in no window. */
typedef struct ns_fcn_map {
  int64_t input[2], window[2], stride[2], map[2];
  int64_t field[2], offset[2]; /* receptive field with padding (see above) */
  int64_t excess[2];
  int padded; /* the field exceeds the window: near a window's edge a cell sees
                 real neighbours where a crop would see padding */
} ns_fcn_map;
ns_status ns_fcn_map_describe(ns_ctx *ctx, ns_net *fcn, const char *blob, int64_t window_h,
                              int64_t window_w, ns_fcn_map *out);
/* One sentence, e.g. "451 = 227 + 7*32: 8x8 map, whole windows tile the
 * input exactly"; returns buf. */
const char *ns_fcn_map_explain(const ns_fcn_map *m, char *buf, size_t size);
/* The input sizes nearest `size` (below and above, 0 if none) whose windows
 * tile exactly: window + k*stride. */
void ns_fcn_exact_sizes(int64_t size, int64_t window, int64_t stride, int64_t *below,
                        int64_t *above);
/* ---- end of surgery ---- */

/* ---- training: Caffe's solvers ---- */

/* A solver as Caffe's SGDSolver family runs it, from a solver.prototxt:
 * type SGD (momentum), Nesterov, AdaGrad, RMSProp (rms_decay), AdaDelta
 * (momentum, delta), Adam (momentum, momentum2, delta); lr_policy fixed, step, multistep, exp,
 * inv, poly, sigmoid; weight_decay with regularization_type L2 or L1 and
 * each param's decay_mult; clip_gradients; iter_size; each param's
 * lr_mult; test nets (test_iter, test_interval, test_initialization)
 * whose params are copied by layer name from the train net before each
 * test; snapshot / snapshot_prefix (<prefix>_iter_N.caffemodel and
 * <prefix>_iter_N.solverstate in Caffe's SolverState format); random_seed.
 * Nets come from net / net_param / train_net / train_net_param /
 * test_net / test_net_param, paths relative to the working directory (as
 * Caffe's).  Deterministic for a seed with one thread.  The library does
 * not print: progress comes through the event callback. */
typedef struct ns_solver ns_solver;

typedef enum ns_solver_event_kind {
  NS_SOLVER_DISPLAY = 0, /* every `display` iterations: loss (smoothed), rate */
  NS_SOLVER_TEST = 1,    /* after each test: the test net's outputs, averaged */
  NS_SOLVER_SNAPSHOT = 2 /* after a snapshot: path and state_path */
} ns_solver_event_kind;

typedef struct ns_solver_event {
  ns_solver_event_kind kind;
  int iter;   /* the iteration just run (DISPLAY), or the solver's count */
  float loss; /* DISPLAY: smoothed over average_loss iterations; TEST: mean
                 loss when test_compute_loss */
  float rate; /* DISPLAY: the learning rate of that iteration */
  int test_net;
  /* TEST: each element of each output blob (blobs no layer reads), by name */
  int n_outputs;
  const char *const *output_names;
  const float *output_values;
  const char *path, *state_path; /* SNAPSHOT */
} ns_solver_event;

typedef void (*ns_solver_event_fn)(void *user, const ns_solver_event *ev);

typedef struct ns_solver_opts {
  int64_t seed;        /* >= 0 overrides random_seed; -1 (default) keeps it */
  const char *weights; /* caffemodel to fine-tune from (by layer name); NULL: fillers */
  ns_solver_event_fn on_event;
  void *user;
  /* Polled after every iteration: non-zero stops the run (a snapshot is
   * written, ns_solver_stopped says so).  A signal handler may set it. */
  volatile int *stop;
  /* NULL (default): the update rule the file's `type` names (Caffe's
   * get_solver).  Else this rule whatever the file says ("SGD", "Adam",
   * ...), as pycaffe's solver classes: caffe.SGDSolver(path) is SGD. */
  const char *type;
} ns_solver_opts;
void ns_solver_opts_init(ns_solver_opts *o);

ns_status ns_solver_create(ns_ctx *ctx, const char *solver_prototxt, const ns_solver_opts *opts,
                           ns_solver **out);
void ns_solver_destroy(ns_solver *s);
/* Resumes from a .solverstate: iteration, lr step, history blobs, and the
 * params of the caffemodel it names (learned_net). */
ns_status ns_solver_restore(ns_ctx *ctx, ns_solver *s, const char *solverstate);
/* Caffe's Solver::Solve: steps to max_iter, snapshots at the end
 * (snapshot_after_train), tests if test_interval divides max_iter. */
ns_status ns_solver_solve(ns_ctx *ctx, ns_solver *s);
/* Caffe's Solver::Step: `iters` iterations of clear diffs, (test when due),
 * iter_size x forward + backward, update, (snapshot when due). */
ns_status ns_solver_step(ns_ctx *ctx, ns_solver *s, int iters);
/* One update from the param diffs already in the train net (clip, scale
 * by 1/iter_size, weight decay, the rule, data -= update), then iter + 1:
 * what each step does after its backward passes. */
ns_status ns_solver_apply_update(ns_ctx *ctx, ns_solver *s);
ns_status ns_solver_test_all(ns_ctx *ctx, ns_solver *s);
/* Writes <prefix>_iter_N.caffemodel and .solverstate now. */
ns_status ns_solver_snapshot(ns_ctx *ctx, ns_solver *s);

int ns_solver_iter(const ns_solver *s);
int ns_solver_max_iter(const ns_solver *s);
int ns_solver_stopped(const ns_solver *s);
uint64_t ns_solver_seed(const ns_solver *s);
/* The learning rate the next update will use. */
float ns_solver_learning_rate(const ns_solver *s);
/* Images per iteration: the train net's first data top's batch x iter_size. */
int64_t ns_solver_batch_images(const ns_solver *s);
ns_net *ns_solver_net(ns_solver *s);
int ns_solver_test_net_count(const ns_solver *s);
ns_net *ns_solver_test_net(ns_solver *s, int i);
/* ---- end of training ---- */

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
