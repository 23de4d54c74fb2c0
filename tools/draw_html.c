/* The HTML page: one file, nothing fetched.  The SVG inline, hover
 * details, a search box (also driven by #search=NAME in the address, so a
 * headless browser can test it), a table of layers sortable by cost.  The
 * data reaches the script as JSON in a <script type="application/json">
 * (draw_json escapes '<', so no name can close it). */
#include <stdlib.h>
#include <string.h>

#include "tools/draw_graph.h"

static const char page_style[] =
    "<style>\n"
    "body{font:13px Helvetica,Arial,sans-serif;margin:0;color:#222}\n"
    "header{position:sticky;top:0;z-index:2;background:#f6f6f6;border-bottom:1px solid #ccc;"
    "padding:6px 10px;display:flex;gap:12px;align-items:center}\n"
    "header h1{font-size:15px;margin:0}\n"
    "#search{width:260px;padding:3px 6px}\n"
    "#status{color:#555}\n"
    "#graph.fit svg{height:calc(100vh - 70px);width:auto;max-width:100%}\n"
    "#main{display:flex;align-items:flex-start}\n"
    /* the graph scrolls in its own pane, at its own size (min-width: a flex
     * item would otherwise grow to a wide net's width and push the page) */
    "#graph{flex:1;min-width:0;overflow:auto;max-height:calc(100vh - 50px);padding:8px}\n"
    /* dot measured the labels in Helvetica's widths: fonts of about those
     * widths before the wider DejaVu Sans most Linux systems fall back to */
    "#graph svg text{font-family:Helvetica,Arial,'Liberation Sans','Nimbus Sans',"
    "'DejaVu Sans Condensed',sans-serif}\n"
    "#details{position:sticky;top:44px;width:300px;min-height:120px;margin:8px;padding:8px;"
    "border:1px solid #ccc;background:#fff;font-size:12px;overflow-wrap:anywhere}\n"
    ".d-name{font-weight:bold;font-size:14px}.d-error{color:#c1121f}\n"
    "g.node.hit path,g.node.hit polygon{stroke:#e63946;stroke-width:5px}\n"
    "g.edge.hit path{stroke:#e63946;stroke-width:3px}\n"
    "table{border-collapse:collapse;margin:8px 10px 30px}\n"
    "th,td{border:1px solid #ddd;padding:2px 6px;text-align:left}\n"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
    "th{background:#eee;cursor:pointer;user-select:none}\n"
    "tbody tr:hover{background:#fff3c4;cursor:pointer}\n"
    "</style>\n";

/* Written for this page; plain ES5 so any browser of the last ten years
 * runs it from a file: URL. */
