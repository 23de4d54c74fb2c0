"""Every net prototxt of ../shared/data/prototxt (current, legacy_v1,
legacy_v0, zoo; solver files aside) through the CLI: `netsurg upgrade`
writes the current format, and `netsurg info --json` of the original and of
the upgraded file give the same layer graph (names, types, bottoms, tops)
and the same param shapes. Skipped without ../shared or the CLI.
"""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest
from nscli import CLI, SHARED

PROTO = os.path.join(SHARED, "data", "prototxt")


def info(path):
    p = subprocess.run([CLI, "info", path, "--json"], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("netsurg info %s failed (%d): %s" % (path, p.returncode, p.stderr))
    return json.loads(p.stdout)


def graph(j):
    return [(l["name"], l["type"], l["bottoms"], l["tops"], l["params"]) for l in j["layers"]]


@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(not os.path.isdir(PROTO), "../shared prototxts absent")
class CorpusThroughCli(unittest.TestCase):
    def test_upgrade_keeps_layer_graph(self):
        files = [f for f in sorted(glob.glob(os.path.join(PROTO, "*", "*.prototxt")))
                 if "solver" not in os.path.basename(f)]
        self.assertGreater(len(files), 40)
        tmp = tempfile.mkdtemp(prefix="netsurg-corpus-")
        try:
            for f in files:
                with self.subTest(f=f):
                    out = os.path.join(tmp, "up.prototxt")
                    p = subprocess.run([CLI, "upgrade", f, out], capture_output=True, text=True)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    before, after = info(f), info(out)
                    self.assertTrue(all(l["type"] in ("LRN", "BNLL", "ELU") or not l["type"].isupper()
                                        for l in after["layers"]), "V1 enum type left")
                    self.assertEqual(graph(before), graph(after))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
