"""LSTM and RNN (src/layers/lstm.c, rnn.c) against PyTorch's nn.LSTM and
nn.RNN, a second, independent oracle beside the reference in
tests/test_layer_recurrent.c.  The weights are drawn by `netsurg init`
into a caffemodel, read out with `netsurg edit --dump` (so the params'
order and shapes go through a saved file) and loaded into torch with
Caffe's gate order i, f, o, g permuted to torch's i, f, g, o (b_c as
torch's bias_ih, bias_hh zero).  cont markers: a 0 starts a new sequence,
which torch runs as a separate call from zero states.  Caffe's RNN output
o = tanh(W_ho h + b_o) is computed from torch's h.  Tolerance 2e-6
(float32 on both sides).  Skipped without torch or the CLI.
"""
import os
import shutil
import subprocess
import tempfile
import unittest
from nscli import CLI

try:
    import numpy as np
    import torch
except ImportError:  # pragma: no cover
    np = torch = None

T, N, D, H = 6, 3, 5, 4
CONT = [[0, 0, 0], [1, 1, 1], [1, 0, 1], [1, 1, 1], [1, 1, 0], [1, 1, 1]]

NET = """layer { name: "in" type: "Input" top: "x" top: "cont"
  input_param { shape { dim: %(T)d dim: %(N)d dim: %(D)d } shape { dim: %(T)d dim: %(N)d } } }
layer { name: "rec" type: "%(type)s" bottom: "x" bottom: "cont" top: "out"
  recurrent_param { num_output: %(H)d weight_filler { type: "gaussian" std: 0.5 }
    bias_filler { type: "gaussian" std: 0.5 } } }
"""


def segments(cont_column):
    """[start, end) of each sequence of one stream."""
    starts = [t for t, c in enumerate(cont_column) if c == 0] + [len(cont_column)]
    return list(zip(starts[:-1], starts[1:]))


@unittest.skipIf(torch is None, "torch / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class RecurrentTorch(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-rec-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def cli(self, *args):
        p = subprocess.run([CLI, *args], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def run_netsurg(self, type_, n_params):
        """netsurg's output and its params, after an init/dump round trip."""
        net, w = self.path("net.prototxt"), self.path("w.caffemodel")
        with open(net, "w") as f:
            f.write(NET % {"T": T, "N": N, "D": D, "H": H, "type": type_})
        self.cli("init", net, "--out", w, "--seed", "3")
        dumps = []
        for i in range(n_params):
            dumps += ["--dump", "rec[%d]=%s" % (i, self.path("p%d.npy" % i))]
        self.cli("edit", net, w, *dumps)
        params = [np.load(self.path("p%d.npy" % i)) for i in range(n_params)]
        x = np.random.default_rng(4).uniform(-1, 1, (T, N, D)).astype(np.float32)
        np.save(self.path("x.npy"), x)
        np.save(self.path("cont.npy"), np.array(CONT, np.float32))
        self.cli("forward", net, w, "--input", "x=" + self.path("x.npy"), "--input",
                 "cont=" + self.path("cont.npy"), "--output", "out=" + self.path("out.npy"))
        return x, params, np.load(self.path("out.npy"))

    def torch_streams(self, module, x):
        """module run stream by stream, sequence by sequence: (T, N, H)."""
        out = np.zeros((T, N, H), np.float32)
        with torch.no_grad():
            for n in range(N):
                for a, b in segments([CONT[t][n] for t in range(T)]):
                    y, _ = module(torch.from_numpy(x[a:b, n:n + 1]))
                    out[a:b, n] = y[:, 0].numpy()
        return out

    def test_lstm_matches_torch(self):
        x, (w_xc, b_c, w_hc), out = self.run_netsurg("LSTM", 3)
        self.assertEqual((w_xc.shape, b_c.shape, w_hc.shape), ((4 * H, D), (4 * H,), (4 * H, H)))
        perm = np.concatenate([np.arange(0, 2 * H), np.arange(3 * H, 4 * H),
                               np.arange(2 * H, 3 * H)])  # i f o g -> i f g o
        lstm = torch.nn.LSTM(D, H)
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(torch.from_numpy(w_xc[perm]))
            lstm.weight_hh_l0.copy_(torch.from_numpy(w_hc[perm]))
            lstm.bias_ih_l0.copy_(torch.from_numpy(b_c[perm]))
            lstm.bias_hh_l0.zero_()
        np.testing.assert_allclose(out, self.torch_streams(lstm, x), atol=2e-6)

    def test_rnn_matches_torch(self):
        x, (w_xh, b_h, w_hh, w_ho, b_o), out = self.run_netsurg("RNN", 5)
        rnn = torch.nn.RNN(D, H, nonlinearity="tanh")
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.from_numpy(w_xh))
            rnn.weight_hh_l0.copy_(torch.from_numpy(w_hh))
            rnn.bias_ih_l0.copy_(torch.from_numpy(b_h))
            rnn.bias_hh_l0.zero_()
        h = self.torch_streams(rnn, x)
        want = np.tanh(h @ w_ho.T + b_o)
        np.testing.assert_allclose(out, want, atol=2e-6)


if __name__ == "__main__":
    unittest.main()