static const char page_script[] =
    "(function () {\n"
    "  'use strict';\n"
    "  var data = JSON.parse(document.getElementById('net-data').textContent);\n"
    "  var layers = data.layers, edges = data.edges, byId = {};\n"
    "  layers.forEach(function (l) { byId[l.id] = l; });\n"
    "  var details = document.getElementById('details');\n"
    "  var status = document.getElementById('status');\n"
    "  var search = document.getElementById('search');\n"
    "  var fit = document.getElementById('fit'), graph = document.getElementById('graph');\n"
    "  function fmt(n) { return Number(n).toLocaleString('en-US'); }\n"
    "  function line(text, cls) {\n"
    "    var d = document.createElement('div');\n"
    "    d.textContent = text;\n"
    "    if (cls) d.className = cls;\n"
    "    details.appendChild(d);\n"
    "  }\n"
    "  function share(l) {\n"
    "    return data.total_macs ? (100 * l.macs / data.total_macs).toFixed(1) + '%' : '';\n"
    "  }\n"
    "  function show(l) {\n"
    "    details.textContent = '';\n"
    "    line(l.name, 'd-name');\n"
    "    line(l.type + (l.cast ? ' (cast from InnerProduct)' : ''));\n"
    "    if (l.out) line('output: ' + l.out);\n"
    "    if (l.params) line('params: ' + l.params + ' = ' + fmt(l.n_params));\n"
    "    if (l.macs) line('multiply-adds: ' + fmt(l.macs) + ' (' + share(l) + ' of the net)');\n"
    "    if (l.rf) line(l.rf);\n"
    "    l.folded.forEach(function (f) { line('folded in: ' + f); });\n"
    "    if (l.bottoms.length) line('reads: ' + l.bottoms.join(', '));\n"
    "    if (l.tops.length) line('writes: ' + l.tops.join(', '));\n"
    "    if (l.error) line('cannot be shaped: ' + l.error, 'd-error');\n"
    "  }\n"
    "  Array.prototype.forEach.call(document.querySelectorAll('#graph g.node'), function (g) {\n"
    "    var l = byId[g.id];\n"
    "    if (l) g.addEventListener('mouseenter', function () { show(l); });\n"
    "  });\n"
    "  /* Exact names first; else every name containing the text. */\n"
    "  function pick(items, names, q) {\n"
    "    function any(item, test) { return names(item).some(test); }\n"
    "    var exact = items.filter(function (i) {\n"
    "      return any(i, function (n) { return n.toLowerCase() === q; });\n"
    "    });\n"
    "    return exact.length ? exact : items.filter(function (i) {\n"
    "      return any(i, function (n) { return n.toLowerCase().indexOf(q) >= 0; });\n"
    "    });\n"
    "  }\n"
    "  function runSearch(text) {\n"
    "    var q = text.trim().toLowerCase();\n"
    "    Array.prototype.forEach.call(document.querySelectorAll('#graph .hit'), function (e) {\n"
    "      e.classList.remove('hit');\n"
    "    });\n"
    "    if (!q) { status.textContent = ''; return; }\n"
    "    var ls = pick(layers, function (l) { return [l.name].concat(l.folded_names); }, q);\n"
    "    var es = pick(edges, function (e) { return [e.blob]; }, q);\n"
    "    ls.concat(es).forEach(function (x) {\n"
    "      var el = document.getElementById(x.id);\n"
    "      if (el) el.classList.add('hit');\n"
    "    });\n"
    "    status.textContent = ls.length + (ls.length === 1 ? ' layer' : ' layers') + ', ' +\n"
    "      es.length + (es.length === 1 ? ' blob edge' : ' blob edges') + ' match' +\n"
    "      (ls.length ? ': ' + ls.slice(0, 6).map(function (l) { return l.name; }).join(', ') +\n"
    "      (ls.length > 6 ? ', ...' : '') : '');\n"
    "    var first = ls.length ? document.getElementById(ls[0].id) :\n"
    "      es.length ? document.getElementById(es[0].id) : null;\n"
    "    if (first && !fit.checked) first.scrollIntoView({block: 'center', inline: 'center'});\n"
    "    if (ls.length) show(ls[0]);\n"
    "  }\n"
    "  search.addEventListener('input', function () { runSearch(search.value); });\n"
    "  fit.addEventListener('change', function () {\n"
    "    graph.classList.toggle('fit', fit.checked);\n"
    "  });\n"
    "  /* #search=NAME and #fit, joined by '&'. */\n"
    "  function fromHash() {\n"
    "    location.hash.replace(/^#/, '').split('&').forEach(function (part) {\n"
    "      if (part === 'fit') fit.checked = true;\n"
    "      if (part.indexOf('search=') === 0) {\n"
    "        search.value = decodeURIComponent(part.slice(7));\n"
    "        runSearch(search.value);\n"
    "      }\n"
    "    });\n"
    "    graph.classList.toggle('fit', fit.checked);\n"
    "  }\n"
    "  window.addEventListener('hashchange', fromHash);\n"
    "  /* The table: click a heading to sort by it, a row to find the layer. */\n"
    "  var columns = [\n"
    "    ['name', 'layer'], ['type', 'type'], ['out', 'output'], ['n_params', 'params'],\n"
    "    ['macs', 'multiply-adds'], ['share', 'share']];\n"
    "  var key = 'macs', descending = true;\n"
    "  var tbody = document.querySelector('#layers tbody');\n"
    "  var head = document.querySelector('#layers thead tr');\n"
    "  function value(l, k) { return k === 'share' ? l.macs : l[k]; }\n"
    "  function render() {\n"
    "    var rows = layers.slice().sort(function (a, b) {\n"
    "      var x = value(a, key), y = value(b, key);\n"
    "      var c = typeof x === 'number' ? x - y : String(x).localeCompare(String(y));\n"
    "      return descending ? -c : c;\n"
    "    });\n"
    "    tbody.textContent = '';\n"
    "    rows.forEach(function (l) {\n"
    "      var tr = document.createElement('tr');\n"
    "      [l.name, l.type, l.out, fmt(l.n_params), fmt(l.macs), share(l)].forEach(\n"
    "        function (text, i) {\n"
    "          var td = document.createElement('td');\n"
    "          td.textContent = text;\n"
    "          if (i >= 3) td.className = 'n';\n"
    "          tr.appendChild(td);\n"
    "        });\n"
    "      tr.addEventListener('click', function () {\n"
    "        search.value = l.name;\n"
    "        runSearch(l.name);\n"
    "      });\n"
    "      tbody.appendChild(tr);\n"
    "    });\n"
    "  }\n"
    "  columns.forEach(function (c) {\n"
    "    var th = document.createElement('th');\n"
    "    th.textContent = c[1];\n"
    "    th.addEventListener('click', function () {\n"
    "      descending = key === c[0] ? !descending : (c[0] === 'name' || c[0] === 'type' ||\n"
    "                                                  c[0] === 'out') ? false : true;\n"
    "      key = c[0];\n"
    "      render();\n"
    "    });\n"
    "    head.appendChild(th);\n"
    "  });\n"
    "  render();\n"
    "  fromHash();\n"
    "})();\n";

