#include "io/npy_header.h"

#include <string.h>

/* A cursor over the header text; errors name the byte offset. */
typedef struct cursor {
  ns_ctx *ctx;
  const char *name;
  const char *s;
  size_t len, pos;
} cursor;

static ns_status syntax(cursor *c, const char *what) {
  return ns_fail(c->ctx, NS_ERR_INPUT, "%s: bad .npy header at byte %zu: %s", c->name, c->pos,
                 what);
}

static void skip_spaces(cursor *c) {
  while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t')) c->pos++;
}

/* Consumes `ch` after optional spaces; returns 1 if it was there. */
static int accept(cursor *c, char ch) {
  skip_spaces(c);
  if (c->pos < c->len && c->s[c->pos] == ch) {
    c->pos++;
    return 1;
  }
  return 0;
}

/* A quoted string without escapes, copied into buf (NUL-terminated). */
static ns_status parse_string(cursor *c, char *buf, size_t size) {
  skip_spaces(c);
  if (c->pos >= c->len || (c->s[c->pos] != '\'' && c->s[c->pos] != '"'))
    return syntax(c, "expected a quoted string");
  char quote = c->s[c->pos++];
  size_t n = 0;
  while (c->pos < c->len && c->s[c->pos] != quote) {
    unsigned char ch = (unsigned char)c->s[c->pos];
    if (ch == '\\' || ch < 0x20 || ch >= 0x7f) return syntax(c, "unexpected character in string");
    if (n + 1 >= size) return syntax(c, "string too long");
    buf[n++] = (char)ch;
    c->pos++;
  }
  if (c->pos >= c->len) return syntax(c, "unterminated string");
  c->pos++;
  buf[n] = '\0';
  return NS_OK;
}

/* Checks that the next characters spell `word` and are not followed by
 * more identifier characters. */
static int accept_word(cursor *c, const char *word) {
  skip_spaces(c);
  size_t n = strlen(word);
  if (c->len - c->pos < n || memcmp(c->s + c->pos, word, n) != 0) return 0;
  if (c->pos + n < c->len) {
    char next = c->s[c->pos + n];
    if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || next == '_' ||
        (next >= '0' && next <= '9'))
      return 0;
  }
  c->pos += n;
  return 1;
}

static ns_status parse_descr(cursor *c, ns_npy_header *h) {
  skip_spaces(c);
  if (c->pos < c->len && c->s[c->pos] == '[')
    return ns_fail(c->ctx, NS_ERR_UNSUPPORTED,
                   "%s: structured .npy dtypes are not supported (float32 or float64 only)",
                   c->name);
  char d[32];
  if (parse_string(c, d, sizeof d) != NS_OK) return c->ctx->status;
  int order_ok = d[0] == '<' || d[0] == '>' || d[0] == '=';
  if (!order_ok || d[1] != 'f' || (strcmp(d + 2, "4") != 0 && strcmp(d + 2, "8") != 0))
    return ns_fail(c->ctx, NS_ERR_UNSUPPORTED,
                   "%s: unsupported .npy dtype '%s' (float32 and float64 only)", c->name, d);
  h->itemsize = d[2] == '4' ? 4 : 8;
  if (d[0] == '=') {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    h->little_endian = b == 1;
  } else {
    h->little_endian = d[0] == '<';
  }
  return NS_OK;
}

static ns_status parse_fortran(cursor *c) {
  if (accept_word(c, "False")) return NS_OK;
  if (accept_word(c, "True"))
    return ns_fail(c->ctx, NS_ERR_UNSUPPORTED,
                   "%s: .npy array is in Fortran order (only C order is supported)", c->name);
  return syntax(c, "fortran_order must be True or False");
}

/* A non-negative decimal integer, with Python 2's optional 'L' suffix. */
static ns_status parse_dim(cursor *c, int64_t *out) {
  skip_spaces(c);
  if (c->pos >= c->len || c->s[c->pos] < '0' || c->s[c->pos] > '9')
    return syntax(c, "expected a non-negative integer in shape");
  int64_t v = 0;
  while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
    int digit = c->s[c->pos++] - '0';
    if (!ns_mul_i64(v, 10, &v) || !ns_add_i64(v, digit, &v))
      return syntax(c, "dimension too large");
  }
  if (c->pos < c->len && c->s[c->pos] == 'L') c->pos++;
  *out = v;
  return NS_OK;
}

