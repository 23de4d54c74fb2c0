"""pycaffe's gradients, partial runs, NetSpec and resize_image on
netsurg.caffe, against independent figures: PyTorch's autograd on the
same weights, a closed-form Euclidean-loss gradient, hand-written
prototxts parsed by protobuf's own text format, and resize_image against
an interpolation written here from its definition.  Needs only the
library (no ../shared)."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import numpy as np

from nscli import BUILD, sanitized

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SO = os.path.join(BUILD, "libnetsurg.so")


SANITIZED = sanitized()
if os.path.exists(SO) and not SANITIZED:
    os.environ.setdefault("NETSURG_LIB", os.path.abspath(SO))
    sys.path.insert(0, os.path.join(ROOT, "python"))
    sys.path.insert(0, os.path.join(ROOT, "python", "caffe_shim"))
    import netsurg
    import caffe
else:
    netsurg = caffe = None
NO_LIB = ("libnetsurg.so built with sanitizers cannot load into python3" if SANITIZED
          else "no %s (make)" % SO)
try:
    import torch
except ImportError:
    torch = None


def write_net(tmp, text):
    path = os.path.join(tmp, "net.prototxt")
    with open(path, "w") as f:
        f.write(text)
    return path


EUCLIDEAN_NET = """
name: "ip_euclidean"
force_backward: true
layer { name: "data" type: "Input" top: "data" top: "target"
  input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 1 }
                        bias_filler { type: "gaussian" std: 1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }
"""

# A deploy net (no loss) with force_backward, as pycaffe's saliency and
# deep-dream code use: the caller writes the output's diff.
DEPLOY_NET = """
name: "conv_tanh_ip"
force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 7 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1
    weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "tanh" type: "TanH" bottom: "conv" top: "act" }
layer { name: "ip" type: "InnerProduct" bottom: "act" top: "out"
  inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 }
                        bias_filler { type: "gaussian" std: 0.5 } } }
"""

# conv then an in-place ReLU, which netsurg fuses into the convolution:
# a forward that ends at conv must show the values before the ReLU.
RELU_NET = """
name: "conv_relu"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 5 dim: 5 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 3 kernel_size: 3
    weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "out"
  inner_product_param { num_output: 4 weight_filler { type: "gaussian" std: 1 } } }
