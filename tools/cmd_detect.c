/* netsurg detect: an SSD-family net (its DetectionOutput) on images, with
 * classify's preprocessing; the boxes printed in image pixels (or JSON)
 * and drawn on the image.  The work is ns_detect and
 * ns_detections_save_png; this file parses and prints. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cli_preprocess.h"
#include "tools/cli_surgery.h"

static const char *detect_help =
    "usage: netsurg detect NET WEIGHTS IMAGE... [--threshold T] [--labels L]\n"
    "         [--out boxes.png] [--json] [--mean B,G,R] [--mean-file F] [--channel-mean]\n"
    "         [--channel-swap 2,1,0] [--raw-scale 255] [--input-scale S] [--size HxW]\n"
    "         [--blob NAME] [--no-antialias] [--threads N] [--allow-unknown]\n\n"
    "Run an SSD-family net (Wei Liu's fork: PriorBox, DetectionOutput) on JPEG or PNG\n"
    "images and report the boxes of its DetectionOutput in the image's pixels, each\n"
    "with its label and score. Preprocessing as classify's: RGB in [0, 1], resized to\n"
    "the net's input, HWC -> CHW, channel swap, raw scale, mean, input scale.\n\n"
    "  --threshold T       keep boxes scoring at least T (default 0.5)\n"
    "  --labels L          class names, one per line, line i for label i\n"
    "  --out boxes.png     the image with the boxes drawn and 'label score' above each\n"
    "  --json              one JSON object per image: width, height, boxes\n"
    "  --mean B,G,R        per-channel mean in the net's channel order (the face\n"
    "                      detector: 104,177,123; MobileNet-SSD: 127.5,127.5,127.5\n"
    "                      with --input-scale 0.007843)\n"
    "  --mean-file F       mean image or values (.npy or .binaryproto)\n"
    "  --channel-mean      the mean file's per-channel average\n"
    "  --channel-swap L    channel order after the transpose (default 2,1,0: RGB -> BGR;\n"
    "                      'none' keeps RGB)\n"
    "  --raw-scale S       multiply the [0, 1] image by S (default 255)\n"
    "  --input-scale S     multiply after the mean is subtracted (default 1)\n"
    "  --size HxW          reshape the net's input to H x W first (default: its own)\n"
    "  --blob NAME         the DetectionOutput top (default: the net's last output)\n"
    "  --no-antialias      resize without the Gaussian pre-smoothing\n"
    "  --threads N         compute threads (default: all cores)\n\n"
    "With several images, boxes.png gets -1, -2, ... before the extension.\n";

typedef struct detect_args {
  const char *net, *weights, *labels, *out, *blob;
  char **images;
  int n_images, json, allow_unknown, height, width;
  cli_preprocess pre;
  double threshold;
  unsigned long long threads;
} detect_args;

static int parse_option(int c, const char *arg, detect_args *a) {
  int rc = cli_preprocess_option("detect", c, arg, &a->pre);
  if (rc != CLI_PREPROCESS_NOT_MINE) return rc;
  switch (c) {
    case 'x':
      return cli_parse_double("detect", "--threshold", arg, &a->threshold);
    case 'S':
      return cli_parse_size("detect", "--size", arg, &a->height, &a->width);
    case 'l':
      a->labels = arg;
      return 0;
    case 'o':
      a->out = arg;
      return 0;
    case 'j':
      a->json = 1;
      return 0;
    case 'b':
      a->blob = arg;
      return 0;
    case 'T':
      return cli_parse_u64("detect", "--threads", arg, &a->threads);
    case 'u':
      a->allow_unknown = 1;
      return 0;
    default:
      return cli_usage_error("detect", "bad option");
  }
}

static int parse_detect(int argc, char **argv, detect_args *a) {
  static const struct option longopts[] = {CLI_PREPROCESS_LONGOPTS,
                                           {"threshold", required_argument, 0, 'x'},
                                           {"size", required_argument, 0, 'S'},
                                           {"labels", required_argument, 0, 'l'},
                                           {"out", required_argument, 0, 'o'},
                                           {"json", no_argument, 0, 'j'},
                                           {"blob", required_argument, 0, 'b'},
                                           CLI_PREPROCESS_NO_ANTIALIAS,
                                           {"threads", required_argument, 0, 'T'},
                                           {"allow-unknown", no_argument, 0, 'u'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  memset(a, 0, sizeof *a);
  cli_preprocess_init(&a->pre);
  a->threshold = 0.5;
  int c, rc;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (c == 'h') {
      fputs(detect_help, stdout);
      return -1;
    }
    if ((rc = parse_option(c, optarg, a)) != 0) return rc;
  }
  if (argc - optind < 3) return cli_usage_error("detect", "expected NET WEIGHTS IMAGE...");
  if ((rc = cli_preprocess_check("detect", &a->pre)) != 0) return rc;
  a->net = argv[optind];
  a->weights = argv[optind + 1];
  a->images = argv + optind + 2;
  a->n_images = argc - optind - 2;
  return 0;
}

typedef struct session {
  detect_args *a;
  ns_ctx *ctx;
  ns_net *net;
  int input, output, channels;
  ns_transform tf;
  ns_ndarray mean;
  ns_labels labels;
  int have_labels;
} session;

static int setup_net(session *s) {
  detect_args *a = s->a;
  ns_net_opts opts = cli_net_opts(a->weights, 1);
  if (ns_net_load(s->ctx, a->net, &opts, &s->net) != NS_OK) return cli_fail(s->ctx, "detect");
  s->input = cli_image_input(s->net);
  if (s->input < 0) return cli_usage_error("detect", "%s has no (N, C, H, W) input", a->net);
  ns_tensor in = ns_net_blob(s->net, s->input);
  s->channels = (int)in.shape[1];
  if (s->channels != 1 && s->channels != 3)
    return cli_usage_error("detect", "input '%s' has %d channels; images give 1 or 3", in.name,
                           s->channels);
  int64_t shape[4] = {1, s->channels, a->height ? a->height : in.shape[2],
                      a->width ? a->width : in.shape[3]};
  if (ns_net_reshape_input(s->ctx, s->net, in.name, 4, shape) != NS_OK)
    return cli_fail(s->ctx, "detect");
  s->output = a->blob ? ns_net_find_blob(s->net, a->blob) : cli_last_output(s->net);
  if (s->output < 0)
    return cli_usage_error("detect", a->blob ? "no blob named '%s' in the net" : "no output blob%s",
                           a->blob ? a->blob : "");
  ns_tensor out = ns_net_blob(s->net, s->output);
  if (out.num_axes < 1 || out.shape[out.num_axes - 1] != 7)
    return cli_usage_error("detect", "blob '%s' is not a DetectionOutput's (..., 7) rows",
                           out.name);
  return 0;
}

static int setup_transform(session *s) {
  detect_args *a = s->a;
  int rc = cli_preprocess_transform(s->ctx, "detect", &a->pre, s->channels, &s->tf, &s->mean);
  if (rc) return rc;
  if (a->labels) {
    if (ns_labels_load(s->ctx, a->labels, &s->labels) != NS_OK) return cli_fail(s->ctx, "detect");
    s->have_labels = 1;
  }
  return 0;
}

static const char *label_name(const session *s, int label) {
  return s->have_labels && label >= 0 && label < s->labels.count ? s->labels.names[label] : NULL;
}

static void print_boxes(const session *s, const char *image, const ns_image *im,
                        const ns_detections *d) {
  if (s->a->json) {
    printf("{\"image\": ");
    cli_json_string(stdout, image);
    printf(", \"width\": %d, \"height\": %d, \"boxes\": [", im->width, im->height);
  } else {
    printf("%s: %d box%s (%dx%d)\n", image, d->count, d->count == 1 ? "" : "es", im->width,
           im->height);
  }
  for (int i = 0; i < d->count; i++) {
    const ns_detection *b = &d->boxes[i];
    const char *name = label_name(s, b->label);
    if (!s->a->json) {
      printf("  %4d  %.4f  (%.1f, %.1f) - (%.1f, %.1f)%s%s\n", b->label, (double)b->score,
             (double)b->xmin, (double)b->ymin, (double)b->xmax, (double)b->ymax, name ? "  " : "",
             name ? name : "");
      continue;
    }
    printf("%s{\"label\": %d, ", i ? ", " : "", b->label);
    if (name) {
      printf("\"name\": ");
      cli_json_string(stdout, name);
      printf(", ");
    }
    printf("\"score\": %.6g, \"box\": [%.6g, %.6g, %.6g, %.6g]}", (double)b->score, (double)b->xmin,
           (double)b->ymin, (double)b->xmax, (double)b->ymax);
  }
  if (s->a->json) printf("]}\n");
}

/* OUT.png -> OUT-3.png for image 3 of several. */
static char *numbered(const char *path, int index, int n_images) {
  size_t len = strlen(path) + 24;
  char *p = malloc(len);
  if (!p) return NULL;
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  if (!dot || (slash && dot < slash)) dot = path + strlen(path);
  if (n_images == 1)
    snprintf(p, len, "%s", path);
  else
    snprintf(p, len, "%.*s-%d%s", (int)(dot - path), path, index + 1, dot);
  return p;
}

