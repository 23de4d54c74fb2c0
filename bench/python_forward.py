#!/usr/bin/env python3
"""What a forward costs from Python: netsurg's pycaffe `net.forward()`
against `netsurg bench` (the same library, no Python) and OpenCV's
cv2.dnn from Python, on CaffeNet 227x227 batch 1, same weights
(netsurg init), same thread count.

Rounds interleave the three (a round: `netsurg bench` with its own warm-up,
then Python's warm-up and timed forwards, then OpenCV's), and each figure
is the median of the round medians: the machine may be shared, so ratios
from one run say more than absolute times.  Prints one Markdown line (and,
with --write, puts it in bench/PYTHON.md, which bench/run.py adds to
RESULTS.md).

Usage: bench/python_forward.py [--build build] [--rounds 9] [--iters 8]
                               [--threads 1] [--write]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_caffenet(build, folder):
    deploy = os.path.join(folder, "caffenet.prototxt")
    weights = os.path.join(folder, "caffenet.caffemodel")
    with open(deploy, "w") as f:
        subprocess.run([os.path.join(ROOT, "scripts", "make-caffenet.sh"), "1", "227"], stdout=f,
                       check=True)
    subprocess.run([os.path.join(build, "netsurg"), "init", deploy, "--seed", "1", "--filler",
                    "msra", "--out", weights], check=True, capture_output=True)
    return deploy, weights


def timed(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


TINY_NET = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 } } }
layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }
"""


def per_call_us(caffe, folder, calls=200, batches=15):
    """What Python adds to each forward, alone: net.forward() on a net
    whose one layer does nothing measurable, microseconds per call (the
    median over batches of calls, so the machine's noise mostly drops out)."""
    path = os.path.join(folder, "tiny.prototxt")
    with open(path, "w") as f:
        f.write(TINY_NET)
    net = caffe.Net(path, caffe.TEST)

    def batch():
        for _ in range(calls):
            net.forward()
    return timed(batch, 1, batches) * 1e3 / calls


def cli_median(build, deploy, weights, warmup, iters, threads):
    p = subprocess.run([os.path.join(build, "netsurg"), "bench", deploy, weights, "--iters",
                        str(iters), "--warmup", str(warmup), "--threads", str(threads), "--json"],
                       check=True, capture_output=True, text=True)
    return json.loads(p.stdout)["median_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ.setdefault("NETSURG_LIB", os.path.join(build, "libnetsurg.so"))
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import numpy as np
    import netsurg
    from netsurg import caffe
    import cv2

    netsurg.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        deploy, weights = make_caffenet(build, tmp)
        net = caffe.Net(deploy, weights, caffe.TEST)
        x = np.random.default_rng(1).uniform(-128, 128, (1, 3, 227, 227)).astype(np.float32)
        net.blobs["data"].data[...] = x
        peer = cv2.dnn.readNetFromCaffe(deploy, weights)
        peer.setInput(x)
        net.forward()
        ours = net.blobs["fc8"].data  # the logits: prob saturates on random weights
        theirs = peer.forward("fc8").reshape(ours.shape)
        agree = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
        tiny_us = per_call_us(caffe, tmp)
        rounds = {"cli": [], "py": [], "py_in": [], "cv2": []}
        for _ in range(args.rounds):
            rounds["cli"].append(cli_median(build, deploy, weights, args.warmup, args.iters,
                                            args.threads))
            rounds["py"].append(timed(net.forward, args.warmup, args.iters))
            rounds["py_in"].append(timed(lambda: net.forward(data=x), args.warmup, args.iters))
            rounds["cv2"].append(timed(lambda: (peer.setInput(x), peer.forward()), args.warmup,
                                       args.iters))
    med = {k: statistics.median(v) for k, v in rounds.items()}
    load = os.getloadavg()[0]
    line = ("- Python, CaffeNet 227x227 batch 1, %d thread(s), median of %d round medians "
            "(%d forwards each), load average %.1f (a shared machine): `net.forward()` %.1f ms, "
            "`net.forward(data=x)` %.1f ms, `netsurg bench` %.1f ms: Python's overhead %+.1f%% "
            "(%+.1f%% with the input copy; target at most 2%%); OpenCV's cv2.dnn from Python "
            "%.1f ms (netsurg from Python / cv2.dnn: %.2f; fc8 agrees to %.1e of its largest "
            "value). "
            "What Python adds per call, measured alone on a one-layer net: %.1f us = %.3f%% of "
            "this forward. `bench/python_forward.py` reruns it."
            % (args.threads, args.rounds, args.iters, load, med["py"], med["py_in"], med["cli"],
               100 * (med["py"] / med["cli"] - 1), 100 * (med["py_in"] / med["cli"] - 1),
               med["cv2"], med["py"] / med["cv2"], agree, tiny_us,
               100 * tiny_us / 1e3 / med["cli"]))
    print("rounds (ms): " + json.dumps({k: [round(t, 2) for t in v] for k, v in rounds.items()}))
    print(line)
    if args.write:
        with open(os.path.join(HERE, "PYTHON.md"), "w") as f:
            f.write("## From Python (hand-run: bench/python_forward.py --write)\n\n" + line + "\n")


if __name__ == "__main__":
    main()
