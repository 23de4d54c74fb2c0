"""The files `netsurg fcn`, `transplant` and `edit` write, read by OpenCV's
Caffe importer (cv2.dnn), an independent implementation.

- the FCN cast of a legacy V1 net: in OpenCV, every blob equals Caffe's
  figures for the hand-made cast (../shared/conformance/mini_caffenet_fcn), its
  params equal the hand-made cast's, and on an input large enough for its
  LRN to matter every blob equals the hand-made cast's in OpenCV;
- an edited caffemodel: OpenCV sees exactly the edited values;
- CaffeNet (the legacy V1 deploy prototxt from ../shared, random weights):
  the params of `netsurg fcn`'s cast at 451x451 and of the seed's own V1
  full-conv prototxt filled by `netsurg transplant` are the deploy net's, as
  OpenCV reads them, reshaped by numpy (fc6 (4096, 9216) -> (4096, 256, 6, 6));
  the two give the same blobs in OpenCV, and netsurg's forward of the cast
  agrees on every blob (slow: skipped with NS_SKIP_SLOW=1 or without
  ../shared).

Tolerance per element: 1e-5 of the blob's largest magnitude + 1e-4 relative
(OpenCV's kernels round differently; a blob of magnitude 100 whose elements
cancel to near 0 cannot be held to 1e-5 absolute). The inputs are large
enough that each LRN moves its blob by more than SWITCH_MARGIN tolerances,
which the tests check by setting alpha to 0 in OpenCV's copy. Skipped
without cv2/numpy or the CLI; the first two without ../shared.
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

CONF = os.path.join(SHARED, "conformance")  # Caffe's; read there, never committed
NO_CONF = "no %s (../shared)" % CONF
LEGACY = os.path.join(SHARED, "data", "prototxt", "legacy_v1")
ATOL, RTOL = 1e-5, 1e-4  # ATOL is relative to the blob's largest magnitude
SWITCH_MARGIN = 100
CAFFENET_BIASES = {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256,
                   "fc6": 4096, "fc7": 4096, "fc8": 1000}


def opencv_forward(proto, weights, x, blob):
    net = cv2.dnn.readNetFromCaffe(proto, weights)
    net.setInput(x)
    return net.forward(blob)


def misses(ours, theirs):
    """How many times over the tolerance the worst element misses (<= 1: agrees)."""
    tol = ATOL * np.abs(theirs).max() + RTOL * np.abs(theirs)
    return (np.abs(ours - theirs) / np.maximum(tol, 1e-30)).max()


def blob_writers(proto):
    """{blob: the layer that writes it last}, the input aside, from netsurg's
    graph listing (only the names; OpenCV gives the values): OpenCV's forward
    names layers, and an in-place blob's final value is its last writer's."""
    last = {}
    for l in json.loads(run("info", proto, "--json").stdout)["layers"]:
        if l["type"] != "Input":
            for t in l["tops"]:
                last[t] = l["name"]
    return last


def opencv_blobs(proto, weights, x, writers):
    net = cv2.dnn.readNetFromCaffe(proto, weights)
    net.setInput(x)
    return dict(zip(writers, net.forward(list(writers.values()))))


def without_lrn(proto, path):
    """PROTO with every LRN's alpha set to 0 (LRN then divides by 1), at PATH."""
    with open(proto) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(re.sub(r"alpha: \S+", "alpha: 0", text))
    return path


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class SurgeryInOpenCV(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-oracle-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def assertClose(self, ours, theirs, what=""):
        self.assertEqual(ours.shape, theirs.shape, what)
        self.assertLessEqual(misses(ours, theirs), 1, "%s: max abs diff %g"
                             % (what, np.abs(ours - theirs).max()))

    def assertSameBlobs(self, ours, theirs):
        self.assertEqual(sorted(ours), sorted(theirs))
        for b in ours:
            self.assertClose(ours[b], theirs[b], b)

    def assertLrnMatters(self, proto, weights, x, writers, ref):
        off = opencv_blobs(without_lrn(proto, self.path("no_lrn.prototxt")), weights, x, writers)
        moved = {b: misses(off[b], ref[b]) for b in writers if b.startswith("norm")}
        self.assertTrue(moved)
        for b, m in moved.items():
            self.assertGreater(m, SWITCH_MARGIN, "%s without LRN moves by %.3g tolerances only" % (b, m))
        return moved

    @unittest.skipUnless(os.path.isdir(CONF), NO_CONF)
    def test_fcn_of_legacy_v1_net(self):
        case = os.path.join(CONF, "mini_caffenet_v1")
        prefix = self.path("cast")
        out = run("fcn", os.path.join(case, "net.prototxt"), os.path.join(case, "weights.caffemodel"),
                  "--size", "71", "--batch", "1", "--out", prefix).stdout
        self.assertIn("map 5x5", out)
        hand = os.path.join(CONF, "mini_caffenet_fcn")
        hand_proto, hand_weights = os.path.join(hand, "net.prototxt"), os.path.join(hand, "weights.caffemodel")
        ours, theirs = (cv2.dnn.readNetFromCaffe(p, w) for p, w in
                        ((prefix + ".prototxt", prefix + ".caffemodel"), (hand_proto, hand_weights)))
        self.assertEqual(ours.getLayerNames(), theirs.getLayerNames())
        for name in ("conv1", "conv2", "fc6-conv", "fc7-conv"):
            for i in range(2):
                self.assertTrue(np.array_equal(ours.getParam(name, i), theirs.getParam(name, i)), (name, i))
        writers = blob_writers(hand_proto)
        x = np.load(os.path.join(hand, "in_data.npy"))
        cast = opencv_blobs(prefix + ".prototxt", prefix + ".caffemodel", x, writers)
        self.assertSameBlobs(cast, {b: np.load(os.path.join(hand, "blob_%s.npy" % b)) for b in writers})
        # Caffe's input leaves alpha 1e-4 nearly idle: on a 30x larger one the
        # LRN matters, and the cast must still be the hand-made one
        big = 30 * x
        ref = opencv_blobs(hand_proto, hand_weights, big, writers)
        self.assertSameBlobs(opencv_blobs(prefix + ".prototxt", prefix + ".caffemodel", big, writers), ref)
        moved = self.assertLrnMatters(hand_proto, hand_weights, big, writers, ref)
        print("cast vs Caffe: worst %.3g tolerances; LRN off moves norm1 %.3g" % (
            max(misses(cast[b], np.load(os.path.join(hand, "blob_%s.npy" % b))) for b in writers),
            moved["norm1"]))

    @unittest.skipUnless(os.path.isdir(CONF), NO_CONF)
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
        run("init", deploy, "--filler", "msra", "--seed", "5", "--out", self.path("zero_bias.caffemodel"))
        # the deploy prototxt has no bias fillers: random biases, or a lost
        # bias would go unseen
        rng, loads = np.random.RandomState(5), []
        for name, n in CAFFENET_BIASES.items():
            np.save(self.path(name + "_b.npy"), rng.uniform(-1, 1, n).astype(np.float32))
            loads += ["--load", "%s[1]=%s" % (name, self.path(name + "_b.npy"))]
        run("edit", deploy, self.path("zero_bias.caffemodel"), *loads, "--out", weights)
        prefix = self.path("caffenet_fcn")
        out = run("fcn", deploy, weights, "--size", "451", "--batch", "1", "--out", prefix).stdout
        self.assertIn("map 8x8", out)
        self.assertIn("window 227x227, stride 32", out)
        seed_weights = self.path("seed_full_conv.caffemodel")
        run("transplant", deploy, weights, full_conv, "--map", "fc6=fc6-conv,fc7=fc7-conv,fc8=fc8-conv",
            "--out", seed_weights)
        self.assertParamsReshaped(deploy, weights, prefix + ".prototxt", prefix + ".caffemodel")
        self.assertParamsReshaped(deploy, weights, full_conv, seed_weights)
        # inputs of +-6 make both LRNs matter; the softmax saturates there and
        # turns the logits' rounding (1e-5 of 60) into 1e-4 of its outputs near
        # 0.5, so `prob` is compared on inputs of +-0.5 (logits of about 5)
        writers = blob_writers(prefix + ".prototxt")
        for scale, blobs in ((6, [b for b in writers if b != "prob"]), (0.5, ["prob"])):
            x = np.random.RandomState(0).uniform(-scale, scale, (1, 3, 451, 451)).astype(np.float32)
            some = {b: writers[b] for b in blobs}
            cast = opencv_blobs(prefix + ".prototxt", prefix + ".caffemodel", x, some)
            seed = opencv_blobs(full_conv, seed_weights, x, some)
            self.assertSameBlobs(cast, seed)
            np.save(self.path("x.npy"), x)
            run("forward", prefix + ".prototxt", prefix + ".caffemodel", "--input", "data=" + self.path("x.npy"),
                *sum((["--output", "%s=%s" % (b, self.path(b + ".npy"))] for b in blobs), []))
            ours = {b: np.load(self.path(b + ".npy")) for b in blobs}
            self.assertSameBlobs(ours, seed)
            worst = max(blobs, key=lambda b: misses(ours[b], seed[b]))
            print("inputs +-%g: netsurg vs OpenCV worst %.3g tolerances (%s)" % (
                scale, misses(ours[worst], seed[worst]), worst))
            if scale == 6:
                moved = self.assertLrnMatters(full_conv, seed_weights, x, some, seed)
                print("LRN off moves " + ", ".join("%s %.3g" % kv for kv in sorted(moved.items())))
        self.assertEqual(seed["prob"].shape, (1, 1000, 8, 8))
        self.assertLess(seed["prob"].max(), 0.5, "softmax saturated")

    def assertParamsReshaped(self, deploy, weights, proto, cast_weights):
        """PROTO's params are DEPLOY's as OpenCV reads them, each fcN reshaped
        by numpy to the convolution fcN-conv: Caffe's row-major (out, in)
        matrix is (out, channels, kh, kw) in the same order."""
        src = cv2.dnn.readNetFromCaffe(deploy, weights)
        dst = cv2.dnn.readNetFromCaffe(proto, cast_weights)
        shapes = {"fc6": (4096, 256, 6, 6), "fc7": (4096, 4096, 1, 1), "fc8": (1000, 4096, 1, 1)}
        for name in CAFFENET_BIASES:
            to = name + "-conv" if name in shapes else name
            want_w = src.getParam(name, 0)
            if name in shapes:
                want_w = want_w.reshape(shapes[name])
            got_w = dst.getParam(to, 0)
            self.assertEqual(got_w.shape, want_w.shape, (proto, to))
            self.assertTrue(np.array_equal(got_w, want_w), (proto, to))
            self.assertTrue(np.array_equal(dst.getParam(to, 1).ravel(), src.getParam(name, 1).ravel()),
                            (proto, to))
            self.assertGreater(np.abs(want_w).min(), 0, "zero weights would hide a value not copied")
            self.assertGreater(np.abs(src.getParam(name, 1)).min(), 0, "zero biases, likewise")

if __name__ == "__main__":
    unittest.main()
