/* Writing a diagram: the DOT text, laid out by Graphviz's `dot` run as a
 * subprocess (README, "netsurg draw": as fast as linking libgvc, and no
 * build or link dependency), and the page around its SVG.  Every output
 * goes to a temporary file beside it, renamed when complete. */
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/draw_graph.h"

extern char **environ;

typedef enum draw_format { DRAW_NONE, DRAW_DOT, DRAW_SVG, DRAW_HTML } draw_format;

static draw_format format_of(const char *path) {
  size_t n = strlen(path);
  if (n > 4 && !strcasecmp(path + n - 4, ".dot")) return DRAW_DOT;
  if (n > 4 && !strcasecmp(path + n - 4, ".svg")) return DRAW_SVG;
  if (n > 5 && !strcasecmp(path + n - 5, ".html")) return DRAW_HTML;
  return DRAW_NONE;
}

int draw_format_known(const char *path) { return format_of(path) != DRAW_NONE; }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int write_dot_file(const draw_graph *g, const char *path, const char *verb) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "netsurg %s: cannot write %s: %s\n", verb, path, strerror(errno));
    return NS_ERR_IO;
  }
  int rc = draw_dot_write(f, g);
  if (fclose(f) != 0 && !rc) {
    fprintf(stderr, "netsurg %s: cannot write %s: %s\n", verb, path, strerror(errno));
    rc = NS_ERR_IO;
  }
  if (rc == NS_ERR_NOMEM) fprintf(stderr, "netsurg %s: out of memory\n", verb);
  return rc;
}

/* dot -Tsvg -o svg_path dot_path; NETSURG_DOT names another program. */
static int run_dot(const char *dot_path, const char *svg_path, const char *verb) {
  const char *prog = getenv("NETSURG_DOT");
  if (!prog || !*prog) prog = "dot";
  char *argv[] = {(char *)prog, "-Tsvg", "-o", (char *)svg_path, (char *)dot_path, NULL};
  pid_t pid;
  int err = posix_spawnp(&pid, prog, NULL, NULL, argv, environ), status = 0;
  if (err) {
    fprintf(stderr,
            "netsurg %s: cannot run %s (Graphviz): %s; install graphviz "
            "(scripts/install-deps.sh), or write FILE.dot and lay it out elsewhere\n",
            verb, prog, strerror(err));
    return NS_ERR_IO;
  }
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return NS_ERR_INTERNAL;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "netsurg %s: %s failed to lay out the graph (status %d)\n", verb, prog,
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return NS_ERR_INTERNAL;
  }
  return 0;
}

static int read_whole(const char *path, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NS_ERR_IO;
  char *buf = NULL;
  size_t n = 0, cap = 0, got;
  do {
    if (n + 65536 > cap) {
      char *b = realloc(buf, cap = cap * 2 + 65536);
      if (!b) {
        free(buf);
        fclose(f);
        return NS_ERR_NOMEM;
      }
      buf = b;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
  } while (got);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NS_ERR_IO;
  }
  *out = buf;
  *len = n;
  return 0;
}

static int write_html_file(const draw_graph *g, const char *svg_path, const char *path,
                           const char *verb) {
  char *svg;
  size_t len;
  int rc = read_whole(svg_path, &svg, &len);
  if (rc) {
    fprintf(stderr, "netsurg %s: cannot read dot's output %s\n", verb, svg_path);
    return rc;
  }
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "netsurg %s: cannot write %s: %s\n", verb, path, strerror(errno));
    free(svg);
    return NS_ERR_IO;
  }
  rc = draw_html_write(f, g, svg, len);
  if (fclose(f) != 0 && !rc) rc = NS_ERR_IO;
  if (rc) fprintf(stderr, "netsurg %s: cannot write %s\n", verb, path);
  free(svg);
  return rc;
}

static char *temp_name(const char *out, const char *ext) {
  size_t n = strlen(out) + 64;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s.%ld.tmp%s", out, (long)getpid(), ext);
  return s;
}

static void summary(const draw_graph *g, const char *out, double layout_s) {
  int folded = 0;
  for (int i = 0; i < g->n_boxes; i++) folded += g->boxes[i].n_folded;
  printf("wrote %s: %d box%s (%d in-place layers folded in), %d edge%s", out, g->n_boxes,
         g->n_boxes == 1 ? "" : "es", folded, g->n_edges, g->n_edges == 1 ? "" : "s");
  if (layout_s >= 0) printf("; dot laid it out in %.2f s", layout_s);
  printf("\n");
}

static int produce(const draw_graph *g, draw_format fmt, const char *out, const char *verb) {
  char *dot = temp_name(out, ".dot"), *svg = temp_name(out, ".svg"), *final = temp_name(out, "");
  int rc = dot && svg && final ? 0 : NS_ERR_NOMEM;
  double layout = -1;
  if (!rc) rc = write_dot_file(g, fmt == DRAW_DOT ? final : dot, verb);
  if (!rc && fmt != DRAW_DOT) {
    double t0 = now();
    rc = run_dot(dot, fmt == DRAW_SVG ? final : svg, verb);
    layout = now() - t0;
  }
  if (!rc && fmt == DRAW_HTML) rc = write_html_file(g, svg, final, verb);
  if (!rc && rename(final, out) != 0) {
    fprintf(stderr, "netsurg %s: cannot write %s: %s\n", verb, out, strerror(errno));
    rc = NS_ERR_IO;
  }
  if (!rc) summary(g, out, layout);
  if (dot) unlink(dot);
  if (svg) unlink(svg);
  if (final && rc) unlink(final);
  free(dot);
  free(svg);
  free(final);
  return rc;
}

int draw_write(ns_ctx *ctx, const draw_request *r, const char *verb) {
  draw_format fmt = format_of(r->out);
  if (fmt == DRAW_NONE) {
    fprintf(stderr, "netsurg %s: %s: the output's name must end in .svg, .html or .dot\n", verb,
            r->out);
    return NS_ERR_USAGE;
  }
  draw_graph g;
  int rc = draw_graph_build(ctx, r, &g);
  if (rc)
    fprintf(stderr, "netsurg %s: out of memory\n", verb);
  else
    rc = produce(&g, fmt, r->out, verb);
  draw_graph_free(&g);
  return rc;
}
