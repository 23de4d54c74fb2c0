"""The issue's done-when: the pycaffe code of BVLC Caffe's
00-classification.ipynb and net_surgery.ipynb (tests/slow/
pycaffe_notebooks_code.py: their calls cell by cell, print made Python 3,
model paths pointed at files netsurg made) runs unchanged on `import
caffe` from netsurg's python/caffe_shim, and prints the CLI's top-5 and
the CLI's 8x8 argmax map.  Slow: a CaffeNet batch of 50 and two 240 MB
weight files.  Skips without ../shared or the library."""
import ast
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import caffenet_models  # noqa: E402
from nscli import BUILD, CLI, SHARED, sanitized  # noqa: E402

ROOT = caffenet_models.ROOT
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pycaffe_notebooks_code.py")
DATA = os.path.join(SHARED, "data")
NEEDED = [os.path.join(DATA, f) for f in ("cat.jpg", "cat_gray.jpg", "ilsvrc_2012_mean.npy")]
DESIGNER = os.path.abspath(os.path.join(SHARED, "conformance", "designer_filters", "net.prototxt"))
LIB = os.path.join(BUILD, "libnetsurg.so")


def missing():
    absent = [p for p in NEEDED + [DESIGNER] if not os.path.exists(p)]
    if absent:
        return "no %s" % ", ".join(absent)
    if not os.path.exists(LIB) or not os.path.exists(CLI):
        return "no library or CLI in %s (make)" % BUILD
    if sanitized():
        return "libnetsurg.so built with sanitizers cannot load into python3"
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        return "%s (python3-matplotlib: scripts/install-deps.sh test)" % e
    return None


def top5_lists(text):
    """Each `[(prob, 'class N'), ...]` line the script printed, as class ids."""
    out = []
    for line in text.splitlines():
        if line.startswith("[(") and "class " in line:
            cleaned = re.sub(r"np\.float32\(([^)]*)\)", r"\1", line)
            out.append([int(label.split()[1]) for _, label in ast.literal_eval(cleaned)])
    return out


@unittest.skipIf(missing(), missing())
class NotebookCode(unittest.TestCase):
    def test_notebook_code_runs_unchanged_and_prints_the_clis_results(self):
        with tempfile.TemporaryDirectory() as tmp:
            deploy, weights = caffenet_models.make(tmp)
            os.symlink(weights, os.path.join(tmp, "caffenet.caffemodel"))
            os.symlink(os.path.join(tmp, "netsurg_fcn.prototxt"),
                       os.path.join(tmp, "bvlc_caffenet_full_conv.prototxt"))
            with open(os.path.join(tmp, "labels.txt"), "w") as f:
                f.writelines("class %d\n" % k for k in range(1000))
            env = dict(os.environ, MPLBACKEND="Agg", NETSURG_LIB=os.path.abspath(LIB),
                       PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "python"),
                                                   os.path.join(ROOT, "python", "caffe_shim")]))
            p = subprocess.run([sys.executable, SCRIPT, tmp, DATA, DESIGNER],
                               capture_output=True, text=True, env=env, cwd=tmp)
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
            classifier = caffenet_models.cli_classify(deploy, weights, NEEDED[0], NEEDED[2])
            fcn = caffenet_models.cli_classify(os.path.join(tmp, "netsurg_fcn.prototxt"),
                                               os.path.join(tmp, "netsurg_fcn.caffemodel"),
                                               NEEDED[0], NEEDED[2])
        text = p.stdout
        want_top5 = [t["class"] for t in classifier["top"][0][0]]
        self.assertEqual(top5_lists(text), [want_top5, want_top5], text)
        self.assertIn("predicted class is: %d" % want_top5[0], text)
        means = [float(m) for m in re.findall(r"-surgery output mean (-?[0-9.]+)", text)]
        self.assertAlmostEqual(means[1] - means[0], 1.0, places=2)
        grid = text[text.rindex("dimensional\n"):]
        numbers = [int(n) for n in re.findall(r"\d+", grid)]
        self.assertEqual(numbers, [c for row in fcn["argmax"] for c in row], text)


if __name__ == "__main__":
    unittest.main()
