/* netsurg classify: pycaffe's preprocessing, one forward pass per image,
 * and the classification (map) printed as the seed prints it. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/classify_json.h"
#include "tools/classify_stream.h"
#include "tools/cli.h"
#include "tools/cli_preprocess.h"
#include "tools/cli_surgery.h"

static const char *classify_help =
    "usage: netsurg classify NET WEIGHTS IMAGE... [--mean-file F] [--channel-mean]\n"
    "         [--mean B,G,R] [--channel-swap 2,1,0] [--raw-scale 255] [--input-scale S]\n"
    "         [--labels synset_words.txt] [--top K] [--channel C] [--heatmap OUT.png]\n"
    "         [--save-input IN.npy] [--json] [--blob NAME] [--no-antialias] [--threads N]\n"
    "         [--allow-unknown]\n\n"
    "Classify JPEG or PNG images with pycaffe's preprocessing: caffe.io.load_image (RGB\n"
    "floats in [0, 1]; grey for 1-channel nets), then Transformer.preprocess: resize to\n"
    "the net's input (bilinear, as caffe.io.resize_image), HWC -> CHW, channel swap,\n"
    "raw scale, mean, input scale. A fully convolutional net (netsurg fcn) gives a map:\n"
    "the argmax at every cell is printed as the seed prints it.\n\n"
    "  --mean-file F       mean image, .npy (C,H,W) or (C,) or .binaryproto, in the net's\n"
    "                      channel order and scale (ilsvrc_2012_mean.npy); resized to the\n"
    "                      input as Caffe 1.0's set_mean did\n"
    "  --channel-mean      use the mean file's per-channel average (the later notebook)\n"
    "  --mean B,G,R        per-channel mean values in the net's channel order\n"
    "  --channel-swap L    channel order after the transpose (default 2,1,0 for 3-channel\n"
    "                      nets: RGB -> BGR, as Caffe's classify.py; 'none' to keep RGB)\n"
    "  --raw-scale S       multiply the [0, 1] image by S (default 255, as classify.py)\n"
    "  --input-scale S     multiply after the mean is subtracted (default 1)\n"
    "  --labels F          class names, one per line (synset_words.txt)\n"
    "  --top K             top classes to show (default 5)\n"
    "  --channel C         confidence = channel C of the blob: class C's probability, or\n"
    "                      any map of --blob NAME (default: max over channels);\n"
    "                      --class C is the same\n"
    "  --heatmap OUT.png   the input (resized as the net sees it) beside the confidence\n"
    "                      map scaled to it, with a colour bar\n"
    "  --save-input F.npy  the exact input blob (1, C, H, W), float32\n"
    "  --json              one JSON object per image (one per line): argmax and\n"
    "                      confidence (H x W lists; 1 x 1 for a plain classifier),\n"
    "                      top-k per cell, top-k over the map\n"
    "  --blob NAME         the output blob (default: the net's last output, e.g. prob)\n"
    "  --no-antialias      resize without the Gaussian pre-smoothing that scikit-image\n"
    "                      >= 0.15 applies when shrinking (as Caffe's authors ran it)\n"
    "  --threads N         compute threads (default: all cores)\n\n"
    "With several images, OUT.png and F.npy get -1, -2, ... before the extension.\n"
    "No mean is subtracted unless given: ImageNet models want --mean 104,117,123 or\n"
    "--mean-file ilsvrc_2012_mean.npy [--channel-mean].\n" CLASSIFY_STREAM_HELP
        CLI_ALLOW_UNKNOWN_HELP;

#define MAX_TOP 1000

typedef struct classify_args {
  const char *net, *weights, *labels, *heatmap, *save_input, *blob;
  char **images;
  int n_images, json, top, class_k, allow_unknown;
  cli_preprocess pre;
  classify_stream_opts stream;
  unsigned long long threads;
} classify_args;

static int parse_option(int c, const char *arg, classify_args *a) {
  unsigned long long v;
  int rc = cli_preprocess_option("classify", c, arg, &a->pre);
  if (rc != CLI_PREPROCESS_NOT_MINE) return rc;
  rc = classify_stream_option(c, arg, &a->stream);
  if (rc != CLASSIFY_STREAM_NOT_MINE) return rc;
  switch (c) {
    case 'l':
      a->labels = arg;
      return 0;
    case 't':
      if (cli_parse_u64("classify", "--top", arg, &v)) return NS_ERR_USAGE;
      if (v < 1 || v > MAX_TOP) return cli_usage_error("classify", "--top: 1 to %d", MAX_TOP);
      a->top = (int)v;
      return 0;
    case 'k':
      if (cli_parse_u64("classify", "--channel", arg, &v)) return NS_ERR_USAGE;
      if (v > 1000000000) return cli_usage_error("classify", "--channel: too large");
      a->class_k = (int)v;
      return 0;
    case 'H':
      a->heatmap = arg;
      return 0;
    case 's':
      a->save_input = arg;
      return 0;
    case 'j':
      a->json = 1;
      return 0;
    case 'b':
      a->blob = arg;
      return 0;
    case 'T':
      return cli_parse_u64("classify", "--threads", arg, &a->threads);
    case 'u':
      a->allow_unknown = 1;
      return 0;
    default:
      return cli_usage_error("classify", "bad option");
  }
}

static int parse_classify(int argc, char **argv, classify_args *a) {
  static const struct option longopts[] = {CLI_PREPROCESS_LONGOPTS,
                                           {"labels", required_argument, 0, 'l'},
                                           {"top", required_argument, 0, 't'},
                                           {"channel", required_argument, 0, 'k'},
                                           {"class", required_argument, 0, 'k'},
                                           {"heatmap", required_argument, 0, 'H'},
                                           {"save-input", required_argument, 0, 's'},
                                           {"json", no_argument, 0, 'j'},
                                           {"blob", required_argument, 0, 'b'},
                                           CLI_PREPROCESS_NO_ANTIALIAS,
                                           {"threads", required_argument, 0, 'T'},
                                           {"allow-unknown", no_argument, 0, 'u'},
                                           CLASSIFY_STREAM_LONGOPTS,
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  memset(a, 0, sizeof *a);
  cli_preprocess_init(&a->pre);
  classify_stream_init(&a->stream);
  a->pre.check_mean_channels = 1;
  a->top = 5;
  a->class_k = -1;
  int c, rc;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (c == 'h') {
      fputs(classify_help, stdout);
      return -1;
    }
    if ((rc = parse_option(c, optarg, a)) != 0) return rc;
  }
  if (argc - optind < (a->stream.list ? 2 : 3))
    return cli_usage_error("classify", "expected NET WEIGHTS IMAGE... (or --list FILE)");
  if ((rc = cli_preprocess_check("classify", &a->pre)) != 0) return rc;
  a->net = argv[optind];
  a->weights = argv[optind + 1];
  a->images = argv + optind + 2;
  a->n_images = argc - optind - 2;
  return 0;
}

/* ---- the transformer -------------------------------------------------- */

