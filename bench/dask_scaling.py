#!/usr/bin/env python3
"""Images/s of netsurg.dask on a LocalCluster of 1 and 2 worker processes
(one thread each, the net on one thread), for docs/SCALING.md.  Uses the
nets and JPEGs bench/stream.py generated in BUILD/bench-stream (run `make
bench-stream` first, or pass --images to generate fewer).  The first batch on
each worker loads the model; a warm-up pass over 2 batches per worker is run
first and timed apart (the model load), then the timed pass.

Usage: bench/dask_scaling.py [--build build] [--net fmnist|caffenet]
       [--images 200] [--batch 4] [--workers 1,2]
"""
import argparse
import os
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "python"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--net", default="fmnist")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--workers", default="1,2")
    a = ap.parse_args()
    os.environ["NETSURG_LIB"] = os.path.abspath(os.path.join(a.build, "libnetsurg.so"))
    os.environ["PYTHONPATH"] = os.path.join(ROOT, "python")
    import stream
    from distributed import Client, LocalCluster
    import netsurg.dask as nsdask
    work = os.path.join(a.build, "bench-stream")
    proto, weights, _, extra = stream.prepare_nets(os.path.join(a.build, "netsurg"), work)[a.net]
    listing = stream.prepare_images(work, a.images)
    paths = [os.path.abspath(p) for p in open(listing).read().split()]
    kw = {"raw_scale": 1.0} if a.net == "fmnist" else {"mean": (104.0, 117.0, 123.0)}
    model = nsdask.Model(os.path.abspath(proto), os.path.abspath(weights), threads=1, **kw)
    for n in map(int, a.workers.split(",")):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            t0 = time.monotonic()
            nsdask.classify_paths(client, model, paths[:2 * n * a.batch], batch=a.batch)
            warm = time.monotonic() - t0
            t0 = time.monotonic()
            records = nsdask.classify_paths(client, model, paths, batch=a.batch)
            wall = time.monotonic() - t0
            assert len(records) == len(paths) and not any("error" in r for r in records)
            print("%s, %d worker(s): %.2f images/s (%.2f per worker), %d images in %.1f s; "
                  "warm-up with model loads %.1f s" % (a.net, n, len(paths) / wall,
                                                       len(paths) / wall / n, len(paths), wall,
                                                       warm), flush=True)
    print("load average %.1f" % os.getloadavg()[0])


if __name__ == "__main__":
    main()
