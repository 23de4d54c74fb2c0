"""Differential tests against OpenCV's Caffe importer (cv2.dnn), an
independent implementation of Caffe's semantics.

Random nets (written here), random weights written by netsurg's own codec
(`netsurg init`), random inputs: netsurg forward and OpenCV must agree
within 1e-4 absolute + 1e-3 relative on every output (OpenCV uses its own
convolution kernels, Winograd among them, so its sums round differently;
Caffe's own figures are checked tighter in test_conformance).  Only layers
OpenCV runs as Caffe does are used (OpenCV 4.6 ignores LRN's k and
InnerProduct's transpose).  Skipped without cv2/numpy or the CLI.
"""
import os
import random
import shutil
import sys
import tempfile
import unittest
from nscli import CLI, run

try:
    import numpy as np
    import cv2
except ImportError:  # pragma: no cover
    np = cv2 = None

ATOL, RTOL = 1e-4, 1e-3


def layer(name, type_, bottoms, tops, params=""):
    b = "".join(' bottom: "%s"' % x for x in bottoms)
    t = "".join(' top: "%s"' % x for x in tops)
    return 'layer { name: "%s" type: "%s"%s%s %s }\n' % (name, type_, b, t, params)


def random_net(rng):
    """A random conv/pool/lrn/ip stack; returns (prototxt, input shape, output blob)."""
    n = rng.choice([1, 2])
    c = rng.choice([1, 3, 4])
    h = rng.randint(17, 33)
    w = rng.randint(17, 33)
    text = 'name: "random"\n'
    text += layer("data", "Input", [], ["data"],
                  "input_param { shape { dim: %d dim: %d dim: %d dim: %d } }" % (n, c, h, w))
    cur, ch, size = "data", c, min(h, w)
    for i in range(rng.randint(1, 3)):
        group = rng.choice([1, 2]) if ch % 2 == 0 else 1
        out = rng.choice([4, 6, 8])
        k = rng.choice([1, 3, 5])
        pad = rng.randint(0, k // 2)
        stride = rng.choice([1, 2])
        dil = rng.choice([1, 1, 2]) if k > 1 and size > 12 else 1
        name = "conv%d" % i
        text += layer(name, "Convolution", [cur], [name],
                      "convolution_param { num_output: %d kernel_size: %d pad: %d stride: %d "
                      "group: %d dilation: %d }" % (out, k, pad, stride, group, dil))
        text += layer("relu%d" % i, "ReLU", [name], [name],
                      "relu_param { negative_slope: %g }" % rng.choice([0, 0.1]))
        cur, ch = name, out
        size = (size + 2 * pad - (dil * (k - 1) + 1)) // stride + 1
        if size > 6 and rng.random() < 0.7:
            pool = rng.choice(["MAX", "AVE"])
            pk, ps = rng.choice([(2, 2), (3, 2), (3, 1)])
            pp = rng.choice([0, 1]) if pk == 3 else 0
            pname = "pool%d" % i
            text += layer(pname, "Pooling", [cur], [pname],
                          "pooling_param { pool: %s kernel_size: %d stride: %d pad: %d }" % (pool, pk, ps, pp))
            cur = pname
            size = -(-(size + 2 * pp - pk) // ps) + 1
        if rng.random() < 0.4:
            lname = "norm%d" % i
            text += layer(lname, "LRN", [cur], [lname],
                          "lrn_param { local_size: %d alpha: 0.001 beta: 0.75 }" % rng.choice([3, 5]))
            cur = lname
    text += layer("fc", "InnerProduct", [cur], ["fc"], "inner_product_param { num_output: %d }" % rng.choice([5, 10]))
    text += layer("prob", "Softmax", ["fc"], ["prob"])
    return text, (n, c, h, w), "prob"


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class OpenCVOracle(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-oracle-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def compare(self, proto_text, shape, out_blob, seed):
        proto = self.path("net.prototxt")
        weights = self.path("w.caffemodel")
        with open(proto, "w") as f:
            f.write(proto_text)
        run("init", proto, "--seed", str(seed), "--filler", "xavier", "--out", weights)
        x = np.random.RandomState(seed).uniform(-1, 1, shape).astype(np.float32)
        np.save(self.path("in.npy"), x)
        run("forward", proto, weights, "--input", "data=" + self.path("in.npy"),
            "--output", "%s=%s" % (out_blob, self.path("out.npy")), "--threads", "1")
        ours = np.load(self.path("out.npy"))
        net = cv2.dnn.readNetFromCaffe(proto, weights)
        net.setInput(x)
        theirs = net.forward(out_blob)
        self.assertEqual(ours.shape, theirs.shape, proto_text)
        err = np.abs(ours - theirs) - (ATOL + RTOL * np.abs(theirs))
        self.assertLessEqual(err.max(), 0, "max abs diff %g\n%s" % (np.abs(ours - theirs).max(), proto_text))

    def test_random_nets(self):
        rng = random.Random(1234)
        for seed in range(12):
            text, shape, out = random_net(rng)
            with self.subTest(seed=seed):
                self.compare(text, shape, out, seed + 1)

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
        self.compare(text, (1, 3, 20, 20), "prob", 99)


if __name__ == "__main__":
    unittest.main()