static int text_field(FILE *f, const char *key,
                      void (*fn)(FILE *, const draw_graph *, const draw_box *), const draw_graph *g,
                      const draw_box *b) {
  char *s = draw_string(fn, g, b);
  if (!s) return NS_ERR_NOMEM;
  fprintf(f, ", \"%s\": ", key);
  draw_json(f, s);
  free(s);
  return 0;
}

static void rf_fn(FILE *f, const draw_graph *g, const draw_box *b) { draw_rf_text(f, g, b); }
static void tops_fn(FILE *f, const draw_graph *g, const draw_box *b) {
  if (b->layer >= 0) draw_tops_text(f, g, b);
}

static void name_list(FILE *f, const char *key, const draw_graph *g, int layer, int tops) {
  fprintf(f, ", \"%s\": [", key);
  int n = tops ? ns_net_layer_top_count(g->net, layer) : ns_net_layer_bottom_count(g->net, layer);
  for (int j = 0; j < n; j++) {
    if (j) fputs(", ", f);
    draw_json(f, tops ? ns_net_layer_top(g->net, layer, j) : ns_net_layer_bottom(g->net, layer, j));
  }
  fputs("]", f);
}

static void folded_json(FILE *f, const draw_graph *g, const draw_box *b) {
  fputs(", \"folded\": [", f);
  for (int k = 0; k < b->n_folded; k++) {
    char line[512];
    snprintf(line, sizeof line, "%s %s", ns_net_layer_type(g->net, b->folded[k]),
             ns_net_layer_name(g->net, b->folded[k]));
    fputs(k ? ", " : "", f);
    draw_json(f, line);
  }
  fputs("], \"folded_names\": [", f);
  for (int k = 0; k < b->n_folded; k++) {
    fputs(k ? ", " : "", f);
    draw_json(f, ns_net_layer_name(g->net, b->folded[k]));
  }
  fputs("]", f);
}

