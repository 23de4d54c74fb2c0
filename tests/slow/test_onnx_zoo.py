"""FCN-8s (the VOC deploy net: VGG-16 cast fully convolutional, score
deconvolutions, Crop at fixed offsets, skip Eltwise sums) exported to ONNX
at 192x192 with msra filler weights: onnx.checker (full_check) passes and
ONNX Runtime's score map equals netsurg's forward within 1e-4 of its
largest magnitude, argmax map equal (but at near ties).  Slow (a 537 MB caffemodel written
and read three times), so here and not in `make test`."""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
from nscli import CLI, SHARED, run  # noqa: E402
from test_onnx_export import (HAVE_ORT, ORT_MISSING, TOL, check_model, np,  # noqa: E402
                              ort_forward, rel_err)

FCN8S = os.path.join(SHARED, "data", "prototxt", "zoo", "voc-fcn8s__deploy.prototxt")
SIZE = 192


@unittest.skipIf(np is None, "numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(not os.path.exists(FCN8S), FCN8S + " absent (../shared)")
@unittest.skipIf(not HAVE_ORT, ORT_MISSING)
class Fcn8sInOnnxRuntime(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-onnx-fcn8s-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_fcn8s(self):
        weights, model = self.path("w.caffemodel"), self.path("fcn8s.onnx")
        run("init", FCN8S, "--filler", "msra", "--seed", "3", "--out", weights)
        size = "%dx%d" % (SIZE, SIZE)
        out = run("export", FCN8S, weights, "--onnx", model, "--input-size", size).stdout
        check_model(self, model)
        x = np.random.RandomState(1).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
        np.save(self.path("x.npy"), x)
        run("forward", FCN8S, weights, "--input", "data=" + self.path("x.npy"),
            "--output", "score=" + self.path("y.npy"))
        ours = np.load(self.path("y.npy"))
        (name, theirs), = ort_forward(model, {"data": x}, self.dir)
        self.assertEqual(name, "score")
        self.assertEqual(ours.shape, (1, 21, SIZE, SIZE))
        err = rel_err(theirs, ours)
        print("  fcn8s: %s; ONNX Runtime vs netsurg: %.2g of the largest magnitude" %
              (out.splitlines()[0].split(": ", 1)[1], err))
        self.assertLessEqual(err, TOL)
        # argmax equal, except at cells where netsurg's two top scores are
        # themselves within the tolerance (a near tie either may break)
        a, b = theirs.argmax(axis=1)[0], ours.argmax(axis=1)[0]
        scale = float(np.abs(ours).max())
        for i, j in zip(*np.nonzero(a != b)):
            gap = abs(ours[0, a[i, j], i, j] - ours[0, b[i, j], i, j])
            self.assertLessEqual(gap, TOL * scale, "argmax differs at (%d, %d)" % (i, j))
        print("  fcn8s: argmax differs at %d of %d cells, each a near tie" %
              (int((a != b).sum()), a.size))


if __name__ == "__main__":
    unittest.main()