"""


def load(text):
    with tempfile.TemporaryDirectory() as tmp:
        return caffe.Net(write_net(tmp, text), caffe.TEST)


@unittest.skipUnless(netsurg is not None, NO_LIB)
class Backward(unittest.TestCase):
    def test_euclidean_gradient_in_closed_form(self):
        # loss = sum((W x + b - y)^2) / (2 N): dW = r^T x / N, db = sum(r) / N,
        # dx = r W / N with r = W x + b - y (Caffe's EuclideanLossLayer).
        net = load(EUCLIDEAN_NET)
        rng = np.random.default_rng(3)
        x = rng.standard_normal((4, 3)).astype(np.float32)
        y = rng.standard_normal((4, 2)).astype(np.float32)
        out = net.forward(data=x, target=y)
        w = net.params["ip"][0].data.astype(np.float64)
        b = net.params["ip"][1].data.astype(np.float64)
        r = x @ w.T + b - y
        self.assertAlmostEqual(float(out["loss"]), (r ** 2).sum() / 8, places=5)
        grads = net.backward()
        self.assertEqual(sorted(grads), ["data", "target"])
        np.testing.assert_allclose(grads["data"], r @ w / 4, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(net.blobs["data"].diff, r @ w / 4, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(net.params["ip"][0].diff, r.T @ x / 4, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(net.params["ip"][1].diff, r.sum(0) / 4, rtol=1e-5, atol=1e-6)
        # The loss top's diff holds its weight (Caffe's SetLossWeights).
        self.assertEqual(float(net.blobs["loss"].diff), 1.0)
        # Param diffs accumulate over backward calls, as Caffe's.
        net.backward()
        np.testing.assert_allclose(net.params["ip"][1].diff, r.sum(0) / 2, rtol=1e-5, atol=1e-6)

    def torch_reference(self, net, x, g):
        """The deploy net's output and d(sum(out * g))/d(everything) by autograd."""
        t = lambda a: torch.tensor(np.array(a, np.float64), requires_grad=True)
        xt, cw, cb = t(x), t(net.params["conv"][0].data), t(net.params["conv"][1].data)
        iw, ib = t(net.params["ip"][0].data), t(net.params["ip"][1].data)
        act = torch.tanh(torch.nn.functional.conv2d(xt, cw, cb, stride=2, padding=1))
        out = act.reshape(act.shape[0], -1) @ iw.T + ib
        (out * torch.tensor(g, dtype=torch.float64)).sum().backward()
        return out.detach().numpy(), {"data": xt.grad, "conv_w": cw.grad, "conv_b": cb.grad,
                                      "ip_w": iw.grad, "ip_b": ib.grad}

    @unittest.skipUnless(torch is not None, "no torch (scripts/install-deps.sh test)")
    def test_top_diff_backward_equals_autograd(self):
        net = load(DEPLOY_NET)
        rng = np.random.default_rng(5)
        x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
        g = rng.standard_normal((2, 5)).astype(np.float32)
        out = net.forward(data=x)["out"]
        want_out, want = self.torch_reference(net, x, g)
        np.testing.assert_allclose(out, want_out, rtol=1e-4, atol=1e-5)
        diffs = net.backward(out=g)
        close = lambda got, w: np.testing.assert_allclose(got, w.numpy(), rtol=1e-4, atol=1e-5)
        close(diffs["data"], want["data"])
        close(net.params["conv"][0].diff, want["conv_w"])
        close(net.params["conv"][1].diff, want["conv_b"])
        close(net.params["ip"][0].diff, want["ip_w"])
        close(net.params["ip"][1].diff, want["ip_b"])
        np.testing.assert_array_equal(net.blobs["out"].diff, g)

    def test_backward_in_two_ranges_equals_whole(self):
        net = load(DEPLOY_NET)
        rng = np.random.default_rng(6)
        net.forward(data=rng.standard_normal((2, 3, 7, 6)).astype(np.float32))
        g = rng.standard_normal((2, 5)).astype(np.float32)
        whole = net.backward(out=g)["data"].copy()
        net.blobs["data"].diff[...] = 7  # must be overwritten
        top = net.backward(start="ip", end="ip", out=g)
        self.assertEqual(list(top), ["act"])
        self.assertTrue((net.blobs["data"].diff == 7).all(), "ran below end")
        low = net.backward(start="tanh", end="conv", diffs=["conv"])
        self.assertEqual(sorted(low), ["conv", "data"])
        np.testing.assert_array_equal(low["data"], whole)

    def test_backward_argument_errors(self):
        net = load(DEPLOY_NET)
        net.forward()
        with self.assertRaises(KeyError):
            net.backward(start="nope")
        with self.assertRaises(KeyError):
            net.backward(act=np.zeros((2, 4, 4, 3)))  # not an output
        with self.assertRaises(ValueError):
            net.backward(out=np.zeros((3, 5)))  # not batch sized
        with self.assertRaises(netsurg.Error):  # start below end: an empty range
            net.backward(start="conv", end="ip")


@unittest.skipUnless(netsurg is not None, NO_LIB)
class PartialForward(unittest.TestCase):
    def test_forward_in_two_ranges_equals_whole(self):
        net = load(DEPLOY_NET)
        x = np.random.default_rng(7).standard_normal((2, 3, 7, 6)).astype(np.float32)
        whole = net.forward(data=x)["out"].copy()
        net.blobs["out"].data[...] = 0
        part = net.forward(data=x, end="tanh")
        self.assertEqual(list(part), ["act"])
        self.assertTrue((net.blobs["out"].data == 0).all(), "ran past end")
        rest = net.forward(start="ip")
        np.testing.assert_array_equal(rest["out"], whole)

    def test_end_before_a_fused_relu_shows_the_conv(self):
        net = load(RELU_NET)
        x = np.random.default_rng(8).standard_normal((1, 2, 5, 5)).astype(np.float32)
        conv = net.forward(data=x, end="conv")["conv"].copy()
        # The convolution by hand (3x3 valid): negatives stay.
        w, b = net.params["conv"][0].data, net.params["conv"][1].data
        want = np.zeros((1, 3, 3, 3))
        for i in range(3):
            for j in range(3):
                want[0, :, i, j] = np.tensordot(w, x[0, :, i:i + 3, j:j + 3], 3) + b
        np.testing.assert_allclose(conv, want, rtol=1e-5, atol=1e-5)
        self.assertLess(conv.min(), 0)
        out = net.forward(start="relu")["out"]
        want_out = np.maximum(want, 0).reshape(1, -1) @ net.params["ip"][0].data.T.astype(
            np.float64) + net.params["ip"][1].data
        np.testing.assert_allclose(out, want_out, rtol=1e-4, atol=1e-4)

    def test_unknown_layer_is_a_key_error(self):
        net = load(RELU_NET)
        with self.assertRaises(KeyError):
            net.forward(end="fc9")


