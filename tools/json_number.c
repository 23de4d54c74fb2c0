/* "%.6g" of a float and "%d" by hand; see json_number.h.
 *
 * A finite float is m * 2^e exactly (m < 2^24).  Its six significant digits
 * are q = round(m * 2^e * 10^k) for the k that puts q in [10^5, 10^6): with
 * k >= 0 that is m * 5^k * 2^(e + k), an integer shifted right; with k < 0 it
 * is m * 2^e / 10^-k, one integer divided by another.  Both fit in 128 bits while |v| is within
 * [1e-20, 1e20], and the remainder gives the rounding exactly (to nearest,
 * ties to even, as glibc rounds).  Outside that range, and for 0, inf and
 * nan, snprintf does it. */
#include "tools/json_number.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef unsigned __int128 u128;

enum { FAST_MAX_POW = 26 }; /* 10^26 > 1e20 * 1e5, 5^26 * 2^24 < 2^85 */

static u128 pow_u128(unsigned base, int n) {
  u128 p = 1;
  while (n-- > 0) p *= base;
  return p;
}

/* round(m * 2^e * 10^k) and whether the truncated value was below 10^5 or
 * at least 10^6 (then k was wrong by one). */
static uint64_t scaled(uint32_t m, int e, int k, int *off) {
  u128 q, rem, half;
  int exact_half;
  if (k >= 0) {
    u128 num = (u128)m * pow_u128(5, k);
    int s = e + k;
    if (s >= 0) {
      q = num << s;
      rem = 0, half = 1, exact_half = 0;
    } else {
      q = num >> -s;
      rem = num & (((u128)1 << -s) - 1);
      half = (u128)1 << (-s - 1);
      exact_half = 1;
    }
  } else {
    u128 num = e >= 0 ? (u128)m << e : m, den = pow_u128(10, -k) << (e < 0 ? -e : 0);
    q = num / den;
    rem = num % den;
    half = den / 2; /* den is even */
    exact_half = 1;
  }
  *off = q < 100000 ? -1 : q >= 1000000 ? 1 : 0;
  if (exact_half && (rem > half || (rem == half && (q & 1)))) q++;
  return (uint64_t)q;
}

static int fixed(char *buf, const char *digits, int x) {
  int n = 0;
  if (x >= 0) {
    memcpy(buf, digits, (size_t)x + 1);
    n = x + 1;
    if (x < 5) {
      buf[n++] = '.';
      memcpy(buf + n, digits + x + 1, (size_t)(5 - x));
      n += 5 - x;
    }
  } else {
    buf[n++] = '0';
    buf[n++] = '.';
    for (int i = 0; i < -x - 1; i++) buf[n++] = '0';
    memcpy(buf + n, digits, 6);
    n += 6;
  }
  return n;
}

/* %g drops trailing zeros of the fraction, and the point if none is left. */
static int strip(char *buf, int n) {
  if (!memchr(buf, '.', (size_t)n)) return n;
  while (buf[n - 1] == '0') n--;
  if (buf[n - 1] == '.') n--;
  return n;
}

static int exponential(char *buf, const char *digits, int x) {
  buf[0] = digits[0];
  buf[1] = '.';
  memcpy(buf + 2, digits + 1, 5);
  int n = strip(buf, 7);
  n += sprintf(buf + n, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
  return n;
}

int json_g6(char *buf, float v) {
  if (!isfinite(v) || v == 0 || fabsf(v) < 1e-20f || fabsf(v) > 1e20f)
    return snprintf(buf, JSON_NUMBER_MAX, "%.6g", (double)v);
  int neg = v < 0, e2;
  float frac = frexpf(fabsf(v), &e2); /* |v| = frac * 2^e2, frac in [0.5, 1) */
  uint32_t m = (uint32_t)ldexpf(frac, 24);
  int e = e2 - 24;
  /* |v| in [2^(e2-1), 2^e2): this x is floor(log10 |v|) or one less; the
   * first scaled() says which. */
  int x = (int)floor((e2 - 1) * 0.30102999566398120), off;
  uint64_t q = scaled(m, e, 5 - x, &off);
  if (off) {
    x += off;
    q = scaled(m, e, 5 - x, &off);
  }
  if (q == 1000000) q = 100000, x++; /* 999999.5 rounds up a digit */
  char digits[6];
  for (int i = 5; i >= 0; i--, q /= 10) digits[i] = (char)('0' + q % 10);
  char *out = buf;
  if (neg) *out++ = '-';
  int n = x < -4 || x >= 6 ? exponential(out, digits, x) : strip(out, fixed(out, digits, x));
  out[n] = 0;
  return n + neg;
}

int json_int(char *buf, int v) {
  char tmp[16];
  unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;
  int n = 0, len = 0;
  do tmp[n++] = (char)('0' + u % 10);
  while (u /= 10);
  if (v < 0) buf[len++] = '-';
  while (n) buf[len++] = tmp[--n];
  buf[len] = 0;
  return len;
}
