/* Generic protobuf text format reader and writer over protobuf-c descriptors.
 *
 * Reader: a tokenizer (one token of lookahead, protobuf's token rules) feeds
 * a recursive-descent parser that stores each value where protobuf-c's own
 * unpacker would: at field->offset, with the has_ flag, oneof case or
 * repeated count at field->quantifier_offset.  Every allocation is hung on
 * the message tree as soon as it is made, so one
 * protobuf_c_message_free_unpacked of the root cleans up after any error.
 *
 * Writer: walks the descriptor's fields in number order and prints the
 * present ones as protobuf's TextFormat::Print lays them out.
 *
 * Numbers are converted in the "C" locale (uselocale, per thread), so a
 * caller's setlocale cannot turn "0.5" into "0,5". */
#include "format/textformat.h"

#include <float.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/pbreflect.h"
#include "format/text_unknown.h"

#define TRY(expr)                         \
  do {                                    \
    ns_status try_st_ = (expr);           \
    if (try_st_ != NS_OK) return try_st_; \
  } while (0)

/* ---- locale ------------------------------------------------------------ */

/* Switches this thread to the "C" numeric locale until locale_leave. */
typedef struct {
  locale_t c_locale, saved;
} locale_guard;

static void locale_enter(locale_guard *g) {
  g->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  g->saved = g->c_locale ? uselocale(g->c_locale) : (locale_t)0;
}

static void locale_leave(locale_guard *g) {
  if (!g->c_locale) return;
  uselocale(g->saved);
  freelocale(g->c_locale);
}

/* ---- tokenizer --------------------------------------------------------- */

typedef enum { TOK_EOF, TOK_IDENT, TOK_INT, TOK_FLOAT, TOK_STRING, TOK_SYMBOL, TOK_BAD } tok_kind;

typedef struct {
  tok_kind kind;
  size_t start, len; /* bytes of the token in the text (strings: with quotes) */
  size_t line, col;  /* 1-based position of its first byte */
} token;

typedef struct {
  ns_ctx *ctx;
  const char *text;
  size_t len;
  const char *file;
  size_t pos;        /* next byte the tokenizer looks at */
  size_t line;       /* line of pos */
  size_t line_start; /* offset of that line's first byte */
  token tok;         /* the current token (one token of lookahead) */
  int depth;         /* messages open around the current token */
  char *buf;         /* scratch: decoded strings, number text */
  size_t buf_len, buf_cap;
  const ns_text_rules *rules;  /* may be NULL */
  const ProtobufCMessage *scope; /* innermost open message of rules->feature_scopes */
  ns_unknown_log unknown;        /* unknown names met so far */
} parser;

