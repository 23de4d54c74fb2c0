/* Helpers shared by the surgery and classify verbs (edit, transplant, fcn,
 * classify). */
#ifndef NS_TOOLS_CLI_SURGERY_H
#define NS_TOOLS_CLI_SURGERY_H

#include <stdint.h>
#include <stdio.h>

#include "netsurg.h"

/* "451x451", "451" (square) -> height, width >= 1.  Returns 0, or prints a
 * usage error and returns NS_ERR_USAGE. */
int cli_parse_size(const char *verb, const char *opt, const char *s, int *height, int *width);
/* Comma-separated integers ("2,3" or "7"); at most max of them. */
int cli_parse_ints(const char *verb, const char *opt, const char *s, int64_t *vals, int max,
                   int *n);
/* Comma-separated numbers ("104,117,123"). */
int cli_parse_doubles(const char *verb, const char *opt, const char *s, double *vals, int max,
                      int *n);
/* One number (finite or not, as strtod reads it). */
int cli_parse_double(const char *verb, const char *opt, const char *s, double *out);

/* The output blob (ns_net_output_blobs) that the last layer writes: what a
 * classifier outputs.  -1 if the net has none (or out of memory). */
int cli_last_output(ns_net *net);

/* The first input blob with 4 axes, or -1. */
int cli_image_input(ns_net *net);

/* Prints "(4096, 9216)" (text) to f. */
void cli_print_tensor_shape(FILE *f, const ns_tensor *t);

#endif
