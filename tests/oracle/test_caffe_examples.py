"""Caffe's own examples/mnist/lenet_train_test.prototxt, copied UNCHANGED
from ../shared/data/prototxt/current/, trained by `netsurg train` on LMDBs
that `netsurg convert-imageset` made from Fashion-MNIST images (Debian's
dataset-fashion-mnist, written out as PNG files with cv2), in a temporary
directory laid out as Caffe's examples expect (the prototxt names
examples/mnist/mnist_train_lmdb; paths resolve from the working
directory, as in Caffe).  The solver is Caffe's lenet_solver.prototxt with
a short run (250 iterations, 5 test batches).  Passes when the loss falls
and the test accuracy is well above chance (0.1): measured 0.83 after 250
iterations (loss 2.19 -> 0.54), about 20 s.  `compute-mean`'s mean.binaryproto of the train LMDB is then
given to `classify --mean-file` with Caffe's deploy lenet.prototxt and the
trained weights.  CIFAR-10 quick is tests/slow/test_cifar_quick.py.
"""
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nscli import CLI, SHARED  # noqa: E402

try:
    import numpy as np
    import cv2
except ImportError:  # pragma: no cover
    np = cv2 = None

FMNIST = "/usr/share/datasets/fashion-mnist"
PROTOTXT = os.path.join(SHARED, "data", "prototxt", "current")

LENET_SOLVER = """# Caffe's examples/mnist/lenet_solver.prototxt, shortened
net: "examples/mnist/lenet_train_test.prototxt"
test_iter: %(test_iter)d
test_interval: %(iters)d
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
display: 25
max_iter: %(iters)d
snapshot_prefix: "examples/mnist/lenet"
random_seed: 1
solver_mode: CPU
"""


def read_idx(name, count):
    """The first count items of a Fashion-MNIST IDX file (images or labels)."""
    with gzip.open(os.path.join(FMNIST, name), "rb") as f:
        data = f.read()
    if "images" in name:
        return np.frombuffer(data, np.uint8, count * 784, 16).reshape(count, 28, 28)
    return np.frombuffer(data, np.uint8, count, 8)


def write_images(root, sub, images, labels):
    """Grey PNG files under root/sub and a "sub/i.png label" list."""
    os.makedirs(os.path.join(root, sub))
    lines = []
    for i, (img, label) in enumerate(zip(images, labels)):
        name = "%s/%05d.png" % (sub, i)
        cv2.imwrite(os.path.join(root, name), img)
        lines.append("%s %d\n" % (name, label))
    with open(os.path.join(root, sub + ".txt"), "w") as f:
        f.writelines(lines)
    return os.path.join(root, sub + ".txt")


def parse_training(log, out_name):
    """The displayed losses and the last test's output `out_name`."""
    losses = [float(m) for m in re.findall(r"^iter +\d+/\d+ +loss ([0-9.eE+-]+)", log, re.M)]
    tests = re.findall(r"%s = ([0-9.eE+-]+)" % out_name, log)
    return losses, float(tests[-1]) if tests else None


@unittest.skipIf(np is None, "numpy / opencv not installed")
@unittest.skipUnless(os.path.isdir(FMNIST), "no %s (dataset-fashion-mnist)" % FMNIST)
@unittest.skipUnless(os.path.isdir(PROTOTXT), "no ../shared/data/prototxt/current")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class CaffeLeNet(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-lenet-")
        self.cli_path = os.path.abspath(CLI)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args):
        p = subprocess.run([self.cli_path, *args], capture_output=True, text=True, cwd=self.dir)
        self.assertEqual(p.returncode, 0, "netsurg %s:\n%s%s" % (" ".join(args), p.stdout,
                                                                  p.stderr))
        return p

    def test_lenet_trains_on_convert_imageset_lmdb(self):
        n_train, n_test, iters = 3000, 500, 250
        images = read_idx("train-images-idx3-ubyte.gz", n_train + n_test)
        labels = read_idx("train-labels-idx1-ubyte.gz", n_train + n_test)
        train = write_images(self.dir, "train", images[:n_train], labels[:n_train])
        test = write_images(self.dir, "test", images[n_train:], labels[n_train:])
        os.makedirs(os.path.join(self.dir, "examples", "mnist"))
        for lst, db in ((train, "mnist_train_lmdb"), (test, "mnist_test_lmdb")):
            self.cli("convert-imageset", self.dir + "/", lst, "examples/mnist/" + db, "--gray")
        shutil.copy(os.path.join(PROTOTXT, "mnist__lenet_train_test.prototxt"),
                    os.path.join(self.dir, "examples", "mnist", "lenet_train_test.prototxt"))
        with open(os.path.join(self.dir, "solver.prototxt"), "w") as f:
            f.write(LENET_SOLVER % {"iters": iters, "test_iter": n_test // 100})
        p = self.cli("train", "solver.prototxt")
        losses, accuracy = parse_training(p.stdout + p.stderr, "accuracy")
        self.assertGreaterEqual(len(losses), 5, p.stdout)
        self.assertLess(losses[-1], 0.6 * losses[0], losses)
        self.assertIsNotNone(accuracy, p.stdout)
        self.assertGreater(accuracy, 0.6, p.stdout)  # chance is 0.1
        print("\n  LeNet, %d iterations: loss %.3f -> %.3f, test accuracy %.3f"
              % (iters, losses[0], losses[-1], accuracy), file=sys.stderr)
        # compute-mean's file, read by classify --mean-file
        self.cli("compute-mean", "examples/mnist/mnist_train_lmdb", "mean.binaryproto")
        shutil.copy(os.path.join(PROTOTXT, "mnist__lenet.prototxt"),
                    os.path.join(self.dir, "lenet.prototxt"))
        weights = "examples/mnist/lenet_iter_%d.caffemodel" % iters
        p = self.cli("classify", "lenet.prototxt", weights, "test/00000.png", "--mean-file",
                     "mean.binaryproto", "--input-scale", "0.00390625")
        self.assertIn("00000.png", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
