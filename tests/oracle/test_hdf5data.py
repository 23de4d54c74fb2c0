"""The HDF5Data layer against HDF5 files written by Debian's python3-h5py:
every top reads the dataset of its name, rows in order across the files
of the list (float32, float64 and integer data, any rank), shuffle keeps
rows whole; hostile files (not HDF5, a missing dataset, rank 0, rows that
disagree, a huge declared shape) fail with a message and exit 2, 4 or 5.
Skipped without h5py/numpy or the CLI.
"""
import os
import shutil
import subprocess
import tempfile
import unittest
from nscli import CLI

try:
    import numpy as np
    import h5py
except ImportError:  # pragma: no cover
    np = h5py = None

NET = """layer { name: "h" type: "HDF5Data" %(tops)s
  hdf5_data_param { source: "%(list)s" batch_size: %(batch)d %(extra)s } }
"""


@unittest.skipIf(h5py is None, "python3-h5py / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class HDF5DataAgainstH5py(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-hdf5-")
        rng = np.random.default_rng(3)
        self.x = [rng.standard_normal((3, 2, 4, 5)).astype(np.float32),
                  rng.standard_normal((4, 2, 4, 5))]  # float64 in the second file
        self.y = [np.arange(3, dtype=np.int32), np.arange(10, 14, dtype=np.int64)]
        for i in range(2):
            with h5py.File(self.path("f%d.h5" % i), "w") as f:
                f["data"] = self.x[i]
                f["label"] = self.y[i]
        self.write_list("list.txt", ["f0.h5", "f1.h5"])

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_list(self, name, files):
        with open(self.path(name), "w") as f:
            f.write("".join(self.path(n) + "\n" for n in files))

    def forward(self, batch, tops=("data", "label"), lst="list.txt", extra="", seed="1"):
        with open(self.path("net.prototxt"), "w") as f:
            f.write(NET % {"tops": " ".join('top: "%s"' % t for t in tops),
                           "list": self.path(lst), "batch": batch, "extra": extra})
        outs = []
        for t in tops:
            outs += ["--output", "%s=%s" % (t, self.path(t + ".npy"))]
        return subprocess.run([CLI, "forward", self.path("net.prototxt"), "--seed", seed, *outs],
                              capture_output=True, text=True)

    def load(self, tops=("data", "label")):
        return [np.load(self.path(t + ".npy")) for t in tops]

    def test_rows_across_files(self):
        p = self.forward(5)
        self.assertEqual(p.returncode, 0, p.stderr)
        x, y = self.load()
        np.testing.assert_array_equal(x, np.concatenate([self.x[0], self.x[1][:2]])
                                      .astype(np.float32))
        np.testing.assert_array_equal(y, [0, 1, 2, 10, 11])
        p = self.forward(10)  # past the last file: the first again
        self.assertEqual(p.returncode, 0, p.stderr)
        np.testing.assert_array_equal(self.load()[1], [0, 1, 2, 10, 11, 12, 13, 0, 1, 2])

    def test_shuffle_keeps_rows_whole(self):
        p = self.forward(7, extra="shuffle: true", seed="5")
        self.assertEqual(p.returncode, 0, p.stderr)
        x, y = self.load()
        allx = np.concatenate([self.x[0], self.x[1]]).astype(np.float32)
        ally = np.concatenate(self.y)
        self.assertEqual(sorted(y.tolist()), sorted(ally.tolist()))
        for row, label in zip(x, y):
            np.testing.assert_array_equal(row, allx[list(ally).index(int(label))])

    def test_one_top_any_rank(self):
        with h5py.File(self.path("v.h5"), "w") as f:
            f["vec"] = np.arange(6, dtype=np.uint8)
        self.write_list("v.txt", ["v.h5"])
        p = self.forward(4, tops=("vec",), lst="v.txt")
        self.assertEqual(p.returncode, 0, p.stderr)
        np.testing.assert_array_equal(self.load(("vec",))[0], [0, 1, 2, 3])

    def test_output_round_trip(self):
        """HDF5Output writes its bottoms as "data" and "label" at full shape."""
        out = self.path("out.h5")
        with open(self.path("net.prototxt"), "w") as f:
            f.write(NET % {"tops": 'top: "data" top: "label"', "list": self.path("list.txt"),
                           "batch": 4, "extra": ""})
            f.write('layer { name: "o" type: "HDF5Output" bottom: "data" bottom: "label"\n'
                    '  hdf5_output_param { file_name: "%s" } }\n' % out)
        p = subprocess.run([CLI, "forward", self.path("net.prototxt"), "--output",
                            "label=" + self.path("l.npy")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with h5py.File(out, "r") as f:
            np.testing.assert_array_equal(
                f["data"][...], np.concatenate([self.x[0], self.x[1][:1]]).astype(np.float32))
            np.testing.assert_array_equal(f["label"][...], [0, 1, 2, 10])
            self.assertEqual(f["data"].dtype, np.float32)
        with open(self.path("net.prototxt"), "a") as f:
            f.write('layer { name: "o2" type: "HDF5Output" bottom: "data" bottom: "label"\n'
                    '  hdf5_output_param { file_name: "%s" } }\n' % self.path("no/such/x.h5"))
        p = subprocess.run([CLI, "forward", self.path("net.prototxt"), "--output",
                            "label=" + self.path("l.npy")], capture_output=True, text=True)
        self.assert_fails(p, (4,), "layer 'o2'", "no/such/x.h5")

    def assert_fails(self, p, codes, *words):
        self.assertIn(p.returncode, codes, p.stderr)
        for w in words:
            self.assertIn(w, p.stderr)
        self.assertNotIn("Sanitizer", p.stderr)
        self.assertNotIn("HDF5-DIAG", p.stderr)  # libhdf5's own printing stays off

    def test_hostile(self):
        with open(self.path("plain.h5"), "wb") as f:
            f.write(b"not hdf5" * 64)
        with h5py.File(self.path("scalar.h5"), "w") as f:
            f["data"] = np.float32(1)
            f["label"] = np.float32(2)
        with h5py.File(self.path("rows.h5"), "w") as f:
            f["data"] = np.zeros((3, 2), np.float32)
            f["label"] = np.zeros(4, np.float32)
        with h5py.File(self.path("text.h5"), "w") as f:
            f["data"] = np.array([b"ab", b"cd"])
            f["label"] = np.zeros(2, np.float32)
        with h5py.File(self.path("huge.h5"), "w") as f:
            f.create_dataset("data", shape=(1 << 20, 1 << 20, 1 << 10), dtype="f4",
                             chunks=(1, 1, 1024))
            f["label"] = np.zeros(1 << 20, np.float32)
        cases = [("plain.h5", (2,), "not an HDF5 file"), ("missing.h5", (4,), "missing.h5"),
                 ("scalar.h5", (2,), "0 axes"), ("rows.h5", (2,), "rows"),
                 ("text.h5", (2,), "not numeric"), ("huge.h5", (2, 5), "huge.h5")]
        for name, codes, word in cases:
            self.write_list("bad.txt", [name])
            p = self.forward(2, lst="bad.txt")
            self.assert_fails(p, codes, "layer 'h'", word)
        p = self.forward(2, tops=("data", "nosuch"))
        self.assert_fails(p, (2,), "no dataset 'nosuch'")


if __name__ == "__main__":
    unittest.main()
