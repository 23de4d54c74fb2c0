"""The WindowData layer (src/layers/window_data.c) against a reference
written here from BVLC's window_data_layer.cpp (load_batch): the context
and square arithmetic in float32 with C's round (half away from zero), the
crop of cv2.imread's BGR pixels, cv2.resize INTER_LINEAR, cv2.flip, the
mean and scale.  Each window file has one foreground and one background
window (plus one between the thresholds, which must be dropped), so that
every sample of a batch is known whichever window the generator draws;
mirroring is checked as "one of the two".  Our resize rounds like OpenCV
but in floating point (OpenCV's fixed point may differ by 1 grey level):
tolerance 1 level times the scale.  Skipped without numpy / cv2 / the CLI.
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

F = np.float32 if np is not None else None


def cround(x):
    """C's round() of a float32: half away from zero."""
    x = F(x)
    return int(np.sign(x) * np.floor(np.abs(x) + F(0.5)))


def reference(img, win, crop, context_pad, square, mirror, mean, scale):
    """One item of Caffe's load_batch: (3, crop, crop)."""
    x1, y1, x2, y2 = win
    out = np.zeros((3, crop, crop), np.float32)
    size_w = size_h = crop
    pad_w = pad_h = 0
    if context_pad > 0 or square:
        cscale = F(crop) / F(crop - 2 * context_pad)
        half_h, half_w = F(y2 - y1 + 1) / F(2), F(x2 - x1 + 1) / F(2)
        cx, cy = F(x1) + half_w, F(y1) + half_h
        if square:
            half_h = half_w = max(half_h, half_w)
        x1, x2 = cround(cx - half_w * cscale), cround(cx + half_w * cscale)
        y1, y2 = cround(cy - half_h * cscale), cround(cy + half_h * cscale)
        uh, uw = y2 - y1 + 1, x2 - x1 + 1
        px1, py1 = max(0, -x1), max(0, -y1)
        px2, py2 = max(0, x2 - img.shape[1] + 1), max(0, y2 - img.shape[0] + 1)
        x1, x2, y1, y2 = x1 + px1, x2 - px2, y1 + py1, y2 - py2
        sx, sy = F(crop) / F(uw), F(crop) / F(uh)
        size_w, size_h = cround(F(x2 - x1 + 1) * sx), cround(F(y2 - y1 + 1) * sy)
        pad_h = cround(F(py1) * sy)
        pad_w = cround(F(px2 if mirror else px1) * sx)
        size_h = min(size_h, crop - pad_h)
        size_w = min(size_w, crop - pad_w)
    cut = cv2.resize(img[y1:y2 + 1, x1:x2 + 1], (size_w, size_h), interpolation=cv2.INTER_LINEAR)
    if mirror:
        cut = cv2.flip(cut, 1)
    region = cut.transpose(2, 0, 1).astype(np.float32)
    if mean.ndim == 3:
        off = (mean.shape[2] - crop) // 2
        m = mean[:, off + pad_h:off + pad_h + size_h, off + pad_w:off + pad_w + size_w]
    else:
        m = mean.reshape(-1, 1, 1)
    out[:, pad_h:pad_h + size_h, pad_w:pad_w + size_w] = (region - m) * F(scale)
    return out


