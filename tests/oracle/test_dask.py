"""netsurg.dask on a LocalCluster of 2 worker processes (loopback, one
thread each): the records equal `netsurg classify --list`'s JSON lines for
the same files (the CLI's C code path against the Python module's), each
worker loads the model once, bad files come back as error records, and a
worker process killed (SIGKILL, from the test) in the middle of a run costs
nothing: every path's record comes back exactly once, in order, and the
parts written to a directory hold each record once."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import numpy as np

from nscli import BUILD, CLI, sanitized

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL = os.path.join(ROOT, "models", "fmnist_lenet")
SO = os.path.join(BUILD, "libnetsurg.so")

SANITIZED = sanitized()
try:
    import cv2
    from distributed import Client, LocalCluster, as_completed
except ImportError as e:
    MISSING = "%s (scripts/install-deps.sh test installs python3-distributed)" % e
else:
    MISSING = None
if os.path.exists(SO) and not MISSING and not SANITIZED:
    os.environ["NETSURG_LIB"] = os.path.abspath(SO)
    sys.path.insert(0, os.path.join(ROOT, "python"))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(ROOT, "python")] + os.environ.get("PYTHONPATH", "").split(os.pathsep))
    import netsurg.dask as nsdask


@unittest.skipIf(MISSING, MISSING)
@unittest.skipIf(SANITIZED, "libnetsurg.so built with sanitizers cannot load into python3")
@unittest.skipIf(not os.path.exists(SO), "no %s (make)" % SO)
class DaskCluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="netsurg-dask-")
        base = os.path.join(cls.tmp, "fm")
        subprocess.run([CLI, "fcn", os.path.join(MODEL, "deploy.prototxt"),
                        os.path.join(MODEL, "fmnist_lenet.caffemodel"), "--size", "56x56",
                        "--out", base], check=True, capture_output=True)
        # forward passes of 3 inside tasks of 4 and 8 paths: a task runs several
        cls.model = nsdask.Model(base + ".prototxt", base + ".caffemodel", raw_scale=1.0,
                                 threads=1, forward_batch=3)
        rng = np.random.RandomState(5)
        cls.paths = []
        for i in range(240):  # larger than the input: each is resized, with antialiasing
            cls.paths.append(os.path.join(cls.tmp, "im%03d.png" % i))
            cv2.imwrite(cls.paths[-1], rng.randint(0, 256, (200, 200), np.uint8))
        cls.paths[7] = os.path.join(cls.tmp, "missing.png")
        listing = os.path.join(cls.tmp, "list.txt")
        with open(listing, "w") as f:
            f.write("".join(p + "\n" for p in cls.paths))
        p = subprocess.run([CLI, "classify", base + ".prototxt", base + ".caffemodel", "--list",
                            listing, "--raw-scale", "1", "--batch", "8"],
                           capture_output=True, text=True)
        assert p.returncode == 8, p.stderr  # the missing file
        cls.cli = [json.loads(line) for line in p.stdout.splitlines()]
        cls.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
        cls.client = Client(cls.cluster)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_records_equal_cli_and_model_loaded_once_per_worker(self):
        got = nsdask.classify_paths(self.client, self.model, self.paths, batch=8)
        self.assertEqual(len(got), len(self.cli))
        self.assertEqual(got, self.cli)
        self.assertEqual(set(got[7]), {"image", "error"})
        loads = self.client.run(nsdask.model_loads)  # 30 batches, spread over both
        self.assertEqual(sorted(loads.values()), [1, 1], loads)

    def test_worker_killed_mid_run(self):
        out_dir = os.path.join(self.tmp, "parts")
        os.mkdir(out_dir)
        pids = self.client.run(os.getpid)  # worker address -> its process id
        batches = [self.paths[i:i + 4] for i in range(0, len(self.paths), 4)]
        futures = self.client.map(nsdask.classify_batch, [self.model] * len(batches), batches,
                                  range(len(batches)), [out_dir] * len(batches), pure=False)
        done_before_kill = None
        for n, _ in enumerate(as_completed(futures), 1):
            if done_before_kill is None and n == 3:
                # the worker with the most batches running or queued on it
                busy = self.client.processing()
                address = max(pids, key=lambda a: len(busy.get(a, ())))
                in_flight = len(busy.get(address, ()))
                victim = pids[address]
                os.kill(victim, signal.SIGKILL)
                done_before_kill = n
        self.assertEqual(done_before_kill, 3)
        self.assertGreater(in_flight, 0, "the killed worker had no batch to lose")
        got = [r for records in self.client.gather(futures) for r in records]
        self.assertEqual(got, self.cli)  # every record once, in order
        self.assertEqual(nsdask.merge_parts(out_dir), self.cli)
        parts = sorted(f for f in os.listdir(out_dir) if not f.startswith("."))
        self.assertEqual(parts, ["part-%08d.jsonl" % i for i in range(len(batches))])
        self.assertNotIn(victim, self.client.run(os.getpid).values())


if __name__ == "__main__":
    unittest.main()
