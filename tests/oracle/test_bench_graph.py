"""The benchmark's peer graphs (bench/peers/caffe_graph.py) compute the Caffe
net they are built from: a benchmark of a different graph would be worthless.

Parser and shape rules against hand-worked values; the PyTorch rebuild of a
small net with every CaffeNet layer type (grouped padded convolution, max
pooling whose last window hangs over the edge, LRN with large activations,
inner product, softmax) against `netsurg forward`, which test_opencv checks
against OpenCV. Skipped without numpy, cv2, torch or the CLI.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from nscli import CLI

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "peers"))
try:
    import numpy as np
    import caffe_graph
except ImportError:  # pragma: no cover
    np = caffe_graph = None
try:
    import cv2  # noqa: F401  (read_params uses it)
    import torch
except ImportError:  # pragma: no cover
    torch = None


SMALL = """# every layer type CaffeNet uses
name: "small"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 2 dim: 4 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 2
                            weight_filler { type: "xavier" } bias_filler { type: "uniform" min: -1 max: 1 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1"
        lrn_param { local_size: 5 alpha: 0.01 beta: 0.75 } }
layer { name: "fc" type: "InnerProduct" bottom: "norm1" top: "fc"
        inner_product_param { num_output: 7 weight_filler { type: "xavier" }
                              bias_filler { type: "uniform" min: -1 max: 1 } } }
layer { name: "drop" type: "Dropout" bottom: "fc" top: "fc" }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@unittest.skipIf(caffe_graph is None, "numpy missing")
class ParseAndShape(unittest.TestCase):
    def test_parse_nested_repeated_comments_strings(self):
        d = caffe_graph.parse_prototxt(
            'name: "a # not a comment" # a comment\n'
            'layer { bottom: "x" bottom: "y" p { dim: 1 dim: 2 } }\nlayer { }\n')
        self.assertEqual(d["name"], ["a # not a comment"])
        self.assertEqual(len(d["layer"]), 2)
        self.assertEqual(d["layer"][0]["bottom"], ["x", "y"])
        self.assertEqual(d["layer"][0]["p"][0]["dim"], ["1", "2"])

    def test_small_net_shape(self):
        with tempfile.NamedTemporaryFile("w", suffix=".prototxt") as f:
            f.write(SMALL)
            f.flush()
            layers = caffe_graph.layers_of(f.name)
        # conv 8x8 pad 1 -> 8; pool k3 s2: Caffe rounds up, ceil(5/2)+1 = 4
        # (flooring would give 3); the inner product gives (2, 7).
        self.assertEqual(caffe_graph.output_shape(layers[:4]), [2, 6, 4, 4])
        self.assertEqual(caffe_graph.output_shape(layers), [2, 7])

    def test_unsupported_layer_refused(self):
        with tempfile.NamedTemporaryFile("w", suffix=".prototxt") as f:
            f.write(SMALL.replace('type: "LRN"', 'type: "BatchNorm"'))
            f.flush()
            with self.assertRaises(ValueError):
                caffe_graph.layers_of(f.name)


@unittest.skipIf(torch is None or caffe_graph is None, "torch or cv2 missing")
@unittest.skipUnless(os.access(CLI, os.X_OK), "netsurg CLI not built")
class TorchRebuild(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_matches_netsurg_forward(self):
        p = lambda f: os.path.join(self.dir, f)  # noqa: E731
        with open(p("n.prototxt"), "w") as f:
            f.write(SMALL)
        subprocess.run([CLI, "init", p("n.prototxt"), "--seed", "3", "--out", p("w.caffemodel")],
                       check=True, capture_output=True)
        # Large inputs, so that LRN's denominator is far from 1.
        x = np.random.default_rng(5).uniform(-30, 30, (2, 4, 8, 8)).astype(np.float32)
        np.save(p("x.npy"), x)
        subprocess.run([CLI, "forward", p("n.prototxt"), p("w.caffemodel"), "--input",
                        "data=" + p("x.npy"), "--output", "fc=" + p("fc.npy")], check=True,
                       capture_output=True)
        ref = np.load(p("fc.npy"))
        layers = caffe_graph.layers_of(p("n.prototxt"))
        params = caffe_graph.read_params(p("n.prototxt"), p("w.caffemodel"), layers)
        m = caffe_graph.torch_module(layers[:-1], params)  # up to fc: logits
        with torch.no_grad():
            y = m(torch.from_numpy(x)).numpy()
        self.assertEqual(y.shape, ref.shape)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
        # The LRN mattered: without it the result is far off.
        no_lrn = [d for d in layers[:-1] if d["type"] != "LRN"]
        no_lrn[no_lrn.index(next(d for d in no_lrn if d["name"] == "fc"))] = dict(
            next(d for d in layers if d["name"] == "fc"), bottom=["pool1"])
        with torch.no_grad():
            z = caffe_graph.torch_module(no_lrn, params)(torch.from_numpy(x)).numpy()
        self.assertGreater(np.abs(z - ref).max(), 1e-2 * np.abs(ref).max())


if __name__ == "__main__":
    unittest.main()
