"""examples/net_surgery.ipynb, executed headless by Debian's
jupyter-nbconvert on a CaffeNet netsurg made (random weights: the notebook
says so), against the CLI: the argmax map it prints equals `netsurg
classify`'s on the CLI's own cast of the same weights, and the designer
filters' bias edit moves the output mean by exactly 1.  Skips without
../shared (the seed's images and mean) or jupyter-nbconvert."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import caffenet_models
from nscli import BUILD, CLI, SHARED, sanitized

ROOT = caffenet_models.ROOT
NOTEBOOK = os.path.join(ROOT, "examples", "net_surgery.ipynb")
DATA = os.path.join(SHARED, "data")
NEEDED = [os.path.join(DATA, f) for f in ("cat.jpg", "cat_gray.jpg", "ilsvrc_2012_mean.npy")]
DESIGNER = os.path.join(SHARED, "conformance", "designer_filters", "net.prototxt")


def missing():
    """Why the notebook cannot run here, or None."""
    absent = [p for p in NEEDED + [DESIGNER] if not os.path.exists(p)]
    if absent:
        return "no %s" % ", ".join(absent)
    if not os.path.exists(os.path.join(BUILD, "libnetsurg.so")) or not os.path.exists(CLI):
        return "no library or CLI in %s (make)" % BUILD
    if sanitized():
        return "libnetsurg.so built with sanitizers cannot load into python3"
    if shutil.which("jupyter-nbconvert") is None:
        return "no jupyter-nbconvert (scripts/install-deps.sh test)"
    return None


def printed(notebook):
    """The text the executed notebook's cells printed, and its errors."""
    text, errors = [], []
    for cell in notebook["cells"]:
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream" and out["name"] == "stdout":
                text.append("".join(out["text"]))
            elif out["output_type"] == "error":
                errors.append("%s: %s" % (out["ename"], out["evalue"]))
    return "".join(text), errors


@unittest.skipIf(missing(), missing())
class NetSurgeryNotebook(unittest.TestCase):
    def test_notebook_runs_and_prints_the_clis_map(self):
        with tempfile.TemporaryDirectory() as tmp:
            deploy, weights = caffenet_models.make(tmp)
            env = dict(os.environ, NS_BUILD=os.path.abspath(BUILD),
                       NS_SHARED=os.path.abspath(SHARED), NS_NOTEBOOK_MODELS=tmp,
                       NETSURG_LIB=os.path.abspath(os.path.join(BUILD, "libnetsurg.so")),
                       PYDEVD_DISABLE_FILE_VALIDATION="1")
            env.pop("CAFFENET_WEIGHTS", None)
            p = subprocess.run(["jupyter-nbconvert", "--to", "notebook", "--execute",
                                "--ExecutePreprocessor.timeout=600", "--output-dir", tmp,
                                "--output", "executed", NOTEBOOK],
                               capture_output=True, text=True, env=env,
                               cwd=os.path.dirname(NOTEBOOK))
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
            with open(os.path.join(tmp, "executed.ipynb")) as f:
                text, errors = printed(json.load(f))
            self.assertEqual(errors, [])
            cli = caffenet_models.cli_classify(os.path.join(tmp, "netsurg_fcn.prototxt"),
                                               os.path.join(tmp, "netsurg_fcn.caffemodel"),
                                               NEEDED[0], NEEDED[2])
            # The notebook's own .flat transplant, saved: the CLI reads it too.
            saved = caffenet_models.cli_classify(os.path.join(tmp, "netsurg_fcn.prototxt"),
                                                 os.path.join(tmp,
                                                              "bvlc_caffenet_full_conv.caffemodel"),
                                                 NEEDED[0], NEEDED[2])
        self.assertIn("RANDOM weights", text)
        self.assertIn("fc6-conv weights are (4096, 256, 6, 6) dimensional", text)
        means = [float(m) for m in re.findall(r"-surgery output mean (-?[0-9.]+)", text)]
        self.assertEqual(len(means), 2, text)
        self.assertAlmostEqual(means[1] - means[0], 1.0, places=2)
        grid = text.split("argmax map:")[1]
        numbers = [int(n) for n in re.findall(r"\d+", grid)][:64]
        self.assertEqual(len(numbers), 64, text)
        want = [c for row in cli["argmax"] for c in row]
        self.assertEqual(cli["map"], [8, 8])
        self.assertEqual(numbers, want)
        self.assertEqual(saved["argmax"], cli["argmax"])


if __name__ == "__main__":
    unittest.main()
