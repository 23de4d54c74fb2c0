"""SSD nets (Wei Liu's fork) with filler weights: `netsurg forward` against
OpenCV's Caffe importer (cv2.dnn 4.6), an independent implementation of
Normalize, Permute, PriorBox and DetectionOutput.

Nets: the OpenCV face detector (res10_300x300_ssd: Normalize, BatchNorm,
Scale, Eltwise) and MobileNet-SSD (grouped Convolution, 21 classes) from
../shared/data/prototxt/wild (skipped when absent).  Weights from
`netsurg init --filler msra`; BatchNorm statistics then set to random ones
and the Scale gammas to 0.3 by `netsurg edit` (init's zero variances
would amplify by 1/sqrt(eps) per layer, as in test_zoo_opencv.py).  The
same random input goes to both engines.

Compared: the outputs of every Normalize, Permute, PriorBox, Flatten and
Concat layer (within 1e-4 of the blob's largest magnitude), and
`detection_out` as a set of rows (label, score, box) matched one to one
within 1e-4 (OpenCV sizes its output for keep_top_k rows and leaves the
unused ones zero; the fork's has exactly the kept rows, or one row of -1
per image when none is kept).  OpenCV differs from the fork in a default:
a PriorBox without `clip:` is clipped by OpenCV (its default is true, the
fork's false: checked with cv2 on a 2x2 map); both nets say `clip: false`,
so it does not show here (the fork's default is checked by hand in
test_layer_ssd.c).
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

WILD = os.path.join(SHARED, "data", "prototxt", "wild")
RTOL = 1e-4
SSD_TYPES = ("Normalize", "Permute", "PriorBox", "Flatten", "Concat")

NETS = {
    "face": ("face__res10_300x300_ssd_deploy.prototxt", 300),
    "mobilenetssd": ("mobilenetssd__MobileNetSSD_deploy.prototxt", 300),
}


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(not os.path.isdir(WILD), "../shared wild prototxts absent")
class SsdAgainstOpenCV(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-ssd-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def weights(self, proto, info):
        weights = self.path("w.caffemodel")
        run("init", proto, "--filler", "msra", "--seed", "3", "--out", weights)
        rng = np.random.RandomState(7)
        edits = []
        for layer in info["layers"]:
            name, tag = layer["name"], self.path(layer["name"].replace("/", "_"))
            if layer["type"] == "BatchNorm":
                c = layer["params"][0][0]
                for i, v in enumerate([rng.normal(0, 0.5, c), rng.uniform(0.5, 2, c), [1.0]]):
                    np.save("%s_%d.npy" % (tag, i), np.asarray(v, np.float32))
                    edits += ["--load", "%s[%d]=%s_%d.npy" % (name, i, tag, i)]
            elif layer["type"] == "Scale" and layer["params"]:
                np.save(tag + "_g.npy", np.full(layer["params"][0], 0.3, np.float32))
                edits += ["--load", "%s[0]=%s_g.npy" % (name, tag)]
        if edits:
            fixed = self.path("w_bn.caffemodel")
            run("edit", proto, weights, *edits, "--out", fixed)
            weights = fixed
        return weights

    def forward_both(self, proto, weights, data, x, blobs):
        np.save(self.path("x.npy"), x)
        args = ["forward", proto, weights, "--input", "%s=%s" % (data, self.path("x.npy"))]
        for i, b in enumerate(blobs):
            args += ["--output", "%s=%s" % (b, self.path("o%d.npy" % i))]
        run(*args)
        ours = [np.load(self.path("o%d.npy" % i)) for i in range(len(blobs))]
        net = cv2.dnn.readNetFromCaffe(proto, weights)
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setInput(x)
        theirs = net.forward(blobs)
        return ours, theirs

    def compare_detections(self, ours, theirs, key):
        ours = ours.reshape(-1, 7)
        theirs = theirs.reshape(-1, 7)
        # OpenCV sizes its output for keep_top_k rows and leaves the rest
        # zero; the fork's output has exactly the kept rows
        theirs = theirs[np.any(theirs != 0, axis=1)]
        self.assertGreater(len(ours), 3, "%s: too few detections to test NMS" % key)
        self.assertEqual(len(ours), len(theirs), "%s: %d boxes, OpenCV %d" %
                         (key, len(ours), len(theirs)))
        left = list(range(len(theirs)))
        for row in ours:
            hits = [j for j in left if theirs[j][1] == row[1] and
                    np.abs(theirs[j][2:] - row[2:]).max() <= RTOL]
            self.assertTrue(hits, "%s: our box %s has no match in OpenCV's" % (key, row))
            left.remove(hits[0])
        print("%s: %d detections matched one to one" % (key, len(ours)))

    def check(self, key):
        rel, size = NETS[key]
        proto = os.path.join(WILD, rel)
        if not os.path.exists(proto):
            self.skipTest(proto + " absent")
        info = json.loads(run("info", proto, "--json").stdout)
        weights = self.weights(proto, info)
        x = np.random.RandomState(1).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        data = [l for l in info["layers"] if l["type"] == "Input"][0]["tops"][0]
        layers = [l for l in info["layers"] if l["type"] in SSD_TYPES]
        blobs = [l["tops"][0] for l in layers]
        ours, theirs = self.forward_both(proto, weights, data, x, blobs + ["detection_out"])
        for layer, a, b in zip(layers, ours, theirs):
            b = b.reshape(a.shape)
            scale = np.abs(b).max()
            self.assertGreater(scale, 0, "%s: %s is all zeros" % (key, layer["name"]))
            err = np.abs(a - b).max()
            self.assertLessEqual(err, RTOL * scale, "%s %s (%s): max abs diff %g, scale %g" %
                                 (key, layer["name"], layer["type"], err, scale))
        print("%s: %d SSD-layer blobs within 1e-4" % (key, len(layers)))
        self.compare_detections(ours[-1], theirs[-1], key)

    def test_face_detector(self):
        self.check("face")

    def test_mobilenet_ssd(self):
        self.check("mobilenetssd")


DETECT_NET = """
input: "data" input_shape { dim: 1 dim: 3 dim: 20 dim: 20 }
layer { name: "pool" type: "Pooling" bottom: "data" top: "feat"
  pooling_param { pool: MAX kernel_size: 10 stride: 10 } }