static int layer_json(FILE *f, const draw_graph *g, int i) {
  const draw_box *b = &g->boxes[i];
  fprintf(f, "%s\n  {\"id\": \"L%d\", \"name\": ", i ? "," : "", i);
  draw_json(f, draw_box_name(g, b));
  fputs(", \"type\": ", f);
  draw_json(f, draw_box_type(g, b));
  int rc = text_field(f, "out", tops_fn, g, b);
  if (!rc) rc = text_field(f, "params", draw_params_text, g, b);
  if (!rc) rc = text_field(f, "rf", rf_fn, g, b);
  fprintf(f, ", \"n_params\": %lld, \"macs\": %.0f, \"cast\": %s", (long long)b->n_params, b->macs,
          b->cast ? "true" : "false");
  if (b->layer >= 0) {
    name_list(f, "bottoms", g, b->layer, 0);
    name_list(f, "tops", g, b->layer, 1);
    folded_json(f, g, b);
    fputs(", \"error\": null}", f);
  } else {
    fputs(", \"bottoms\": [], \"tops\": [], \"folded\": [], \"folded_names\": [], \"error\": ", f);
    draw_json(f, g->req->error ? g->req->error : "");
    fputs("}", f);
  }
  return rc;
}

static int data_json(FILE *f, const draw_graph *g) {
  fprintf(f, "{\"total_macs\": %.0f, \"layers\": [", g->total_macs);
  int rc = 0;
  for (int i = 0; i < g->n_boxes && !rc; i++) rc = layer_json(f, g, i);
  fputs("],\n \"edges\": [", f);
  for (int i = 0; i < g->n_edges; i++) {
    const draw_edge *e = &g->edges[i];
    fprintf(f, "%s{\"id\": \"E%d\", \"blob\": ", i ? ", " : "", i);
    draw_json(f, e->blob >= 0 ? ns_net_blob(g->net, e->blob).name : "");
    fputs("}", f);
  }
  fputs("]}\n", f);
  return rc;
}

/* Graphviz's SVG from its <svg> element on (the XML declaration and
 * DOCTYPE do not belong inside HTML). */
static void inline_svg(FILE *f, const char *svg, size_t len) {
  const char *start = NULL;
  for (size_t i = 0; i + 4 <= len; i++)
    if (!memcmp(svg + i, "<svg", 4)) {
      start = svg + i;
      break;
    }
  if (start) fwrite(start, 1, len - (size_t)(start - svg), f);
}

int draw_html_write(FILE *f, const draw_graph *g, const char *svg, size_t svg_len) {
  const char *name = g->net ? ns_net_name(g->net) : ns_netdef_name(g->req->def);
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
  draw_xml(f, *name ? name : "net");
  fputs(" (netsurg draw)</title>\n", f);
  fputs(page_style, f);
  fputs("</head>\n<body>\n<header><h1>", f);
  draw_xml(f, *name ? name : "net");
  fputs(
      "</h1><input id=\"search\" type=\"search\" placeholder=\"find a layer or blob\" "
      "autocomplete=\"off\"><label><input id=\"fit\" type=\"checkbox\"> whole net</label>"
      "<span id=\"status\"></span></header>\n<div id=\"main\">"
      "<div id=\"graph\">\n",
      f);
  inline_svg(f, svg, svg_len);
  fputs(
      "</div>\n<aside id=\"details\">Hover a layer for its details; search above; the "
      "table below sorts by any column.</aside></div>\n"
      "<table id=\"layers\"><thead><tr></tr></thead><tbody></tbody></table>\n"
      "<script type=\"application/json\" id=\"net-data\">",
      f);
  int rc = data_json(f, g);
  fputs("</script>\n<script>\n", f);
  fputs(page_script, f);
  fputs("</script>\n</body>\n</html>\n", f);
  return rc;
}