typedef struct session {
  classify_args *a;
  ns_ctx *ctx;
  ns_net *net;
  int input, output, channels, height, width;
  ns_transform tf;
  ns_ndarray mean;
  ns_labels labels;
  int have_labels;
} session;

static int setup_transform(session *s) {
  return cli_preprocess_transform(s->ctx, "classify", &s->a->pre, s->channels, &s->tf, &s->mean);
}

/* ---- the net ---------------------------------------------------------- */

static int setup_net(session *s) {
  classify_args *a = s->a;
  ns_net_opts opts = cli_net_opts(a->weights, 1);
  /* Without --blob or --save-blob only the last output is read:
   * intermediates may share storage.  Those two may name an intermediate,
   * which needs its own. */
  int reads_any_blob = a->blob || a->stream.save_blob;
  if ((reads_any_blob ? ns_net_load : ns_net_load_reusing)(s->ctx, a->net, &opts, &s->net) != NS_OK)
    return cli_fail(s->ctx, "classify");
  s->input = cli_image_input(s->net);
  if (s->input < 0) return cli_usage_error("classify", "%s has no (N, C, H, W) input", a->net);
  ns_tensor in = ns_net_blob(s->net, s->input);
  s->channels = (int)in.shape[1];
  s->height = (int)in.shape[2];
  s->width = (int)in.shape[3];
  if (s->channels != 1 && s->channels != 3)
    return cli_usage_error("classify", "input '%s' has %d channels; images give 1 or 3", in.name,
                           s->channels);
  int64_t shape[4] = {1, s->channels, s->height, s->width};
  if (ns_net_reshape_input(s->ctx, s->net, in.name, 4, shape) != NS_OK)
    return cli_fail(s->ctx, "classify");
  if (a->blob) {
    s->output = ns_net_find_blob(s->net, a->blob);
    if (s->output < 0) return cli_usage_error("classify", "no blob named '%s' in the net", a->blob);
  } else {
    s->output = cli_last_output(s->net);
    if (s->output < 0) return cli_usage_error("classify", "the net has no output blob");
  }
  ns_tensor out = ns_net_blob(s->net, s->output);
  if (out.num_axes != 2 && out.num_axes != 4)
    return cli_usage_error("classify", "blob '%s' is neither (N, K) nor (N, K, H, W)", out.name);
  if (a->class_k >= out.shape[1])
    return cli_usage_error("classify", "--channel %d: '%s' has %lld classes (channels 0 to %lld)",
                           a->class_k, out.name, (long long)out.shape[1],
                           (long long)out.shape[1] - 1);
  return 0;
}