@unittest.skipIf(np is None, "numpy / opencv not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class WindowData(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-window-")
        rng = np.random.default_rng(5)
        yy, xx = np.mgrid[0:40, 0:50]
        self.img = np.stack([(yy * 6 + xx * 3) % 256, (xx * 11 + 40) % 256,
                             rng.integers(0, 256, (40, 50))], axis=2).astype(np.uint8)
        cv2.imwrite(self.path("a.png"), self.img)
        cv2.imwrite(self.path("b.png"), self.img[:20, :30])

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def run_layer(self, fg, bg, params, transform, batch=4):
        """One forward of a WindowData layer; fg, bg: (x1, y1, x2, y2) in a.png."""
        with open(self.path("windows.txt"), "w") as f:
            f.write("# 0\na.png\n3\n40\n50\n3\n")
            f.write("3 0.8 %d %d %d %d\n" % fg)
            f.write("7 0.1 %d %d %d %d\n" % bg)
            f.write("2 0.4 0 0 10 10\n")  # between bg_threshold 0.3 and fg_threshold 0.5
            f.write("# 1\nb.png\n3\n20\n30\n1\n5 0.35 1 1 5 5\n")  # dropped too
        net = ('layer { name: "w" type: "WindowData" top: "data" top: "label"\n'
               '  transform_param { %s }\n'
               '  window_data_param { source: "%s" root_folder: "%s/" batch_size: %d\n'
               '    fg_threshold: 0.5 bg_threshold: 0.3 fg_fraction: 0.5 %s } }\n'
               % (transform, self.path("windows.txt"), self.dir, batch, params))
        with open(self.path("net.prototxt"), "w") as f:
            f.write(net)
        p = subprocess.run([CLI, "forward", self.path("net.prototxt"), "--output",
                            "data=" + self.path("x.npy"), "--output", "label=" + self.path("y.npy")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return np.load(self.path("x.npy")), np.load(self.path("y.npy"))

    def check(self, x, y, fg, bg, batch, **kw):
        self.assertEqual(x.shape, (batch, 3, kw["crop"], kw["crop"]))
        np.testing.assert_array_equal(y, [0] * (batch // 2) + [3] * (batch // 2))
        tol = 1.001 * abs(kw["scale"])
        for i in range(batch):
            win = bg if i < batch // 2 else fg
            want = [reference(self.img, win, mirror=m, **kw) for m in (False, True)]
            errs = [np.abs(x[i] - w).max() for w in want]
            self.assertLessEqual(min(errs), tol, "item %d: %s" % (i, errs))

    def test_warp_mean_values(self):
        fg, bg = (5, 6, 24, 20), (0, 0, 49, 39)
        x, y = self.run_layer(fg, bg, "scale: 0.5",
                              "crop_size: 8 mean_value: 10 mean_value: 20 mean_value: 30")
        self.check(x, y, fg, bg, 4, crop=8, context_pad=0, square=False,
                   mean=np.array([10, 20, 30], np.float32), scale=0.5)

    def test_context_pad_at_the_border_mean_file(self):
        """Windows at the image's corners: the padded context falls
        outside and stays zero; the mean file is centred (16 x 14 for a
        crop of 12: offset 1 on both axes, as Caffe takes it from W)."""
        fg, bg = (0, 0, 14, 11), (35, 25, 49, 39)
        mean = np.random.default_rng(2).uniform(0, 50, (3, 16, 14)).astype(np.float32)
        np.save(self.path("mean.npy"), mean)
        x, y = self.run_layer(fg, bg, "context_pad: 2",
                              'crop_size: 12 mean_file: "%s"' % self.path("mean.npy"))
        self.check(x, y, fg, bg, 4, crop=12, context_pad=2, square=False, mean=mean, scale=1)
        self.assertTrue((x[0, :, -2:, -2:] == 0).all())  # padding of the corner window

    def test_context_pad_inside(self):
        """Context inside the image, with fractional corners that C's round
        and a truncation would place differently (8.9 -> 9, 16.6 -> 17)."""
        fg, bg = (10, 10, 20, 15), (30, 5, 45, 30)
        x, y = self.run_layer(fg, bg, "context_pad: 1", "crop_size: 12")
        self.check(x, y, fg, bg, 4, crop=12, context_pad=1, square=False,
                   mean=np.zeros(1, np.float32), scale=1)

    def test_square_mirror(self):
        fg, bg = (2, 10, 40, 18), (20, 3, 27, 35)
        x, y = self.run_layer(fg, bg, 'context_pad: 3 crop_mode: "square" scale: 0.25',
                              "crop_size: 15 mirror: true", batch=8)
        self.check(x, y, fg, bg, 8, crop=15, context_pad=3, square=True,
                   mean=np.zeros(1, np.float32), scale=0.25)

    def test_bad_window_files(self):
        cases = [("# 0\na.png\n3\n40\n50\n1\n3 0.9 0 0 50 10\n", "x2"),   # outside the image
                 ("# 1\na.png\n3\n40\n50\n0\n", "image index 1"),
                 ("# 0\na.png\n1\n40\n50\n0\n", "3 channels"),
                 ("# 0\na.png\n3\n40\n50\n1\n0 0.9 0 0 5 5\n", "class 0"),
                 ("# 0\na.png\n3\n40\n50\n1\n3 0.9 0 0 5 5\n", "background")]
        for text, words in cases:
            with open(self.path("bad.txt"), "w") as f:
                f.write(text)
            with open(self.path("net.prototxt"), "w") as f:
                f.write('layer { name: "w" type: "WindowData" top: "data" top: "label"\n'
                        '  transform_param { crop_size: 8 }\n'
                        '  window_data_param { source: "%s" root_folder: "%s/" batch_size: 2 } }\n'
                        % (self.path("bad.txt"), self.dir))
            p = subprocess.run([CLI, "forward", self.path("net.prototxt"), "--output",
                                "data=" + self.path("x.npy")], capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(words, p.stderr)
            self.assertIn("'w'", p.stderr)


if __name__ == "__main__":
    unittest.main()
