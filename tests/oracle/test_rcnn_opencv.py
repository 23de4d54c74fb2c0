"""Fast/Faster R-CNN and R-FCN layers against OpenCV 4.6's Caffe importer
(cv2.dnn), an independent implementation: ROIPooling, PSROIPooling and
Proposal, each in a one-layer net with random inputs, run by
`netsurg forward` and by OpenCV, outputs compared within 1e-4 of the
largest magnitude.

The ROIs include corners off the map, a half-pixel corner (rounding), a
degenerate box and batch index 1; the features are random so each bin's
maximum is unique.  Proposal's deltas are small and its image large
enough that many boxes survive NMS.  OpenCV's Proposal ignores min_size
(its constructor comments it out), so the oracle net sets min_size: 0,
which keeps every box in netsurg too (a decoded box is never narrower
than one pixel).
"""
import os
import shutil
import tempfile
import unittest
from nscli import CLI, run

try:
    import numpy as np
    import cv2
except ImportError:  # pragma: no cover
    np = cv2 = None

RTOL = 1e-4

ROI_NET = """name: "roi"
input: "x" input_shape { dim: 2 dim: 3 dim: 9 dim: 11 }
input: "rois" input_shape { dim: 6 dim: 5 }
layer { name: "pool" type: "ROIPooling" bottom: "x" bottom: "rois" top: "y"
  roi_pooling_param { pooled_h: 3 pooled_w: 2 spatial_scale: 0.5 } }
"""

PSROI_NET = """name: "psroi"
input: "x" input_shape { dim: 2 dim: 18 dim: 9 dim: 11 }
input: "rois" input_shape { dim: 6 dim: 5 }
layer { name: "pool" type: "PSROIPooling" bottom: "x" bottom: "rois" top: "y"
  psroi_pooling_param { spatial_scale: 0.5 output_dim: 2 group_size: 3 } }
"""

PROPOSAL_NET = """name: "proposal"
input: "cls" input_shape { dim: 1 dim: 18 dim: 14 dim: 19 }
input: "bbox" input_shape { dim: 1 dim: 36 dim: 14 dim: 19 }
input: "im_info" input_shape { dim: 1 dim: 3 }
layer { name: "proposal" type: "Proposal" bottom: "cls" bottom: "bbox" bottom: "im_info"
  top: "rois"
  proposal_param { ratio: 0.5 ratio: 1 ratio: 2 scale: 8 scale: 16 scale: 32
                   min_size: 0 pre_nms_topn: 1000 post_nms_topn: 120 } }
"""

# batch, x1, y1, x2, y2 in image pixels (spatial_scale 0.5: map cells x 2)
ROIS = [[0, 0, 0, 21, 17], [1, 3, 5, 12.6, 9], [0, -6, -4, 4, 30],
        [1, 7, 7, 7, 7], [1, 14, 2, 40, 40], [0, 5, 3, 2, 1]]


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class RcnnAgainstOpenCV(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-rcnn-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def both(self, text, inputs, out):
        """The net's output blob `out` from netsurg and from OpenCV."""
        proto = self.path("net.prototxt")
        with open(proto, "w") as f:
            f.write(text)
        args = ["forward", proto]
        for k, v in inputs.items():
            np.save(self.path(k + ".npy"), v)
            args += ["--input", "%s=%s" % (k, self.path(k + ".npy"))]
        run(*args, "--output", "%s=%s" % (out, self.path("out.npy")))
        ours = np.load(self.path("out.npy"))
        net = cv2.dnn.readNetFromCaffe(proto)
        for k, v in inputs.items():
            net.setInput(v, k)
        theirs = net.forward(net.getUnconnectedOutLayersNames()[0])
        return ours, theirs

    def assertClose(self, ours, theirs):
        self.assertEqual(ours.shape, theirs.shape)
        scale = max(float(np.abs(theirs).max()), 1e-30)
        err = float(np.abs(ours - theirs).max())
        self.assertLessEqual(err, RTOL * scale, "max error %g of %g" % (err, scale))

    def test_roi_pooling(self):
        rng = np.random.RandomState(1)
        x = rng.normal(size=(2, 3, 9, 11)).astype(np.float32)
        ours, theirs = self.both(ROI_NET, {"x": x, "rois": np.array(ROIS, np.float32)}, "y")
        self.assertClose(ours, theirs)

    def test_psroi_pooling(self):
        rng = np.random.RandomState(2)
        x = rng.normal(size=(2, 18, 9, 11)).astype(np.float32)
        ours, theirs = self.both(PSROI_NET, {"x": x, "rois": np.array(ROIS, np.float32)}, "y")
        self.assertClose(ours, theirs)

    def test_proposal(self):
        rng = np.random.RandomState(3)
        cls = rng.uniform(size=(1, 18, 14, 19)).astype(np.float32)
        bbox = rng.normal(0, 0.2, size=(1, 36, 14, 19)).astype(np.float32)
        info = np.array([[224, 300, 1]], np.float32)
        ours, theirs = self.both(PROPOSAL_NET, {"cls": cls, "bbox": bbox, "im_info": info}, "rois")
        self.assertGreater(int((theirs[:, 3:] > 0).any(axis=1).sum()), 20, "too few survivors")
        self.assertClose(ours, theirs)


if __name__ == "__main__":
    unittest.main()