static int setup_labels(session *s) {
  if (!s->a->labels) return 0;
  if (ns_labels_load(s->ctx, s->a->labels, &s->labels) != NS_OK)
    return cli_fail(s->ctx, "classify");
  s->have_labels = 1;
  ns_tensor out = ns_net_blob(s->net, s->output);
  if (s->labels.count != out.shape[1])
    fprintf(stderr, "netsurg classify: warning: %s has %d labels, '%s' has %lld classes\n",
            s->a->labels, s->labels.count, out.name, (long long)out.shape[1]);
  return 0;
}

/* ---- results ---------------------------------------------------------- */

typedef ns_classification result;

/* image 0 of the batch */
static float prob_at(const session *s, int cls, int cell) {
  ns_tensor out = ns_net_blob(s->net, s->output);
  int64_t cells = out.num_axes == 4 ? out.shape[2] * out.shape[3] : 1;
  return out.data[(int64_t)cls * cells + cell];
}

static int compute_result(session *s, result *r) {
  ns_tensor out = ns_net_blob(s->net, s->output);
  int map_h = out.num_axes == 4 ? (int)out.shape[2] : 1;
  int map_w = out.num_axes == 4 ? (int)out.shape[3] : 1;
  if (ns_classify(s->ctx, out.data, (int)out.shape[1], map_h, map_w, s->a->top, s->a->class_k, r) !=
      NS_OK)
    return cli_fail(s->ctx, "classify");
  return 0;
}

static const char *label_name(const session *s, int c) {
  return s->have_labels && c < s->labels.count ? s->labels.names[c] : NULL;
}

/* numpy's layout: "[[282 282 281]\n [281 283 283]]", columns as wide as
 * the widest number. */
static void print_argmax(const result *r) {
  int width = 1;
  for (int i = 0; i < r->map_h * r->map_w; i++) {
    int w = snprintf(NULL, 0, "%d", r->argmax[i]);
    if (w > width) width = w;
  }
  for (int y = 0; y < r->map_h; y++) {
    printf(y ? " [" : "[[");
    for (int x = 0; x < r->map_w; x++)
      printf(x ? " %*d" : "%*d", width, r->argmax[y * r->map_w + x]);
    printf(y == r->map_h - 1 ? "]]\n" : "]\n");
  }
}

static void print_confidence(const result *r) {
  for (int y = 0; y < r->map_h; y++) {
    printf(y ? " [" : "[[");
    for (int x = 0; x < r->map_w; x++)
      printf(x ? " %.3f" : "%.3f", (double)r->confidence[y * r->map_w + x]);
    printf(y == r->map_h - 1 ? "]]\n" : "]\n");
  }
}

