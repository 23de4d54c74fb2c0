/* Escaping for the three languages a name passes through: XML (SVG, HTML,
 * Graphviz's HTML-like labels), Graphviz's quoted strings, and JSON inside
 * an HTML <script>.  Layer and blob names come from the model file: any
 * bytes at all.  Bytes that are not UTF-8, and control characters (which
 * XML 1.0 cannot carry even as references), become U+FFFD. */
#include <string.h>

#include "tools/draw_graph.h"

#define REPLACEMENT "\xef\xbf\xbd"

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0. */
static int utf8_length(const unsigned char *s) {
  if (s[0] < 0x80) return 1;
  int n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
  if (!n || s[0] > 0xf4) return 0;
  for (int i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (n == 3 && s[0] == 0xe0 && s[1] < 0xa0) return 0;  /* overlong */
  if (n == 3 && s[0] == 0xed && s[1] >= 0xa0) return 0; /* surrogates */
  if (n == 4 && s[0] == 0xf0 && s[1] < 0x90) return 0;  /* overlong */
  if (n == 4 && s[0] == 0xf4 && s[1] >= 0x90) return 0; /* past U+10FFFF */
  return n;
}

typedef const char *(*escape_fn)(unsigned char c);

static void escape_with(FILE *f, const char *text, escape_fn ascii) {
  const unsigned char *s = (const unsigned char *)text;
  while (*s) {
    int n = utf8_length(s);
    if (n == 1 && *s >= 0x20 && *s != 0x7f) {
      const char *e = ascii(*s);
      if (e)
        fputs(e, f);
      else
        fputc(*s, f);
    } else if (n > 1) {
      fwrite(s, 1, (size_t)n, f);
    } else {
      fputs(REPLACEMENT, f);
      n = 1;
    }
    s += n;
  }
}

static const char *xml_entity(unsigned char c) {
  switch (c) {
    case '&':
      return "&amp;";
    case '<':
      return "&lt;";
    case '>':
      return "&gt;";
    case '"':
      return "&quot;";
    case '\'':
      return "&#39;";
    default:
      return NULL;
  }
}

/* Graphviz expands \N, \G, \E, \T, \H and \L (the node's, graph's, ...
 * names) in labels and tooltips, and reads a doubled backslash as one:
 * once in an HTML-like label, twice in a quoted tooltip (in Graphviz 2.42
 * a tooltip needs four backslashes before N to show one).  It copies a
 * tooltip to the SVG leaving anything that looks like an entity as it is,
 * so &, < and > go in as entities. */
static const char *dot_label_escape(unsigned char c) {
  if (c == '\\') return "\\\\";
  return xml_entity(c);
}

static const char *dot_string_escape(unsigned char c) {
  if (c == '\\') return "\\\\\\\\";
  return xml_entity(c);
}

/* Inside <script>: no "</script", no "<!--"; the page's JSON.parse
 * decodes the escapes. */
static const char *json_escape(unsigned char c) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '<':
      return "\\u003c";
    case '>':
      return "\\u003e";
    case '&':
      return "\\u0026";
    default:
      return NULL;
  }
}

void draw_xml(FILE *f, const char *s) { escape_with(f, s, xml_entity); }
void draw_dot_label(FILE *f, const char *s) { escape_with(f, s, dot_label_escape); }
void draw_dot_string(FILE *f, const char *s) { escape_with(f, s, dot_string_escape); }
void draw_json(FILE *f, const char *s) {
  fputc('"', f);
  escape_with(f, s, json_escape);
  fputc('"', f);
}
