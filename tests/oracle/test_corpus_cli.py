"""Every net prototxt of ../shared/data/prototxt (current, legacy_v1,
legacy_v0, zoo, wild; solver files aside) through the CLI: `netsurg upgrade`
writes the current format, and `netsurg info --json` of the original and of
the upgraded file give the same layer graph (names, types, bottoms, tops)
and the same param shapes. Skipped without ../shared or the CLI.

The fork models of wild/ all parse now (their fields are in our
caffe.proto); those whose layer types netsurg does not run yet are listed in
NOT_SHAPED with the first such type: `netsurg info` must still list them and
name that type, and one that starts to shape fails the test until it is taken
off the list (so the list never outlives the work); every other wild file
must shape (`netsurg info` exits 0 with every blob's shape).  Every wild file also
keeps, through `netsurg upgrade`, each *_param block and ceil_mode it had.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from nscli import CLI, SHARED

PROTO = os.path.join(SHARED, "data", "prototxt")

# wild/ file -> the first layer type in it that netsurg cannot run yet.
NOT_SHAPED = {
}


def info(path):
    """`netsurg info --json`: a net it cannot shape (train nets' data layers,
    a layer type netsurg lacks) is still listed from its definition, with no
    blobs, then info exits with the status that stopped it (3 for a type)."""
    p = subprocess.run([CLI, "info", path, "--json"], capture_output=True, text=True)
    if p.returncode != 0 and "listed its definition only" not in p.stderr:
        raise AssertionError("netsurg info %s failed (%d): %s" % (path, p.returncode, p.stderr))
    j = json.loads(p.stdout)
    if p.returncode != 0 and j["blobs"]:
        raise AssertionError("netsurg info %s: exit %d with blob shapes" % (path, p.returncode))
    return j


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
                    # all-capital types that are not V1 enums: Caffe's and the forks' BN
                    self.assertTrue(all(l["type"] in ("LRN", "BNLL", "ELU", "BN")
                                        or not l["type"].isupper()
                                        for l in after["layers"]), "V1 enum type left")
                    self.assertEqual(graph(before), graph(after))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_wild_files_shape_or_name_the_missing_type(self):
        wild = sorted(glob.glob(os.path.join(PROTO, "wild", "*.prototxt")))
        if not wild:
            self.skipTest("no wild/ prototxts")
        self.assertFalse(set(NOT_SHAPED) - {os.path.basename(f) for f in wild},
                         "NOT_SHAPED names files wild/ does not have")
        for f in wild:
            name = os.path.basename(f)
            with self.subTest(f=name):
                p = subprocess.run([CLI, "info", f, "--json"], capture_output=True, text=True)
                if name not in NOT_SHAPED:
                    # shaped: exit 0 and every blob with a shape
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertTrue(json.loads(p.stdout)["blobs"], "%s: no blob shapes" % name)
                    continue
                # listed from its definition, then 3 (unsupported), naming the layer
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertIn("listed its definition only", p.stderr)
                self.assertNotIn("unknown field", p.stderr)
                self.assertRegex(p.stderr, "layer '[^']+': layer type '%s' is not supported"
                                 % re.escape(NOT_SHAPED[name]),
                                 "%s shapes now, or stops elsewhere: update NOT_SHAPED" % name)

    def test_fork_fields_survive_upgrade(self):
        wild = sorted(glob.glob(os.path.join(PROTO, "wild", "*.prototxt")))
        if not wild:
            self.skipTest("no wild/ prototxts")
        fork_words = re.compile(r"\b([a-z_]+_param|ceil_mode)\s*[:{]")
        tmp = tempfile.mkdtemp(prefix="netsurg-corpus-")
        try:
            for f in wild:
                with self.subTest(f=f):
                    out = os.path.join(tmp, "up.prototxt")
                    p = subprocess.run([CLI, "upgrade", f, out], capture_output=True, text=True)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    with open(f) as a, open(out) as b:
                        before = set(fork_words.findall(re.sub(r"#.*", "", a.read())))
                        after = set(fork_words.findall(b.read()))
                    self.assertEqual(before - after, set())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    unittest.main()
