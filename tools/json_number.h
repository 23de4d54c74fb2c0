/* printf's "%.6g" and "%d" without printf: classify's JSON lines print up to
 * a hundred thousand numbers per image (a 106x106 map, top 5 per cell), and
 * glibc's printf spends most of a line's time parsing the format and in
 * multi-precision arithmetic.  Same bytes as snprintf (tests/test_json_number.c
 * compares them on millions of floats). */
#ifndef NS_TOOLS_JSON_NUMBER_H
#define NS_TOOLS_JSON_NUMBER_H

enum { JSON_NUMBER_MAX = 32 };

/* snprintf(buf, n, "%.6g", (double)v); returns the length. */
int json_g6(char *buf, float v);
/* snprintf(buf, n, "%d", v); returns the length. */
int json_int(char *buf, int v);

#endif
