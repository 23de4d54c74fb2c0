"""The forks' layers in the wild prototxts that use them, forward against
independent computations: `netsurg init` weights (BatchNorm statistics set
to random ones and Scale gammas to 0.3, as test_zoo_opencv.py does, so that
deep nets stay finite), the same random input, every compared blob within
1e-4 of its largest magnitude.

- SE-ResNet-50 (Axpy): OpenCV 4.6 reads the file, but its Axpy computes
  a * bottom[2] + bottom[1], where the fork (hujie-frank/SENet
  axpy_layer.cpp: top = bottom[2], then caffe_axpy of a and bottom[1])
  computes a * bottom[1] + bottom[2]: the SE gate scales the residual
  branch, not the shortcut.  The test shows that on the first Axpy (OpenCV's
  value is the swapped formula on netsurg's bottoms, themselves equal to
  OpenCV's, and far from ours), then runs OpenCV on a copy with each
  Axpy's second and third bottoms swapped: every Axpy top (after the
  in-place ReLU that follows it) and `prob` are compared.
- ShuffleNet v2 (ShuffleChannel, ConvolutionDepthwise): OpenCV 4.6 has a
  ShuffleChannel layer but its opencv-caffe.proto has no
  shuffle_channel_param, so it cannot read the file.  It runs a rewritten
  copy instead, in which each ShuffleChannel is the same permutation
  written as Reshape (N, g, C/g, H, W), Permute (0, 2, 1, 3, 4), Reshape
  (N, C, H, W), and each ConvolutionDepthwise a Convolution with group =
  num_output (the fork's weights (C, 1, k, k) are that layer's); the
  layer names, and so the caffemodel, are the same.  Every ShuffleChannel
  top and `fc1000` are compared.
- YOLOv3 (the one-bottom Upsample): OpenCV has no upsample_param either;
  each Upsample top is compared with its bottom repeated 2 x 2 (numpy),
  both from netsurg's forward, on a 96 x 96 input.
- PSPNet (BN, Interp): OpenCV has neither bn_param nor interp_param, and a
  forward at 473 x 473 is too slow here: the layers are checked by hand in
  tests/test_layer_forks.c; the net shapes (test_corpus_cli.py) and runs
  (tests/slow/test_wild_forward_big.py).
Slow (about a minute): skipped with NS_SKIP_SLOW=1.
"""
import json
import os
import re
import shutil
import tempfile
import unittest
from nscli import CLI, SHARED, run

try:
    import numpy as np
    import cv2
except ImportError:  # pragma: no cover
    np = cv2 = None

WILD = os.path.join(SHARED, "data", "prototxt", "wild")
RTOL = 1e-4


def layer_blocks(text):
    """The prototxt split into (start, end) spans of its top-level layer { } blocks."""
    spans, depth, start = [], 0, None
    for m in re.finditer(r"\blayer\s*\{|\{|\}", text):
        tok = m.group(0)
        if tok.startswith("layer") and depth == 0:
            start, depth = m.start(), 1
        elif tok.endswith("{"):
            depth += 1
        else:
            depth -= 1
            if depth == 0 and start is not None:
                spans.append((start, m.end()))
                start = None
    return spans


def field(block, name):
    m = re.search(r'\b%s:\s*"?([^"\s]+)"?' % name, block)
    return m.group(1) if m else None