static int is_letter(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_octal(int c) { return c >= '0' && c <= '7'; }
static int is_hex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int hex_value(int c) { return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10; }

static ns_status fail_v(parser *p, size_t line, size_t col, const char *fmt, va_list ap) {
  char msg[NS_ERROR_MAX];
  vsnprintf(msg, sizeof msg, fmt, ap);
  return ns_fail(p->ctx, NS_ERR_INPUT, "%s:%zu:%zu: %s", p->file, line, col, msg);
}

/* An error at byte offset `at` on the tokenizer's current line. */
static ns_status fail_at_offset(parser *p, size_t at, const char *fmt, ...) NS_PRINTF(3, 4);
static ns_status fail_at_offset(parser *p, size_t at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ns_status st = fail_v(p, p->line, at - p->line_start + 1, fmt, ap);
  va_end(ap);
  return st;
}

static ns_status fail_at_token(parser *p, const token *t, const char *fmt, ...) NS_PRINTF(3, 4);
static ns_status fail_at_token(parser *p, const token *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ns_status st = fail_v(p, t->line, t->col, fmt, ap);
  va_end(ap);
  return st;
}

/* Copies up to n bytes of s into out as printable text for a message. */
static void printable_excerpt(const char *s, size_t n, char *out, size_t cap) {
  const size_t max_shown = 40;
  size_t k = 0;
  for (size_t i = 0; i < n && i < max_shown && k + 1 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (n > max_shown && k + 4 < cap) {
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k] = '\0';
}

/* Describes a token for "<found>, expected <what>" messages. */
static void describe_token(const parser *p, const token *t, char *out, size_t cap) {
  char ex[64];
  const char *s = p->text + t->start;
  printable_excerpt(s, t->len, ex, sizeof ex);
  switch (t->kind) {
    case TOK_EOF:
      snprintf(out, cap, "end of file");
      break;
    case TOK_IDENT:
      snprintf(out, cap, "'%s'", ex);
      break;
    case TOK_INT:
    case TOK_FLOAT:
      snprintf(out, cap, "number %s", ex);
      break;
    case TOK_STRING:
      snprintf(out, cap, "string %s", ex);
      break;
    case TOK_SYMBOL:
      snprintf(out, cap, "'%s'", ex);
      break;
    case TOK_BAD: {
      unsigned char c = (unsigned char)s[0];
      if (c == 0)
        snprintf(out, cap, "NUL byte");
      else if (c >= 0x20 && c < 0x7f)
        snprintf(out, cap, "invalid character '%c'", c);
      else
        snprintf(out, cap, "invalid byte 0x%02x", c);
      break;
    }
  }
}

/* "FILE:LINE:COL: <current token>, expected <what>". */
static ns_status unexpected(parser *p, const char *fmt, ...) NS_PRINTF(2, 3);
static ns_status unexpected(parser *p, const char *fmt, ...) {
  char found[128], want[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(want, sizeof want, fmt, ap);
  va_end(ap);
  describe_token(p, &p->tok, found, sizeof found);
  return fail_at_token(p, &p->tok, "%s, expected %s", found, want);
}

static void skip_space_and_comments(parser *p) {
  while (p->pos < p->len) {
    char c = p->text[p->pos];
    if (c == '\n') {
      p->pos++;
      p->line++;
      p->line_start = p->pos;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') {
      p->pos++;
    } else if (c == '#') {
      while (p->pos < p->len && p->text[p->pos] != '\n') p->pos++;
    } else {
      return;
    }
  }
}

static size_t scan_digits(const char *s, size_t i, size_t n, int (*is_ok)(int)) {
  while (i < n && is_ok((unsigned char)s[i])) i++;
  return i;
}

/* Scans a number as protobuf's tokenizer does: hex, octal, or decimal with
 * optional fraction, exponent and f suffix (which make it a float). */
static ns_status scan_number(parser *p) {
  const char *s = p->text;
  size_t i = p->pos, n = p->len;
  int is_float = 0, is_int_only = 0;
  if (s[i] == '0' && i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    size_t digits = i + 2;
    i = scan_digits(s, digits, n, is_hex);
    if (i == digits) return fail_at_offset(p, i, "'0x' without digits, expected hex digits");
    is_int_only = 1;
  } else if (s[i] == '0' && i + 1 < n && is_digit((unsigned char)s[i + 1])) {
    i = scan_digits(s, i + 1, n, is_octal);
    if (i < n && is_digit((unsigned char)s[i]))
      return fail_at_offset(
          p, i, "digit '%c' in a number starting with 0, expected octal digits 0-7", s[i]);
    is_int_only = 1;
  } else {
    i = scan_digits(s, i, n, is_digit);
    if (i < n && s[i] == '.') {
      is_float = 1;
      i = scan_digits(s, i + 1, n, is_digit);
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
      is_float = 1;
      i++;
      if (i < n && (s[i] == '+' || s[i] == '-')) i++;
      size_t digits = i;
      i = scan_digits(s, i, n, is_digit);
      if (i == digits) return fail_at_offset(p, i, "exponent without digits, expected digits");
    }
    if (i < n && (s[i] == 'f' || s[i] == 'F')) {
      is_float = 1;
      i++;
    }
  }
  if (i < n && (is_letter((unsigned char)s[i]) || is_digit((unsigned char)s[i])))
    return fail_at_offset(p, i, "'%c' right after a number, expected a space or separator", s[i]);
  if (i < n && s[i] == '.')
    return fail_at_offset(p, i,
                          is_int_only
                              ? "'.' after a hex or octal number, expected an integer"
                              : "a second '.' in a number, expected a single decimal point");
  p->tok.kind = is_float ? TOK_FLOAT : TOK_INT;
  p->tok.len = i - p->pos;
  p->pos = i;
  return NS_OK;
}

/* Finds the end of a quoted string; escapes are checked when it is decoded. */
static ns_status scan_string(parser *p) {
  const char *s = p->text;
  char quote = s[p->pos];
  size_t i = p->pos + 1;
  for (;;) {
    if (i >= p->len)
      return fail_at_token(p, &p->tok,
                           "unterminated string, expected closing %c before end of file", quote);
    char c = s[i];
    if (c == quote) break;
    if (c == '\n')
      return fail_at_token(p, &p->tok,
                           "unterminated string, expected closing %c before end of line", quote);
    if (c == '\0')
      return fail_at_offset(p, i, "NUL byte inside a string, expected text or closing %c", quote);
    if (c == '\\' && i + 1 < p->len && s[i + 1] != '\n' && s[i + 1] != '\0') i++;
    i++;
  }
  p->tok.kind = TOK_STRING;
  p->tok.len = i + 1 - p->pos;
  p->pos = i + 1;
  return NS_OK;
}

/* Moves to the next token.  Lexical errors (bad numbers, unterminated
 * strings) are reported here; stray bytes become TOK_BAD so the parser can
 * say what it expected instead. */
static ns_status advance(parser *p) {
  skip_space_and_comments(p);
  token *t = &p->tok;
  t->start = p->pos;
  t->line = p->line;
  t->col = p->pos - p->line_start + 1;
  t->len = 1;
  if (p->pos >= p->len) {
    t->kind = TOK_EOF;
    t->len = 0;
    return NS_OK;
  }
  unsigned char c = (unsigned char)p->text[p->pos];
  unsigned char next = p->pos + 1 < p->len ? (unsigned char)p->text[p->pos + 1] : 0;
  if (is_letter(c)) {
    size_t i = p->pos + 1;
    while (i < p->len &&
           (is_letter((unsigned char)p->text[i]) || is_digit((unsigned char)p->text[i])))
      i++;
    t->kind = TOK_IDENT;
    t->len = i - p->pos;
    p->pos = i;
    return NS_OK;
  }
  if (is_digit(c) || (c == '.' && is_digit(next))) return scan_number(p);
  if (c == '"' || c == '\'') return scan_string(p);
  t->kind = (c != 0 && strchr("{}<>[]:,;-", c)) ? TOK_SYMBOL : TOK_BAD;
  p->pos++;
  return NS_OK;
}

static int at(const parser *p, char c) {
  return p->tok.kind == TOK_SYMBOL && p->text[p->tok.start] == c;
}

static int tok_is(const parser *p, const char *word) {
  size_t n = strlen(word);
  return p->tok.kind == TOK_IDENT && p->tok.len == n &&
         memcmp(p->text + p->tok.start, word, n) == 0;
}

static int tok_is_nocase(const parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->tok.kind != TOK_IDENT || p->tok.len != n) return 0;
  for (size_t i = 0; i < n; i++)
    if ((p->text[p->tok.start + i] | 0x20) != word[i]) return 0;
  return 1;
}

/* ---- scratch buffer ---------------------------------------------------- */

static ns_status buf_reserve(parser *p, size_t extra) {
  if (extra > SIZE_MAX - p->buf_len - 1) return ns_fail(p->ctx, NS_ERR_NOMEM, "string too long");
  size_t need = p->buf_len + extra + 1;
  if (need <= p->buf_cap) return NS_OK;
  size_t cap = p->buf_cap ? p->buf_cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *b = ns_realloc(p->ctx, p->buf, cap);
  if (!b) return p->ctx->status;
  p->buf = b;
  p->buf_cap = cap;
  return NS_OK;
}

static ns_status buf_append(parser *p, const char *s, size_t n) {
  TRY(buf_reserve(p, n));
  memcpy(p->buf + p->buf_len, s, n);
  p->buf_len += n;
  p->buf[p->buf_len] = '\0';
  return NS_OK;
}

/* Copies the current token's text into the scratch buffer, NUL-terminated. */
static ns_status buf_set_token(parser *p) {
  p->buf_len = 0;
  return buf_append(p, p->text + p->tok.start, p->tok.len);
}

/* ---- string literals --------------------------------------------------- */

static ns_status append_utf8(parser *p, uint32_t cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return buf_append(p, u, n);
}

/* Reads exactly `count` hex digits at s[*i] (bounded by end). */
static int read_hex(const char *s, size_t *i, size_t end, int count, uint32_t *out) {
  uint32_t v = 0;
  for (int k = 0; k < count; k++) {
    if (*i >= end || !is_hex((unsigned char)s[*i])) return 0;
    v = v * 16 + (uint32_t)hex_value((unsigned char)s[*i]);
    (*i)++;
  }
  *out = v;
  return 1;
}

typedef struct {
  parser *p;
  const token *t;
  const char *s;
  size_t end; /* offset of the closing quote */
} literal;

static ns_status escape_error(literal *L, size_t at, const char *fmt, ...) NS_PRINTF(3, 4);
static ns_status escape_error(literal *L, size_t at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ns_status st = fail_v(L->p, L->t->line, L->t->col + (at - L->t->start), fmt, ap);
  va_end(ap);
  return st;
}

/* \uXXXX or \UXXXXXXXX at s[*i] (just after the backslash); a \u high
 * surrogate followed by a \u low surrogate forms one code point. */
static ns_status decode_unicode_escape(literal *L, size_t *i) {
  size_t at_escape = *i - 1;
  int wide = L->s[*i] == 'U';
  uint32_t cp;
  (*i)++;
  if (!read_hex(L->s, i, L->end, wide ? 8 : 4, &cp))
    return escape_error(L, at_escape, "incomplete \\%c escape, expected %d hex digits",
                        wide ? 'U' : 'u', wide ? 8 : 4);
  if (cp >= 0xD800 && cp <= 0xDBFF && *i + 1 < L->end && L->s[*i] == '\\' && L->s[*i + 1] == 'u') {
    size_t j = *i + 2;
    uint32_t low;
    if (read_hex(L->s, &j, L->end, 4, &low) && low >= 0xDC00 && low <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      *i = j;
    }
  }
  if (cp >= 0xD800 && cp <= 0xDFFF)
    return escape_error(L, at_escape, "lone UTF-16 surrogate 0x%04X, expected a surrogate pair",
                        (unsigned)cp);
  if (cp > 0x10FFFF)
    return escape_error(L, at_escape, "code point 0x%X, expected at most 0x10FFFF", (unsigned)cp);
  return append_utf8(L->p, cp);
}

static char simple_escape(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 't':
      return '\t';
    case 'r':
      return '\r';
    case 'a':
      return '\a';
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'v':
      return '\v';
    case '\\':
      return '\\';
    case '\'':
      return '\'';
    case '"':
      return '"';
    case '?':
      return '?';
  }
  return 0;
}

/* Decodes one escape; *i points just after the backslash and moves past it. */
static ns_status decode_escape(literal *L, size_t *i) {
  size_t at_escape = *i - 1;
  char c = L->s[*i];
  char simple = simple_escape(c);
  if (simple) {
    (*i)++;
    return buf_append(L->p, &simple, 1);
  }
  if (is_octal((unsigned char)c)) {
    unsigned v = 0;
    for (int k = 0; k < 3 && *i < L->end && is_octal((unsigned char)L->s[*i]); k++, (*i)++)
      v = v * 8 + (unsigned)(L->s[*i] - '0');
    if (v > 0xFF)
      return escape_error(L, at_escape, "octal escape \\%o above \\377, expected one byte", v);
    char b = (char)v;
    return buf_append(L->p, &b, 1);
  }
  if (c == 'x' || c == 'X') {
    (*i)++;
    unsigned v = 0;
    int k = 0;
    for (; k < 2 && *i < L->end && is_hex((unsigned char)L->s[*i]); k++, (*i)++)
      v = v * 16 + (unsigned)hex_value((unsigned char)L->s[*i]);
    if (k == 0) return escape_error(L, at_escape, "'\\x' without digits, expected hex digits");
    char b = (char)v;
    return buf_append(L->p, &b, 1);
  }
  if (c == 'u' || c == 'U') return decode_unicode_escape(L, i);
  if (c >= 0x20 && c < 0x7f)
    return escape_error(L, at_escape,
                        "unknown escape '\\%c', expected one of \\n \\t \\r \\\\ \\' "
                        "\\\" \\a \\b \\f \\v \\? \\NNN \\xHH \\uXXXX \\UXXXXXXXX",
                        c);
  return escape_error(L, at_escape,
                      "unknown escape (byte 0x%02x after '\\'), expected an escape letter",
                      (unsigned char)c);
}

/* Appends the decoded contents of the current string token to the scratch
 * buffer. */
static ns_status decode_string_token(parser *p) {
  literal L = {p, &p->tok, p->text, p->tok.start + p->tok.len - 1};
  size_t i = p->tok.start + 1;
  while (i < L.end) {
    size_t run = i;
    while (run < L.end && p->text[run] != '\\') run++;
    TRY(buf_append(p, p->text + i, run - i));
    i = run;
    if (i < L.end) {
      i++; /* the backslash */
      TRY(decode_escape(&L, &i));
    }
  }
  return NS_OK;
}

/* One value: adjacent string literals, concatenated into the scratch buffer. */
static ns_status parse_string_literals(parser *p, const ProtobufCFieldDescriptor *f) {
  if (p->tok.kind != TOK_STRING)
    return unexpected(p, "a quoted string for %s field '%s'", ns_pb_type_name(f->type), f->name);
  p->buf_len = 0;
  TRY(buf_reserve(p, 0));
  p->buf[0] = '\0';
  while (p->tok.kind == TOK_STRING) {
    TRY(decode_string_token(p));
    TRY(advance(p));
  }
  return NS_OK;
}

/* ---- numbers ----------------------------------------------------------- */

/* Value of an integer token (decimal, 0x hex or 0 octal); 0 on overflow. */
static int token_to_u64(const parser *p, uint64_t *out) {
  const char *s = p->text + p->tok.start;
  size_t n = p->tok.len, i = 0;
  unsigned base = 10;
  if (n > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  } else if (n > 1 && s[0] == '0') {
    base = 8;
    i = 1;
  }
  uint64_t v = 0;
  for (; i < n; i++) {
    unsigned d = (unsigned)hex_value((unsigned char)s[i]);
    if (v > (UINT64_MAX - d) / base) return 0;
    v = v * base + d;
  }
  *out = v;
  return 1;
}

typedef struct {
  int is_signed;
  uint64_t max;     /* largest positive value */
  uint64_t neg_max; /* largest magnitude of a negative value */
  const char *min_text, *max_text;
} int_range;

static int_range range_of(ProtobufCType t) {
  switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
      return (int_range){1, INT32_MAX, (uint64_t)INT32_MAX + 1, "-2147483648", "2147483647"};
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      return (int_range){1, INT64_MAX, (uint64_t)INT64_MAX + 1, "-9223372036854775808",
                         "9223372036854775807"};
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      return (int_range){0, UINT32_MAX, 0, "0", "4294967295"};
    default:
      return (int_range){0, UINT64_MAX, 0, "0", "18446744073709551615"};
  }
}