def caffe_pb2_or_skip(test):
    """caffe_pb2, generated (make's rule, protoc) when a clean checkout has
    none yet; the test skips without protoc or python3-protobuf."""
    try:
        from google.protobuf import text_format  # noqa: F401
    except ImportError as e:
        test.skipTest("%s (scripts/install-deps.sh test)" % e)
    target = os.path.join("python", "netsurg", "caffe", "proto", "caffe_pb2.py")
    if not os.path.exists(os.path.join(ROOT, target)):
        if shutil.which("protoc") is None:
            test.skipTest("no protoc (protobuf-compiler) for caffe_pb2")
        subprocess.run(["make", "-s", "BUILD=" + BUILD, target], cwd=ROOT, check=True,
                       capture_output=True)
    from caffe.proto import caffe_pb2
    return caffe_pb2


def lenet_netspec(L, P, lmdb, batch_size):
    """01-learning-lenet's lenet(): the notebook's calls, as they are."""
    n = caffe.NetSpec()
    n.data, n.label = L.Data(batch_size=batch_size, backend=P.Data.LMDB, source=lmdb,
                             transform_param=dict(scale=1. / 255), ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20, weight_filler=dict(type='xavier'))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.conv2 = L.Convolution(n.pool1, kernel_size=5, num_output=50, weight_filler=dict(type='xavier'))
    n.pool2 = L.Pooling(n.conv2, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.fc1 = L.InnerProduct(n.pool2, num_output=500, weight_filler=dict(type='xavier'))
    n.relu1 = L.ReLU(n.fc1, in_place=True)
    n.score = L.InnerProduct(n.relu1, num_output=10, weight_filler=dict(type='xavier'))
    n.loss = L.SoftmaxWithLoss(n.score, n.label)
    return n.to_proto()


# What lenet_netspec must give, written by hand from Caffe's caffe.proto:
# layers named after their tops, ReLU in place on fc1, enums by value.
LENET_PROTOTXT = """
layer { name: "data" type: "Data" top: "data" top: "label"
  transform_param { scale: 0.00392156862745098 }
  data_param { source: "mnist/train_lmdb" batch_size: 64 backend: LMDB } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 50 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc1" type: "InnerProduct" bottom: "pool2" top: "fc1"
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "fc1" top: "fc1" }
layer { name: "score" type: "InnerProduct" bottom: "fc1" top: "score"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
"""


def fcn_netspec(L, P):
    """The FCN scripts' style (fcn.berkeleyvision.org's net.py): helpers
    returning (conv, in-place relu), param lists of dicts, a Deconvolution
    with convolution_param, Crop, a loss_param; an Input layer so the net
    runs here."""
    def conv_relu(bottom, nout, ks=3, stride=1, pad=1):
        conv = L.Convolution(bottom, kernel_size=ks, stride=stride, num_output=nout, pad=pad,
                             param=[dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)])
        return conv, L.ReLU(conv, in_place=True)

    n = caffe.NetSpec()
    n.data, n.label = L.Input(shape=[dict(dim=[1, 3, 20, 20]), dict(dim=[1, 1, 20, 20])], ntop=2)
    n.conv1, n.relu1 = conv_relu(n.data, 8, pad=10)
    n.pool1 = L.Pooling(n.relu1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.score_fr = L.Convolution(n.pool1, num_output=5, kernel_size=1, pad=0,
                               weight_filler=dict(type="gaussian", std=0.1),
                               param=[dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)])
    n.upscore = L.Deconvolution(n.score_fr, convolution_param=dict(num_output=5, kernel_size=4,
                                                                   stride=2, bias_term=False),
                                param=[dict(lr_mult=0)])
    n.score = L.Crop(n.upscore, n.data, crop_param=dict(axis=2, offset=5))
    n.loss = L.SoftmaxWithLoss(n.score, n.label, loss_param=dict(normalize=False, ignore_label=255))
    return n.to_proto()


