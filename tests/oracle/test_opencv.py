"""Differential tests against OpenCV's Caffe importer (cv2.dnn), an
independent implementation of Caffe's semantics.

Random nets (written here), random weights and biases written by netsurg's
own codec (`netsurg init`), random inputs: netsurg forward and OpenCV must
agree on every blob the net has, within 1e-5 absolute + 1e-4 relative
(OpenCV uses its own convolution kernels, Winograd among them, so its sums
round differently; Caffe's own figures are checked as tightly in
test_conformance).

A blob that a wrong layer would change only below that tolerance tests
nothing, so the parameters are chosen for every layer to matter (LRN's alpha
near 1, leaky ReLU slopes, biases) and the test shows it: each layer, switched
off or given its other mode in OpenCV's copy of the net, moves its own blob by
at least SWITCH_MARGIN times the tolerance. Only layers OpenCV runs as Caffe
does are used (OpenCV 4.6 ignores LRN's k and InnerProduct's transpose).
Skipped without cv2/numpy or the CLI.
"""
import os
import random
import re
import shutil
import tempfile
import unittest
from nscli import CLI, run

try:
    import numpy as np
    import cv2
except ImportError:  # pragma: no cover
    np = cv2 = None

ATOL, RTOL = 1e-5, 1e-4
SWITCH_MARGIN = 100  # a switched-off layer must miss the tolerance this many times over
BIAS = 'bias_filler { type: "uniform" min: -0.5 max: 0.5 }'


def layer(name, type_, bottoms, tops, params=""):
    return {"name": name, "type": type_, "bottoms": bottoms, "tops": tops, "params": params}


def prototxt(layers):
    text = 'name: "random"\n'
    for l in layers:
        b = "".join(' bottom: "%s"' % x for x in l["bottoms"])
        t = "".join(' top: "%s"' % x for x in l["tops"])
        text += 'layer { name: "%s" type: "%s"%s%s %s }\n' % (l["name"], l["type"], b, t, l["params"])
    return text