/* An integer value for field f: optional '-' (signed types only), then an
 * integer token within the type's range.  *neg and *mag give the value. */
static ns_status parse_integer(parser *p, const ProtobufCFieldDescriptor *f, int *neg,
                               uint64_t *mag) {
  int_range r = range_of(f->type);
  token first = p->tok;
  const char *kind = f->type == PROTOBUF_C_TYPE_ENUM ? "enum" : ns_pb_type_name(f->type);
  *neg = 0;
  if (at(p, '-')) {
    if (!r.is_signed)
      return unexpected(p, "a non-negative integer for %s field '%s'", kind, f->name);
    *neg = 1;
    TRY(advance(p));
  }
  if (p->tok.kind != TOK_INT) return unexpected(p, "an integer for %s field '%s'", kind, f->name);
  char text[64];
  printable_excerpt(p->text + p->tok.start, p->tok.len, text, sizeof text);
  if (!token_to_u64(p, mag) || *mag > (*neg ? r.neg_max : r.max))
    return fail_at_token(p, &first, "%s%s is out of range for %s field '%s', expected %s..%s",
                         *neg ? "-" : "", text, kind, f->name, r.min_text, r.max_text);
  return advance(p);
}

static int64_t signed_value(int neg, uint64_t mag) {
  if (!neg) return (int64_t)mag;
  if (mag == (uint64_t)INT64_MAX + 1) return INT64_MIN;
  return -(int64_t)mag;
}