/* "()", "(n,)", "(a, b)", "(a, b,)": a Python tuple of ints. */
static ns_status parse_shape(cursor *c, ns_npy_header *h) {
  if (!accept(c, '(')) return syntax(c, "shape must be a tuple");
  h->num_axes = 0;
  if (accept(c, ')')) return NS_OK;
  int trailing_comma = 0;
  for (;;) {
    if (h->num_axes == NS_NDARRAY_MAX_AXES)
      return ns_fail(c->ctx, NS_ERR_INPUT, "%s: .npy shape has more than %d axes", c->name,
                     NS_NDARRAY_MAX_AXES);
    if (parse_dim(c, &h->shape[h->num_axes]) != NS_OK) return c->ctx->status;
    h->num_axes++;
    trailing_comma = accept(c, ',');
    if (accept(c, ')')) break;
    if (!trailing_comma) return syntax(c, "expected ',' or ')' in shape");
  }
  /* (3) is an int in Python, not a tuple. */
  if (h->num_axes == 1 && !trailing_comma) return syntax(c, "one-element shape needs a comma");
  return NS_OK;
}

enum { KEY_DESCR = 1, KEY_FORTRAN = 2, KEY_SHAPE = 4 };

static ns_status parse_entry(cursor *c, ns_npy_header *h, int *seen) {
  char key[32];
  if (parse_string(c, key, sizeof key) != NS_OK) return c->ctx->status;
  int which = strcmp(key, "descr") == 0           ? KEY_DESCR
              : strcmp(key, "fortran_order") == 0 ? KEY_FORTRAN
              : strcmp(key, "shape") == 0         ? KEY_SHAPE
                                                  : 0;
  if (!which)
    return ns_fail(c->ctx, NS_ERR_INPUT, "%s: unknown .npy header key '%s'", c->name, key);
  if (*seen & which)
    return ns_fail(c->ctx, NS_ERR_INPUT, "%s: duplicate .npy header key '%s'", c->name, key);
  *seen |= which;
  if (!accept(c, ':')) return syntax(c, "expected ':'");
  if (which == KEY_DESCR) return parse_descr(c, h);
  if (which == KEY_FORTRAN) return parse_fortran(c);
  return parse_shape(c, h);
}

static ns_status parse_dict(cursor *c, ns_npy_header *h) {
  int seen = 0;
  if (!accept(c, '{')) return syntax(c, "expected '{'");
  while (!accept(c, '}')) {
    if (parse_entry(c, h, &seen) != NS_OK) return c->ctx->status;
    if (accept(c, '}')) break;
    if (!accept(c, ',')) return syntax(c, "expected ',' or '}'");
  }
  if (seen != (KEY_DESCR | KEY_FORTRAN | KEY_SHAPE))
    return ns_fail(c->ctx, NS_ERR_INPUT, "%s: .npy header lacks '%s'", c->name,
                   !(seen & KEY_DESCR)   ? "descr"
                   : !(seen & KEY_SHAPE) ? "shape"
                                         : "fortran_order");
  return NS_OK;
}

ns_status ns_npy_parse_header(ns_ctx *ctx, const char *name, const char *text, size_t len,
                              ns_npy_header *h) {
  cursor c = {ctx, name, text, len, 0};
  memset(h, 0, sizeof *h);
  if (len == 0 || text[len - 1] != '\n') return syntax(&c, "header must end with a newline");
  c.len = len - 1;
  if (parse_dict(&c, h) != NS_OK) return ctx->status;
  skip_spaces(&c);
  if (c.pos != c.len) return syntax(&c, "unexpected text after the dict");
  h->count = 1;
  for (int i = 0; i < h->num_axes; i++)
    if (!ns_mul_i64(h->count, h->shape[i], &h->count))
      return ns_fail(ctx, NS_ERR_INPUT, "%s: .npy shape overflows (axis %d)", name, i);
  if (!ns_mul_i64(h->count, h->itemsize, &h->data_bytes))
    return ns_fail(ctx, NS_ERR_INPUT, "%s: .npy data size overflows", name);
  return NS_OK;
}
