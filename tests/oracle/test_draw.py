"""netsurg draw and fcn --draw: the diagrams checked against independent
readings of the same nets.

- The SVG (Graphviz's dot lays it out) parses as XML (xml.etree).
- Boxes: one per layer of the definition (parsed by Google's protobuf from
  our caffe.proto, compiled by protoc here) less the in-place layers (every
  top named as its bottom), which are folded into the box they modify.
- Every blob shape that `netsurg info --json` lists is printed somewhere in
  the drawing (as 1×96×55×55).
- Hostile names (markup, entities, quotes, backslashes, control bytes,
  bytes that are not UTF-8) leave the SVG well-formed, and the HTML page with
  exactly its own two scripts and its data intact.
- A net that cannot be shaped: drawn up to the failing layer, that box
  marked, exit status as `info`'s.
- The HTML page opened in Chromium (headless): the screenshot is not blank,
  and its search (driven by #search=NAME) marks the layer.
The time of each shared net's draw is printed (the README quotes it); only a
hang bound is asserted.

Skipped without Graphviz's dot, protoc, or (the browser test) chromium.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

from nscli import CLI, SHARED, run

PROTOTXT = os.path.join(SHARED, "data", "prototxt")
SHARED_NETS = {  # the nets the issue asks to draw within 2 s
    "googlenet": os.path.join(PROTOTXT, "current", "bvlc_googlenet__deploy.prototxt"),
    "resnet50": os.path.join(PROTOTXT, "zoo", "resnet50__deploy.prototxt"),
    "ssd_face": os.path.join(PROTOTXT, "wild", "face__res10_300x300_ssd_deploy.prototxt"),
}
HANG_BOUND_S = 60  # not the 2 s goal: a check that nothing hangs on a loaded machine
SVG = "{http://www.w3.org/2000/svg}"
TIMES = "\u00d7"


def draw(net, out, *extra, env=None):
    p = subprocess.run([CLI, "draw", net, "--out", out, *extra], capture_output=True, text=True,
                       env=env)
    return p


def svg_boxes(root):
    return [g for g in root.iter(SVG + "g") if g.get("class") == "node"]


def svg_text(root):
    return "\n".join(t.text or "" for t in root.iter(SVG + "text"))


def shape_text(shape):
    return TIMES.join(str(d) for d in shape)


def contains_shape(text, shape):
    """The shape as a whole (1×96×55×55 not inside 11×96×55×55)."""
    s = re.escape(shape_text(shape))
    return re.search(r"(?<![0-9%s])%s(?![0-9%s])" % (TIMES, s, TIMES), text) is not None


def caffenet(tmp):
    path = os.path.join(tmp, "caffenet.prototxt")
    with open(path, "w") as f:
        subprocess.run(["scripts/make-caffenet.sh", "1", "227"], stdout=f, check=True)
    return path


def definition_boxes(pb2, path):
    """Layers of a deploy definition less its in-place ones, by protobuf;
    deprecated input fields become one Input layer."""
    from google.protobuf import text_format
    net = pb2.NetParameter()
    with open(path) as f:
        text_format.Parse(f.read(), net, allow_unknown_field=True)
    layers = list(net.layer) or list(net.layers)
    in_place = [l for l in layers if l.top and list(l.top) == list(l.bottom)[:len(l.top)]]
    return len(layers) - len(in_place) + (1 if net.input else 0)


@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(shutil.which("dot") is None, "Graphviz's dot not installed (graphviz)")
class Draw(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ns_draw_")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_caffenet_boxes_shapes_and_totals(self):
        net = caffenet(self.tmp)
        out = self.path("caffenet.svg")
        run("draw", net, "--out", out)
        root = ET.parse(out).getroot()
        boxes = svg_boxes(root)
        # 24 layers written by make-caffenet.sh, 9 in place (relu1-7, drop6-7)
        self.assertEqual(len(boxes), 15)
        text = svg_text(root)
        # AlexNet's params by hand: conv 34,944 + 307,456 + 885,120 + 663,936
        # + 442,624, fc 37,752,832 + 16,781,312 + 4,097,000
        self.assertIn("60,965,224 params", text)
        self.assertIn("RF 11 px, stride 4 px", text)  # conv1: 11x11 kernel, stride 4
        self.assertIn("RF 195 px, stride 32 px", text)  # pool5, as Caffe's net surgery says
        self.assertIn("+ ReLU relu1", text)
        # conv1: 96*3*11*11 * 55*55 multiply-adds = 105,415,200
        self.assertIn("105.4M multiply-adds", text)
        for blob in json.loads(run("info", net, "--json").stdout)["blobs"]:
            self.assertTrue(contains_shape(text, blob["shape"]), blob)

    def test_shared_nets(self):
        try:
            from test_textformat_protobuf import compile_caffe_proto
            pb2 = compile_caffe_proto(self.tmp) if shutil.which("protoc") else None
        except ImportError:
            pb2 = None
        for name, net in SHARED_NETS.items():
            with self.subTest(net=name):
                if not os.path.exists(net):
                    self.skipTest("no %s (../shared)" % net)
                if pb2 is None:
                    self.skipTest("protoc or python3-protobuf not installed")
                out = self.path(name + ".svg")
                start = time.monotonic()
                p = draw(net, out)
                took = time.monotonic() - start
                print("draw %s: %.2f s" % (name, took))
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertLess(took, HANG_BOUND_S)
                root = ET.parse(out).getroot()
                self.assertEqual(len(svg_boxes(root)), definition_boxes(pb2, net))
                text = svg_text(root)
                info = json.loads(run("info", net, "--json").stdout)
                missing = [b["name"] for b in info["blobs"] if not contains_shape(text, b["shape"])]
                self.assertEqual(missing, [])

    def test_hostile_names(self):
        # as written in the prototxt (its escapes: \" \\ and octal bytes)
        names = ['</text><script>alert(1)</script>', 'a&amp;b&#1;&lt;', '\\"q\'\\\\N\\\\G',
                 ']]><!--', 'c\\001d\\377e', '\\303\\251t\\303\\251']
        lines = ['name: "<svg onload=x>"',
                 'layer { name: "%s" type: "Input" top: "%s" '
                 'input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }' % (names[0], names[1])]
        prev = names[1]
        for i, n in enumerate(names[2:]):
            lines.append('layer { name: "%s" type: "Convolution" bottom: "%s" top: "%s" '
                         'convolution_param { num_output: 2 kernel_size: 1 } }' % (n, prev, n))
            prev = n
        net = self.path("hostile.prototxt")
        with open(net, "w") as f:
            f.write("\n".join(lines) + "\n")
        run("draw", net, "--out", self.path("hostile.svg"))
        root = ET.parse(self.path("hostile.svg")).getroot()
        # names in the boxes' text, blob names in the edges' hover titles
        text = svg_text(root) + "\n".join(v for e in root.iter() for v in e.attrib.values())
        self.assertEqual(len(svg_boxes(root)), 5)
        self.assertIn("</text><script>alert(1)</script>", text)  # as text, not markup
        self.assertIn("a&amp;b&#1;&lt;", text)
        self.assertIn("\"q'\\N\\G", svg_text(root))  # Graphviz would expand \N, \G
        titles = [a.get("{http://www.w3.org/1999/xlink}title") for a in root.iter(SVG + "a")]
        self.assertIn("\"q'\\N\\G (Convolution)", titles)
        self.assertIn("c\ufffdd\ufffde", text)  # control byte, not UTF-8: U+FFFD
        self.assertIn("\u00e9t\u00e9", text)
        run("draw", net, "--out", self.path("hostile.html"))
        with open(self.path("hostile.html"), encoding="utf-8") as f:
            page = f.read()
        self.assertEqual(page.count("<script"), 2)
        self.assertEqual(page.count("</script>"), 2)
        data = re.search(r'<script type="application/json" id="net-data">(.*?)</script>', page, re.S)
        layers = json.loads(data.group(1))["layers"]
        self.assertEqual([l["name"] for l in layers][:2], ['</text><script>alert(1)</script>',
                                                            '"q\'\\N\\G'])

    def test_partial_net(self):
        net = self.path("partial.prototxt")
        with open(net, "w") as f:
            f.write('name: "partial"\n'
                    'layer { name: "data" type: "Input" top: "data" '
                    'input_param { shape { dim: 1 dim: 3 dim: 10 dim: 10 } } }\n'
                    'layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" '
                    'convolution_param { num_output: 4 kernel_size: 3 } }\n'
                    'layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }\n'
                    'layer { name: "odd" type: "NoSuchLayer" bottom: "conv1" top: "odd" }\n'
                    'layer { name: "conv2" type: "Convolution" bottom: "odd" top: "conv2" '
                    'convolution_param { num_output: 4 kernel_size: 3 } }\n')
        info = subprocess.run([CLI, "info", net], capture_output=True, text=True)
        p = draw(net, self.path("partial.svg"))
        self.assertEqual(p.returncode, 3, p.stderr)  # unsupported layer, as info says
        self.assertEqual(p.returncode, info.returncode)
        root = ET.parse(self.path("partial.svg")).getroot()
        self.assertEqual(len(svg_boxes(root)), 3)  # data, conv1 (+relu1), odd
        text = svg_text(root)
        self.assertIn("cannot be shaped:", text)
        self.assertIn("NoSuchLayer", text)
        self.assertIn("1\u00d74\u00d78\u00d78", text)  # conv1's shape, 10 - 3 + 1
        self.assertNotIn("conv2", text)

    def test_fcn_draw_marks_the_cast(self):
        net = caffenet(self.tmp)
        weights = self.path("caffenet.caffemodel")
        run("init", net, "--seed", "3", "--out", weights)
        out = self.path("cast.svg")
        run("fcn", net, weights, "--size", "451x451", "--out", self.path("cast"), "--draw", out)
        root = ET.parse(out).getroot()
        text = svg_text(root)
        self.assertEqual(text.count("cast from InnerProduct"), 3 + 1)  # 3 boxes + the legend
        # 451 = 227 + 7*32: an 8x8 map (the seed's notebook)
        self.assertIn("map 8\u00d78", text)
        self.assertIn("1\u00d74096\u00d78\u00d78", text)

    def test_usage_and_missing_dot(self):
        net = caffenet(self.tmp)
        self.assertEqual(subprocess.run([CLI, "draw", net], capture_output=True).returncode, 1)
        for bad in (["--out", self.path("x.png")], ["--out", self.path("x.svg"), "--phase", "X"],
                    ["--out", self.path("x.svg"), "--shape", "1,0"]):
            self.assertEqual(draw(net, *bad[1:2], *bad[2:]).returncode, 1, bad)
        self.assertEqual(draw(self.path("absent.prototxt"), self.path("x.svg")).returncode, 4)
        env = dict(os.environ, NETSURG_DOT=self.path("no-such-dot"))
        p = draw(net, self.path("nodot.svg"), env=env)
        self.assertEqual(p.returncode, 4)
        self.assertIn("graphviz", p.stderr)
        self.assertFalse(os.path.exists(self.path("nodot.svg")))
        self.assertEqual(draw(net, self.path("nodot.dot"), env=env).returncode, 0)
        # --shape reshapes the input: 1x3x451x451 gives conv1 1x96x111x111, and
        # then fc6's weights (9216 inputs) do not fit pool5: drawn up to fc6,
        # exit 6 (invalid net) as the reshape says
        p = draw(net, self.path("big.svg"), "--shape", "1,3,451,451")
        self.assertEqual(p.returncode, 6, p.stderr)
        text = svg_text(ET.parse(self.path("big.svg")).getroot())
        self.assertIn("1\u00d796\u00d7111\u00d7111", text)
        self.assertIn("cannot be shaped:", text)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(shutil.which("dot") is None, "Graphviz's dot not installed (graphviz)")
@unittest.skipIf(chromium() is None, "chromium not installed")
class DrawInBrowser(unittest.TestCase):
    """Two browser runs (each a few seconds on a loaded machine)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ns_draw_browser_")
        cls.page = os.path.join(cls.tmp, "caffenet.html")
        run("draw", caffenet(cls.tmp), "--out", cls.page)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def browser(self, *args):
        profile = tempfile.mkdtemp(dir=self.tmp)
        # --no-sandbox: Chromium refuses to run as root with its sandbox, and
        # containers often lack the user namespaces it needs; the page is ours
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--hide-scrollbars", "--user-data-dir=" + profile, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def test_screenshot_not_blank(self):
        import cv2
        png = os.path.join(self.tmp, "shot.png")
        self.browser("--window-size=1000,800", "--screenshot=" + png, "file://" + self.page)
        img = cv2.imread(png)
        self.assertIsNotNone(img, "no screenshot")
        self.assertEqual(img.shape[:2], (800, 1000))
        # a blank page is one colour; boxes, text and edges spread the values
        self.assertGreater(float(img.std()), 20.0)
        colours = len({tuple(p) for p in img.reshape(-1, 3)[::7].tolist()})
        self.assertGreater(colours, 50)

    def test_search_finds_a_layer(self):
        p = self.browser("--dump-dom", "file://" + self.page + "#search=conv2")
        dom = p.stdout
        status = re.search(r'id="status">([^<]*)<', dom)
        self.assertIsNotNone(status, dom[-2000:])
        self.assertEqual(status.group(1), "1 layer, 1 blob edge match: conv2")
        hits = re.findall(r'<g id="(L\d+)" class="node hit"', dom)
        data = re.search(r'<script type="application/json" id="net-data">(.*?)</script>', dom, re.S)
        ids = {l["name"]: l["id"] for l in json.loads(data.group(1))["layers"]}
        self.assertEqual(hits, [ids["conv2"]])


if __name__ == "__main__":
    unittest.main()