/* A float or double value: [-] then an integer, a float (f suffix allowed),
 * or inf / infinity / nan in any case. */
static ns_status parse_floating(parser *p, const ProtobufCFieldDescriptor *f, double *out) {
  int neg = 0;
  if (at(p, '-')) {
    neg = 1;
    TRY(advance(p));
  }
  double v;
  const token *t = &p->tok;
  const char *s = p->text + t->start;
  if (t->kind == TOK_INT && t->len > 1 && s[0] == '0') {
    uint64_t u;
    if (!token_to_u64(p, &u)) {
      char text[64];
      printable_excerpt(s, t->len, text, sizeof text);
      return fail_at_token(p, t, "%s is too large, expected a hex or octal integer below 2^64",
                           text);
    }
    v = (double)u;
  } else if (t->kind == TOK_INT || t->kind == TOK_FLOAT) {
    TRY(buf_set_token(p));
    if (p->buf_len && (p->buf[p->buf_len - 1] == 'f' || p->buf[p->buf_len - 1] == 'F'))
      p->buf[--p->buf_len] = '\0';
    v = strtod(p->buf, NULL); /* the "C" locale is in effect */
  } else if (tok_is_nocase(p, "inf") || tok_is_nocase(p, "infinity")) {
    v = INFINITY;
  } else if (tok_is_nocase(p, "nan")) {
    v = NAN;
  } else {
    return unexpected(p, "a number for %s field '%s'", ns_pb_type_name(f->type), f->name);
  }
  *out = neg ? -v : v;
  return advance(p);
}

/* Rounds to the nearest float as IEEE does (so "3.4028235e+38", FLT_MAX as
 * printed, reads back as FLT_MAX), without a cast outside float's range:
 * values from halfway between FLT_MAX and 2^128 up become infinities. */
static float double_to_float(double v) {
  const double halfway = 0x1.ffffffp127; /* (2 - 2^-24) * 2^127 */
  if (v >= halfway) return INFINITY;
  if (v <= -halfway) return -INFINITY;
  if (v > FLT_MAX) return FLT_MAX;
  if (v < -FLT_MAX) return -FLT_MAX;
  return (float)v;
}

static ns_status parse_bool(parser *p, const ProtobufCFieldDescriptor *f, protobuf_c_boolean *out) {
  if (tok_is(p, "true") || tok_is(p, "True") || tok_is(p, "t")) {
    *out = 1;
    return advance(p);
  }
  if (tok_is(p, "false") || tok_is(p, "False") || tok_is(p, "f")) {
    *out = 0;
    return advance(p);
  }
  uint64_t v;
  if (p->tok.kind == TOK_INT && token_to_u64(p, &v) && v <= 1) {
    *out = v == 1;
    return advance(p);
  }
  return unexpected(p, "true or false for bool field '%s'", f->name);
}

