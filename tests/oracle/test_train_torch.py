"""`netsurg train` against PyTorch (Debian's python3-torch), an independent
implementation of the same maths.

Caffe's LeNet (conv-pool-conv-pool-ip-relu-ip, SoftmaxWithLoss, biases at
lr_mult 2) on 8 random 28x28 images, one full batch (NpyData, no shuffle):
netsurg writes the initial weights (`init`), trains two SGD iterations with
momentum and weight decay (`train --weights`), and dumps every param
(`edit --dump`); torch starts from the same weights and runs the same two
steps with torch.optim.SGD (whose momentum/decay form equals Caffe's for a
fixed learning rate: history = lr * buffer), in double precision.  The
params must agree within TOL = 1e-6 (float against double rounding; 2.7e-8
measured).  Each part of the update must matter at that tolerance: torch's
run without weight decay, without momentum, or with the biases at lr_mult 1
ends more than SWITCH_MARGIN tolerances from the reference, so a solver
that drops any of them fails.  Skipped without torch/numpy or the CLI.
"""
import os
import shutil
import tempfile
import unittest
from nscli import CLI, run

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    np = torch = None

PARAMS = ["conv1", "conv2", "ip1", "ip2"]
TOL = 1e-6
SWITCH_MARGIN = 100
# decay 10x the LeNet example's 0.0005: over two steps 0.0005 moves the params by
# 4.9e-5 only, and a solver that ignored it would pass at 100 tolerances
LR, MOMENTUM, DECAY = 0.05, 0.9, 0.005

LENET = """
name: "LeNet"
layer { name: "d" type: "NpyData" top: "data" top: "label"
  array_data_param { source: "%(x)s" label_source: "%(y)s" batch_size: 8 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" }
    bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 50 kernel_size: 5 weight_filler { type: "xavier" }
    bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 500 weight_filler { type: "xavier" }
    bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 10 weight_filler { type: "xavier" }
    bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""

SOLVER = """net: "%(net)s"
base_lr: %(lr)g
momentum: %(momentum)g
weight_decay: %(decay)g
lr_policy: "fixed"
max_iter: 2
display: 1
snapshot_prefix: "%(prefix)s"
random_seed: 1
"""


def torch_sgd(start, x, y, lr=LR, momentum=MOMENTUM, decay=DECAY, bias_lr_mult=2):
    """Two SGD steps of torch from START; returns the params and the losses."""
    torch.set_num_threads(1)
    p = {l: [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in start[l]]
         for l in PARAMS}
    groups = [{"params": [p[l][0] for l in PARAMS], "lr": lr},
              {"params": [p[l][1] for l in PARAMS], "lr": lr * bias_lr_mult}]
    opt = torch.optim.SGD(groups, momentum=momentum, weight_decay=decay)
    xt = torch.tensor(x, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.int64)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = F.cross_entropy(lenet(p, xt), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {l: [t.detach().numpy() for t in p[l]] for l in PARAMS}, losses


def farthest(a, b):
    return max(np.abs(a[l][i] - b[l][i]).max() for l in PARAMS for i in range(2))


def lenet(p, x):
    x = F.max_pool2d(F.conv2d(x, p["conv1"][0], p["conv1"][1]), 2, 2)
    x = F.max_pool2d(F.conv2d(x, p["conv2"][0], p["conv2"][1]), 2, 2)
    x = F.relu(F.linear(x.flatten(1), p["ip1"][0], p["ip1"][1]))
    return F.linear(x, p["ip2"][0], p["ip2"][1])


@unittest.skipIf(torch is None, "python3-torch / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class TrainAgainstTorch(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-torch-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def dump(self, net, weights, tag):
        args = [net, weights]
        for l in PARAMS:
            for i in range(2):
                args += ["--dump", "%s[%d]=%s" % (l, i, self.path("%s_%s_%d.npy" % (tag, l, i)))]
        run("edit", *args)
        return {l: [np.load(self.path("%s_%s_%d.npy" % (tag, l, i))) for i in range(2)]
                for l in PARAMS}

    def test_two_sgd_steps_match_torch(self):
        rng = np.random.default_rng(4)
        x = rng.random((8, 1, 28, 28), dtype=np.float32)
        y = (np.arange(8) % 10).astype(np.float32)
        np.save(self.path("x.npy"), x)
        np.save(self.path("y.npy"), y)
        net = self.path("lenet.prototxt")
        with open(net, "w") as f:
            f.write(LENET % {"x": self.path("x.npy"), "y": self.path("y.npy")})
        solver = self.path("solver.prototxt")
        with open(solver, "w") as f:
            f.write(SOLVER % {"net": net, "prefix": self.path("snap"), "lr": LR,
                              "momentum": MOMENTUM, "decay": DECAY})
        run("init", net, "--out", self.path("init.caffemodel"), "--seed", "11")
        start = self.dump(net, self.path("init.caffemodel"), "start")
        out = run("train", solver, "--weights", self.path("init.caffemodel"), "--threads", "1")
        ours = self.dump(net, self.path("snap_iter_2.caffemodel"), "end")
        want, losses = torch_sgd(start, x, y)

        # the loss netsurg printed at iteration 0 is torch's first
        first = [l for l in out.stdout.splitlines() if l.startswith("iter      0/")]
        self.assertTrue(first, out.stdout)
        self.assertAlmostEqual(float(first[0].split()[3]), losses[0], places=4)
        for l in PARAMS:
            for i in range(2):
                self.assertEqual(ours[l][i].shape, want[l][i].shape, (l, i))
                err = np.abs(ours[l][i] - want[l][i]).max()
                self.assertLess(err, TOL, "%s[%d]: max |netsurg - torch| = %g" % (l, i, err))
        worst = farthest(ours, want)
        self.assertGreater(farthest(start, want), SWITCH_MARGIN * TOL, "the steps did nothing")

        # each part of the update moves the result far beyond TOL
        moves = {"no weight decay": farthest(torch_sgd(start, x, y, decay=0)[0], want),
                 "no momentum": farthest(torch_sgd(start, x, y, momentum=0)[0], want),
                 "biases at lr_mult 1": farthest(torch_sgd(start, x, y, bias_lr_mult=1)[0], want)}
        print("netsurg vs torch: %.3g; without a part of the update: %s" % (
            worst, ", ".join("%s %.3g" % kv for kv in moves.items())))
        for what, moved in moves.items():
            self.assertGreater(moved, SWITCH_MARGIN * TOL, "%s: only %g from the reference" % (what, moved))

if __name__ == "__main__":
    unittest.main()