static int detect_one(session *s, int index) {
  const char *path = s->a->images[index];
  ns_image im;
  if (ns_image_load(s->ctx, path, s->channels == 1 ? NS_IMAGE_GREY : 0, &im) != NS_OK)
    return cli_fail(s->ctx, "detect");
  ns_detections d;
  int rc = 0;
  if (ns_detect(s->ctx, s->net, s->input, s->output, &s->tf, &im, (float)s->a->threshold, &d) !=
      NS_OK) {
    fprintf(stderr, "netsurg detect: %s:\n", path);
    rc = cli_fail(s->ctx, "detect");
  } else {
    print_boxes(s, path, &im, &d);
    if (s->a->out) {
      char *png = numbered(s->a->out, index, s->a->n_images);
      if (!png)
        rc = NS_ERR_NOMEM;
      else if (ns_detections_save_png(s->ctx, png, &im, &d) != NS_OK)
        rc = cli_fail(s->ctx, "detect");
      else if (!s->a->json)
        printf("boxes drawn: %s\n", png);
      free(png);
    }
  }
  ns_detections_free(s->ctx, &d);
  ns_image_free(s->ctx, &im);
  fflush(stdout);
  return rc;
}

int cmd_detect(int argc, char **argv) {
  detect_args a;
  int rc = parse_detect(argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  session s;
  memset(&s, 0, sizeof s);
  s.a = &a;
  s.ctx = cli_ctx(a.allow_unknown, (int)(a.threads > 1024 ? 1024 : a.threads));
  if (!(rc = setup_net(&s)) && !(rc = setup_transform(&s))) {
    /* A bad image is reported and skipped; the exit code is the first error. */
    for (int i = 0; i < a.n_images; i++) {
      int one = detect_one(&s, i);
      if (one && !rc) rc = one;
      ns_ctx_clear_error(s.ctx);
    }
  }
  if (s.have_labels) ns_labels_free(s.ctx, &s.labels);
  ns_ndarray_free(s.ctx, &s.mean);
  ns_net_destroy(s.net);
  ns_ctx_destroy(s.ctx);
  return rc;
}