/* "A, B, C" (at most a handful) for enum error messages. */
static void list_enum_names(const ProtobufCEnumDescriptor *e, char *out, size_t cap) {
  const unsigned shown = 12;
  size_t k = 0;
  out[0] = '\0';
  for (unsigned i = 0; i < e->n_values && i < shown && k < cap; i++) {
    int w = snprintf(out + k, cap - k, "%s%s", i ? ", " : "", e->values[i].name);
    if (w < 0) break;
    k += (size_t)w;
  }
  if (e->n_values > shown && k < cap) snprintf(out + k, cap - k, ", ...");
}

static ns_status note_unknown(parser *p, const token *at_tok, const ProtobufCMessage *msg,
                              const ProtobufCFieldDescriptor *value_of, const char *field,
                              const char *fmt, ...) NS_PRINTF(6, 7);

/* An enum value by name or number; one the enum lacks is noted as unknown
 * and, when the reader may skip it, leaves *skipped set and *out alone. */
static ns_status parse_enum(parser *p, const ProtobufCMessage *d,
                            const ProtobufCFieldDescriptor *f, int32_t *out, int *skipped) {
  const ProtobufCEnumDescriptor *e = f->descriptor;
  char names[512], text[64];
  list_enum_names(e, names, sizeof names);
  token first = p->tok;
  *skipped = 0;
  if (p->tok.kind == TOK_IDENT) {
    TRY(buf_set_token(p));
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(e, p->buf);
    printable_excerpt(p->buf, p->buf_len, text, sizeof text);
    if (!v) {
      TRY(note_unknown(p, &first, d, f, f->name,
                       "'%s' is not a value of enum %s (field '%s'), expected one of %s", text,
                       e->name, f->name, names));
      *skipped = 1;
    } else {
      *out = v->value;
    }
    return advance(p);
  }
  if (p->tok.kind != TOK_INT && !at(p, '-'))
    return unexpected(p, "a value of enum %s for field '%s' (one of %s)", e->name, f->name, names);
  int neg;
  uint64_t mag;
  TRY(parse_integer(p, f, &neg, &mag));
  int32_t n = (int32_t)signed_value(neg, mag);
  if (!protobuf_c_enum_descriptor_get_value(e, n)) {
    *skipped = 1;
    return note_unknown(p, &first, d, f, f->name,
                        "%" PRId32 " is not a value of enum %s (field '%s'), expected one of %s",
                        n, e->name, f->name, names);
  }
  *out = n;
  return NS_OK;
}

/* ---- storing values ---------------------------------------------------- */

/* Where the next value of f goes: for repeated fields a new zeroed element at
 * the end of the array (grown geometrically, capacity implied by the count);
 * otherwise the member itself, with its has_ flag or oneof case set. */
static void *field_slot(parser *p, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t *n = ns_pb_quantifier(msg, f);
    void **arr = ns_pb_member(msg, f);
    size_t size = ns_pb_element_size(f->type);
    int full = *n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0);
    if (full) {
      if (*n > SIZE_MAX / 2) {
        ns_fail(p->ctx, NS_ERR_NOMEM, "too many values for field '%s'", f->name);
        return NULL;
      }
      void *grown = ns_realloc_array(p->ctx, *arr, *n ? *n * 2 : 4, size);
      if (!grown) return NULL;
      *arr = grown;
    }
    char *slot = (char *)*arr + *n * size;
    memset(slot, 0, size);
    (*n)++;
    return slot;
  }
  ns_pb_mark_present(msg, f);
  return ns_pb_member(msg, f);
}

static ns_status store(parser *p, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                       const void *value, size_t size) {
  void *slot = field_slot(p, msg, f);
  if (!slot) return p->ctx->status;
  memcpy(slot, value, size);
  return NS_OK;
}

/* Stores the scratch buffer as a fresh string or bytes value. */
static ns_status store_scratch(parser *p, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                               const token *first) {
  if (f->type == PROTOBUF_C_TYPE_STRING) {
    if (memchr(p->buf, '\0', p->buf_len))
      return fail_at_token(p, first,
                           "string containing a NUL character, expected text without "
                           "NUL for string field '%s'",
                           f->name);
    char *s = ns_strndup(p->ctx, p->buf, p->buf_len);
    if (!s) return p->ctx->status;
    void *slot = field_slot(p, msg, f);
    if (!slot) {
      ns_free(p->ctx, s);
      return p->ctx->status;
    }
    *(char **)slot = s;
    return NS_OK;
  }
  ProtobufCBinaryData bd = {p->buf_len, NULL};
  if (bd.len) {
    bd.data = ns_alloc(p->ctx, bd.len);
    if (!bd.data) return p->ctx->status;
    memcpy(bd.data, p->buf, bd.len);
  }
  void *slot = field_slot(p, msg, f);
  if (!slot) {
    ns_free(p->ctx, bd.data);
    return p->ctx->status;
  }
  memcpy(slot, &bd, sizeof bd);
  return NS_OK;
}

static ns_status parse_scalar(parser *p, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
  token first = p->tok;
  int neg;
  uint64_t mag;
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
      TRY(parse_integer(p, f, &neg, &mag));
      int32_t v = (int32_t)signed_value(neg, mag);
      return store(p, msg, f, &v, sizeof v);
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
      TRY(parse_integer(p, f, &neg, &mag));
      int64_t v = signed_value(neg, mag);
      return store(p, msg, f, &v, sizeof v);
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
      TRY(parse_integer(p, f, &neg, &mag));
      uint32_t v = (uint32_t)mag;
      return store(p, msg, f, &v, sizeof v);
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
      TRY(parse_integer(p, f, &neg, &mag));
      return store(p, msg, f, &mag, sizeof mag);
    }
    case PROTOBUF_C_TYPE_FLOAT: {
      double d = 0;
      TRY(parse_floating(p, f, &d));
      float v = double_to_float(d);
      return store(p, msg, f, &v, sizeof v);
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
      double v = 0;
      TRY(parse_floating(p, f, &v));
      return store(p, msg, f, &v, sizeof v);
    }
    case PROTOBUF_C_TYPE_BOOL: {
      protobuf_c_boolean v = 0;
      TRY(parse_bool(p, f, &v));
      return store(p, msg, f, &v, sizeof v);
    }
    case PROTOBUF_C_TYPE_ENUM: {
      int32_t v = 0;
      int skipped;
      TRY(parse_enum(p, msg, f, &v, &skipped));
      return skipped ? NS_OK : store(p, msg, f, &v, sizeof v);
    }
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
      TRY(parse_string_literals(p, f));
      return store_scratch(p, msg, f, &first);
    case PROTOBUF_C_TYPE_MESSAGE:
      break;
  }
  return ns_fail(p->ctx, NS_ERR_INTERNAL, "field '%s': unexpected type", f->name);
}

