"""The ImageData layer against what Caffe's ImageDataLayer gets from OpenCV:
cv2.imread (BGR, 0..255, or IMREAD_GRAYSCALE) then cv2.resize(INTER_LINEAR)
to new_height x new_width, then the transform ((x - mean) * scale, centre
crop in TEST).  The batch comes out of `netsurg forward` on a net holding
only the data layer.  OpenCV resizes 8-bit images in fixed point, so the
resized values may differ by 1; unresized ones must be equal.  Skipped
without cv2/numpy or the CLI.
"""
import os
import shutil
import subprocess
import tempfile
import unittest
from nscli import CLI

try:
    import numpy as np
    import cv2
except ImportError:  # pragma: no cover
    np = cv2 = None


NET = """layer { name: "d" type: "ImageData" top: "data" top: "label"
  transform_param { %(transform)s }
  image_data_param { source: "%(list)s" root_folder: "%(root)s/" batch_size: 2 %(extra)s } }
"""


@unittest.skipIf(cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class ImageDataAgainstOpenCV(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-data-")
        rng = np.random.default_rng(5)
        # smooth-ish content plus noise, so that interpolation matters
        yy, xx = np.mgrid[0:30, 0:40]
        for i, name in enumerate(["a.png", "b.png"]):
            img = np.stack([(yy * 7 + xx * 3 + 40 * i) % 256, (xx * 6) % 256,
                            rng.integers(0, 256, (30, 40))], axis=2).astype(np.uint8)
            cv2.imwrite(os.path.join(self.dir, name), img)
        with open(self.path("list.txt"), "w") as f:
            f.write("a.png 4\nb.png 7\n")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def batch(self, transform="", extra=""):
        with open(self.path("net.prototxt"), "w") as f:
            f.write(NET % {"list": self.path("list.txt"), "root": self.dir,
                           "transform": transform, "extra": extra})
        p = subprocess.run([CLI, "forward", self.path("net.prototxt"), "--output",
                            "data=" + self.path("data.npy"), "--output",
                            "label=" + self.path("label.npy")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return np.load(self.path("data.npy")), np.load(self.path("label.npy"))

    def opencv(self, flags, size=None):
        out = []
        for name in ["a.png", "b.png"]:
            im = cv2.imread(self.path(name), flags)
            if size:
                im = cv2.resize(im, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
            if im.ndim == 2:
                im = im[:, :, None]
            out.append(im.transpose(2, 0, 1).astype(np.float32))
        return np.stack(out)

    def test_colour_as_imread(self):
        x, y = self.batch()
        np.testing.assert_array_equal(x, self.opencv(cv2.IMREAD_COLOR))
        np.testing.assert_array_equal(y, [4, 7])

    def test_transform_mean_scale_crop(self):
        x, _ = self.batch("scale: 0.5 mean_value: 10 mean_value: 20 mean_value: 30 crop_size: 16")
        want = self.opencv(cv2.IMREAD_COLOR)
        want = (want - np.array([10, 20, 30], np.float32)[None, :, None, None]) * 0.5
        h0, w0 = (30 - 16) // 2, (40 - 16) // 2
        np.testing.assert_allclose(x, want[:, :, h0:h0 + 16, w0:w0 + 16], atol=1e-5)

    def test_resize_as_cv_resize(self):
        for size in [(17, 23), (61, 77)]:
            x, _ = self.batch(extra="new_height: %d new_width: %d" % size)
            want = self.opencv(cv2.IMREAD_COLOR, size)
            self.assertEqual(x.shape, want.shape)
            self.assertLessEqual(np.abs(x - want).max(), 1.0, size)

    def test_grey(self):
        x, _ = self.batch(extra="is_color: false")
        want = self.opencv(cv2.IMREAD_GRAYSCALE)
        self.assertEqual(x.shape, want.shape)
        self.assertLessEqual(np.abs(x - want).max(), 1.0)


if __name__ == "__main__":
    unittest.main()
