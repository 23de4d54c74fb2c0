"""Model-zoo nets with filler weights: `netsurg forward` against OpenCV's
Caffe importer (cv2.dnn), an independent implementation.

CaffeNet (current and legacy V1 prototxts), SqueezeNet 1.1, GoogLeNet and
ResNet-50 from ../shared/data/prototxt (skipped when it is absent). The
weights come from `netsurg init --filler msra`; BatchNorm statistics are
then set by `netsurg edit` to random ones (means N(0, 0.5), variances in
[0.5, 2], stored multiplied by a random scale factor in [0.5, 4] as Caffe's
moving averages are), because init's zero variances would amplify by
1/sqrt(eps) per layer and overflow a 50-layer net, and the Scale layers'
gammas to 0.3, so that the logits stay moderate and the softmax does not
saturate. Both engines read the same caffemodel and the same input. The
statistics must matter: OpenCV's logits with the scale factor taken as 1,
or with unit variances, are more than SWITCH_MARGIN tolerances off.

Compared: the blob feeding the final Softmax (the logits) and `prob`, each
within 1e-4 relative to the blob's largest magnitude (logits) or 1e-4
absolute + 1e-4 relative (probabilities). Slow (a few seconds per net):
skipped with NS_SKIP_SLOW=1.
"""
import json
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

PROTO = os.path.join(SHARED, "data", "prototxt")
RTOL = 1e-4
SWITCH_MARGIN = 100

NETS = {
    "caffenet": ("current/bvlc_reference_caffenet__deploy.prototxt", 227),
    "caffenet_v1": ("legacy_v1/bvlc_reference_caffenet__deploy.prototxt", 227),
    "squeezenet_v1.1": ("zoo/squeezenet_v1.1__deploy.prototxt", 227),
    "googlenet": ("current/bvlc_googlenet__deploy.prototxt", 224),
    "resnet50": ("zoo/resnet50__deploy.prototxt", 224),
}


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(os.environ.get("NS_SKIP_SLOW") == "1", "slow (NS_SKIP_SLOW=1)")
@unittest.skipIf(not os.path.isdir(PROTO), "../shared prototxts absent")
class ZooAgainstOpenCV(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-zoo-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def check(self, key):
        rel, size = NETS[key]
        proto = os.path.join(PROTO, rel)
        if not os.path.exists(proto):
            self.skipTest(proto + " absent")
        weights = self.path("w.caffemodel")
        run("init", proto, "--filler", "msra", "--seed", "3", "--out", weights)
        info = json.loads(run("info", proto, "--json").stdout)
        rng = np.random.RandomState(7)
        edits, variants = [], {"scale factor taken as 1": [], "unit variances": []}
        for layer in info["layers"]:
            name, tag = layer["name"], self.path(layer["name"].replace("/", "_"))
            if layer["type"] == "BatchNorm":
                c = layer["params"][0][0]
                factor = rng.uniform(0.5, 4)
                stats = {"mean": rng.normal(0, 0.5, c) * factor, "var": rng.uniform(0.5, 2, c) * factor,
                         "factor": [factor], "one": [1.0], "unit_var": np.full(c, factor)}
                for k, v in stats.items():
                    np.save("%s_%s.npy" % (tag, k), np.asarray(v, np.float32))
                load = lambda i, k: ["--load", "%s[%d]=%s_%s.npy" % (name, i, tag, k)]  # noqa: E731
                edits += load(0, "mean") + load(1, "var") + load(2, "factor")
                variants["scale factor taken as 1"] += load(2, "one")
                variants["unit variances"] += load(1, "unit_var")
            elif layer["type"] == "Scale" and layer["params"]:
                # msra draws the BN scales with std sqrt(2); 0.3 keeps 16
                # residual blocks from growing the logits to 1e8
                np.save(tag + "_gamma.npy", np.full(layer["params"][0], 0.3, np.float32))
                edits += ["--load", "%s[0]=%s_gamma.npy" % (name, tag)]
        if edits:
            fixed = self.path("w_bn.caffemodel")
            run("edit", proto, weights, *edits, "--out", fixed)
            weights = fixed
        softmax = [l for l in info["layers"] if l["type"] == "Softmax"][-1]
        logits, prob = softmax["bottoms"][0], softmax["tops"][0]

        x = np.random.RandomState(1).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        np.save(self.path("x.npy"), x)
        data = [l for l in info["layers"] if l["type"] == "Input"][0]["tops"][0]
        run("forward", proto, weights, "--input", "%s=%s" % (data, self.path("x.npy")),
            "--output", "%s=%s" % (logits, self.path("logits.npy")),
            "--output", "%s=%s" % (prob, self.path("prob.npy")))
        ours_logits = np.load(self.path("logits.npy"))
        ours_prob = np.load(self.path("prob.npy"))

        net = cv2.dnn.readNetFromCaffe(proto, weights)
        net.setInput(x)
        cv_logits, cv_prob = net.forward([logits, prob])

        self.assertTrue(np.isfinite(cv_logits).all())
        cv_logits = cv_logits.reshape(ours_logits.shape)
        scale = np.abs(cv_logits).max()
        self.assertGreater(scale, 0, "a net of zeros proves nothing")
        err = np.abs(ours_logits - cv_logits).max()
        print("%s: logits max abs diff %.2g, scale %.3g; prob max abs diff %.2g" %
              (key, err, scale, np.abs(ours_prob - cv_prob.reshape(ours_prob.shape)).max()))
        self.assertLessEqual(err, RTOL * scale, "%s logits: max abs diff %g, scale %g" %
                             (key, err, scale))
        cv_prob = cv_prob.reshape(ours_prob.shape)
        perr = np.abs(ours_prob - cv_prob) - (RTOL + RTOL * np.abs(cv_prob))
        self.assertLessEqual(perr.max(), 0, "%s prob: max abs diff %g" %
                             (key, np.abs(ours_prob - cv_prob).max()))

        for what, loads in variants.items():
            if not loads:
                continue
            changed = self.path("w_variant.caffemodel")
            run("edit", proto, weights, *loads, "--out", changed)
            net = cv2.dnn.readNetFromCaffe(proto, changed)
            net.setInput(x)
            moved = np.abs(net.forward(logits).reshape(cv_logits.shape) - cv_logits).max() / (RTOL * scale)
            print("%s: BatchNorm with the %s moves the logits by %.3g tolerances" % (key, what, moved))
            self.assertGreater(moved, SWITCH_MARGIN, "%s: BatchNorm with the %s" % (key, what))

    def test_caffenet(self):
        self.check("caffenet")

    def test_caffenet_legacy_v1(self):
        self.check("caffenet_v1")

    def test_squeezenet_v1_1(self):
        self.check("squeezenet_v1.1")

    def test_googlenet(self):
        self.check("googlenet")

    def test_resnet50(self):
        self.check("resnet50")


if __name__ == "__main__":
    unittest.main()