layer { name: "pb" type: "PriorBox" bottom: "feat" bottom: "data" top: "pb"
  prior_box_param { min_size: 10 } }
layer { name: "loc" type: "Convolution" bottom: "feat" top: "loc"
  convolution_param { num_output: 4 kernel_size: 1
    weight_filler { type: "constant" value: 0 } } }
layer { name: "loc_perm" type: "Permute" bottom: "loc" top: "loc_perm"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "loc_flat" type: "Flatten" bottom: "loc_perm" top: "loc_flat" }
layer { name: "conf" type: "Convolution" bottom: "feat" top: "conf"
  convolution_param { num_output: 2 kernel_size: 1
    weight_filler { type: "constant" value: 0.33333333 } } }
layer { name: "conf_perm" type: "Permute" bottom: "conf" top: "conf_perm"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "conf_flat" type: "Flatten" bottom: "conf_perm" top: "conf_flat" }
layer { name: "det" type: "DetectionOutput" bottom: "loc_flat" bottom: "conf_flat"
  bottom: "pb" top: "det"
  detection_output_param { num_classes: 2 variance_encoded_in_target: true
    nms_param { nms_threshold: 0.45 } } }
"""


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class DetectVerb(unittest.TestCase):
    """`netsurg detect` on a hand-built SSD head whose answer is known: a
    20x20 input max-pooled to 2x2 cells, one 10x10 prior per cell (the
    cell itself), zero offsets (boxes = priors), and a class-1 score equal
    to the cell's brightest grey level (weights 1/3 over RGB, no mean, raw
    scale 1).  The image is 40x40, four grey quadrants, resized to 20x20
    without antialiasing (exact: each output pixel averages two of the
    same quadrant).  Quadrants do not overlap, so NMS keeps all; the
    threshold keeps the three brighter than 0.5, in falling score, as
    boxes of the 40x40 image."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-detect-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_boxes_in_pixels_json_and_png(self):
        d = self.dir
        proto, weights = os.path.join(d, "head.prototxt"), os.path.join(d, "w.caffemodel")
        with open(proto, "w") as f:
            f.write(DETECT_NET)
        run("init", proto, "--out", weights)
        levels = {(0, 0): 255, (0, 1): 153, (1, 0): 51, (1, 1): 204}  # 1.0, 0.6, 0.2, 0.8
        img = np.zeros((40, 40, 3), np.uint8)
        for (r, c), v in levels.items():
            img[r * 20:(r + 1) * 20, c * 20:(c + 1) * 20] = v
        image = os.path.join(d, "quad.png")
        cv2.imwrite(image, img)
        out = os.path.join(d, "boxes.png")
        p = run("detect", proto, weights, image, "--json", "--raw-scale", "1", "--channel-swap",
                "none", "--no-antialias", "--out", out)
        got = json.loads(p.stdout)
        self.assertEqual((got["width"], got["height"]), (40, 40))
        want = [(1.0, [0, 0, 20, 20]), (0.8, [20, 20, 40, 40]), (0.6, [20, 0, 40, 20])]
        self.assertEqual(len(got["boxes"]), len(want), got)
        for box, (score, corners) in zip(got["boxes"], want):
            self.assertEqual(box["label"], 1)
            self.assertAlmostEqual(box["score"], score, places=5)
            np.testing.assert_allclose(box["box"], corners, atol=1e-4)
        drawn = cv2.imread(out)
        self.assertEqual(drawn.shape, (40, 40, 3))
        # the box outlines change the picture; inside the 0.2 quadrant
        # (no box) it is untouched
        self.assertTrue((drawn[10:20, 10:20] != 255).any())
        self.assertTrue((drawn[24:36, 4:16] == 51).all())
        p = run("detect", proto, weights, image, "--raw-scale", "1", "--channel-swap", "none",
                "--no-antialias", "--threshold", "0.7")
        self.assertIn("2 boxes", p.stdout)


if __name__ == "__main__":
    unittest.main()