static void print_human(const session *s, const result *r, const char *image) {
  ns_tensor out = ns_net_blob(s->net, s->output);
  printf("%s: %s ", image, out.name);
  cli_print_tensor_shape(stdout, &out);
  int cells = r->map_h * r->map_w;
  if (cells == 1) {
    printf("\n");
    for (int i = 0; i < r->k; i++) {
      int c = r->top[i];
      const char *name = label_name(s, c);
      printf("  %4d  %.4f%s%s\n", c, (double)prob_at(s, c, 0), name ? "  " : "", name ? name : "");
    }
    return;
  }
  printf(": %dx%d map\nargmax:\n", r->map_h, r->map_w);
  print_argmax(r);
  if (s->a->class_k >= 0)
    printf("probability of class %d:\n", s->a->class_k);
  else
    printf("confidence (max probability):\n");
  print_confidence(r);
  printf("top %d over the map (mean probability, cells where it is the argmax):\n", r->k);
  for (int i = 0; i < r->k; i++) {
    int c = r->top_mean[i], wins = 0;
    for (int cell = 0; cell < cells; cell++) wins += r->argmax[cell] == c;
    const char *name = label_name(s, c);
    printf("  %4d  %.4f  %3d cells%s%s\n", c, r->mean[c], wins, name ? "  " : "", name ? name : "");
  }
}

static void print_json(const session *s, const result *r, const char *image) {
  ns_tensor out = ns_net_blob(s->net, s->output);
  classify_json j = {.blob = out.name,
                     .num_axes = out.num_axes,
                     .class_k = s->a->class_k,
                     .labels = s->have_labels ? &s->labels : NULL};
  for (int i = 0; i < out.num_axes; i++) j.shape[i] = out.shape[i];
  classify_json_write(stdout, &j, image, r, out.data);
}

/* ---- one image -------------------------------------------------------- */

/* OUT.png -> OUT-3.png for image 3 of several. */
static char *numbered(const char *path, int index, int n_images) {
  size_t len = strlen(path) + 24;
  char *p = malloc(len);
  if (!p) return NULL;
  if (n_images == 1) {
    snprintf(p, len, "%s", path);
    return p;
  }
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  if (!dot || (slash && dot < slash)) dot = path + strlen(path);
  snprintf(p, len, "%.*s-%d%s", (int)(dot - path), path, index + 1, dot);
  return p;
}

/* Small inputs (a 28x28 digit net's map) are drawn larger, so the figure
 * can be read: at least this many rows, by a whole factor. */
enum { HEATMAP_MIN_ROWS = 256 };

static int save_heatmap(session *s, const ns_image *im, const result *r, const char *path) {
  /* The input as the net sees it (its size), enlarged when small. */
  int zoom = (HEATMAP_MIN_ROWS + s->height - 1) / s->height;
  int h = s->height * zoom, w = s->width * zoom;
  ns_image view = *im, resized = {0};
  if (im->height != h || im->width != w) {
    if (ns_image_resize(s->ctx, im, h, w, s->tf.antialias, &resized) != NS_OK)
      return cli_fail(s->ctx, "classify");
    view = resized;
  }
  char caption[32];
  if (s->a->class_k >= 0)
    snprintf(caption, sizeof caption, "p(%d)", s->a->class_k);
  else
    snprintf(caption, sizeof caption, "max p");
  ns_heatmap_opts o;
  ns_heatmap_opts_init(&o);
  o.gap = 12;
  o.colour_bar = 1;
  o.caption = caption;
  ns_status st =
      ns_heatmap_save_side_by_side(s->ctx, path, &view, r->confidence, r->map_h, r->map_w, &o);
  ns_image_free(s->ctx, &resized);
  return st == NS_OK ? 0 : cli_fail(s->ctx, "classify");
}

static int write_extras(session *s, const ns_image *im, const result *r, int index) {
  classify_args *a = s->a;
  int rc = 0;
  if (a->save_input) {
    char *path = numbered(a->save_input, index, a->n_images);
    ns_tensor in = ns_net_blob(s->net, s->input);
    if (!path)
      rc = NS_ERR_NOMEM;
    else if (ns_npy_save_f32(s->ctx, path, in.num_axes, in.shape, in.data) != NS_OK)
      rc = cli_fail(s->ctx, "classify");
    free(path);
  }
  if (!rc && a->heatmap) {
    char *path = numbered(a->heatmap, index, a->n_images);
    rc = path ? save_heatmap(s, im, r, path) : NS_ERR_NOMEM;
    if (!rc && !a->json) printf("heatmap: %s\n", path);
    free(path);
  }
  return rc;
}