def shuffle_as_permute(block, shape):
    """A ShuffleChannel block as Reshape, Permute, Reshape with the same top."""
    name, bottom, top = field(block, "name"), field(block, "bottom"), field(block, "top")
    g = int(field(block, "group"))
    _, c, h, w = shape

    def reshape(lname, src, dst, dims):
        d = " ".join("dim: %d" % v for v in dims)
        return ('layer { name: "%s" type: "Reshape" bottom: "%s" top: "%s" '
                'reshape_param { shape { %s } } }\n' % (lname, src, dst, d))
    return (reshape(name + "/split", bottom, name + "/split", (0, g, c // g, h, w)) +
            'layer { name: "%s/t" type: "Permute" bottom: "%s/split" top: "%s/t" '
            'permute_param { order: 0 order: 2 order: 1 order: 3 order: 4 } }\n' % (name, name, name) +
            reshape(name, name + "/t", top, (0, c, h, w)))


def depthwise_as_grouped(block):
    n = field(block, "num_output")
    block = block.replace('"ConvolutionDepthwise"', '"Convolution"', 1)
    return re.sub(r"num_output:\s*\d+", "num_output: %s group: %s" % (n, n), block, count=1)


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(os.environ.get("NS_SKIP_SLOW") == "1", "slow (NS_SKIP_SLOW=1)")
@unittest.skipIf(not os.path.isdir(WILD), "../shared wild prototxts absent")
class ForksAgainstOracles(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-forks-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def weights(self, proto):
        """init weights with random BatchNorm statistics and 0.3 gammas."""
        w = self.path("w.caffemodel")
        run("init", proto, "--filler", "msra", "--seed", "3", "--out", w)
        info = json.loads(run("info", proto, "--json").stdout)
        rng, edits = np.random.RandomState(7), []
        for layer in info["layers"]:
            name, tag = layer["name"], self.path(layer["name"].replace("/", "_"))
            if layer["type"] == "BatchNorm":
                c = layer["params"][0][0]
                for i, v in enumerate((rng.normal(0, 0.5, c), rng.uniform(0.5, 2, c), [1.0])):
                    np.save("%s_%d.npy" % (tag, i), np.asarray(v, np.float32))
                    edits += ["--load", "%s[%d]=%s_%d.npy" % (name, i, tag, i)]
            elif layer["type"] == "Scale" and layer["params"]:
                np.save(tag + "_gamma.npy", np.full(layer["params"][0], 0.3, np.float32))
                edits += ["--load", "%s[0]=%s_gamma.npy" % (name, tag)]
        fixed = self.path("w_bn.caffemodel")
        run("edit", proto, w, *edits, "--out", fixed)
        return fixed, info

    def ours(self, proto, weights, info, x, blobs):
        np.save(self.path("x.npy"), x)
        data = [l for l in info["layers"] if l["type"] == "Input"][0]["tops"][0]
        args = ["forward", proto, weights, "--input", "%s=%s" % (data, self.path("x.npy"))]
        for i, b in enumerate(blobs):
            args += ["--output", "%s=%s" % (b, self.path("out%d.npy" % i))]
        run(*args)
        return [np.load(self.path("out%d.npy" % i)) for i in range(len(blobs))]

    def compare(self, what, ours, theirs):
        theirs = np.asarray(theirs).reshape(ours.shape)
        scale = np.abs(theirs).max()
        self.assertTrue(np.isfinite(theirs).all(), what)
        self.assertGreater(scale, 0, "%s: a blob of zeros proves nothing" % what)
        err = np.abs(ours - theirs).max()
        self.assertLessEqual(err, RTOL * scale, "%s: max abs diff %g, scale %g" % (what, err, scale))
        return err / scale

    def opencv(self, cv_proto, weights, info, x, blobs):
        net = cv2.dnn.readNetFromCaffe(cv_proto, weights)
        net.setInput(x)
        # OpenCV names an in-place blob's value by the layer that wrote it
        # (the blob's name alone is its first writer's output); ours is
        # the blob after its last writer: ask OpenCV for that layer.
        # The Splits netsurg inserts (info lists them) are not OpenCV's.
        last, source = {}, {}
        for layer in info["layers"]:
            for top in layer["tops"]:
                if layer["type"] == "Split":
                    source[top] = layer["bottoms"][0]
                else:
                    last[top] = layer["name"]
        names = [last[source.get(b, b)] for b in blobs]
        try:
            return net.forward(names)
        except cv2.error as e:
            raise AssertionError("OpenCV cannot give %s: %s" % (names, e))

    def against_opencv(self, proto, cv_proto, blobs, size):
        weights, info = self.weights(proto)
        x = np.random.RandomState(1).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        ours = self.ours(proto, weights, info, x, blobs)
        theirs = self.opencv(cv_proto, weights, info, x, blobs)
        worst = max(self.compare(b, o, t) for b, o, t in zip(blobs, ours, theirs))
        print("%s: %d blobs, worst max abs diff %.2g of the scale" %
              (os.path.basename(proto), len(blobs), worst))

    def wild(self, name):
        p = os.path.join(WILD, name)
        if not os.path.exists(p):
            self.skipTest(p + " absent")
        return p

    def rewrite(self, proto, change):
        """A copy of proto with change(type, block) applied to each layer block."""
        with open(proto) as f:
            text = f.read()
        out, last = [], 0
        for a, b in layer_blocks(text):
            out.append(text[last:a])
            out.append(change(field(text[a:b], "type"), text[a:b]))
            last = b
        out.append(text[last:])
        path = self.path("opencv.prototxt")
        with open(path, "w") as f:
            f.write("".join(out))
        return path

    def test_senet_axpy(self):
        proto = self.wild("senet__SE-ResNet-50.prototxt")
        weights, info = self.weights(proto)
        layers = [l for l in info["layers"] if l["type"] == "Axpy"]
        self.assertEqual(len(layers), 16)
        x = np.random.RandomState(1).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
        first = layers[0]["bottoms"] + layers[0]["tops"]
        a, resid, short, top = self.ours(proto, weights, info, x, first)
        cv_a, cv_resid, cv_short, cv_top = self.opencv(proto, weights, info, x, first)
        for name, o, t in zip(first, (a, resid, short), (cv_a, cv_resid, cv_short)):
            self.compare(name, o, t)
        self.compare("fork's Axpy on our bottoms", top, np.maximum(a * resid + short, 0))
        self.compare("OpenCV's Axpy, bottoms swapped", cv_top.reshape(top.shape),
                     np.maximum(a * short + resid, 0))
        self.assertGreater(np.abs(top - cv_top.reshape(top.shape)).max(),
                           100 * RTOL * np.abs(top).max(), "OpenCV's Axpy follows the fork now")

        def swap(kind, block):
            if kind != "Axpy":
                return block
            b = re.findall(r'bottom:\s*"[^"]*"', block)
            return block.replace(b[1], "@@").replace(b[2], b[1]).replace("@@", b[2])
        cv_proto = self.rewrite(proto, swap)
        blobs = [l["tops"][0] for l in layers] + ["prob"]
        ours = self.ours(proto, weights, info, x, blobs)
        theirs = self.opencv(cv_proto, weights, info, x, blobs)
        worst = max(self.compare(b, o, t) for b, o, t in zip(blobs, ours, theirs))
        print("SE-ResNet-50: %d blobs, worst max abs diff %.2g of the scale" % (len(blobs), worst))

    def test_shufflenet_shuffle_and_depthwise(self):
        proto = self.wild("shufflenet__shufflenet_v2_1x_deploy.prototxt")
        info = json.loads(run("info", proto, "--json").stdout)
        shapes = {b["name"]: b["shape"] for b in info["blobs"]}
        shuffles = []

        def as_opencv(kind, block):
            if kind == "ShuffleChannel":
                shuffles.append(field(block, "top"))
                return shuffle_as_permute(block, shapes[field(block, "bottom")])
            return depthwise_as_grouped(block) if kind == "ConvolutionDepthwise" else block
        cv_proto = self.rewrite(proto, as_opencv)
        self.assertEqual(len(shuffles), 16)
        self.against_opencv(proto, cv_proto, shuffles + ["fc1000"], 224)

    def test_yolo_upsample(self):
        proto = self.wild("yolo__yolov3_416x416.prototxt")
        weights, info = self.weights(proto)
        ups = [l for l in info["layers"] if l["type"] == "Upsample"]
        self.assertEqual(len(ups), 2)
        blobs = [b for l in ups for b in (l["bottoms"][0], l["tops"][0])]
        x = np.random.RandomState(1).uniform(-1, 1, (1, 3, 96, 96)).astype(np.float32)
        got = self.ours(proto, weights, info, x, blobs)
        for i in range(0, len(got), 2):
            bottom, top = got[i], got[i + 1]
            self.assertEqual(top.shape[2:], (2 * bottom.shape[2], 2 * bottom.shape[3]))
            self.compare(blobs[i + 1], top, bottom.repeat(2, axis=2).repeat(2, axis=3))


if __name__ == "__main__":
    unittest.main()