/* ---- messages ---------------------------------------------------------- */

static int is_feature_scope(const parser *p, const ProtobufCMessageDescriptor *d) {
  if (!p->rules || !p->rules->feature_scopes) return 0;
  for (const ProtobufCMessageDescriptor *const *s = p->rules->feature_scopes; *s; s++)
    if (*s == d) return 1;
  return 0;
}

static ns_status new_message(ns_ctx *ctx, const ProtobufCMessageDescriptor *d,
                             ProtobufCMessage **out) {
  *out = ns_pb_message_new(ctx, d);
  return *out ? NS_OK : ctx->status;
}

static ns_status parse_fields(parser *p, ProtobufCMessage *msg, char close);

/* `{ ... }` or `< ... >` for message field f: a new message is hung on msg
 * first, then filled. */
static ns_status parse_message_value(parser *p, ProtobufCMessage *msg,
                                     const ProtobufCFieldDescriptor *f) {
  char close = at(p, '{') ? '}' : at(p, '<') ? '>' : 0;
  if (!close) return unexpected(p, "'{' to open message field '%s'", f->name);
  if (p->depth >= NS_TEXT_MAX_DEPTH)
    return unexpected(p, "at most %d levels of nested messages", NS_TEXT_MAX_DEPTH);
  ProtobufCMessage *sub;
  TRY(new_message(p->ctx, f->descriptor, &sub));
  void *slot = field_slot(p, msg, f);
  if (!slot) {
    ns_free(p->ctx, sub);
    return p->ctx->status;
  }
  *(ProtobufCMessage **)slot = sub;
  TRY(advance(p));
  const ProtobufCMessage *outer_scope = p->scope;
  if (is_feature_scope(p, f->descriptor)) p->scope = sub;
  p->depth++;
  ns_status st = parse_fields(p, sub, close);
  p->depth--;
  p->scope = outer_scope;
  return st;
}

static ns_status parse_one_value(parser *p, ProtobufCMessage *msg,
                                 const ProtobufCFieldDescriptor *f) {
  return f->type == PROTOBUF_C_TYPE_MESSAGE ? parse_message_value(p, msg, f)
                                            : parse_scalar(p, msg, f);
}

/* `[a, b, c]` (the `[` is current); `[]` is an empty list. */
static ns_status parse_list(parser *p, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
  TRY(advance(p));
  if (at(p, ']')) return advance(p);
  for (;;) {
    TRY(parse_one_value(p, msg, f));
    if (at(p, ']')) return advance(p);
    if (!at(p, ',')) return unexpected(p, "',' or ']' in the list of field '%s'", f->name);
    TRY(advance(p));
  }
}

/* Everything after a known field's name. */
static ns_status parse_field_value(parser *p, ProtobufCMessage *msg,
                                   const ProtobufCFieldDescriptor *f) {
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    if (at(p, ':')) TRY(advance(p));
  } else {
    if (!at(p, ':')) return unexpected(p, "':' after field name '%s'", f->name);
    TRY(advance(p));
  }
  if (f->label == PROTOBUF_C_LABEL_REPEATED && at(p, '[')) return parse_list(p, msg, f);
  return parse_one_value(p, msg, f);
}

/* ---- skipping unknown fields ------------------------------------------- */

static ns_status skip_field_rest(parser *p);

static ns_status skip_message(parser *p) {
  char close = at(p, '{') ? '}' : at(p, '<') ? '>' : 0;
  if (!close) return unexpected(p, "':' and a value, or '{', after an unknown field name");
  if (p->depth >= NS_TEXT_MAX_DEPTH)
    return unexpected(p, "at most %d levels of nested messages", NS_TEXT_MAX_DEPTH);
  TRY(advance(p));
  p->depth++;
  ns_status st = NS_OK;
  while (st == NS_OK && !at(p, close)) {
    if (p->tok.kind != TOK_IDENT) {
      st = unexpected(p, "a field name or '%c'", close);
      break;
    }
    st = advance(p);
    if (st == NS_OK) st = skip_field_rest(p);
  }
  p->depth--;
  return st == NS_OK ? advance(p) : st;
}

static ns_status skip_scalar(parser *p) {
  if (p->tok.kind == TOK_STRING) {
    while (p->tok.kind == TOK_STRING) TRY(advance(p));
    return NS_OK;
  }
  if (at(p, '-')) TRY(advance(p));
  if (p->tok.kind == TOK_INT || p->tok.kind == TOK_FLOAT || p->tok.kind == TOK_IDENT)
    return advance(p);
  return unexpected(p, "a value");
}

static ns_status skip_list(parser *p) {
  TRY(advance(p));
  if (at(p, ']')) return advance(p);
  for (;;) {
    TRY(at(p, '{') || at(p, '<') ? skip_message(p) : skip_scalar(p));
    if (at(p, ']')) return advance(p);
    if (!at(p, ',')) return unexpected(p, "',' or ']' in a list");
    TRY(advance(p));
  }
}

/* After an unknown field's name: `: value`, `: [list]`, `[list]` or a
 * message block, then an optional separator. */