def random_net(rng):
    """A random conv/relu/pool/lrn/ip/softmax stack: (layers, input shape)."""
    n = rng.choice([1, 2])
    c = rng.choice([1, 3, 4])
    h = rng.randint(17, 33)
    w = rng.randint(17, 33)
    layers = [layer("data", "Input", [], ["data"],
                    "input_param { shape { dim: %d dim: %d dim: %d dim: %d } }" % (n, c, h, w))]
    cur, ch, size = "data", c, min(h, w)
    for i in range(rng.randint(1, 3)):
        group = rng.choice([1, 2]) if ch % 2 == 0 else 1
        out = rng.choice([4, 6, 8])
        k = rng.choice([1, 3, 5])
        pad = rng.randint(0, k // 2)
        stride = rng.choice([1, 2])
        dil = rng.choice([1, 1, 2]) if k > 1 and size > 12 else 1
        name = "conv%d" % i
        layers.append(layer(name, "Convolution", [cur], [name],
                            "convolution_param { num_output: %d kernel_size: %d pad: %d stride: %d "
                            "group: %d dilation: %d %s }" % (out, k, pad, stride, group, dil, BIAS)))
        # in place, as Caffe's nets do, or into a blob of its own
        relu_top = name if rng.random() < 0.5 else "relu%d" % i
        layers.append(layer("relu%d" % i, "ReLU", [name], [relu_top],
                            "relu_param { negative_slope: %g }" % rng.choice([0, 0.1])))
        cur, ch = relu_top, out
        size = (size + 2 * pad - (dil * (k - 1) + 1)) // stride + 1
        if size > 6 and rng.random() < 0.7:
            pool = rng.choice(["MAX", "AVE"])
            pk, ps = rng.choice([(2, 2), (3, 2), (3, 1)])
            pp = rng.choice([0, 1]) if pk == 3 else 0
            pname = "pool%d" % i
            layers.append(layer(pname, "Pooling", [cur], [pname],
                                "pooling_param { pool: %s kernel_size: %d stride: %d pad: %d }"
                                % (pool, pk, ps, pp)))
            cur = pname
            size = -(-(size + 2 * pp - pk) // ps) + 1
        if rng.random() < 0.5:
            lname = "norm%d" % i
            # alpha near 1: the denominator (1 + alpha/n sum x^2)^beta is far from 1
            layers.append(layer(lname, "LRN", [cur], [lname],
                                "lrn_param { local_size: %d alpha: %g beta: 0.75 }"
                                % (rng.choice([3, 5]), rng.choice([0.5, 1, 2]))))
            cur = lname
    layers.append(layer("fc", "InnerProduct", [cur], ["fc"],
                        "inner_product_param { num_output: %d %s }" % (rng.choice([5, 10]), BIAS)))
    layers.append(layer("prob", "Softmax", ["fc"], ["prob"]))
    return layers, (n, c, h, w)


def switched_off(l):
    """The layer with its effect removed or its other mode, and whether its
    bias is to be zeroed (convolution, inner product: their weights always
    matter, their biases only if large enough); None for the input."""
    p = l["params"]
    if l["type"] == "ReLU":
        return dict(l, params="relu_param { negative_slope: 1 }"), False  # identity
    if l["type"] == "LRN":
        return dict(l, params=re.sub(r"alpha: \S+", "alpha: 0", p)), False  # divides by 1
    if l["type"] == "Pooling":
        return dict(l, params=p.replace("MAX", "AVE") if "MAX" in p else p.replace("AVE", "MAX")), False
    if l["type"] == "Softmax":
        return dict(l, type="Power"), False  # power 1, scale 1, shift 0: identity
    if l["type"] == "InnerProduct":
        return dict(l, params=p.replace("_param {", "_param { bias_term: false", 1)), False
    if l["type"] == "Convolution":
        return l, True  # OpenCV 4.6 ignores its bias_term: false
    return None, False


def blobs(layers):
    """{blob: the layer that writes it last}, the input aside: OpenCV's forward
    names layers, and an in-place blob's final value is its last writer's."""
    last = {}
    for l in layers[1:]:
        for t in l["tops"]:
            last[t] = l["name"]
    return last


def misses(ours, theirs):
    """How many times over the tolerance the worst element misses (<= 1: agrees)."""
    return (np.abs(ours - theirs) / (ATOL + RTOL * np.abs(theirs))).max()


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class OpenCVOracle(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-oracle-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def opencv(self, layers, weights, x, names, tag, zero_bias_of=None):
        proto = self.path(tag + ".prototxt")
        with open(proto, "w") as f:
            f.write(prototxt(layers))
        net = cv2.dnn.readNetFromCaffe(proto, weights)
        if zero_bias_of:
            lid = net.getLayerId(zero_bias_of)
            net.setParam(lid, 1, np.zeros_like(net.getParam(lid, 1)))
        net.setInput(x)
        return dict(zip(names, net.forward([names[b] for b in names])))

    def compare(self, layers, shape, seed):
        """netsurg and OpenCV on every blob: (OpenCV's blobs, the weights file,
        the input, the worst difference in tolerances)."""
        text = prototxt(layers)
        proto, weights = self.path("net.prototxt"), self.path("w.caffemodel")
        with open(proto, "w") as f:
            f.write(text)
        run("init", proto, "--seed", str(seed), "--filler", "xavier", "--out", weights)
        x = np.random.RandomState(seed).uniform(-1, 1, shape).astype(np.float32)
        np.save(self.path("in.npy"), x)
        names = blobs(layers)
        outs = sum((["--output", "%s=%s" % (b, self.path(b + ".npy"))] for b in names), [])
        run("forward", proto, weights, "--input", "data=" + self.path("in.npy"), *outs, "--threads", "1")
        theirs = self.opencv(layers, weights, x, names, "net")
        worst = 0
        for b in names:
            ours = np.load(self.path(b + ".npy"))
            self.assertEqual(ours.shape, theirs[b].shape, "%s\n%s" % (b, text))
            m = misses(ours, theirs[b])
            worst = max(worst, m)
            self.assertLessEqual(m, 1, "blob %s: max abs diff %g\n%s" % (b, np.abs(ours - theirs[b]).max(), text))
        return theirs, weights, x, worst

    def assert_every_layer_matters(self, layers, weights, x, ref, least):
        """Each layer switched off moves its own top by SWITCH_MARGIN tolerances;
        least[type] keeps the smallest move seen, for the figures printed."""
        names = blobs(layers)
        for i, l in enumerate(layers):
            off, zero_bias = switched_off(l)
            if off is None:
                continue
            altered = layers[:i] + [off] + layers[i + 1:]
            got = self.opencv(altered, weights, x, names, "off", l["name"] if zero_bias else None)
            m = misses(got[l["tops"][0]], ref[l["tops"][0]])
            least[l["type"]] = min(least.get(l["type"], m), m)
            self.assertGreater(m, SWITCH_MARGIN, "%s %s switched off moves %s by only %.3g tolerances"
                               % (l["type"], l["name"], l["tops"][0], m))

    def test_random_nets(self):
        rng = random.Random(1234)
        worst, least = 0, {}
        for seed in range(24):
            layers, shape = random_net(rng)
            with self.subTest(seed=seed):
                ref, weights, x, m = self.compare(layers, shape, seed + 1)
                worst = max(worst, m)
                self.assert_every_layer_matters(layers, weights, x, ref, least)
        print("worst blob difference: %.3g tolerances; least move of a layer switched off: %s"
              % (worst, ", ".join("%s %.3g" % kv for kv in sorted(least.items()))))

    def test_saved_files_load_in_opencv(self):
        # A legacy V1 prototxt upgraded by netsurg, weights saved by netsurg.
        legacy = ('name: "legacy"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 20\ninput_dim: 20\n'
                  'layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" '
                  'blobs_lr: 1 blobs_lr: 2 convolution_param { num_output: 4 kernel_size: 3 } }\n'
                  'layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }\n'
                  'layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" '
                  'pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n'
                  'layers { name: "fc" type: INNER_PRODUCT bottom: "pool1" top: "fc" '
                  'inner_product_param { num_output: 7 } }\n'
                  'layers { name: "prob" type: SOFTMAX bottom: "fc" top: "prob" }\n')
        src = self.path("legacy.prototxt")
        with open(src, "w") as f:
            f.write(legacy)
        up = self.path("upgraded.prototxt")
        run("upgrade", src, up)
        with open(up) as f:
            text = f.read()
        self.assertIn('type: "Convolution"', text)
        self.assertNotIn("layers {", text)
        weights = self.path("legacy.caffemodel")
        run("init", up, "--seed", "99", "--filler", "xavier", "--out", weights)
        x = np.random.RandomState(99).uniform(-1, 1, (1, 3, 20, 20)).astype(np.float32)
        np.save(self.path("x.npy"), x)
        names = ["conv1", "pool1", "fc", "prob"]
        run("forward", up, weights, "--input", "data=" + self.path("x.npy"),
            *sum((["--output", "%s=%s" % (b, self.path(b + ".npy"))] for b in names), []))
        net = cv2.dnn.readNetFromCaffe(up, weights)
        net.setInput(x)
        # conv1's final value is its in-place ReLU's output
        for b, theirs in zip(names, net.forward(["relu1", "pool1", "fc", "prob"])):
            ours = np.load(self.path(b + ".npy"))
            self.assertEqual(ours.shape, theirs.shape, b)
            self.assertLessEqual(misses(ours, theirs), 1, "%s: max abs diff %g" % (b, np.abs(ours - theirs).max()))


if __name__ == "__main__":
    unittest.main()
