/* fcn --draw: the cast net drawn with its former InnerProducts marked and
 * the map's geometry (size, each cell's window) in the caption. */
#include <stdlib.h>
#include <string.h>

#include "tools/cli_surgery.h"
#include "tools/draw.h"

/* "map 8×8 (prob): each cell classifies a 227×227 window, every 32 px; ..." */
static void map_note(ns_ctx *ctx, ns_net *fcn, const ns_tensor *window, char *note, size_t size) {
  int out = cli_last_output(fcn);
  ns_fcn_map m;
  char explain[512];
  *note = 0;
  if (out < 0 || window->num_axes != 4) return;
  const char *blob = ns_net_blob(fcn, out).name;
  if (ns_fcn_map_describe(ctx, fcn, blob, window->shape[2], window->shape[3], &m) != NS_OK) {
    ns_ctx_clear_error(ctx);
    return;
  }
  snprintf(note, size,
           "map %lld\xc3\x97%lld (%s): each cell classifies a %lld\xc3\x97%lld window of the "
           "input, every %lld\xc3\x97%lld px; %s",
           (long long)m.map[0], (long long)m.map[1], blob, (long long)m.window[0],
           (long long)m.window[1], (long long)m.stride[0], (long long)m.stride[1],
           ns_fcn_map_explain(&m, explain, sizeof explain));
}

int draw_fcn_cast(ns_ctx *ctx, ns_net *classifier, ns_net *fcn, const char *suffix, int input,
                  const char *out) {
  int n = 0, cap = ns_net_layer_count(classifier);
  char **cast = calloc((size_t)cap + 1, sizeof *cast);
  if (!cast) return NS_ERR_NOMEM;
  int rc = 0;
  for (int l = 0; l < cap && !rc; l++) {
    if (strcmp(ns_net_layer_type(classifier, l), "InnerProduct")) continue;
    size_t len = strlen(ns_net_layer_name(classifier, l)) + strlen(suffix) + 1;
    if (!(cast[n] = malloc(len)))
      rc = NS_ERR_NOMEM;
    else
      snprintf(cast[n], len, "%s%s", ns_net_layer_name(classifier, l), suffix);
    if (!rc && ns_net_find_layer(fcn, cast[n]) >= 0)
      n++;
    else
      free(cast[n]);
  }
  char note[1024];
  ns_tensor window = ns_net_blob(classifier, input);
  map_note(ctx, fcn, &window, note, sizeof note);
  draw_request r = {.net = fcn,
                    .failed_layer = -1,
                    .source = "cast by netsurg fcn",
                    .highlight = (const char *const *)cast,
                    .n_highlight = n,
                    .note = *note ? note : NULL,
                    .out = out};
  if (!rc) rc = draw_write(ctx, &r, "fcn");
  for (int i = 0; i < n; i++) free(cast[i]);
  free(cast);
  return rc;
}
