"""Caffe's own examples/cifar10/cifar10_quick_train_test.prototxt, copied
UNCHANGED from ../shared/data/prototxt/current/, trained by `netsurg
train` on 32 x 32 colour LMDBs that `netsurg convert-imageset --resize
32x32` made from Fashion-MNIST's grey PNG files (read in colour, as Caffe's
tool does by default), with the mean.binaryproto of `netsurg compute-mean`
in transform_param { mean_file } as the prototxt names it.  The solver is
Caffe's cifar10_quick_solver.prototxt, shortened.  Passes when the loss
falls and the test accuracy is well above chance (0.1): measured loss
2.30 -> 0.44 and accuracy 0.79 after 300 iterations, 190 s on 2 busy
cores, too long for make test; see tests/oracle/test_caffe_examples.py
for LeNet.
"""
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import test_caffe_examples as ex  # noqa: E402

CIFAR_SOLVER = """# Caffe's examples/cifar10/cifar10_quick_solver.prototxt, shortened
net: "examples/cifar10/cifar10_quick_train_test.prototxt"
test_iter: %(test_iter)d
test_interval: %(iters)d
base_lr: 0.001
momentum: 0.9
weight_decay: 0.004
lr_policy: "fixed"
display: 20
max_iter: %(iters)d
snapshot_prefix: "examples/cifar10/cifar10_quick"
random_seed: 1
solver_mode: CPU
"""


@unittest.skipIf(ex.np is None, "numpy / opencv not installed")
@unittest.skipUnless(os.path.isdir(ex.FMNIST), "no %s (dataset-fashion-mnist)" % ex.FMNIST)
@unittest.skipUnless(os.path.isdir(ex.PROTOTXT), "no ../shared/data/prototxt/current")
@unittest.skipIf(not os.access(ex.CLI, os.X_OK), "netsurg not built")
class CaffeCifarQuick(ex.CaffeLeNet):
    test_lenet_trains_on_convert_imageset_lmdb = None

    def test_cifar_quick_trains_on_convert_imageset_lmdb(self):
        n_train, n_test, iters = 3000, 500, 300
        images = ex.read_idx("train-images-idx3-ubyte.gz", n_train + n_test)
        labels = ex.read_idx("train-labels-idx1-ubyte.gz", n_train + n_test)
        train = ex.write_images(self.dir, "train", images[:n_train], labels[:n_train])
        test = ex.write_images(self.dir, "test", images[n_train:], labels[n_train:])
        os.makedirs(os.path.join(self.dir, "examples", "cifar10"))
        for lst, db in ((train, "cifar10_train_lmdb"), (test, "cifar10_test_lmdb")):
            self.cli("convert-imageset", self.dir + "/", lst, "examples/cifar10/" + db,
                     "--resize", "32x32")
        self.cli("compute-mean", "examples/cifar10/cifar10_train_lmdb",
                 "examples/cifar10/mean.binaryproto")
        shutil.copy(os.path.join(ex.PROTOTXT, "cifar10__cifar10_quick_train_test.prototxt"),
                    os.path.join(self.dir, "examples", "cifar10",
                                 "cifar10_quick_train_test.prototxt"))
        with open(os.path.join(self.dir, "solver.prototxt"), "w") as f:
            f.write(CIFAR_SOLVER % {"iters": iters, "test_iter": n_test // 100})
        p = self.cli("train", "solver.prototxt")
        losses, accuracy = ex.parse_training(p.stdout + p.stderr, "accuracy")
        self.assertGreaterEqual(len(losses), 5, p.stdout)
        self.assertLess(losses[-1], 0.7 * losses[0], losses)
        self.assertIsNotNone(accuracy, p.stdout)
        self.assertGreater(accuracy, 0.4, p.stdout)  # chance is 0.1
        print("\n  CIFAR-10 quick, %d iterations: loss %.3f -> %.3f, test accuracy %.3f"
              % (iters, losses[0], losses[-1], accuracy), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