@unittest.skipUnless(netsurg is not None, NO_LIB)
class NetSpecs(unittest.TestCase):
    def test_lenet_netspec_equals_the_hand_written_prototxt(self):
        pb2 = caffe_pb2_or_skip(self)
        from google.protobuf import text_format
        from caffe import layers as L, params as P
        got = lenet_netspec(L, P, "mnist/train_lmdb", 64)
        want = text_format.Parse(LENET_PROTOTXT, pb2.NetParameter())
        self.assertEqual(text_format.MessageToString(got), text_format.MessageToString(want))
        self.assertEqual(got, want)

    def test_fcn_netspec_loads_and_runs_in_netsurg(self):
        caffe_pb2_or_skip(self)
        from caffe import layers as L, params as P
        proto = fcn_netspec(L, P)
        layer = {l.name: l for l in proto.layer}
        self.assertEqual([p.lr_mult for p in layer["conv1"].param], [1, 2])
        self.assertEqual([p.decay_mult for p in layer["conv1"].param], [1, 0])
        self.assertEqual(list(layer["relu1"].top), ["conv1"])
        self.assertEqual(list(layer["pool1"].bottom), ["conv1"])
        self.assertEqual(layer["upscore"].convolution_param.bias_term, False)
        self.assertEqual(list(layer["score"].bottom), ["upscore", "data"])
        self.assertEqual(layer["loss"].loss_param.ignore_label, 255)
        self.assertEqual(list(layer["data"].input_param.shape[1].dim), [1, 1, 20, 20])
        with tempfile.TemporaryDirectory() as tmp:
            net = caffe.Net(write_net(tmp, str(proto)), caffe.TEST)
        # data feeds conv1 and Crop: Caffe's Split layer sits between, as in pycaffe.
        self.assertEqual([name for name in net.layer_dict if name != "data_data_0_split"],
                         [l.name for l in proto.layer])
        self.assertEqual([l.type for l in net.layers if l.type != "Split"],
                         [l.type for l in proto.layer])
        self.assertEqual(net.blobs["score"].data.shape, (1, 5, 20, 20))
        # Softmax loss of a score map at ignore_label 0 everywhere but where
        # label is a class: finite and positive.
        out = net.forward(data=np.ones((1, 3, 20, 20), np.float32),
                          label=np.zeros((1, 1, 20, 20), np.float32))
        self.assertGreater(float(out["loss"]), 0)

    def test_ntop_zero_autonames_and_layer_fields(self):
        caffe_pb2_or_skip(self)
        L, P = caffe.layers, caffe.params
        n = caffe.NetSpec()
        n.quiet = L.Silence(L.DummyData(shape=dict(dim=[2, 3])), ntop=0)
        proto = n.to_proto()
        self.assertEqual([(l.name, l.type, list(l.top)) for l in proto.layer],
                         [("DummyData1", "DummyData", ["DummyData1"]), ("quiet", "Silence", [])])
        self.assertEqual(list(proto.layer[1].bottom), ["DummyData1"])
        proto = caffe.to_proto(L.TanH(L.DummyData(shape=dict(dim=[2]))))
        self.assertEqual([l.name for l in proto.layer], ["DummyData1", "TanH1"])
        n = caffe.NetSpec()
        n.x = L.Input(shape=dict(dim=[1, 4]))
        n.y = L.InnerProduct(n.x, num_output=3, name="renamed", loss_weight=0.5,
                             include=dict(phase=caffe.TRAIN))
        n["z"] = L.Pooling(L.ReLU(n.x), pool=P.Pooling.AVE)
        self.assertEqual(n.keys(), ["x", "y", "z"])
        proto = n.to_proto()
        y = proto.layer[1]
        self.assertEqual((y.name, list(y.loss_weight), y.include[0].phase), ("renamed", [0.5], 0))
        self.assertEqual([l.name for l in proto.layer], ["x", "renamed", "ReLU1", "z"])
        self.assertEqual(proto.layer[3].pooling_param.pool, 1)  # AVE in caffe.proto


def skimage_or_skip(test):
    try:
        import skimage.transform
        import scipy.ndimage
    except ImportError as e:
        test.skipTest("%s (python3-skimage: scripts/install-deps.sh test)" % e)
    return skimage.transform, scipy.ndimage