static ns_status skip_field_rest(parser *p) {
  int colon = at(p, ':');
  if (colon) TRY(advance(p));
  if (at(p, '['))
    TRY(skip_list(p));
  else if (colon && !at(p, '{') && !at(p, '<'))
    TRY(skip_scalar(p));
  else
    TRY(skip_message(p));
  if (at(p, ';') || at(p, ',')) TRY(advance(p));
  return NS_OK;
}

/* The name of the value a single enum field of msg holds now: before any
 * value was read into it, its default. */
static void enum_default_name(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                              char *out, size_t cap) {
  out[0] = '\0';
  if (f->label == PROTOBUF_C_LABEL_REPEATED) return;
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
      f->descriptor, *(const int32_t *)ns_pb_member(msg, f));
  if (v) snprintf(out, cap, "%s", v->name);
}

/* Records an unknown field, or an unknown value of field value_of, in msg
 * (detail from fmt) with the log, which says whether the read stops here
 * (see text_unknown.h). */
static ns_status note_unknown(parser *p, const token *at_tok, const ProtobufCMessage *msg,
                              const ProtobufCFieldDescriptor *value_of, const char *field,
                              const char *fmt, ...) {
  ns_unknown_seen o;
  memset(&o, 0, sizeof o);
  o.message = msg->descriptor;
  snprintf(o.field, sizeof o.field, "%s", field);
  o.is_value = value_of != NULL;
  if (value_of) enum_default_name(msg, value_of, o.keeps, sizeof o.keeps);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o.detail, sizeof o.detail, fmt, ap);
  va_end(ap);
  o.line = at_tok->line;
  o.col = at_tok->col;
  o.scope = p->scope;
  return ns_unknown_note(&p->unknown, &o);
}

/* A field name the message lacks: noted, then its value skipped (a value
 * that is not well formed is still a syntax error). */
static ns_status unknown_field(parser *p, const ProtobufCMessage *msg) {
  char name[64];
  printable_excerpt(p->text + p->tok.start, p->tok.len, name, sizeof name);
  TRY(note_unknown(p, &p->tok, msg, NULL, name, "unknown field '%s' in message %s", name,
                   msg->descriptor->name));
  TRY(advance(p));
  return skip_field_rest(p);
}

/* ---- fields of one message --------------------------------------------- */

/* Refuses a second value for a non-repeated field, or a second member of a
 * oneof, as protobuf's TextFormat::Parse does. */
static ns_status check_single(parser *p, const ProtobufCMessage *msg,
                              const ProtobufCFieldDescriptor *f, const unsigned char *seen) {
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) return NS_OK;
  if (seen[f - d->fields])
    return fail_at_token(p, &p->tok,
                         "second value for field '%s' in message %s, expected it at most once "
                         "(it is not repeated)",
                         f->name, d->name);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t set = *(const uint32_t *)ns_pb_quantifier(msg, f);
    const ProtobufCFieldDescriptor *other = protobuf_c_message_descriptor_get_field(d, set);
    if (set != 0 && set != f->id && other)
      return fail_at_token(p, &p->tok,
                           "field '%s' in message %s, expected at most one member of its oneof "
                           "('%s' is already set)",
                           f->name, d->name, other->name);
  }
  return NS_OK;
}

static ns_status parse_field_list(parser *p, ProtobufCMessage *msg, char close,
                                  unsigned char *seen) {
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  for (;;) {
    if (close ? at(p, close) : p->tok.kind == TOK_EOF) return close ? advance(p) : NS_OK;
    if (p->tok.kind != TOK_IDENT)
      return close ? unexpected(p, "a field name or '%c' (message %s)", close, d->name)
                   : unexpected(p, "a field name (message %s)", d->name);
    const ProtobufCFieldDescriptor *f = ns_pb_field_named(d, p->text + p->tok.start, p->tok.len);
    if (!f) {
      TRY(unknown_field(p, msg));
      continue;
    }
    TRY(check_single(p, msg, f, seen));
    seen[f - d->fields] = 1;
    TRY(advance(p));
    TRY(parse_field_value(p, msg, f));
    if (at(p, ';') || at(p, ',')) TRY(advance(p));
  }
}

/* Fields until `close` (or end of input when close is 0). */
static ns_status parse_fields(parser *p, ProtobufCMessage *msg, char close) {
  unsigned n = msg->descriptor->n_fields;
  unsigned char *seen = ns_calloc(p->ctx, n ? n : 1, 1);
  if (!seen) return p->ctx->status;
  ns_status st = parse_field_list(p, msg, close, seen);
  ns_free(p->ctx, seen);
  return st;
}

ns_status ns_text_parse(ns_ctx *ctx, const char *text, size_t len, const char *filename,
                        const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out) {
  return ns_text_parse_with(ctx, text, len, filename, desc, NULL, out);
}

ns_status ns_text_parse_with(ns_ctx *ctx, const char *text, size_t len, const char *filename,
                             const ProtobufCMessageDescriptor *desc, const ns_text_rules *rules,
                             ProtobufCMessage **out) {
  *out = NULL;
  if (!desc || (!text && len)) return ns_fail(ctx, NS_ERR_USAGE, "ns_text_parse: bad arguments");
  parser p;
  memset(&p, 0, sizeof p);
  p.ctx = ctx;
  p.text = text ? text : "";
  p.len = len;
  p.file = filename ? filename : "<text>";
  p.line = 1;
  p.rules = rules;
  ProtobufCMessage *msg;
  TRY(new_message(ctx, desc, &msg));
  if (is_feature_scope(&p, desc)) p.scope = msg;
  ns_unknown_log_init(&p.unknown, ctx, p.file, rules);
  locale_guard lg;
  locale_enter(&lg);
  ns_status st = advance(&p);
  if (st == NS_OK) st = parse_fields(&p, msg, 0);
  locale_leave(&lg);
  if (st == NS_OK) st = ns_unknown_finish(&p.unknown); /* the messages still live */
  ns_unknown_log_free(&p.unknown);
  ns_free(ctx, p.buf);
  if (st != NS_OK) {
    protobuf_c_message_free_unpacked(msg, &ctx->pb_alloc);
    return st;
  }
  *out = msg;
  return NS_OK;
}

