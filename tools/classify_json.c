/* classify's JSON line; see classify_json.h. */
#include "tools/classify_json.h"

#include "tools/cli.h"

static const char *label_name(const classify_json *j, int c) {
  return j->labels && c < j->labels->count ? j->labels->names[c] : NULL;
}

static void json_class(FILE *f, const classify_json *j, int c, double p, const char *key) {
  fprintf(f, "{\"class\": %d, \"%s\": %.6g", c, key, p);
  const char *name = label_name(j, c);
  if (name) {
    fprintf(f, ", \"label\": ");
    cli_json_string(f, name);
  }
  fprintf(f, "}");
}

static void json_matrix(FILE *f, const ns_classification *r, int ints) {
  fprintf(f, "[");
  for (int y = 0; y < r->map_h; y++) {
    fprintf(f, y ? ", [" : "[");
    for (int x = 0; x < r->map_w; x++) {
      int i = y * r->map_w + x;
      if (ints)
        fprintf(f, x ? ", %d" : "%d", r->argmax[i]);
      else
        fprintf(f, x ? ", %.6g" : "%.6g", (double)r->confidence[i]);
    }
    fprintf(f, "]");
  }
  fprintf(f, "]");
}

static void json_top(FILE *f, const classify_json *j, const ns_classification *r,
                     const float *prob) {
  int64_t cells = (int64_t)r->map_h * r->map_w;
  for (int y = 0; y < r->map_h; y++) {
    fprintf(f, y ? ", [" : "[");
    for (int x = 0; x < r->map_w; x++) {
      int cell = y * r->map_w + x;
      fprintf(f, x ? ", [" : "[");
      for (int i = 0; i < r->k; i++) {
        int c = r->top[(int64_t)cell * r->k + i];
        if (i) fprintf(f, ", ");
        json_class(f, j, c, prob[(int64_t)c * cells + cell], "prob");
      }
      fprintf(f, "]");
    }
    fprintf(f, "]");
  }
}

void classify_json_write(FILE *f, const classify_json *j, const char *image,
                         const ns_classification *r, const float *prob) {
  fprintf(f, "{\"image\": ");
  cli_json_string(f, image);
  fprintf(f, ", \"blob\": ");
  cli_json_string(f, j->blob);
  fprintf(f, ", \"shape\": ");
  cli_print_shape(f, j->shape, j->num_axes, 1);
  fprintf(f, ", \"map\": [%d, %d], \"class\": ", r->map_h, r->map_w);
  if (j->class_k >= 0)
    fprintf(f, "%d", j->class_k);
  else
    fprintf(f, "null");
  fprintf(f, ", \"argmax\": ");
  json_matrix(f, r, 1);
  fprintf(f, ", \"confidence\": ");
  json_matrix(f, r, 0);
  fprintf(f, ", \"top\": [");
  json_top(f, j, r, prob);
  fprintf(f, "], \"top_mean\": [");
  for (int i = 0; i < r->k; i++) {
    if (i) fprintf(f, ", ");
    json_class(f, j, r->top_mean[i], r->mean[r->top_mean[i]], "mean_prob");
  }
  fprintf(f, "]}\n");
}