def pycaffe_resize(transform, ndimage, im, dims, order):
    """pycaffe's caffe.io.resize_image as its io.py computes it, on
    scikit-image and scipy directly."""
    if im.shape[-1] in (1, 3):
        low, high = im.min(), im.max()
        unit = (im - low) / (high - low)
        return transform.resize(unit, dims, order=order, mode="constant") * (high - low) + low
    scale = tuple(np.array(dims, dtype=float) / np.array(im.shape[:2]))
    return ndimage.zoom(im, scale + (1,), order=order)


@unittest.skipUnless(netsurg is not None, NO_LIB)
class ResizeImage(unittest.TestCase):
    def image(self, channels, seed=9):
        rng = np.random.default_rng(seed)
        return (rng.random((13, 10, channels)) * 200 - 50).astype(np.float32)

    def test_every_order_and_channel_count_as_pycaffe(self):
        transform, ndimage = skimage_or_skip(self)
        for channels in (1, 3, 4):
            for order in (0, 1, 2, 3):
                for dims in ((29, 17), (6, 5)):
                    with self.subTest(channels=channels, order=order, dims=dims):
                        im = self.image(channels)
                        got = caffe.io.resize_image(im, dims, interp_order=order)
                        want = pycaffe_resize(transform, ndimage, im.astype(np.float64), dims,
                                              order)
                        self.assertEqual(got.dtype, np.float32)
                        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-3)

    def test_nearest_upscale_equals_opencv(self):
        # Growing by a non-integer factor, order 0 samples the pixel whose
        # centre is nearest: OpenCV's INTER_NEAREST_EXACT, independently.
        import cv2
        skimage_or_skip(self)
        im = self.image(3)
        got = caffe.io.resize_image(im, (29, 17), interp_order=0)
        want = cv2.resize(im, (17, 29), interpolation=cv2.INTER_NEAREST_EXACT)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)

    def test_constant_and_bad_arguments(self):
        im = np.full((4, 5, 3), 2.5, np.float32)
        np.testing.assert_array_equal(caffe.io.resize_image(im, (7, 3), 3),
                                      np.full((7, 3, 3), 2.5, np.float32))
        with self.assertRaises(ValueError):
            caffe.io.resize_image(im[..., 0], (7, 3))
        with self.assertRaises(ValueError):
            caffe.io.resize_image(im, (7, 3), interp_order=7)


# Every pycaffe name the issue lists, by where a script reaches it.
CAFFE_NAMES = ["Net", "TRAIN", "TEST", "set_mode_cpu", "set_mode_gpu", "set_device", "Classifier",
               "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver", "AdaDeltaSolver",
               "AdamSolver", "get_solver", "NetSpec", "layers", "params", "to_proto", "io"]
IO_NAMES = ["load_image", "resize_image", "oversample", "Transformer", "blobproto_to_array",
            "array_to_blobproto", "datum_to_array", "array_to_datum"]
TRANSFORMER_NAMES = ["set_transpose", "set_channel_swap", "set_raw_scale", "set_mean",
                     "set_input_scale", "preprocess", "deprocess"]
NET_NAMES = ["blobs", "params", "layers", "layer_dict", "_layer_names", "inputs", "outputs",
             "top_names", "bottom_names", "forward", "forward_all", "backward", "reshape",
             "copy_from", "save"]
BLOB_NAMES = ["data", "diff", "shape", "count", "num", "channels", "height", "width", "reshape"]
SOLVER_NAMES = ["net", "test_nets", "step", "solve", "iter", "snapshot", "restore"]
NETSURG_NAMES = ["Net", "Error", "set_num_threads", "classify", "Solver", "caffe"]

# A train net with its own data (DummyData), for the solver checks.
SOLVER_NET = """
name: "dummy_regression"
layer { name: "data" type: "DummyData" top: "x" top: "y"
  dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 }
                     data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 0.5 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip"
  inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "y" top: "loss" }
"""