/* ---- writer ------------------------------------------------------------ */

static void put_indent(ns_strbuf *sb, int depth) {
  static const char spaces[] = "                                "; /* 32 */
  size_t n = (size_t)depth * 2;
  while (n > 0) {
    size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
    ns_strbuf_append(sb, spaces, k);
    n -= k;
  }
}

/* Double-quoted with protobuf's CEscape: \n \r \t \" \' \\ by name, other
 * bytes outside printable ASCII as three-digit octal. */
static void put_quoted(ns_strbuf *sb, const unsigned char *s, size_t n) {
  ns_strbuf_putc(sb, '"');
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    const char *named = c == '\n'   ? "\\n"
                        : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t"
                        : c == '"'  ? "\\\""
                        : c == '\'' ? "\\'"
                        : c == '\\' ? "\\\\"
                                    : NULL;
    if (!named && c >= 0x20 && c < 0x7f) continue;
    ns_strbuf_append(sb, (const char *)s + run, i - run);
    run = i + 1;
    if (named)
      ns_strbuf_puts(sb, named);
    else
      ns_strbuf_printf(sb, "\\%03o", c);
  }
  ns_strbuf_append(sb, (const char *)s + run, n - run);
  ns_strbuf_putc(sb, '"');
}

/* Shortest %.Ng (N from lo to hi) that reads back to the same value. */
static void put_floating(ns_strbuf *sb, double v, int is_float) {
  if (isnan(v)) {
    ns_strbuf_puts(sb, "nan");
    return;
  }
  if (isinf(v)) {
    ns_strbuf_puts(sb, v > 0 ? "inf" : "-inf");
    return;
  }
  char text[64];
  int lo = is_float ? 6 : 15, hi = is_float ? 9 : 17;
  for (int prec = lo; prec <= hi; prec++) {
    snprintf(text, sizeof text, "%.*g", prec, v);
    int same = is_float ? strtof(text, NULL) == (float)v : strtod(text, NULL) == v;
    if (same) break;
  }
  ns_strbuf_puts(sb, text);
}

static void put_enum(ns_strbuf *sb, const ProtobufCFieldDescriptor *f, int32_t v) {
  const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
  if (ev)
    ns_strbuf_puts(sb, ev->name);
  else
    ns_strbuf_printf(sb, "%" PRId32, v);
}

static void put_scalar(ns_strbuf *sb, const ProtobufCFieldDescriptor *f, const void *m) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      ns_strbuf_printf(sb, "%" PRId32, *(const int32_t *)m);
      break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      ns_strbuf_printf(sb, "%" PRIu32, *(const uint32_t *)m);
      break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      ns_strbuf_printf(sb, "%" PRId64, *(const int64_t *)m);
      break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      ns_strbuf_printf(sb, "%" PRIu64, *(const uint64_t *)m);
      break;
    case PROTOBUF_C_TYPE_FLOAT:
      put_floating(sb, *(const float *)m, 1);
      break;
    case PROTOBUF_C_TYPE_DOUBLE:
      put_floating(sb, *(const double *)m, 0);
      break;
    case PROTOBUF_C_TYPE_BOOL:
      ns_strbuf_puts(sb, *(const protobuf_c_boolean *)m ? "true" : "false");
      break;
    case PROTOBUF_C_TYPE_ENUM:
      put_enum(sb, f, *(const int32_t *)m);
      break;
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(const char *const *)m;
      put_quoted(sb, (const unsigned char *)(s ? s : ""), s ? strlen(s) : 0);
      break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *bd = m;
      put_quoted(sb, bd->data, bd->data ? bd->len : 0);
      break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
      break;
  }
}

static ns_status write_fields(ns_ctx *ctx, ns_strbuf *sb, const ProtobufCMessage *msg, int depth);

static ns_status write_value(ns_ctx *ctx, ns_strbuf *sb, const ProtobufCFieldDescriptor *f,
                             const void *member, int depth) {
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
    if (!sub) return NS_OK;
    put_indent(sb, depth);
    ns_strbuf_puts(sb, f->name);
    ns_strbuf_puts(sb, " {\n");
    TRY(write_fields(ctx, sb, sub, depth + 1));
    put_indent(sb, depth);
    ns_strbuf_puts(sb, "}\n");
    return NS_OK;
  }
  put_indent(sb, depth);
  ns_strbuf_puts(sb, f->name);
  ns_strbuf_puts(sb, ": ");
  put_scalar(sb, f, member);
  ns_strbuf_putc(sb, '\n');
  return NS_OK;
}

static ns_status write_fields(ns_ctx *ctx, ns_strbuf *sb, const ProtobufCMessage *msg, int depth) {
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  if (depth > NS_TEXT_MAX_DEPTH)
    return ns_fail(ctx, NS_ERR_INPUT, "message %s nested more than %d levels deep", d->name,
                   NS_TEXT_MAX_DEPTH);
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)ns_pb_quantifier(msg, f);
      const char *arr = *(const char *const *)ns_pb_member(msg, f);
      size_t size = ns_pb_element_size(f->type);
      for (size_t k = 0; arr && k < n; k++) TRY(write_value(ctx, sb, f, arr + k * size, depth));
    } else if (ns_pb_field_present(msg, f)) {
      TRY(write_value(ctx, sb, f, ns_pb_member(msg, f), depth));
    }
    if (sb->failed) return ns_strbuf_status(sb);
  }
  return NS_OK;
}

ns_status ns_text_write(ns_ctx *ctx, const ProtobufCMessage *msg, ns_strbuf *out) {
  if (!msg || !out) return ns_fail(ctx, NS_ERR_USAGE, "ns_text_write: bad arguments");
  locale_guard lg;
  locale_enter(&lg);
  ns_status st = write_fields(ctx, out, msg, 0);
  locale_leave(&lg);
  if (st == NS_OK) st = ns_strbuf_status(out);
  return st;
}
