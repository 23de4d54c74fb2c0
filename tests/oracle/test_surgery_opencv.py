"""The files `netsurg fcn`, `transplant` and `edit` write, read by OpenCV's
Caffe importer (cv2.dnn), an independent implementation.

- the FCN cast of a legacy V1 net: OpenCV's map equals Caffe's figures for
  the hand-made cast (tests/conformance/mini_caffenet_fcn);
- an edited caffemodel: OpenCV sees exactly the edited values;
- CaffeNet (the legacy V1 deploy prototxt from ../shared, random weights):
  `netsurg fcn` at 451x451 and the seed's own V1 full-conv prototxt filled
  by `netsurg transplant` give the same 8x8 map in OpenCV, and netsurg's
  forward agrees (slow: skipped with NS_SKIP_SLOW=1 or without ../shared).

Tolerance 1e-4 absolute + 1e-3 relative, as test_opencv.py (OpenCV's
kernels round differently).  Skipped without cv2/numpy or the CLI.
"""
import os
import shutil
import tempfile
import unittest
from nscli import CLI, SHARED, run

try:
    import numpy as np
    import cv2
except ImportError:  # pragma: no cover
    np = cv2 = None

CONF = os.path.join(os.environ.get("NS_TEST_DIR", "tests"), "conformance")
LEGACY = os.path.join(SHARED, "data", "prototxt", "legacy_v1")
ATOL, RTOL = 1e-4, 1e-3


def opencv_forward(proto, weights, x, blob):
    net = cv2.dnn.readNetFromCaffe(proto, weights)
    net.setInput(x)
    return net.forward(blob)


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class SurgeryInOpenCV(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-oracle-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def assertClose(self, ours, theirs):
        self.assertEqual(ours.shape, theirs.shape)
        err = np.abs(ours - theirs) - (ATOL + RTOL * np.abs(theirs))
        self.assertLessEqual(err.max(), 0, "max abs diff %g" % np.abs(ours - theirs).max())

    def test_fcn_of_legacy_v1_net(self):
        case = os.path.join(CONF, "mini_caffenet_v1")
        prefix = self.path("cast")
        out = run("fcn", os.path.join(case, "net.prototxt"), os.path.join(case, "weights.caffemodel"),
                  "--size", "71", "--batch", "1", "--out", prefix).stdout
        self.assertIn("map 5x5", out)
        x = np.load(os.path.join(CONF, "mini_caffenet_fcn", "in_data.npy"))
        theirs = opencv_forward(prefix + ".prototxt", prefix + ".caffemodel", x, "prob")
        caffe = np.load(os.path.join(CONF, "mini_caffenet_fcn", "blob_prob.npy"))
        self.assertClose(theirs, caffe)

    def test_edited_weights(self):
        case = os.path.join(CONF, "mini_caffenet")
        proto, weights = os.path.join(case, "net.prototxt"), os.path.join(case, "weights.caffemodel")
        out = self.path("edited.caffemodel")
        run("edit", proto, weights, "--set", "conv1[1][3]=2.5", "--set", "fc6[0][4,5]=-1.25",
            "--out", out)
        net = cv2.dnn.readNetFromCaffe(proto, out)
        orig = cv2.dnn.readNetFromCaffe(proto, weights)
        b, b0 = net.getParam("conv1", 1).ravel(), orig.getParam("conv1", 1).ravel()
        self.assertEqual(b[3], 2.5)
        self.assertEqual(np.count_nonzero(b != b0), 1)
        w, w0 = net.getParam("fc6", 0), orig.getParam("fc6", 0)
        self.assertEqual(w.reshape(32, -1)[4, 5], -1.25)
        self.assertEqual(np.count_nonzero(w != w0), 1)

    @unittest.skipIf(os.environ.get("NS_SKIP_SLOW") == "1", "slow (NS_SKIP_SLOW=1)")
    @unittest.skipIf(not os.path.exists(os.path.join(LEGACY, "imagenet__bvlc_caffenet_full_conv.prototxt")),
                     "../shared legacy prototxts absent")
    def test_caffenet_fcn_equals_seed_full_conv(self):
        deploy = os.path.join(LEGACY, "bvlc_reference_caffenet__deploy.prototxt")
        full_conv = os.path.join(LEGACY, "imagenet__bvlc_caffenet_full_conv.prototxt")
        weights = self.path("caffenet.caffemodel")
        run("init", deploy, "--filler", "msra", "--seed", "5", "--out", weights)
        prefix = self.path("caffenet_fcn")
        out = run("fcn", deploy, weights, "--size", "451", "--batch", "1", "--out", prefix).stdout
        self.assertIn("map 8x8", out)
        self.assertIn("window 227x227, stride 32", out)
        seed_weights = self.path("seed_full_conv.caffemodel")
        run("transplant", deploy, weights, full_conv, "--map", "fc6=fc6-conv,fc7=fc7-conv,fc8=fc8-conv",
            "--out", seed_weights)
        # a small input keeps the random net's softmax from saturating
        x = np.random.RandomState(0).uniform(-0.5, 0.5, (1, 3, 451, 451)).astype(np.float32)
        ours_cast = opencv_forward(prefix + ".prototxt", prefix + ".caffemodel", x, "prob")
        seed_cast = opencv_forward(full_conv, seed_weights, x, "prob")
        self.assertEqual(ours_cast.shape, (1, 1000, 8, 8))
        self.assertClose(ours_cast, seed_cast)
        np.save(self.path("x.npy"), x)
        run("forward", prefix + ".prototxt", prefix + ".caffemodel", "--input", "data=" + self.path("x.npy"),
            "--output", "prob=" + self.path("p.npy"))
        self.assertClose(np.load(self.path("p.npy")), seed_cast)


if __name__ == "__main__":
    unittest.main()
