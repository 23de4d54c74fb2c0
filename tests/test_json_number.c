/* tools/json_number.c against glibc's snprintf ("%.6g", "%d"): the same
 * bytes for every float of a sweep over all exponents and random mantissas,
 * for probabilities in [0, 1], for values at the edges of each %g form
 * (999999.5, 0.0001, 1e-5, powers of ten, ties) and for the slow-path ones
 * (0, -0, inf, nan, subnormals, beyond 1e20). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tools/json_number.h"

static void check_g6(float v) {
  char want[64], got[JSON_NUMBER_MAX];
  snprintf(want, sizeof want, "%.6g", (double)v);
  int n = json_g6(got, v);
  if (strcmp(want, got) || n != (int)strlen(want))
    fail_msg("json_g6(%a): '%s' (length %d), snprintf: '%s'", (double)v, got, n, want);
}

static float from_bits(uint32_t bits) {
  float v;
  memcpy(&v, &bits, sizeof v);
  return v;
}

/* xorshift32: a fixed sequence, no libc state */
static uint32_t next(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

static void test_every_exponent(void **state) {
  (void)state;
  uint32_t s = 12345;
  for (uint32_t exp = 0; exp < 255; exp++)
    for (int i = 0; i < 4000; i++) {
      uint32_t bits = (exp << 23) | (next(&s) & 0x7fffff) | (i & 1 ? 0x80000000u : 0);
      check_g6(from_bits(bits));
    }
}

static void test_probabilities(void **state) {
  (void)state;
  uint32_t s = 99;
  for (int i = 0; i < 1000000; i++) check_g6((float)(next(&s) / 4294967296.0));
}

static void test_edges(void **state) {
  (void)state;
  const float edges[] = {0.0f,           -0.0f,           INFINITY,   -INFINITY,    NAN,
                         1e-45f,         1.17549435e-38f, 1e-20f,     9.99999e-21f, 1e20f,
                         1.00001e20f,    3.4e38f,         1.0f,       0.1f,         0.0001f,
                         0.00009999995f, 0.000099999997f, 1e-5f,      999999.5f,    999999.4f,
                         999998.5f,      100000.0f,       123456.5f,  0.5f,         0.25f,
                         0.125f,         2.5e-5f,         1.5f,       1234567.0f,   16777216.0f,
                         0.999999f,      0.9999995f,      0.99999994f};
  for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) {
    check_g6(edges[i]);
    check_g6(-edges[i]);
  }
  for (int p = -45; p <= 38; p++) { /* each power of ten and its neighbours */
    float v = (float)pow(10.0, p);
    check_g6(v);
    check_g6(nextafterf(v, 0));
    check_g6(nextafterf(v, INFINITY));
  }
}

static void test_ints(void **state) {
  (void)state;
  const int values[] = {0, 1, -1, 9, 10, 99, 100, 12345, -987654, 2147483647, -2147483647 - 1};
  for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
    char want[32], got[JSON_NUMBER_MAX];
    snprintf(want, sizeof want, "%d", values[i]);
    assert_int_equal(json_int(got, values[i]), (int)strlen(want));
    assert_string_equal(got, want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_exponent),
      cmocka_unit_test(test_probabilities),
      cmocka_unit_test(test_edges),
      cmocka_unit_test(test_ints),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
