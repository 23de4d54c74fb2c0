/* classify's JSON line; see classify_json.h. */
#include "tools/classify_json.h"

#include "tools/cli.h"
#include "tools/json_number.h"

static const char *label_name(const classify_json *j, int c) {
  return j->labels && c < j->labels->count ? j->labels->names[c] : NULL;
}

/* {"class": c, "<key>": value[, "label": name]}, value already formatted. */
static void json_class(FILE *f, const classify_json *j, int c, const char *key, const char *value) {
  char num[JSON_NUMBER_MAX];
  fwrite("{\"class\": ", 1, 10, f);
  fwrite(num, 1, (size_t)json_int(num, c), f);
  fwrite(", \"", 1, 3, f);
  fputs(key, f);
  fwrite("\": ", 1, 3, f);
  fputs(value, f);
  const char *name = label_name(j, c);
  if (name) {
    fputs(", \"label\": ", f);
    cli_json_string(f, name);
  }
  fputc('}', f);
}

static void json_matrix(FILE *f, const ns_classification *r, int ints) {
  char num[JSON_NUMBER_MAX];
  fputc('[', f);
  for (int y = 0; y < r->map_h; y++) {
    fputs(y ? ", [" : "[", f);
    for (int x = 0; x < r->map_w; x++) {
      int i = y * r->map_w + x;
      if (ints)
        json_int(num, r->argmax[i]);
      else
        json_g6(num, r->confidence[i]);
      if (x) fputs(", ", f);
      fputs(num, f);
    }
    fputc(']', f);
  }
  fputc(']', f);
}

static void json_top(FILE *f, const classify_json *j, const ns_classification *r,
                     const float *prob) {
  int64_t cells = (int64_t)r->map_h * r->map_w;
  char num[JSON_NUMBER_MAX];
  for (int y = 0; y < r->map_h; y++) {
    fputs(y ? ", [" : "[", f);
    for (int x = 0; x < r->map_w; x++) {
      int cell = y * r->map_w + x;
      fputs(x ? ", [" : "[", f);
      for (int i = 0; i < r->k; i++) {
        int c = r->top[(int64_t)cell * r->k + i];
        if (i) fputs(", ", f);
        json_g6(num, prob[(int64_t)c * cells + cell]);
        json_class(f, j, c, "prob", num);
      }
      fputc(']', f);
    }
    fputc(']', f);
  }
}

void classify_json_write(FILE *f, const classify_json *j, const char *image,
                         const ns_classification *r, const float *prob) {
  flockfile(f); /* one lock for the line, not one per call */
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
    char num[64];
    snprintf(num, sizeof num, "%.6g", r->mean[r->top_mean[i]]); /* a double */
    json_class(f, j, r->top_mean[i], "mean_prob", num);
  }
  fprintf(f, "]}\n");
  funlockfile(f);
}