@unittest.skipUnless(netsurg is not None, NO_LIB)
class Checklist(unittest.TestCase):
    def test_every_listed_name_exists(self):
        net = load(DEPLOY_NET)
        blob = net.blobs["data"]
        transformer = caffe.io.Transformer({"data": blob.shape})
        for owner, names in ((caffe, CAFFE_NAMES), (caffe.io, IO_NAMES),
                             (transformer, TRANSFORMER_NAMES), (net, NET_NAMES),
                             (blob, BLOB_NAMES), (netsurg, NETSURG_NAMES)):
            for name in names:
                with self.subTest(name=name):
                    self.assertTrue(hasattr(owner, name), name)
        for name in SOLVER_NAMES:
            with self.subTest(name=name):
                self.assertTrue(hasattr(caffe.SGDSolver, name) or name in ("net", "test_nets"))
        self.assertIsInstance(net.blobs, __import__("collections").OrderedDict)
        self.assertEqual(list(net.params), ["conv", "ip"])
        self.assertEqual((caffe.TRAIN, caffe.TEST), (0, 1))

    def test_structure_names_and_legacy_dims(self):
        net = load(DEPLOY_NET)
        self.assertEqual(net._layer_names, ["data", "conv", "tanh", "ip"])
        self.assertEqual(net.top_names["tanh"], ["act"])
        self.assertEqual(net.bottom_names["ip"], ["act"])
        self.assertEqual(net.bottom_names["data"], [])
        self.assertEqual([l.type for l in net.layers], ["Input", "Convolution", "TanH",
                                                        "InnerProduct"])
        self.assertIs(net.layer_dict["ip"].blobs[1], net.params["ip"][1])
        self.assertEqual((net.inputs, net.outputs), (["data"], ["out"]))
        conv = net.blobs["conv"]  # (2, 4, 4, 3): 7x6 input, k3 s2 p1
        self.assertEqual((conv.num, conv.channels, conv.height, conv.width, conv.count),
                         (2, 4, 4, 3, 96))
        self.assertEqual(net.blobs["out"].height, 1)  # legacy axes past the blob's are 1
        net.blobs["data"].reshape(5, 3, 7, 6)
        net.reshape()
        self.assertEqual(net.blobs["conv"].shape, (5, 4, 4, 3))
        self.assertEqual(net.blobs["conv"].diff.shape, (5, 4, 4, 3))
        self.assertEqual(net.forward(data=np.zeros((5, 3, 7, 6)))["out"].shape, (5, 5))

    def test_transformer_input_scale_and_deprocess_undo(self):
        im = np.random.default_rng(2).random((4, 5, 3)).astype(np.float32)
        t = caffe.io.Transformer({"data": (1, 3, 4, 5)})
        t.set_transpose("data", (2, 0, 1))
        t.set_channel_swap("data", (2, 1, 0))
        t.set_raw_scale("data", 255)
        t.set_mean("data", np.array([10., 20., 30.]))
        t.set_input_scale("data", 0.5)
        got = t.preprocess("data", im)
        # by hand: CHW, BGR, x255, minus the mean per channel, x0.5
        want = (im.transpose(2, 0, 1)[::-1] * 255 - np.array([10, 20, 30])[:, None, None]) * 0.5
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(t.deprocess("data", got), im, rtol=1e-5, atol=1e-6)

    def test_datum_and_blobproto_round_trips(self):
        caffe_pb2_or_skip(self)
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
        datum = caffe.io.array_to_datum(arr, label=7)
        self.assertEqual((datum.channels, datum.height, datum.width, datum.label), (2, 3, 4, 7))
        self.assertEqual(datum.data, bytes(range(24)))
        np.testing.assert_array_equal(caffe.io.datum_to_array(datum), arr)
        floats = caffe.io.array_to_datum(arr.astype(np.float32) / 2)
        np.testing.assert_array_equal(caffe.io.datum_to_array(floats), arr / 2)
        values = arr.astype(np.float32) - 5
        blob = caffe.io.array_to_blobproto(values, diff=-values)
        np.testing.assert_array_equal(caffe.io.blobproto_to_array(blob), values)
        np.testing.assert_array_equal(caffe.io.blobproto_to_array(blob, return_diff=True), -values)

    def test_solve_snapshot_restore(self):
        with tempfile.TemporaryDirectory() as tmp:
            write_net(tmp, SOLVER_NET)
            solver_path = os.path.join(tmp, "solver.prototxt")
            with open(solver_path, "w") as f:
                f.write('net: "%s"\nbase_lr: 0.1\nlr_policy: "fixed"\nmax_iter: 6\n'
                        'display: 0\nsnapshot_prefix: "%s"\nrandom_seed: 5\ntype: "Adam"\n'
                        % (os.path.join(tmp, "net.prototxt"), os.path.join(tmp, "s")))
            solver = caffe.get_solver(solver_path)
            self.assertEqual(solver.test_nets, [])
            solver.step(2)
            solver.snapshot()  # s_iter_2.*
            at2 = solver.net.params["ip"][0].data.copy()
            solver.solve()  # on to max_iter
            self.assertEqual(solver.iter, 6)
            self.assertFalse(np.array_equal(solver.net.params["ip"][0].data, at2))
            again = caffe.AdamSolver(solver_path)
            again.restore(os.path.join(tmp, "s_iter_2.solverstate"))
            self.assertEqual(again.iter, 2)
            np.testing.assert_array_equal(again.net.params["ip"][0].data, at2)
            # fine-tuning: copy_from puts the saved weights into a solver's net
            fresh = caffe.SGDSolver(solver_path)
            fresh.net.copy_from(os.path.join(tmp, "s_iter_2.caffemodel"))
            np.testing.assert_array_equal(fresh.net.params["ip"][0].data, at2)

    def test_solver_classes_run_their_own_rule(self):
        # pycaffe's classes are C++ classes: caffe.AdamSolver(path) runs
        # Adam whatever the file's type, caffe.SGDSolver(path) SGD;
        # get_solver(path) runs the type the file names.
        with tempfile.TemporaryDirectory() as tmp:
            write_net(tmp, SOLVER_NET)

            def solver_file(name, type_line):
                path = os.path.join(tmp, name)
                with open(path, "w") as f:
                    f.write('net: "%s"\nbase_lr: 0.1\nlr_policy: "fixed"\nmax_iter: 3\n'
                            'display: 0\nsnapshot_prefix: "%s"\nrandom_seed: 5\n%s\n'
                            % (os.path.join(tmp, "net.prototxt"), os.path.join(tmp, "s"),
                               type_line))
                return path

            untyped, adam = solver_file("plain.prototxt", ""), solver_file("adam.prototxt",
                                                                            'type: "Adam"')

            def weights_after(solver):
                solver.step(3)
                return solver.net.params["ip"][0].data.copy()

            by_file = weights_after(caffe.get_solver(adam))
            np.testing.assert_array_equal(weights_after(caffe.AdamSolver(untyped)), by_file)
            sgd = weights_after(caffe.get_solver(untyped))
            np.testing.assert_array_equal(weights_after(caffe.SGDSolver(adam)), sgd)
            self.assertFalse(np.array_equal(sgd, by_file))

    def test_set_num_threads_keeps_results_and_rejects_negatives(self):
        net = load(DEPLOY_NET)
        x = np.random.default_rng(4).standard_normal((2, 3, 7, 6)).astype(np.float32)
        try:
            netsurg.set_num_threads(1)
            one = net.forward(data=x)["out"].copy()
            g1 = net.backward(out=np.ones((2, 5), np.float32))["data"].copy()
            netsurg.set_num_threads(2)
            two = net.forward(data=x)["out"].copy()
            g2 = net.backward(out=np.ones((2, 5), np.float32))["data"].copy()
        finally:
            netsurg.set_num_threads(0)
        np.testing.assert_array_equal(one, two)
        np.testing.assert_allclose(g1, g2, rtol=1e-6, atol=1e-7)
        with self.assertRaises(ValueError):
            netsurg.set_num_threads(-1)


    def test_backward_releases_the_gil(self):
        # As test_python_module's forward check: another thread's loop turns
        # fall inside one long backward only if the GIL is released (CDLL).
        net = load(DEPLOY_NET)
        done, started, stamps = threading.Event(), threading.Event(), []

        def spin():
            started.set()
            while not done.is_set():
                stamps.append(time.perf_counter())

        old_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        try:
            for batch in (2000, 8000, 32000):
                net.blobs["data"].reshape(batch, 3, 7, 6)
                net.forward()
                g = np.ones((batch, 5), np.float32)
                stamps.clear()
                done.clear()
                started.clear()
                t = threading.Thread(target=spin)
                t.start()
                started.wait()
                try:
                    t0 = time.perf_counter()
                    net.backward(out=g)
                    t1 = time.perf_counter()
                finally:
                    done.set()
                    t.join()
                if t1 - t0 > 0.02:
                    break
        finally:
            sys.setswitchinterval(old_interval)
        self.assertGreater(t1 - t0, 0.02, "backward too short to tell")
        inside = [s for s in stamps if t0 < s < t0 + (t1 - t0) / 2]
        self.assertGreater(len(inside), 0, "no other thread ran during backward")


if __name__ == "__main__":
    unittest.main()