static int classify_one(session *s, int index) {
  const char *path = s->a->images[index];
  ns_image im;
  ns_tensor in = ns_net_blob(s->net, s->input);
  if (ns_image_load(s->ctx, path, s->channels == 1 ? NS_IMAGE_GREY : 0, &im) != NS_OK)
    return cli_fail(s->ctx, "classify");
  int rc = 0;
  result r;
  memset(&r, 0, sizeof r);
  if (ns_transform_preprocess(s->ctx, &s->tf, &im, s->height, s->width, in.data, in.count) !=
          NS_OK ||
      ns_net_forward(s->ctx, s->net) != NS_OK) {
    fprintf(stderr, "netsurg classify: %s:\n", path);
    rc = cli_fail(s->ctx, "classify");
  } else if ((rc = compute_result(s, &r)) == 0) {
    if (s->a->json)
      print_json(s, &r, path);
    else
      print_human(s, &r, path);
    rc = write_extras(s, &im, &r, index);
  }
  ns_classification_free(s->ctx, &r);
  ns_image_free(s->ctx, &im);
  fflush(stdout);
  return rc;
}

/* Many images: classify_stream.c takes over the loaded net. */
static int run_stream(session *s) {
  if (s->a->heatmap || s->a->save_input)
    return cli_usage_error("classify", "--heatmap and --save-input are for named images only");
  classify_stream_model m = {.ctx = s->ctx,
                             .net = s->net,
                             .input = s->input,
                             .output = s->output,
                             .channels = s->channels,
                             .height = s->height,
                             .width = s->width,
                             .top = s->a->top,
                             .tf = &s->tf};
  ns_tensor out = ns_net_blob(s->net, s->output);
  m.json = (classify_json){.blob = out.name,
                           .num_axes = out.num_axes,
                           .class_k = s->a->class_k,
                           .labels = s->have_labels ? &s->labels : NULL};
  for (int i = 0; i < out.num_axes; i++) m.json.shape[i] = out.shape[i];
  return classify_stream_run(&s->a->stream, &m, s->a->images, s->a->n_images);
}

int cmd_classify(int argc, char **argv) {
  classify_args a;
  int rc = parse_classify(argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  session s;
  memset(&s, 0, sizeof s);
  s.a = &a;
  s.ctx = cli_ctx(a.allow_unknown, (int)(a.threads > 1024 ? 1024 : a.threads));
  if (!(rc = setup_net(&s)) && !(rc = setup_transform(&s)) && !(rc = setup_labels(&s))) {
    if (!a.pre.n_mean && !a.pre.mean_file)
      fprintf(stderr,
              "netsurg classify: note: no mean subtracted (ImageNet models: --mean "
              "104,117,123 or --mean-file ilsvrc_2012_mean.npy)\n");
    if (classify_stream_wanted(&a.stream, a.images, a.n_images)) {
      rc = run_stream(&s);
      goto done;
    }
    /* A bad image is reported and skipped; the exit code is the first error. */
    int progress = a.n_images > 1 && isatty(STDERR_FILENO);
    for (int i = 0; i < a.n_images; i++) {
      if (progress) fprintf(stderr, "\r[%d/%d] %s\033[K", i + 1, a.n_images, a.images[i]);
      int one = classify_one(&s, i);
      if (one && !rc) rc = one;
      ns_ctx_clear_error(s.ctx);
      if (!a.json && i + 1 < a.n_images) printf("\n");
    }
    if (progress) fprintf(stderr, "\r\033[K");
  }
done:
  if (s.have_labels) ns_labels_free(s.ctx, &s.labels);
  ns_ndarray_free(s.ctx, &s.mean);
  ns_net_destroy(s.net);
  ns_ctx_destroy(s.ctx);
  return rc;
}
