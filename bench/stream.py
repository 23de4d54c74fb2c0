#!/usr/bin/env python3
"""make bench-stream: end-to-end throughput of `netsurg classify --list`
(decode + preprocess on worker threads, forward in batches, JSON lines
written and synced per batch) against the forward pass alone (`netsurg
bench` at the same batch and threads), on N generated 451x451 JPEGs through
two cast nets: the CaffeNet of bench/run.py (scripts/make-caffenet.sh,
`netsurg init --filler xavier`, `netsurg fcn --size 451x451`) and the
Fashion-MNIST LeNet of models/ cast to 451x451.  The issue's target: the
pipeline at >= 90% of forward-only.

Forward-only is timed before and after the pipeline run (the machine is
shared: the two bracket the load the run saw); its figure is the median of
those medians.  Prints a Markdown table; nothing is asserted.

Usage: bench/stream.py [--build build] [--images 1000] [--batch 4]
       [--threads 2] [--rounds 1] [--nets caffenet,fmnist]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SIZE = 451


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def prepare_nets(ns, work):
    """{name: (prototxt, weights, channels, extra classify args)}."""
    p = lambda f: os.path.join(work, f)  # noqa: E731
    if not os.path.exists(p("cn451.caffemodel")):
        with open(p("caffenet.prototxt"), "w") as f:
            f.write(run([os.path.join(ROOT, "scripts", "make-caffenet.sh"), "1", "227"]).stdout)
        run([ns, "init", p("caffenet.prototxt"), "--filler", "xavier", "--seed", "1",
             "--out", p("caffenet.caffemodel")])
        run([ns, "fcn", p("caffenet.prototxt"), p("caffenet.caffemodel"), "--size",
             "%dx%d" % (SIZE, SIZE), "--out", p("cn451")])
    if not os.path.exists(p("fm451.caffemodel")):
        m = os.path.join(ROOT, "models", "fmnist_lenet")
        run([ns, "fcn", os.path.join(m, "deploy.prototxt"), os.path.join(m, "fmnist_lenet.caffemodel"),
             "--size", "%dx%d" % (SIZE, SIZE), "--out", p("fm451")])
    return {"caffenet": (p("cn451.prototxt"), p("cn451.caffemodel"), 3,
                         ["--mean", "104,117,123"]),
            "fmnist": (p("fm451.prototxt"), p("fm451.caffemodel"), 1, ["--raw-scale", "1"])}


def prepare_images(work, n):
    """n colour JPEGs of 451x451 (smooth gradients plus noise, quality 90),
    kept between runs; returns the list file."""
    import cv2
    d = os.path.join(work, "images")
    os.makedirs(d, exist_ok=True)
    rng = np.random.RandomState(1)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    paths = []
    for i in range(n):
        path = os.path.join(d, "img%05d.jpg" % i)
        if not os.path.exists(path):
            a, b, c = rng.uniform(0, 255, 3)
            base = np.stack([a * xx, b * yy, c * (1 - xx) * yy], -1)
            im = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(path, im, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    listing = os.path.join(work, "list-%d.txt" % n)
    with open(listing, "w") as f:
        f.write("".join(p + "\n" for p in paths))
    return listing


def forward_only(ns, proto, weights, shape, threads, iters):
    out = run([ns, "bench", proto, weights, "--shape", ",".join(map(str, shape)), "--iters",
               str(iters), "--warmup", "1", "--threads", str(threads), "--json"]).stdout
    return json.loads(out)["median_ms"]


def pipeline(ns, proto, weights, extra, listing, batch, threads, out):
    start = time.monotonic()
    p = subprocess.run([ns, "classify", proto, weights, "--list", listing, "--batch", str(batch),
                        "--threads", str(threads), "--output", out] + extra,
                       capture_output=True, text=True)
    wall = time.monotonic() - start
    if p.returncode != 0:
        sys.exit("classify failed (%d): %s" % (p.returncode, p.stderr))
    return wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--images", type=int, default=int(os.environ.get("BENCH_STREAM_IMAGES", 1000)))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5, help="forward-only timed batches per bracket")
    ap.add_argument("--nets", default="caffenet,fmnist")
    a = ap.parse_args()
    ns = os.path.join(a.build, "netsurg")
    work = os.path.join(a.build, "bench-stream")
    os.makedirs(work, exist_ok=True)
    nets = prepare_nets(ns, work)
    listing = prepare_images(work, a.images)
    rows = []
    for name in a.nets.split(","):
        proto, weights, channels, extra = nets[name]
        shape = [a.batch, channels, SIZE, SIZE]
        fwd, walls = [], []
        for _ in range(a.rounds):
            fwd.append(forward_only(ns, proto, weights, shape, a.threads, a.iters))
            walls.append(pipeline(ns, proto, weights, extra, listing, a.batch, a.threads,
                                  os.path.join(work, name + ".jsonl")))
            fwd.append(forward_only(ns, proto, weights, shape, a.threads, a.iters))
        fwd_ips = a.batch / (statistics.median(fwd) / 1000)
        e2e_ips = a.images / statistics.median(walls)
        rows.append((name, fwd_ips, e2e_ips, fwd))
        print("%s: forward-only %.2f images/s (batch medians %s ms), end to end %.2f images/s "
              "(%d images in %s s): %.1f%%" % (name, fwd_ips, ", ".join("%.0f" % f for f in fwd),
                                               e2e_ips, a.images,
                                               ", ".join("%.1f" % w for w in walls),
                                               100 * e2e_ips / fwd_ips), flush=True)
    load = os.getloadavg()[0]
    print("\n| net (451x451, batch %d, %d threads) | forward-only images/s | end to end images/s "
          "| ratio |" % (a.batch, a.threads))
    print("|---|---|---|---|")
    for name, f, e, _ in rows:
        print("| %s | %.2f | %.2f | %.0f%% |" % (name, f, e, 100 * e / f))
    print("\n%d images, %d round(s); load average %.1f at the end" % (a.images, a.rounds, load))


if __name__ == "__main__":
    main()
